"""The SMAX OOC stages as plain functions: mappo -> collect -> train -> evaluate -> report.

Everything lands in ``<run_dir>/<name>/``: smax_config.yaml (resolved, with the commit), mappo/ (RLlib
checkpoint, actor.pt, mappo_metrics.csv), data/ (episode store), models/ (planner and BC stages),
eval_rounds.parquet, table.md / table.csv and fig_2_4.png. Every stage resumes or reuses what exists.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import pandas as pd
import yaml

from rayexp.artifacts import write_rows
from rayexp.errors import RayexpError
from rayexp.families.smax.config import SMAXConfig

log = logging.getLogger("rayexp")


def open_smax_run(cfg: SMAXConfig, root: str | Path) -> Path:
    """``root/<name>/`` with the same basics as every run folder: the resolved config, commit.txt and run.log
    (``DONE`` is written when ``rayexp smax all`` ends)."""
    from rayexp.runs import atomic_write_text, git_commit, setup_log

    path = Path(root).resolve() / cfg.name
    path.mkdir(parents=True, exist_ok=True)
    commit = git_commit()
    atomic_write_text(path / "smax_config.yaml", yaml.safe_dump({"commit": commit, **cfg.model_dump(mode="json")},
                                                                 sort_keys=False))
    atomic_write_text(path / "commit.txt", commit + "\n")
    setup_log(path / "run.log")
    return path


def actor_path(path: Path) -> Path:
    return path / "mappo" / "actor.pt"


def run_mappo(cfg: SMAXConfig, path: Path, echo: Callable[[str], None] = print) -> pd.DataFrame:
    from rayexp.families.smax.mappo import train_mappo

    metrics = train_mappo(cfg.mappo, cfg.train_env, path / "mappo", cfg.seed, echo=echo)
    if len(metrics):
        last = metrics.iloc[-1]
        log.info("mappo: %d env steps on %s, training win rate %s -> %s", last["env_steps"], cfg.train_env,
                 last.get("win_rate"), path / "mappo")
    return metrics


def run_collect(cfg: SMAXConfig, path: Path, overwrite: bool = False):
    from rayexp.families.smax.rounds import collect_mappo_data
    from rayexp.store import EpisodeStore

    if (path / "data").exists() and not overwrite:
        return EpisodeStore(path / "data")
    if not actor_path(path).exists():
        raise RayexpError(f"no MAPPO actor in {path / 'mappo'}; run `rayexp smax mappo` first")
    return collect_mappo_data(cfg.train_env, actor_path(path), path / "data", cfg.collect.rounds,
                              seed=1_000_000 * (cfg.seed + 1), num_tasks=cfg.collect.num_tasks,
                              only_success=cfg.collect.only_success, overwrite=overwrite)


def experiment_config(cfg: SMAXConfig):
    """The chapter-2 training config (models, train, data) the shared Ray Train loop reads."""
    from rayexp.config import ExperimentConfig

    return ExperimentConfig(name=cfg.name, seed=cfg.seed, env={"id": cfg.train_env}, data=cfg.data, train=cfg.train,
                            models=cfg.models, ray=cfg.ray)


def run_train(cfg: SMAXConfig, path: Path, stages: list[str] | None = None, retrain: bool = False) -> pd.DataFrame:
    from rayexp.pipeline import run_train as train_stages
    from rayexp.runs import Run

    if not (path / "data").exists():
        raise RayexpError(f"no dataset in {path / 'data'}; run `rayexp smax collect` first")
    return train_stages(experiment_config(cfg), Run(path), stages, retrain=retrain)


def run_evaluate(cfg: SMAXConfig, path: Path) -> pd.DataFrame:
    """Evaluate ``evaluate.teams``; their rows replace earlier ones in eval_rounds.parquet, other teams' rows are
    kept (so adding a team costs only its rounds; delete the file to start over)."""
    from rayexp.families.smax.evaluate import evaluate_teams, parse_team

    egos = sorted({parse_team(t, list(cfg.models))[0] for t in cfg.evaluate.teams} - {None, "random"})
    missing = [e for e in egos if not (path / "models" / f"{e}.pt").exists()]
    if missing:
        raise RayexpError(f"evaluate.teams needs trained stage(s) {missing}; run `rayexp smax train` first")
    e = cfg.evaluate
    df = evaluate_teams(str(actor_path(path)), {m: str(path / "models" / f"{m}.pt") for m in egos},
                        list(cfg.eval_envs.values()), e.teams, e.rounds, e.seeds, e.seed, e.num_actors,
                        greedy=e.greedy, guidance=e.guidance, sample_steps=e.sample_steps,
                        replan_every=e.replan_every)
    df["row"] = df["env"].map({v: k for k, v in cfg.eval_envs.items()})
    return write_rows(df, path / "eval_rounds.parquet", keep_other="team_name")
