"""Condition vectors read from an observation: the element combination a chapter-2 planner is conditioned on.

Each entry names an ``obs (..., obs_dim) -> (..., cond_dim)`` numpy function and how many condition tokens
its vector splits into (one per element, e.g. one per other vehicle) for cross-attention. Imported on first
use, so naming a condition never imports an environment it does not need.
"""
from __future__ import annotations

import importlib
from typing import Callable, NamedTuple

import numpy as np


class Condition(NamedTuple):
    function: str  # "module:attribute"
    tokens: int


CONDITIONS = {
    "roundabout_types": Condition("envs.roundabout:condition_vector", 4),  # (car, bicycle, not visible) x 4 others
    # SMAX: (stalker, zealot, colossus) one-hot of self, n-1 teammates and n enemies: 2n tokens
    **{f"smax_types_{n}v{n}": Condition("envs.smax:unit_type_condition", 2 * n) for n in (2, 3, 5)},
}


def condition_names() -> list[str]:
    return sorted(CONDITIONS)


def condition_fn(name: str) -> Callable[[np.ndarray], np.ndarray]:
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; valid: waypoints, {', '.join(condition_names())}")
    module, attr = CONDITIONS[name].function.split(":")
    return getattr(importlib.import_module(module), attr)
