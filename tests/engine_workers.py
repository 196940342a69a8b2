"""A worker class for tests/test_engine.py, in an importable module (Ray actors import their class by name)."""
from __future__ import annotations

import numpy as np


class NoisyWorker:
    def __init__(self, scale: float):
        self.scale = scale

    def run(self, name: str, episode: int, seed: int):
        value = float(np.random.default_rng(seed).normal()) * self.scale
        if name == "pair":
            return [{"name": name, "episode": episode, "part": p, "value": value + p} for p in range(2)]
        if name == "bad":
            raise ValueError("boom in a worker")
        return {"name": name, "episode": episode, "part": 0, "value": value}
