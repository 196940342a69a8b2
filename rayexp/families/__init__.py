"""Environment families as plugins: what a family supplies, and how the core finds the family of an env id.

A family is a ``Family`` value. The core (config, run folder, Ray Train stages, the evaluation engine, reports)
calls a family's hooks by ``"module:function"`` name, imported only when used: validating a config imports no
family code, and no core module imports a family's modules. Built in: ``maze2d``, ``roundabout``, ``smax`` and
``mujoco`` (``rayexp/families/<name>/``). A user's family is found through the ``rayexp.families`` entry point
group (``[project.entry-points."rayexp.families"] myfam = "mypkg.family:FAMILY"``) or named in a config
(``env.family: mypkg.family:FAMILY``). A gymnasium env with no family (``env.id: mypkg:MyEnv-v0``) runs on the
core's own collection and evaluation.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Callable, Mapping

from rayexp.errors import ConfigError, first_error

ENTRY_POINT_GROUP = "rayexp.families"
BUILTIN = ("rayexp.families.maze2d:FAMILY", "rayexp.families.roundabout:FAMILY", "rayexp.families.smax:FAMILY",
           "rayexp.families.mujoco:FAMILY")


@dataclass(frozen=True)
class Family:
    name: str
    env_prefixes: tuple[str, ...] = ()
    """The env ids this family owns (``env.id`` starts with one of them)."""
    settings: str | None = None
    """A pydantic model for the config's ``family:`` section (None: the family takes no section)."""
    check_config: str | None = None
    """``fn(cfg)`` raising ValueError on what the typed sections cannot check alone (e.g. teams vs. models)."""
    collect: str | None = None
    """``fn(cfg, run, overwrite) -> EpisodeStore`` replacing the core's RLlib expert + recording."""
    collect_sources: Mapping[str, str] = field(default_factory=dict)
    """Extra ``collect.source`` values -> ``fn(cfg, out, overwrite) -> EpisodeStore``."""
    evaluate: str | None = None
    """``fn(cfg, run, models) -> summary DataFrame`` replacing the core's episode evaluation (None: the core's)."""
    report: str | None = None
    """``fn(run_path) -> markdown`` that `rayexp report` adds for this family's runs."""
    sweep_metrics: str | None = None
    """``fn(cfg, stage) -> metric names`` an eval-only sweep trial reports (None from it: the core's)."""
    sweep_score: str | None = None
    """``fn(method, model, spec, cfg, job, options) -> scores`` of an eval-only trial (None from it: the core's)."""
    commands: str | None = None
    """A click command or group added to the `rayexp` CLI (e.g. ``rayexp maze figure``)."""
    gpu_evaluation: bool = True
    """False: its evaluation runs policies on CPUs only (``evaluate.gpus_per_actor`` must be 0)."""

    def owns(self, env_id: str) -> bool:
        return env_id.startswith(self.env_prefixes) if self.env_prefixes else False


GYM = Family("gym")
"""The core's own path: RLlib expert, recorded rollouts, episodes on evaluation actors."""


def load_ref(ref: str, what: str = "hook") -> Any:
    """The object a ``"module:attribute"`` reference names."""
    module, _, attr = ref.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"{what} {ref!r} cannot be loaded ({e}); give it as 'package.module:NAME'") from None
    return obj


def hook(family: Family, name: str) -> Callable | None:
    ref = getattr(family, name)
    return load_ref(ref, f"family {family.name}'s {name}") if ref else None


def _as_family(obj: Any, ref: str, what: str) -> Family:
    if not isinstance(obj, Family):
        raise ConfigError(f"{what} {ref!r} is a {type(obj).__name__}, not a rayexp.families.Family; point it at one")
    return obj


@cache
def registered() -> tuple[Family, ...]:
    """The built-in families and those of installed packages' ``rayexp.families`` entry points."""
    found = [_as_family(load_ref(ref, "family"), ref, "family") for ref in BUILTIN]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.append(_as_family(ep.load(), ep.value, f"entry point {ENTRY_POINT_GROUP}:{ep.name}"))
    return tuple(found)


def family_for(env_id: str, named: str | None = None) -> Family:
    """The family a config's env belongs to: ``env.family`` when given, else the registered family whose prefix
    the env id has, else the core's gymnasium path."""
    if named:
        return _as_family(load_ref(named, "env.family"), named, "env.family")
    return next((f for f in registered() if f.owns(env_id)), GYM)


def check_family_section(cfg, core_sources: tuple[str, ...]) -> None:
    """An experiment config's family parts (raising ValueError, as a pydantic validator does): a data source the
    core or the family has, the ``family:`` section typed by the family's settings, and the family's own checks."""
    from pydantic import ValidationError

    family = family_for(cfg.env.id, cfg.env.family)
    sources = [*core_sources, *family.collect_sources]
    if cfg.collect.source not in sources:
        raise ValueError(f"collect.source {cfg.collect.source!r} is not available for env.id {cfg.env.id!r}; "
                         f"choose from {sources}")
    if family.settings is None:
        if cfg.family is not None:
            raise ValueError(f"family: the {family.name} family of env.id {cfg.env.id!r} takes no family section")
        return
    settings = load_ref(family.settings, f"family {family.name}'s settings")
    if not isinstance(cfg.family, settings):
        try:  # set in place: an assignment would validate the whole config again
            cfg.__dict__["family"] = settings.model_validate(cfg.family or {})
        except ValidationError as e:
            raise ValueError(f"family.{first_error(e)}") from None
    check = hook(family, "check_config")
    if check is not None:
        check(cfg)
