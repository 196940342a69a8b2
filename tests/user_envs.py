"""A user's own gymnasium environment, outside rayexp: ``env.id: tests.user_envs:Reach1D-v0`` imports this module
(gymnasium's ``module:EnvId`` form), which registers the id, in the driver and in every Ray worker."""
from __future__ import annotations

import gymnasium as gym
import numpy as np


class Reach1D(gym.Env):
    """Move a point on a line to the origin: reward -|x| per step, 30 steps, success within 0.1 at the end."""

    observation_space = gym.spaces.Box(-5.0, 5.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-2, 2)), 0
        return self._obs(), {}

    def step(self, action):
        self.x = float(np.clip(self.x + 0.2 * float(np.clip(action[0], -1, 1)), -5, 5))
        self.t += 1
        truncated = self.t >= 30
        info = {"is_success": abs(self.x) < 0.1} if truncated else {}
        return self._obs(), -abs(self.x), False, truncated, info

    def _obs(self):
        return np.array([self.x, self.t / 30], np.float32)


if "Reach1D-v0" not in gym.registry:
    gym.register("Reach1D-v0", entry_point=Reach1D)


def scripted_reach_data(cfg, out, overwrite):
    """A user family's data source (``collect.source: scripted``): a proportional controller's episodes."""
    from rayexp.data.store import DatasetMeta, Episode, write_dataset

    env, episodes = gym.make("Reach1D-v0"), []
    for k in range(cfg.collect.episodes):
        obs, _ = env.reset(seed=cfg.seed + k)
        observations, actions, rewards, done = [], [], [], False
        while not done:
            action = np.clip([-2.0 * obs[0]], -1, 1).astype(np.float32)
            observations.append(obs)
            actions.append(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            rewards.append(reward)
            done = terminated or truncated
        timeouts = np.zeros(len(rewards), bool)
        timeouts[-1] = True
        episodes.append(Episode(np.array(observations), np.array(actions), np.array(rewards, np.float32),
                                np.zeros(len(rewards), bool), timeouts, final_observation=obs, seed=cfg.seed + k,
                                policy="scripted"))
    meta = DatasetMeta(env_id=cfg.env.id, obs_dim=2, act_dim=1, source="scripted")
    return write_dataset(out, episodes, meta, overwrite=overwrite)


def reach_report(run_path):
    """A user family's report section."""
    return f"## Reach1D family\n\n{len(list((run_path / 'models').glob('*.pt')))} trained stage(s)"


def _family():
    from rayexp.families import Family

    return Family("reach", env_prefixes=("tests.user_envs:Reach1D",),
                  collect_sources={"scripted": "tests.user_envs:scripted_reach_data"},
                  report="tests.user_envs:reach_report")


FAMILY = _family()
