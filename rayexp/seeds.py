"""``seeds: [0, 1, 2]``: train and evaluate one experiment once per seed, as parallel Ray work.

Every seed trains on the run's one dataset (collected once, with ``seed``) into RUN/seed_<k>/, a run folder of its
own (config.yaml, commit, models, eval.parquet); ``rayexp report RUN`` aggregates them (``rayexp.reports.seeds``).
Each seed is a Ray task that runs the usual stage functions; its trainers and evaluation actors ask Ray for CPUs as
always, so seeds overlap where the cluster has room and queue where it has not.
"""
from __future__ import annotations

import time
from pathlib import Path

from rayexp.config import ExperimentConfig, validate
from rayexp.runs import Run

SEED_DIR = "seed_{}"


def seed_config(cfg: ExperimentConfig, seed: int, dataset: Path, mlflow_uri: str | None) -> ExperimentConfig:
    """The experiment for one seed: ``seed`` and ``train.seed`` set, the shared dataset, the parent's trackers."""
    data = cfg.model_dump(mode="json")
    data.update(name=SEED_DIR.format(seed), seed=seed, seeds=[])
    data["train"]["seed"] = seed
    data["data"]["path"] = str(dataset)
    data["tracking"]["mlflow_uri"] = mlflow_uri
    data["tracking"]["experiment"] = cfg.tracking.experiment or cfg.name
    return validate(data, f"seeds[{seed}]")


def _seed_task(cfg_data: dict, parent: str, stages: list[str] | None, models: list[str] | None,
               do_train: bool, do_evaluate: bool, cpu_share: int) -> dict:
    from rayexp.pipeline import run_evaluate, run_train
    from rayexp.runs import open_run

    cfg = validate(cfg_data, "seed run")
    run = open_run(parent, cfg)
    t0 = time.perf_counter()
    if do_train:
        run_train(cfg, run, stages, cpu_share=cpu_share)
    summary = run_evaluate(cfg, run, models) if do_evaluate else None
    return {"seed": cfg.seed, "path": str(run.path), "wall_s": time.perf_counter() - t0,
            "rows": None if summary is None else len(summary)}


def run_seeds(cfg: ExperimentConfig, run: Run, stages: list[str] | None = None, models: list[str] | None = None,
              do_train: bool = True, do_evaluate: bool = True) -> list[dict]:
    """Train and/or evaluate every seed of ``cfg.seeds`` in parallel Ray tasks; one console line per finished seed."""
    import ray

    from rayexp import console, tracking
    from rayexp.cluster import num_cpus
    from rayexp.runs import dataset_path

    dataset = dataset_path(cfg, run).resolve()
    ctx = tracking.tracking_context(cfg, run.path, dataset)
    tracking.prepare(ctx)  # create the MLflow experiment once, before the seeds race to
    cpu_share = max(1, min(len(cfg.seeds), num_cpus()))
    task = ray.remote(num_cpus=0)(_seed_task)
    pending = {task.remote(seed_config(cfg, k, dataset, ctx and ctx["mlflow_uri"]).model_dump(mode="json"),
                           str(run.path), stages, models, do_train, do_evaluate, cpu_share): k for k in cfg.seeds}
    done_rows, t0 = [], time.perf_counter()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        pending.pop(ready[0])
        row = ray.get(ready[0])
        done_rows.append(row)
        console.stage_done(f"seed {row['seed']} ({len(done_rows)} of {len(cfg.seeds)})", time.perf_counter() - t0, row["path"])
    return sorted(done_rows, key=lambda r: r["seed"])
