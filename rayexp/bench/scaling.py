"""Ray scaling on this machine: evaluation actors, RLlib env runners and Tune trials, 2 vs 1; and peak memory."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from rayexp.bench.common import QUICKSTART, make_row, param_count
from rayexp.evaluate import EvalWorker

EVAL_ENV = {"id": "HalfCheetah-v5", "split": None, "kwargs": {}}  # fixed-length episodes: equal work per seed


class MeasuredEvalWorker(EvalWorker):
    """An ``EvalWorker`` that can also report its process's peak RSS."""

    def peak_rss_mb(self) -> float:
        from rayexp.bench.train_overhead import peak_rss_mb

        return peak_rss_mb()

    def cpu_s(self) -> float:
        return time.process_time()


def _busy(n: int) -> int:
    """Pure-Python CPU work, no I/O and no threads: what one core can do."""
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1_000_003
    return n


def bench_machine(quick: bool, workdir: Path) -> list[dict]:
    """The ceiling the scaling rows can reach now: the same CPU-bound loop in 2 processes vs 1 (no Ray, no torch).
    On an idle 2-core machine it is ~2; on a shared one it shows how much of a second core is really free."""
    from concurrent.futures import ProcessPoolExecutor

    n, repeats = (200_000, 1) if quick else (3_000_000, 3)
    rates = {1: [], 2: []}
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_busy, [n // 10] * 2))  # start both processes
        for _ in range(repeats):
            for k in (1, 2):
                t0 = time.perf_counter()
                done = sum(pool.map(_busy, [n] * k))
                rates[k].append(done / (time.perf_counter() - t0) / 1e6)
    return [make_row("machine", "CPU-bound Python loop, 2 processes vs 1 (the ceiling for the scaling rows)",
                     rates[2], rates[1], "M iterations/s", note=f"load average {os.getloadavg()[0]:.1f} after")]


def _student_checkpoint(workdir: Path, quick: bool) -> tuple[Path, int]:
    """The quickstart-size one-step student (random weights) for HalfCheetah shapes, saved like a trained model."""
    import torch

    from algorithms.base import DataSpec
    from algorithms.configs import CTMStudentConfig, UnetConfig
    from algorithms.student import CTMStudent
    from rayexp.train import save_model

    torch.manual_seed(0)
    unet = UnetConfig(step_embed_dim=8, down_dims=[8, 16]) if quick else UnetConfig(step_embed_dim=32, down_dims=[32, 64])
    method = CTMStudent(CTMStudentConfig(unet=unet))
    spec = DataSpec(obs_dim=17, act_dim=6, obs_history=1, action_horizon=4)
    model = method.build_model(spec)
    path = workdir / "eval_student.pt"
    save_model(path, method.cfg, spec, model, step=0)
    return path, param_count(model)


def _eval_sizes(quick: bool) -> tuple[int, int, int]:
    return (2, 10, 1) if quick else (12, 150, 3)  # episodes, steps per episode, repeats


def _timed_episodes(actors: list, episodes: int, seed: int) -> tuple[float, list[float], float]:
    """Episodes/s of ``episodes`` seeded episodes dealt round-robin over warm actors (as ``evaluate`` deals them),
    their returns, and the share of the wall time the actors were on a CPU (1.0 = each had a core all along)."""
    import ray

    cpu0 = sum(ray.get([a.cpu_s.remote() for a in actors]))
    t0 = time.perf_counter()
    refs = [actors[i % len(actors)].run.remote("student", 0, i, seed + i) for i in range(episodes)]
    rows = ray.get(refs)
    wall = time.perf_counter() - t0
    cpu = sum(ray.get([a.cpu_s.remote() for a in actors])) - cpu0
    return episodes / wall, [r["return"] for r in rows], cpu / (wall * len(actors))


def bench_eval_scaling(quick: bool, workdir: Path) -> list[dict]:
    import ray

    from rayexp.cluster import init_ray
    from rayexp.config import RayConfig

    init_ray(RayConfig())
    path, params = _student_checkpoint(workdir, quick)
    episodes, length, repeats = _eval_sizes(quick)
    env_cfg = {**EVAL_ENV, "max_episode_steps": length}
    eval_cfg = {"execute": "first", "chunk": None}
    actor_cls = ray.remote(num_cpus=1)(MeasuredEvalWorker)
    rates, returns, rss, on_cpu = {}, {}, [], {}
    for n in (1, 2):
        actors = [actor_cls.remote(env_cfg, {"student": str(path)}, eval_cfg) for _ in range(n)]
        ray.get([a.run.remote("student", 0, -1, 0) for a in actors])  # warm-up: actor start, imports, first episode
        rates[n], returns[n], on_cpu[n] = [], None, []
        for _ in range(repeats):
            rate, ret, busy = _timed_episodes(actors, episodes, 1000)
            rates[n].append(rate)
            on_cpu[n].append(busy)
            assert returns[n] is None or returns[n] == ret, "an actor gave different returns for the same seeds"
            returns[n] = ret
        rss += ray.get([a.peak_rss_mb.remote() for a in actors])
        for a in actors:
            ray.kill(a)
    if not np.array_equal(returns[1], returns[2]):
        raise AssertionError(f"2 actors gave other returns than 1 actor for the same seeds: {returns[1]} vs {returns[2]}")
    _LAST_EVAL[quick] = {"peak_rss_mb": max(rss), "params": params}
    return [make_row("eval-scaling", f"episodes/s, 2 vs 1 evaluation actors ({episodes} x {length}-step "
                     f"{EVAL_ENV['id']} episodes, 1-step student)", rates[2], rates[1], "episodes/s", ">= 1.7",
                     note=f"same seeds, same returns (checked); {_on_cpu_note(on_cpu)}")]


def _on_cpu_note(on_cpu: dict[int, list[float]]) -> str:
    """Where a scaling row falls short because the workers waited for a core rather than for rayexp."""
    share = {n: 100 * float(np.median(v)) for n, v in on_cpu.items()}
    return f"workers on a CPU {share[2]:.0f}% of the wall time with 2, {share[1]:.0f}% with 1"


_LAST_EVAL: dict[bool, dict] = {}


def bench_collect_scaling(quick: bool, workdir: Path) -> list[dict]:
    """Env steps/s of RLlib PPO env runners sampling (the quickstart's PPO, InvertedPendulum): both runners of one
    algorithm vs only its first one, interleaved, each runner sampling the same number of steps."""
    from rayexp.cluster import init_ray
    from rayexp.collect import ppo_config
    from rayexp.config import RayConfig, load_config

    init_ray(RayConfig())
    cfg = load_config(QUICKSTART)
    per_runner, repeats = (50, 1) if quick else (3000, 3)

    def sample(runner):
        t0, c0 = time.perf_counter(), time.process_time()
        steps = sum(len(ep) for ep in runner.sample(num_timesteps=per_runner, explore=True))
        return steps, (time.process_time() - c0) / (time.perf_counter() - t0)

    algo = ppo_config(cfg, 2).build_algo()
    try:
        group = algo.env_runner_group
        ids = group.healthy_worker_ids()

        def rate(runner_ids) -> tuple[float, float]:
            t0 = time.perf_counter()
            out = group.foreach_env_runner(sample, local_env_runner=False, remote_worker_ids=runner_ids)
            return sum(o[0] for o in out) / (time.perf_counter() - t0), float(np.mean([o[1] for o in out]))

        rate(ids)  # warm-up
        rates, on_cpu = {1: [], 2: []}, {1: [], 2: []}
        for _ in range(repeats):
            for n, runner_ids in ((1, ids[:1]), (2, ids)):
                r, busy = rate(runner_ids)
                rates[n].append(r)
                on_cpu[n].append(busy)
    finally:
        algo.stop()
    return [make_row("collect-scaling", f"env steps/s, 2 vs 1 RLlib env runners (PPO, {cfg.env.id}, "
                     f"{per_runner} steps per runner)", rates[2], rates[1], "steps/s", ">= 1.6",
                     note=f"one algorithm; side B samples from one of its two runners; {_on_cpu_note(on_cpu)}")]


def bench_sweep_scaling(quick: bool, workdir: Path) -> list[dict]:
    """``rayexp.bench.sweep.run_sweep_bench``: the same 4 Tune trials with max_concurrent 2 vs 1."""
    from rayexp.bench.sweep import run_sweep_bench

    out = run_sweep_bench(quick=quick, root=workdir / "sweep")
    per_min = {c: 60 * out["trials"] / out[f"wall_s_concurrency_{c}"] for c in (1, 2)}
    return [make_row("sweep-scaling", f"trials/min, Tune concurrency 2 vs 1 (same {out['trials']} trials, "
                     f"{out['train_steps']} steps each)", [per_min[2]], [per_min[1]], "trials/min", ">= 1.7",
                     note=f"wall {out['wall_s_concurrency_1']} s vs {out['wall_s_concurrency_2']} s; load "
                          f"{out['load_before']:.1f} -> {out['load_after']:.1f}")]


def bench_memory(quick: bool, workdir: Path) -> list[dict]:
    """Peak RSS of a Ray Train worker and of an evaluation actor (from the two benchmarks above, run if needed)."""
    from rayexp.bench.train_overhead import _LAST_WORKER, bench_train_overhead

    if quick not in _LAST_WORKER:
        bench_train_overhead(quick, workdir)
    if quick not in _LAST_EVAL:
        bench_eval_scaling(quick, workdir)
    train, ev = _LAST_WORKER[quick], _LAST_EVAL[quick]
    return [make_row("memory", "peak RSS: training worker vs evaluation actor", [train["peak_rss_mb"]],
                     [ev["peak_rss_mb"]], "MB", note=f"trained model {train['params']:,} parameters (EDM teacher, "
                     f"plus its EMA copy); evaluated model {ev['params']:,} parameters (1-step student)")]
