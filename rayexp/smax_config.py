"""The typed config of a SMAX OOC experiment (``tune_configs/smax_*.yaml``); unknown keys fail with one line.

One experiment trains on one split's training teams (``split``: simple = mixed ABC teams, hard = single-type
AAA teams) and evaluates on that split's in-distribution teams (row "ID") and its OOC test teams (row
"simple" / "hard"), as Table A.10 does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from algorithms.mappo_settings import MAPPOSettings
from rayexp.config import (
    DataConfig,
    ModelStage,
    RayConfig,
    Section,
    TrainConfig,
    _first_error,
    _UniqueKeyLoader,
    parse_overrides,
    set_path,
)
from rayexp.errors import ConfigError


class SMAXCollectConfig(Section):
    rounds: int = Field(400, gt=0)
    """MAPPO rounds played (sampled actions); only the won ones are kept."""
    num_tasks: int = Field(2, gt=0)
    """Parallel Ray tasks that play them."""
    only_success: bool = True


class SMAXEvalConfig(Section):
    rounds: int = Field(100, gt=0)
    """Rounds per seed (thesis: 100)."""
    seeds: int = Field(3, gt=0)
    """Evaluation seeds; the table shows mean (s.e.) over them (thesis: 3)."""
    seed: int = 10_000
    num_actors: int = Field(2, gt=0)
    teams: list[str] = ["mappo", "mappo+random"]
    """mappo, mappo+random, mappo+<model stage>; the ego is agent (round seed mod n)."""
    greedy: bool = True
    """MAPPO agents take their most likely action (False: sample)."""
    guidance: float | None = None
    """Planner CFG weight for every planner stage (None: each stage's own)."""
    sample_steps: int | None = None
    """Planner DDIM steps at evaluation (None: each stage's own)."""
    replan_every: int = Field(1, gt=0)
    """BC / planner egos plan every k steps and follow the plan's scores in between (1: every step, closed loop)."""


class SMAXConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    name: str = "smax_3v3_hard"
    seed: int = 0
    n_units: Literal[2, 3, 5] = 3
    split: Literal["simple", "hard"] = "hard"
    mappo: MAPPOSettings = MAPPOSettings()
    collect: SMAXCollectConfig = SMAXCollectConfig()
    data: DataConfig = DataConfig(action_horizon=32)
    train: TrainConfig = TrainConfig()
    models: dict[str, ModelStage] = {}
    evaluate: SMAXEvalConfig = SMAXEvalConfig()
    ray: RayConfig = RayConfig()

    @property
    def train_env(self) -> str:
        return f"smax-{self.n_units}v{self.n_units}-{self.split}"

    @property
    def eval_envs(self) -> dict[str, str]:
        """Table row -> env name: the in-distribution teams and the split's OOC test teams."""
        return {f"ID ({'ABC' if self.split == 'simple' else 'AAA'})": f"{self.train_env}-id-test",
                self.split: f"{self.train_env}-test"}

    @model_validator(mode="after")
    def _teams(self) -> "SMAXConfig":
        from rayexp.errors import RayexpError
        from rayexp.smax_eval import parse_team

        for team in self.evaluate.teams:
            try:
                _, k = parse_team(team, list(self.models))
            except RayexpError as e:
                raise ValueError(str(e)) from None
            if k > self.n_units:
                raise ValueError(f"evaluate.teams: {team!r} replaces {k} agents of a team of {self.n_units}")
        return self


def load_smax_config(path: str | Path | None, overrides: list[str] | None = None) -> SMAXConfig:
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    for key, value in parse_overrides(overrides or []):
        set_path(data, key, value)
    try:
        return SMAXConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{path or 'config'}: {_first_error(e)}") from None
