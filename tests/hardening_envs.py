"""Faulty environments for tests/test_hardening.py; ``env.id: tests.hardening_envs:NaNPendulum-v0`` registers them."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.inverted_pendulum_v5 import InvertedPendulumEnv


class NaNPendulum(InvertedPendulumEnv):
    """InvertedPendulum whose observation turns NaN from step ``after`` on (a broken sensor, a bad wrapper)."""

    def __init__(self, after: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.after, self.t = after, 0

    def reset(self, **kwargs):
        self.t = 0
        return super().reset(**kwargs)

    def step(self, action):
        obs, r, terminated, truncated, info = super().step(action)
        self.t += 1
        if self.t >= self.after:
            obs = np.full_like(obs, np.nan)
        return obs, r, terminated, truncated, info


if "NaNPendulum-v0" not in gym.registry:
    gym.register("NaNPendulum-v0", entry_point=NaNPendulum)
