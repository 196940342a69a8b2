"""SMAX speed: MAPPO training env steps/s with every runner's games in one compiled call, against RLlib's own paths
(one env per runner, as rayexp trained before; the sync vector env's Python loop over compiled envs) and against
the bare batched SMAX step, all measured in one run on the same split, batch and runners."""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np

from rayexp.bench.common import repeat_rate, spread, summary_row

TARGET_ENV_STEPS_PER_S = 2000  # issue #21: MAPPO training on 2 cores


def _sizes(quick: bool) -> dict:
    if quick:
        return {"env": "smax-2v2-simple", "games": 4, "batch": 200, "iterations": 1, "bare_steps": 20, "repeats": 1,
                "runners": 0}
    # the shipped configs (tune_configs/smax_*.yaml): 2 runners x 32 games, 6,400 env steps per iteration
    return {"env": "smax-3v3-hard", "games": 64, "batch": 6400, "iterations": 3, "bare_steps": 200, "repeats": 3,
            "runners": min(2, os.cpu_count() or 1)}


def bare_batch_rate(env_name: str, games: int, steps: int, repeats: int) -> list[float]:
    """Env steps/s of ``SMAXBatch.step`` alone, random available actions chosen in numpy (no RLlib, no torch)."""
    from envs.smax_batch import make_smax_batch

    batch, rng = make_smax_batch(env_name, games, seed=0), np.random.default_rng(0)
    view = batch.reset(seed=0)

    def run() -> int:
        nonlocal view
        for _ in range(steps):
            actions = np.argmax(view.action_mask * rng.random(view.action_mask.shape), axis=-1)
            view = batch.step(actions).view
        return steps * games

    run()  # compile
    return repeat_rate(run, repeats)


def mappo_training_rate(env_name: str, batched: bool, games: int, runners: int, batch: int, iterations: int) -> float:
    """Env steps/s of ``iterations`` MAPPO ``train()`` calls (sampling and learning) after one warm-up call;
    ``runners`` env runner actors share the ``games`` (0: one runner in the driver)."""
    from algorithms.mappo_settings import MAPPOSettings
    from rayexp.families.smax.mappo import build_algo, sampled_env_steps

    settings = MAPPOSettings(num_env_runners=runners, num_envs_per_env_runner=games // max(runners, 1),
                             batched_envs=batched, train_batch_size=batch, minibatch_size=min(batch, 1600),
                             total_env_steps=10**7)
    algo = build_algo(settings, env_name, seed=0)
    try:
        algo.train()  # env runners' first episodes compile and warm up
        steps, t0 = 0, time.perf_counter()
        for _ in range(iterations):
            steps += sampled_env_steps(algo.train(), batch)
        return steps / (time.perf_counter() - t0)
    finally:
        algo.stop()


def bench_smax(quick: bool, workdir: Path) -> list[dict]:
    from rayexp.cluster import init_ray
    from rayexp.config import RayConfig

    s = _sizes(quick)
    init_ray(RayConfig())
    bare = bare_batch_rate(s["env"], s["games"], s["bare_steps"], s["repeats"])
    rates = {}
    runners = s["runners"]
    for path, batched, games in (("batched", True, s["games"]), ("sync", False, s["games"]),
                                 ("one-env", False, max(runners, 1))):
        rates[path] = mappo_training_rate(s["env"], batched, games, runners, s["batch"], s["iterations"])

    def side(rate: float) -> tuple[float, float, int]:
        return rate, float("nan"), s["iterations"]

    where = f"{s['env']}, {runners} env runners, train batch {s['batch']} env steps, {s['iterations']} iterations"
    return [
        summary_row("smax", f"MAPPO training: {s['games']} games per call vs one env per runner (old path); {where}",
                    side(rates["batched"]), side(rates["one-env"]), "env steps/s"),
        summary_row("smax", f"MAPPO training: batched games vs RLlib's sync vector env ({s['games']} compiled envs "
                    "in a Python loop)", side(rates["batched"]), side(rates["sync"]), "env steps/s"),
        summary_row("smax", f"MAPPO training (batched) vs the bare batched SMAX step ({s['games']} games, random "
                    "available actions, one process)", side(rates["batched"]),
                    (statistics.median(bare), spread(bare), len(bare)), "env steps/s"),
        summary_row("smax", "MAPPO training (batched) vs the issue's target of 2,000 env steps/s on 2 cores",
                    side(rates["batched"]), (float(TARGET_ENV_STEPS_PER_S), float("nan"), 1), "env steps/s",
                    None if quick else ">= 1", note="quick: tiny 2v2 runs, not a measurement" if quick else ""),
    ]
