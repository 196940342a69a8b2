"""The sweep YAML: a strict pydantic ``SweepConfig`` plus the checks that need the base experiment.

Everything a sweep can get wrong (unknown key, unknown stage, empty space, a metric the trials never
report, a space value the experiment schema refuses, a missing ``from_run``) fails here with one line,
before Ray starts.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rayexp.config import ExperimentConfig, parse_overrides, set_path, validate
from rayexp.errors import ConfigError, first_error
from rayexp.yaml_file import read_mapping

TRAIN_METRICS = ("loss", "grad_norm")
EVAL_METRICS = ("score", "return", "success_rate")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Axis(_Strict):
    """One search dimension: exactly one of grid, choice, uniform or loguniform."""

    grid: list[Any] | None = None
    choice: list[Any] | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one(self) -> "Axis":
        given = [k for k in ("grid", "choice", "uniform", "loguniform") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of grid: [...], choice: [...], uniform: [lo, hi], loguniform: [lo, hi]")
        values = getattr(self, given[0])
        if given[0] in ("grid", "choice") and not values:
            raise ValueError(f"{given[0]} needs at least one value")
        if given[0] in ("uniform", "loguniform") and not values[0] < values[1]:
            raise ValueError(f"{given[0]} needs lo < hi, got {list(values)}")
        if given[0] == "loguniform" and values[0] <= 0:
            raise ValueError("loguniform needs lo > 0")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("grid", "choice", "uniform", "loguniform") if getattr(self, k) is not None)

    def probe_values(self) -> list[Any]:
        """The values to validate against the experiment schema: all of a list, both ends of a range."""
        return list(getattr(self, self.kind))


class AshaConfig(_Strict):
    grace_period: int = Field(1, gt=0)
    """Epochs every trial runs before ASHA may stop it."""
    reduction_factor: float = Field(2.0, gt=1)
    brackets: int = Field(1, gt=0)


class SweepConfig(_Strict):
    name: str = ""
    """Sweep folder name under storage_path (default: the YAML file's stem)."""
    from_run: str
    """A finished run folder: its data/ (or data.path) is the dataset, its models/ hold the frozen nets."""
    base: str | dict[str, Any] | None = None
    """Experiment config: a YAML path, an inline mapping, or None for <from_run>/config.yaml."""
    overrides: list[str] = []
    """key=value overrides applied to the base (e.g. train.steps=200)."""
    stage: str
    """A model stage of the base to train (teacher, reward, student, bc...) or '<stage>-eval' to only evaluate it."""
    space: dict[str, Axis]
    """Dotted experiment keys -> axis; plus ``eval.split`` (train | test: which part of the OOC split a
    planner-eval trial plans between)."""
    search: Literal["grid", "random", "optuna"] = "grid"
    scheduler: Literal["fifo", "asha"] = "fifo"
    asha: AshaConfig = AshaConfig()
    metric: str = "loss"
    mode: Literal["min", "max"] = "min"
    num_samples: int = Field(1, gt=0)
    """Grid: repeats of the whole grid; random/optuna: trials drawn."""
    max_concurrent: int = Field(2, gt=0)
    resources_per_trial: dict[str, float] = {"cpu": 1}
    """Ray resources of one trial, e.g. {cpu: 4, gpu: 0.5}; a trial with a GPU trains and scores on it."""
    storage_path: str = "sweeps"
    """Local folder or cloud URI (s3://, gs://) that holds <name>/."""
    max_failures: int = Field(1, ge=0)
    """Retries of a crashing trial (from its last checkpoint) before it is marked errored."""
    steps_per_epoch: int | None = Field(None, gt=0)
    """Training steps between reports (default: the stage's train.checkpoint_every)."""
    eval_episodes: int = Field(0, ge=0)
    """Seeded episodes run in-process after each epoch to report score/return/success_rate (0 = none)."""
    eval_max_steps: int | None = Field(None, gt=0)
    """Cap on steps per evaluation episode (CPU budgets)."""
    seed: int = 0

    @field_validator("resources_per_trial")
    @classmethod
    def _resources(cls, v: dict[str, float]) -> dict[str, float]:
        upper = [k for k in v if k in ("CPU", "GPU")]
        if upper:
            raise ValueError(f"write resource names in lower case (cpu, gpu), not {upper}")
        negative = [k for k, x in v.items() if x < 0]
        if negative:
            raise ValueError(f"resources must be >= 0, not {negative}")
        return v

    @model_validator(mode="after")
    def _shape(self) -> "SweepConfig":
        if not self.space:
            raise ValueError("space is empty; give at least one key, e.g. space: {train.lr: {grid: [1e-3, 3e-4]}}")
        kinds = {k: a.kind for k, a in self.space.items()}
        if self.search == "grid" and any(v != "grid" for v in kinds.values()):
            bad = [k for k, v in kinds.items() if v != "grid"]
            raise ValueError(f"search: grid needs {{grid: [...]}} for every key (not {bad}); use search: random or optuna")
        if self.search == "optuna" and "grid" in kinds.values():
            bad = [k for k, v in kinds.items() if v == "grid"]
            raise ValueError(f"search: optuna samples, so {bad} must be choice/uniform/loguniform, not grid")
        return self

    @property
    def eval_only(self) -> bool:
        return self.stage.endswith("-eval")

    @property
    def model_stage(self) -> str:
        return self.stage.removesuffix("-eval")

    def expected_trials(self) -> int:
        grid = math.prod(len(a.grid) for a in self.space.values() if a.grid is not None)
        return self.num_samples * (grid if self.search != "optuna" else 1)

    def metrics(self, cfg: ExperimentConfig | None = None) -> tuple[str, ...]:
        """The metric names every trial reports."""
        if self.eval_only:
            from rayexp.families import family_for, hook

            family_metrics = hook(family_for(cfg.env.id, cfg.env.family), "sweep_metrics") if cfg is not None else None
            return (family_metrics and family_metrics(cfg, self.model_stage)) or EVAL_METRICS
        return TRAIN_METRICS + (EVAL_METRICS if self.eval_episodes else ())


def read_sweep(path: str | Path, overrides: list[str] | None = None) -> tuple[SweepConfig, ExperimentConfig]:
    """Load, check and resolve a sweep YAML; ``key=value`` overrides set sweep keys, ``base.KEY=value`` base keys."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {path} does not exist; see tune_configs/sweep_*.yaml")
    data = read_mapping(path)
    base_overrides = [o.removeprefix("base.") for o in overrides or [] if o.startswith("base.")]
    for key, value in parse_overrides([o for o in overrides or [] if not o.startswith("base.")]):
        set_path(data, key, value)
    if base_overrides:
        data["overrides"] = [*data.get("overrides", []), *base_overrides]
    data.setdefault("name", path.stem)
    try:
        sweep = SweepConfig.model_validate(data)
    except ValidationError as e:
        msg = first_error(e)
        if e.errors()[0]["type"] == "extra_forbidden" and len(e.errors()[0]["loc"]) == 1:
            msg += f" (allowed: {', '.join(SweepConfig.model_fields)})"
        raise ConfigError(f"{path}: {msg}") from None
    base = _base_dict(sweep, path.parent)
    cfg = validate(base, f"{path}: base")
    check_against_base(sweep, base, cfg, str(path))
    return sweep, cfg


def _base_dict(sweep: SweepConfig, here: Path) -> dict[str, Any]:
    if isinstance(sweep.base, dict):
        data = dict(sweep.base)
    else:
        src = Path(sweep.base) if sweep.base else Path(sweep.from_run) / "config.yaml"
        if sweep.base and not src.is_file() and (here / src).is_file():
            src = here / src
        if not src.is_file():
            raise ConfigError(f"base: experiment config {src} does not exist" + ("" if sweep.base else f" (from_run {sweep.from_run} has no config.yaml; set base:)"))
        data = read_mapping(src)
    for key, value in parse_overrides(sweep.overrides):
        set_path(data, key, value)
    return data


def apply_point(base: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of the base experiment dict with dotted keys set to the trial's values."""
    import copy

    data = copy.deepcopy(base)
    for key, value in point.items():
        set_path(data, key, value)
    return data


def check_against_base(sweep: SweepConfig, base: dict[str, Any], cfg: ExperimentConfig, source: str) -> None:
    from rayexp.runs import Run, dataset_path

    allowed = [s for m in cfg.models for s in (m, f"{m}-eval")]
    if sweep.stage not in allowed:
        raise ConfigError(f"{source}: stage: unknown stage {sweep.stage!r}; the base defines: {', '.join(allowed) or 'no models'}")
    if sweep.metric not in sweep.metrics(cfg):
        hint = "" if sweep.eval_only or sweep.eval_episodes else " (score/return/success_rate need eval_episodes > 0)"
        raise ConfigError(f"{source}: metric: trials do not report {sweep.metric!r}; they report: {', '.join(sweep.metrics(cfg))}{hint}")
    probes = [cfg]
    for key, axis in sweep.space.items():
        if key.startswith("eval."):
            _check_eval_key(sweep, key, axis, source)
            continue
        for value in axis.probe_values():
            try:
                probes.append(validate(apply_point(base, {key: value}), ""))
            except ConfigError as e:
                raise ConfigError(f"{source}: space.{key} = {value!r}: {str(e).removeprefix(': ')}") from None
    run = Path(sweep.from_run)
    if not run.is_dir():
        raise ConfigError(f"{source}: from_run: run folder {run} does not exist; run `rayexp collect`/`rayexp train` first")
    data = dataset_path(cfg, Run(run))
    if not (Path(data) / "meta.json").is_file():
        raise ConfigError(f"{source}: from_run: no dataset at {data}; run `rayexp collect` for {run} first")
    needed = [sweep.model_stage] if sweep.eval_only else sorted({n for c in probes for n in _needs(c, sweep.model_stage)})
    missing = [n for n in needed if not (run / "models" / f"{n}.pt").is_file()]
    if missing:
        raise ConfigError(f"{source}: from_run: {run}/models lacks {', '.join(m + '.pt' for m in missing)}; "
                          f"train it first (`rayexp train --stage {missing[0]}`)")


def _needs(cfg: ExperimentConfig, stage: str) -> tuple[str, ...]:
    """The stage names whose checkpoints the stage loads frozen (roles mapped by ``models.<stage>.frozen``)."""
    from algorithms.registry import make_method

    st = cfg.models[stage]
    return tuple(st.frozen.get(n, n) for n in make_method(st.method).needs)


def _check_eval_key(sweep: SweepConfig, key: str, axis: Axis, source: str) -> None:
    if key != "eval.split" or not sweep.eval_only:
        raise ConfigError(f"{source}: space.{key}: the only evaluation key is eval.split, for a '<stage>-eval' stage")
    bad = [v for v in axis.probe_values() if v not in ("train", "test")]
    if bad or axis.kind in ("uniform", "loguniform"):
        raise ConfigError(f"{source}: space.eval.split: values must be train or test, got {axis.probe_values()}")
