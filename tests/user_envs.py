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
