"""``rayexp sweep``: a Ray Tune search over experiment keys, one in-process trial per point.

A trial validates the base experiment with its point applied, then runs the stage's plain training
loop (``rayexp.train.TrainingState``, the same one Ray Train workers run) for a number of epochs,
reporting the epoch's mean losses (and a seeded in-process evaluation score) with a checkpoint, so
ASHA can stop it and a crashed or interrupted trial resumes. Running the same command again restores
the experiment from its storage path; finished trials are kept. Results land in
``<storage_path>/<name>/results.{parquet,csv}``: one row per trial and epoch (tidy), with the trial's
config columns and its final metrics.
"""
from __future__ import annotations

import logging
import math
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from ray.tune import Callback

from rayexp.config import RayConfig, validate
from rayexp.errors import RayexpError
from rayexp.sweeps.config import SweepConfig, apply_point, read_sweep

log = logging.getLogger("rayexp")
SWEEP_FILE = "sweep.yaml"


def sweep_trial(point: dict[str, Any], job: dict[str, Any]) -> None:
    """The Tune function trainable. ``point``: dotted key -> value; ``job``: plain dicts from the driver."""
    import numpy as np
    import ray
    import torch
    from ray import tune

    from rayexp.sweeps.scores import score_policy, score_trained
    from rayexp.train import TrainingState, stage_config

    options = {k.removeprefix("eval."): v for k, v in point.items() if k.startswith("eval.")}
    cfg = validate(apply_point(job["base"], {k: v for k, v in point.items() if not k.startswith("eval.")}), "sweep trial")
    if job["eval_only"]:
        tune.report({"epoch": 1, **score_trained(cfg, job, options)})
        return
    # a trial given a GPU (resources_per_trial: {gpu: ...}) trains and scores on it
    device = torch.device("cuda" if ray.get_gpu_ids() else "cpu")
    ts = TrainingState(stage_config(cfg, job["stage"], job["dataset"], Path(job["models_dir"]), job["threads"]), device)
    epoch = 0
    if checkpoint := tune.get_checkpoint():
        with checkpoint.as_directory() as d:
            state = torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=True)
        ts.restore(state)
        epoch = int(state["epoch"])
    per_epoch = job["steps_per_epoch"] or ts.tc.checkpoint_every
    epochs = math.ceil(ts.tc.steps / per_epoch)
    rng = np.random.default_rng([ts.tc.seed, ts.step])
    while epoch < epochs:
        epoch += 1
        sums: dict[str, float] = {}
        ts.advance(min(epoch * per_epoch, ts.tc.steps), rng, on_step=lambda _, m: _accumulate(sums, m))
        count = sums.pop("__n", 1.0)
        out = {"epoch": epoch, "step": ts.step, **{k: float(v) / count for k, v in sums.items()}}
        if job["eval_episodes"]:
            out.update(score_policy(ts.method, ts.ema, ts.spec, cfg, job))
        _maybe_crash(job, epoch)
        with tempfile.TemporaryDirectory() as d:
            torch.save({**ts.snapshot(), "epoch": epoch}, Path(d) / "state.pt")
            tune.report(out, checkpoint=tune.Checkpoint.from_directory(d))


def _accumulate(sums: dict, metrics: dict) -> None:
    """Sum the step's metric tensors on their device (no host sync per step; the epoch's report converts)."""
    for k, v in metrics.items():
        sums[k] = sums.get(k, 0.0) + v
    sums["__n"] = sums.get("__n", 0.0) + 1


def _maybe_crash(job: dict, epoch: int) -> None:
    """Fault injection for the retry test: crash once at ``crash_once_at`` epoch (a marker file makes it once)."""
    at = job.get("crash_once_at")
    if at and epoch == at["epoch"]:
        marker = Path(at["marker_dir"]) / f"crashed_{os.getpid()}_{epoch}"
        if not any(Path(at["marker_dir"]).glob(f"crashed_*_{epoch}")):
            marker.touch()
            raise RuntimeError(f"injected crash at epoch {epoch}")


def _search_space(sweep: SweepConfig) -> dict[str, Any]:
    from ray import tune

    make = {"grid": tune.grid_search, "choice": tune.choice, "uniform": lambda v: tune.uniform(*v),
            "loguniform": lambda v: tune.loguniform(*v)}
    return {key: make[axis.kind](list(getattr(axis, axis.kind))) for key, axis in sweep.space.items()}


def _tune_config(sweep: SweepConfig, epochs: int):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if sweep.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        searcher = ConcurrencyLimiter(OptunaSearch(seed=sweep.seed), max_concurrent=sweep.max_concurrent)
    else:
        searcher = BasicVariantGenerator(max_concurrent=sweep.max_concurrent, random_state=sweep.seed)
    scheduler = FIFOScheduler() if sweep.scheduler == "fifo" else ASHAScheduler(
        time_attr="epoch", max_t=max(epochs, 1), grace_period=sweep.asha.grace_period,
        reduction_factor=sweep.asha.reduction_factor, brackets=sweep.asha.brackets)
    return tune.TuneConfig(metric=sweep.metric, mode=sweep.mode, search_alg=searcher, scheduler=scheduler,
                           num_samples=sweep.num_samples, trial_dirname_creator=_trial_dirname,
                           reuse_actors=True)  # a new trial skips the worker start and the torch import


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


def storage_root(sweep: SweepConfig) -> str:
    return sweep.storage_path if "://" in sweep.storage_path else str(Path(sweep.storage_path).resolve())


def sweep_dir(sweep: SweepConfig) -> str:
    return f"{storage_root(sweep).rstrip('/')}/{sweep.name}"


def _record(sweep: SweepConfig, cfg, restart: bool) -> None:
    """Write sweep.yaml; refuse to resume a sweep folder that was started with another config."""
    from pyarrow import fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(sweep_dir(sweep)) if "://" in sweep.storage_path else (pafs.LocalFileSystem(), sweep_dir(sweep))
    text = yaml.safe_dump({"sweep": sweep.model_dump(mode="json"), "base": cfg.model_dump(mode="json")}, sort_keys=False)
    path = f"{root}/{SWEEP_FILE}"
    if restart and filesystem.get_file_info(root).type != pafs.FileType.NotFound:
        filesystem.delete_dir(root)
    if filesystem.get_file_info(path).type == pafs.FileType.File:
        with filesystem.open_input_stream(path) as f:
            old = f.read().decode()
        if old != text:
            raise RayexpError(f"sweep folder {sweep_dir(sweep)} was started with a different sweep or base config; "
                              "pass --restart to start over, or set name=... for a new sweep")
    filesystem.create_dir(root, recursive=True)
    with filesystem.open_output_stream(path) as f:
        f.write(text.encode())


def run_sweep(path: str | Path, overrides: list[str] | None = None, address: str | None = None,
              stop_after: int | None = None, restart: bool = False) -> pd.DataFrame:
    """Run (or resume) the sweep in ``path``; returns the tidy results table it also writes."""
    from ray import tune

    from rayexp.cluster import init_ray, require_gpus
    from rayexp.data.store import EpisodeStore
    from rayexp.runs import Run, dataset_path

    sweep, cfg = read_sweep(path, overrides)
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    run = Run(Path(sweep.from_run).resolve())
    data = dataset_path(cfg, run)
    meta = EpisodeStore(data).meta
    cpus = sweep.resources_per_trial.get("cpu", 1)
    job = {"base": cfg.model_dump(mode="json"), "stage": sweep.model_stage, "eval_only": sweep.eval_only,
           "dataset": str(Path(data).resolve()), "models_dir": str(run.path / "models"), "threads": max(1, int(cpus)),
           "steps_per_epoch": sweep.steps_per_epoch, "eval_episodes": sweep.eval_episodes,
           "eval_max_steps": sweep.eval_max_steps, "seed": sweep.seed, "crash_once_at": _crash_spec(),
           "ref_scores": (meta.ref_min_score, meta.ref_max_score) if meta.ref_min_score is not None else None}
    # Inside `ray job submit` RAY_ADDRESS names the cluster the job runs on.
    init_ray(RayConfig(address=address or cfg.ray.address or os.environ.get("RAY_ADDRESS") or None, num_cpus=cfg.ray.num_cpus))
    require_gpus("resources_per_trial.gpu", sweep.resources_per_trial.get("gpu", 0))
    _record(sweep, cfg, restart)
    trainable = tune.with_resources(tune.with_parameters(sweep_trial, job=job), sweep.resources_per_trial)
    where = sweep_dir(sweep)
    _STOP_AFTER["n"] = stop_after
    if tune.Tuner.can_restore(where):
        log.info("resuming sweep %s", where)
        tuner = tune.Tuner.restore(where, trainable, resume_unfinished=True, resume_errored=True)
    else:
        run_config = tune.RunConfig(
            name=sweep.name, storage_path=storage_root(sweep), callbacks=[StopDriverAfter(), *_trackers(cfg, run, data, where)],
            verbose=1,
            failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1))
        tuner = tune.Tuner(trainable, param_space=_search_space(sweep), tune_config=_tune_config(sweep, _epochs(sweep, cfg)),
                           run_config=run_config)
    tuner.fit()
    from rayexp.sweeps.results import write_results

    table = write_results(where, sweep)
    table.attrs.update(sweep_dir=where, metric=sweep.metric, mode=sweep.mode, expected_trials=sweep.expected_trials())
    return table


def _trackers(cfg, run, data, where: str) -> list:
    """Ray Tune's MLflow / TensorBoard / W&B logger callbacks for ``base.tracking`` (one MLflow run per trial, in the
    from_run's store unless ``tracking.mlflow_uri`` names another)."""
    from rayexp.tracking import tracking_context, tune_callbacks

    ctx = tracking_context(cfg, run.path, data)
    if ctx:
        ctx["tags"]["rayexp.sweeps.run"] = where
    return tune_callbacks(ctx)


def _epochs(sweep: SweepConfig, cfg) -> int:
    if sweep.eval_only:
        return 1
    tc = cfg.stage_train(sweep.model_stage)
    return math.ceil(tc.steps / (sweep.steps_per_epoch or tc.checkpoint_every))


def _crash_spec() -> dict | None:
    """RAYEXP_SWEEP_CRASH_ONCE=EPOCH:DIR makes one trial crash once at EPOCH (tests of the retry path)."""
    spec = os.environ.get("RAYEXP_SWEEP_CRASH_ONCE")
    if not spec:
        return None
    epoch, _, marker_dir = spec.partition(":")
    return {"epoch": int(epoch), "marker_dir": marker_dir}


_STOP_AFTER: dict[str, int | None] = {"n": None}


class StopDriverAfter(Callback):
    """Interrupts the driver (as Ctrl-C would) once ``--stop-after`` trials finished in this driver.

    Tune pickles its callbacks with the experiment, so the limit lives in this module, not in the object."""

    def __init__(self):
        self.finished = 0

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.finished += 1
        if _STOP_AFTER["n"] and self.finished >= _STOP_AFTER["n"]:
            os.kill(os.getpid(), signal.SIGINT)
