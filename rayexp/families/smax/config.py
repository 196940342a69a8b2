"""SMAX's ``family:`` section of an experiment config (``tune_configs/smax_*.yaml``) and its checks.

``env.id: smax-<n>v<n>-<split>`` names the training teams (split simple = mixed ABC teams, hard = single-type AAA
teams); an experiment evaluates on that split's in-distribution teams (row "ID") and its OOC test teams (row
"simple" / "hard"), as Table A.10 does. The core sections keep their meaning: ``collect.episodes`` MAPPO rounds
recorded by ``collect.num_env_runners`` Ray tasks (``collect.only_success``: won rounds only), ``evaluate.episodes``
rounds per seed over ``evaluate.seeds`` seeds from ``evaluate.seed`` on ``evaluate.num_actors`` actors.
"""
from __future__ import annotations

import re

from pydantic import Field

from algorithms.mappo_settings import MAPPOSettings
from rayexp.config import Section

ENV_ID = re.compile(r"smax-(?P<n>[235])v(?P=n)-(?P<split>simple|hard)")


class SMAXSettings(Section):
    mappo: MAPPOSettings = MAPPOSettings()
    teams: list[str] = ["mappo", "mappo+random"]
    """Evaluated teams: mappo, mappo+random, mappo+<model stage>, mappo+k*<stage>; the ego is agent (round seed mod n)."""
    greedy: bool = True
    """MAPPO agents take their most likely action (False: sample)."""
    guidance: float | None = None
    """Planner CFG weight for every planner stage (None: each stage's own)."""
    sample_steps: int | None = None
    """Planner DDIM steps at evaluation (None: each stage's own)."""
    replan_every: int = Field(1, gt=0)
    """BC / planner egos plan every k steps and follow the plan's scores in between (1: every step, closed loop)."""


def teams_of(env_id: str) -> tuple[int, str]:
    """``smax-3v3-hard`` -> (3, "hard")."""
    m = ENV_ID.fullmatch(env_id)
    if m is None:
        raise ValueError(f"env.id {env_id!r} is no SMAX experiment; use smax-<n>v<n>-<simple|hard> with n in 2, 3, 5")
    return int(m["n"]), m["split"]


def eval_envs(env_id: str) -> dict[str, str]:
    """Table row -> env name: the in-distribution teams and the split's OOC test teams."""
    _, split = teams_of(env_id)
    return {f"ID ({'ABC' if split == 'simple' else 'AAA'})": f"{env_id}-id-test", split: f"{env_id}-test"}


def check_config(cfg) -> None:
    """The family's ``check_config`` hook: a SMAX env id, and teams that name trained stages and fit the team size."""
    from rayexp.errors import RayexpError
    from rayexp.families.smax.evaluate import parse_team

    n_units, _ = teams_of(cfg.env.id)
    for team in cfg.family.teams:
        try:
            _, k = parse_team(team, list(cfg.models))
        except RayexpError as e:
            raise ValueError(str(e)) from None
        if k > n_units:
            raise ValueError(f"family.teams: {team!r} replaces {k} agents of a team of {n_units}")
