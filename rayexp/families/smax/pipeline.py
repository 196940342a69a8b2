"""The SMAX OOC stages as plain functions on the one experiment config: mappo -> collect -> train -> evaluate.

A SMAX run is an ordinary run folder (config.yaml, commit.txt, run.log, DONE, data/, models/) with mappo/ (RLlib
checkpoint, actor.pt, mappo_metrics.csv), eval.parquet (one row per round, ``rayexp.rows``), table.md / table.csv
and the figures. Every stage resumes or reuses what exists. The core commands reach them through the family's hooks:
`rayexp collect` trains MAPPO and records its rounds, `rayexp train` is the core's, `rayexp evaluate` plays the teams,
`rayexp report` writes the Table A.10 layout.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import pandas as pd

from rayexp.config import ExperimentConfig
from rayexp.errors import RayexpError
from rayexp.families.smax.config import eval_envs
from rayexp.rows import read_run_rows, summarize, write_run_rows
from rayexp.runs import Run

log = logging.getLogger("rayexp")


def actor_path(path: Path) -> Path:
    return path / "mappo" / "actor.pt"


def run_mappo(cfg: ExperimentConfig, run: Run, echo: Callable[[str], None] = print) -> pd.DataFrame:
    from rayexp.families.smax.mappo import train_mappo

    metrics = train_mappo(cfg.family.mappo, cfg.env.id, run.path / "mappo", cfg.seed, echo=echo)
    if len(metrics):
        last = metrics.iloc[-1]
        log.info("mappo: %d env steps on %s, training win rate %s -> %s", last["env_steps"], cfg.env.id,
                 last.get("win_rate"), run.path / "mappo")
    return metrics


def run_collect(cfg: ExperimentConfig, run: Run, overwrite: bool = False):
    from rayexp.data.store import EpisodeStore
    from rayexp.families.smax.rounds import collect_mappo_data

    out = run.path / "data"
    if out.exists() and not overwrite:
        return EpisodeStore(out)
    if not actor_path(run.path).exists():
        raise RayexpError(f"no MAPPO actor in {run.path / 'mappo'}; run `rayexp smax mappo` first")
    c = cfg.collect
    return collect_mappo_data(cfg.env.id, actor_path(run.path), out, c.episodes, seed=1_000_000 * (cfg.seed + 1),
                              num_tasks=c.num_env_runners, only_success=c.only_success, overwrite=overwrite)


def run_evaluate(cfg: ExperimentConfig, run: Run) -> pd.DataFrame:
    """Play ``family.teams``; their rows replace earlier ones in RUN/eval.parquet, other teams' rows are kept
    (so adding a team costs only its rounds; delete the file to start over)."""
    from rayexp.families.smax.evaluate import evaluate_teams, parse_team

    f, e = cfg.family, cfg.evaluate
    egos = sorted({parse_team(t, list(cfg.models))[0] for t in f.teams} - {None, "random"})
    missing = [m for m in egos if not run.model_path(m).exists()]
    if missing:
        raise RayexpError(f"family.teams needs trained stage(s) {missing}; run `rayexp smax train` first")
    envs = eval_envs(cfg.env.id)
    df = evaluate_teams(str(actor_path(run.path)), {m: str(run.model_path(m)) for m in egos}, list(envs.values()),
                        f.teams, e.episodes, e.seeds, e.seed, e.num_actors, greedy=f.greedy, guidance=f.guidance,
                        sample_steps=f.sample_steps, replan_every=f.replan_every)
    df["row"] = df["task"].map({v: k for k, v in envs.items()})
    return write_run_rows(run.path, df, replace_models_only=True)


def collect_hook(cfg: ExperimentConfig, run: Run, overwrite: bool = False):
    """`rayexp collect`: MAPPO trained (or resumed) to ``family.mappo.total_env_steps``, then its rounds recorded."""
    run_mappo(cfg, run, echo=log.info)
    return run_collect(cfg, run, overwrite)


def evaluate_hook(cfg: ExperimentConfig, run: Run, models: list[str] | None = None) -> pd.DataFrame:
    """`rayexp evaluate`: the configured teams (``--model X``: only the teams with ego X); the success summary."""
    from rayexp.families.smax.evaluate import parse_team

    if models:
        teams = [t for t in cfg.family.teams if parse_team(t, list(cfg.models))[0] in models]
        cfg = cfg.model_copy(update={"family": cfg.family.model_copy(update={"teams": teams})})
    return summarize(run_evaluate(cfg, run))


def report_hook(run_path: Path) -> str | None:
    """`rayexp report RUN`: the Table A.10 layout and figures (None before the first evaluation)."""
    from rayexp.families.smax.report import smax_report

    return smax_report([run_path]) if read_run_rows(Path(run_path)) is not None else None
