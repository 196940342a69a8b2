"""Single-process benchmarks: teacher vs student inference, student vs a bare forward, and the data path."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rayexp.bench.common import bench_dataset, make_row, repeat_rate, summary_row, teacher_stage_config


_CACHE: dict[bool, list[dict]] = {}  # inference and student-vs-forward share one run


def _inference_rows(quick: bool) -> list[dict]:
    """``algorithms.bench.run_inference_bench``: median ms (and half-range) per method and batch size."""
    from algorithms.bench import run_inference_bench

    if quick not in _CACHE:
        torch.manual_seed(0)
        _CACHE[quick] = run_inference_bench(quick=quick, batch_sizes=(1, 64))
    return _CACHE[quick]


def _side(rows: list[dict], method_prefix: str, batch: int) -> tuple[float, float, int]:
    r = next(r for r in rows if r["method"].startswith(method_prefix) and r["batch"] == batch)
    return r["ms"], r["ms_spread"], 3


def bench_inference(quick: bool, workdir: Path) -> list[dict]:
    """EDM teacher (Heun, 80 bins) vs the one-step student, ms per policy call (one action chunk per row)."""
    rows = _inference_rows(quick)
    teacher = next(r for r in rows if r["method"].startswith("EDM teacher"))
    return [summary_row(f"inference b{batch}", f"{teacher['method']} vs 1-step student, ms per action chunk, "
                        f"batch {batch}", _side(rows, "EDM teacher", batch), _side(rows, "student 1-step", batch),
                        "ms/call", ">= 100", note=f"teacher NFE {teacher['nfe']}, student NFE 1; torch threads "
                                               f"{teacher['threads']}; U-Net {_unet(quick)}")
            for batch in (1, 64)]


def bench_student_vs_forward(quick: bool, workdir: Path) -> list[dict]:
    """The one-step student policy (normalise, sample noise, one call, unnormalise) vs one bare network forward."""
    rows = _inference_rows(quick)
    return [summary_row(f"student-vs-forward b{batch}", f"1-step student policy vs one bare forward, batch {batch}",
                        _side(rows, "student 1-step", batch), _side(rows, "bare student forward", batch), "ms/call",
                        "<= 1.1") for batch in (1, 64)]


def _unet(quick: bool) -> str:
    from algorithms.bench import MODERATE, QUICK

    u = QUICK if quick else MODERATE
    return f"down_dims {u.down_dims}, step_embed_dim {u.step_embed_dim}"


def bench_data(quick: bool, workdir: Path) -> list[dict]:
    """Batches/s ``Windows.sample`` delivers vs batches/s the teacher's training step consumes, interleaved blocks."""
    from rayexp.train import TrainingState, train_step

    threads = torch.get_num_threads()
    try:
        ts = TrainingState(teacher_stage_config(bench_dataset(workdir, quick), quick, threads))
    finally:
        torch.set_num_threads(threads)
    tc, rng = ts.tc, np.random.default_rng(0)
    batch = ts.windows.sample(tc.batch_size, rng)
    n_load, n_step, repeats = (20, 3, 2) if quick else (500, 20, 5)

    def load() -> int:
        for _ in range(n_load):
            ts.windows.sample(tc.batch_size, rng)
        return n_load

    def step() -> int:
        for _ in range(n_step):
            train_step(ts.method, ts.model, ts.ema, ts.optimizer, batch, ts.frozen, tc.grad_clip, tc.ema_decay)
        return n_step

    load(), step()  # warm-up
    loader, steps = [], []
    for _ in range(repeats):  # interleaved, so a change in machine load hits both sides alike
        loader += repeat_rate(load, 1)
        steps += repeat_rate(step, 1)
    return [make_row("data", f"Windows.sample vs training step, batch {tc.batch_size}, {len(ts.windows)} windows",
                     loader, steps, "batches/s", ">= 3", note=f"{ts.method.name} step, torch threads {threads}")]
