"""Write a D4RL-layout hdf5 of InvertedPendulum-v5 episodes from two action modes, only one rewarded.

The good mode is a stabilising linear controller (its 20-step episodes return 20); the bad mode is the same
controller pushed by a constant offset (the pole falls after ~4 steps). By default 4 in 5 episodes are bad, so
each mode makes about half the steps: a model that imitates the data starts in the bad mode most of the time, and a
reward-aware one should pick the good mode (thesis ch. 3).

    python scripts/two_mode_d4rl.py OUT.hdf5 [--episodes 200] [--steps 20] [--bad-fraction 0.8] [--seed 0]
    rayexp data import-d4rl OUT.hdf5 runs/two_mode/data --env-id InvertedPendulum-v5
"""
from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np

GAINS = np.array([1.0, 10.0, 1.0, 2.0])  # on (cart x, pole angle, cart velocity, pole angular velocity)
BAD_OFFSET = 2.5
NOISE = 0.1


def mode_action(obs: np.ndarray, good: bool, rng: np.random.Generator) -> np.ndarray:
    a = GAINS @ obs + (0.0 if good else BAD_OFFSET) + NOISE * rng.standard_normal()
    return np.clip(np.array([a], dtype=np.float32), -3.0, 3.0)


def two_mode_episodes(episodes: int, steps: int, seed: int, bad_fraction: float = 0.8) -> dict[str, np.ndarray]:
    """D4RL arrays (observations, actions, rewards, terminals, timeouts); episode i is bad when
    ``i * bad_fraction`` crosses an integer, so the modes interleave."""
    env = gym.make("InvertedPendulum-v5", max_episode_steps=steps)
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in ("observations", "actions", "rewards", "terminals", "timeouts")}
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done = False
        while not done:
            good = int((ep + 1) * bad_fraction) == int(ep * bad_fraction)
            action = mode_action(obs, good, rng)
            nxt, reward, terminated, truncated, _ = env.step(action)
            for k, v in zip(cols, (obs, action, reward, terminated, truncated and not terminated)):
                cols[k].append(v)
            obs, done = nxt, terminated or truncated
    return {k: np.asarray(v, dtype=np.float32 if k in ("observations", "actions", "rewards") else bool)
            for k, v in cols.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--bad-fraction", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    data = two_mode_episodes(a.episodes, a.steps, a.seed, a.bad_fraction)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_name(f".{a.out.name}.tmp")
    with h5py.File(tmp, "w") as f:
        for k, v in data.items():
            f[k] = v
    tmp.replace(a.out)
    print(f"wrote {a.out}: {a.episodes} episodes, {len(data['rewards'])} steps")


if __name__ == "__main__":
    main()
