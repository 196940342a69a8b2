"""The roundabout's ``family:`` section of an experiment config (``tune_configs/roundabout.yaml``) and its checks."""
from __future__ import annotations

from rayexp.config import Section


class RoundaboutSettings(Section):
    experts: bool = False
    """Also evaluate the collect stage's PPO expert(s) (``collect.experts``) as methods."""
    random_condition: list[str] = []
    """Planner stages also evaluated with a random vehicle-type condition (thesis Table A.6)."""


def check_config(cfg) -> None:
    """The family's ``check_config`` hook: random-condition rows name planner stages of the config."""
    from algorithms.registry import PLANNER_METHODS

    bad = [m for m in cfg.family.random_condition if m not in cfg.models or cfg.models[m].method.name not in PLANNER_METHODS]
    if bad:
        raise ValueError(f"family.random_condition names {bad}, which are no planner or planner_ctd stages in models")
