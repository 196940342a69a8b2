"""Ray Train overhead: the same ``TrainingState`` steps inside a 1-worker TorchTrainer and in a plain loop.

Both sides run the one training loop (``rayexp.train.TrainingState.advance``) on the same data with
the same torch threads; the Ray side also reports metrics every ``log_every`` steps, as the real
worker does. Start-up (``fit()`` called -> first step) is shown apart. The worker writes its timings
to a JSON file: Train V2 returns no metrics without a checkpoint.
"""
from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from rayexp.bench.common import bench_dataset, make_row, param_count, repeat_rate, teacher_stage_config


def _sizes(quick: bool) -> dict:
    return {"warmup": 3, "block": 5, "repeats": 2} if quick else {"warmup": 20, "block": 50, "repeats": 5}


def timed_blocks(ts, sizes: dict, on_step=None) -> list[float]:
    """Steps/s of ``repeats`` blocks of ``block`` steps after ``warmup`` steps."""
    rng = np.random.default_rng(0)
    ts.advance(ts.step + sizes["warmup"], rng, on_step=on_step)

    def block() -> int:
        ts.advance(ts.step + sizes["block"], rng, on_step=on_step)
        return sizes["block"]

    return repeat_rate(block, sizes["repeats"])


def bench_worker(config: dict) -> None:
    """Ray Train worker: the training loop timed in blocks; reports like ``train_loop_per_worker``."""
    import ray.train

    from rayexp.train import TrainingState, as_floats

    started = time.time()
    ts = TrainingState(config)
    ready = time.time()

    def on_step(step: int, metrics: dict) -> None:
        if step % ts.tc.log_every == 0:
            ray.train.report({"step": step, **as_floats(metrics)})

    rates = timed_blocks(ts, config["sizes"], on_step)
    out = {"worker_started": started, "first_step": ready, "rates": rates, "threads": torch.get_num_threads(),
           "nice": _nice(), "peak_rss_mb": peak_rss_mb(), "params": param_count(ts.model)}
    Path(config["timings_out"]).write_text(json.dumps(out))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _nice() -> int:
    import os

    return os.getpriority(os.PRIO_PROCESS, 0)


def run_in_trainer(config: dict, workdir: Path) -> tuple[dict, float]:
    """Fit a 1-worker TorchTrainer running ``bench_worker``; returns its timings and the driver's fit() start time."""
    import ray.train
    from ray.train.torch import TorchTrainer

    out = workdir / f"train_timings_{time.time_ns()}.json"
    trainer = TorchTrainer(
        bench_worker, train_loop_config={**config, "timings_out": str(out)},
        scaling_config=ray.train.ScalingConfig(num_workers=1, resources_per_worker={"CPU": config["threads"]}),
        run_config=ray.train.RunConfig(name=out.stem, storage_path=str(workdir / "ray_train")))
    t0 = time.time()
    result = trainer.fit()
    if result.error:
        raise result.error
    return json.loads(out.read_text()), t0


def bench_train_overhead(quick: bool, workdir: Path) -> list[dict]:
    from rayexp.cluster import init_ray, num_cpus
    from rayexp.config import RayConfig
    from rayexp.train import TrainingState

    init_ray(RayConfig())
    threads = max(1, num_cpus())  # what train_stage gives one worker
    config = {**teacher_stage_config(bench_dataset(workdir, quick), quick, threads), "sizes": _sizes(quick)}
    saved = torch.get_num_threads()
    try:
        plain = timed_blocks(TrainingState(config), config["sizes"])  # before the Ray side ...
        ray_side, fit_called = run_in_trainer(config, workdir)
        plain += timed_blocks(TrainingState(config), config["sizes"])  # ... and after, to bracket load changes
    finally:
        torch.set_num_threads(saved)
    _LAST_WORKER[quick] = ray_side
    startup = ray_side["first_step"] - fit_called
    return [make_row("train-overhead", "steps/s: plain loop vs inside Ray Train TorchTrainer (1 worker)", plain,
                     ray_side["rates"], "steps/s", "<= 1.15",
                     note=f"start-up {startup:.1f} s (fit() -> first step, not in the rates); worker nice "
                          f"{ray_side['nice']}, torch threads {ray_side['threads']}, log_every "
                          f"{config['train']['log_every']}")]


_LAST_WORKER: dict[bool, dict] = {}  # the memory benchmark reads the training worker's peak RSS from here
