"""A two-mode offline dataset on InvertedPendulum-v5: the smallest MuJoCo task where imitation and reward-aware
distillation part ways (thesis ch. 3).

The good mode is a stabilising linear controller (its episodes survive the whole cap); the bad mode is the same
controller pushed by a constant offset (the pole falls after about 4 steps). Both start from the same upright
states, so near them the data holds both modes: a model that imitates the data falls into the bad mode as often
as the data does, and a reward-aware one should pick the good mode.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

ENV_ID = "InvertedPendulum-v5"
GAINS = np.array([1.0, 10.0, 1.0, 2.0])  # on (cart x, pole angle, cart velocity, pole angular velocity)
BAD_OFFSET = 2.5
NOISE = 0.1


def mode_action(obs: np.ndarray, good: bool, rng: np.random.Generator) -> np.ndarray:
    a = GAINS @ obs + (0.0 if good else BAD_OFFSET) + NOISE * rng.standard_normal()
    return np.clip(np.array([a], dtype=np.float32), -3.0, 3.0)


def is_bad(episode: int, bad_fraction: float) -> bool:
    """Episode i is bad when i * bad_fraction crosses an integer, so the modes interleave."""
    return int((episode + 1) * bad_fraction) != int(episode * bad_fraction)


def two_mode_episodes(episodes: int, steps: int, seed: int, bad_fraction: float = 0.95) -> list[dict[str, np.ndarray]]:
    """One dict per episode: observations T,4, actions T,1, rewards, terminals, timeouts (T), final_observation,
    mode ("good" / "bad") and seed."""
    env = gym.make(ENV_ID, max_episode_steps=steps)
    rng = np.random.default_rng(seed)
    out = []
    for ep in range(episodes):
        good = not is_bad(ep, bad_fraction)
        obs, _ = env.reset(seed=seed + ep)
        rows: dict[str, list] = {k: [] for k in ("observations", "actions", "rewards", "terminals", "timeouts")}
        done = False
        while not done:
            action = mode_action(obs, good, rng)
            nxt, reward, terminated, truncated, _ = env.step(action)
            for k, v in zip(rows, (obs, action, reward, terminated, truncated and not terminated)):
                rows[k].append(v)
            obs, done = nxt, terminated or truncated
        ep_arrays = {k: np.asarray(v, dtype=bool if k in ("terminals", "timeouts") else np.float32) for k, v in rows.items()}
        out.append({**ep_arrays, "final_observation": np.asarray(obs, dtype=np.float32), "mode": "good" if good else "bad",
                    "seed": seed + ep})
    return out
