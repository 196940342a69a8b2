"""Single-process benchmarks: teacher vs student inference, student vs a bare forward, and the data path."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rayexp.bench.common import bench_dataset, make_row, repeat_rate, summary_row, teacher_stage_config

_CACHE: dict[tuple[bool, str], list[dict]] = {}  # inference and student-vs-forward share one run


def devices() -> list[str]:
    """The devices the compute rows run on: the CPU, plus the first GPU when there is one (its rows say 'gpu')."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _tag(device: str) -> str:
    return "" if device == "cpu" else " gpu"


def _inference_rows(quick: bool, device: str = "cpu") -> list[dict]:
    """``rayexp.bench.inference.run_inference_bench``: median ms (and half-range) per method and batch size."""
    from rayexp.bench.inference import run_inference_bench

    if (quick, device) not in _CACHE:
        torch.manual_seed(0)
        _CACHE[quick, device] = run_inference_bench(quick=quick, batch_sizes=(1, 64), device=device)
    return _CACHE[quick, device]


def _side(rows: list[dict], method_prefix: str, batch: int) -> tuple[float, float, int]:
    r = next(r for r in rows if r["method"].startswith(method_prefix) and r["batch"] == batch)
    return r["ms"], r["ms_spread"], 3


def bench_inference(quick: bool, workdir: Path) -> list[dict]:
    """EDM teacher (Heun, 80 bins) vs the one-step student, ms per policy call (one action chunk per row); on a GPU
    also there (synchronised timing)."""
    out = []
    for device in devices():
        rows = _inference_rows(quick, device)
        teacher = next(r for r in rows if r["method"].startswith("EDM teacher"))
        out += [summary_row(f"inference{_tag(device)} b{batch}", f"{teacher['method']} vs 1-step student, ms per action "
                            f"chunk, batch {batch}, {_device_name(device)}", _side(rows, "EDM teacher", batch),
                            _side(rows, "student 1-step", batch), "ms/call", ">= 100",
                            note=f"teacher NFE {teacher['nfe']}, student NFE 1; torch threads {teacher['threads']}; "
                                 f"U-Net {_unet(quick)}") for batch in (1, 64)]
    return out


def _device_name(device: str) -> str:
    return "CPU" if device == "cpu" else torch.cuda.get_device_name(device)


def bench_student_vs_forward(quick: bool, workdir: Path) -> list[dict]:
    """The one-step student policy (normalise, sample noise, one call, unnormalise) vs one bare network forward."""
    out = []
    for device in devices():
        rows = _inference_rows(quick, device)
        out += [summary_row(f"student-vs-forward{_tag(device)} b{batch}", f"1-step student policy vs one bare forward, "
                            f"batch {batch}, {_device_name(device)}", _side(rows, "student 1-step", batch),
                            _side(rows, "bare student forward", batch), "ms/call", "<= 1.1") for batch in (1, 64)]
    return out


def _unet(quick: bool) -> str:
    from rayexp.bench.inference import MODERATE, QUICK

    u = QUICK if quick else MODERATE
    return f"down_dims {u.down_dims}, step_embed_dim {u.step_embed_dim}"


def bench_data(quick: bool, workdir: Path) -> list[dict]:
    """Batches/s the loop's batch path (``TrainingState.sample_batch``: gather, then copy to the device) delivers vs
    batches/s the teacher's training step consumes, interleaved blocks; on a GPU also there (synchronised)."""
    from rayexp.bench.inference import synchronized
    from rayexp.train import TrainingState, train_step

    rows = []
    for device in devices():
        threads = torch.get_num_threads()
        try:
            ts = TrainingState(teacher_stage_config(bench_dataset(workdir, quick), quick, threads), device)
        finally:
            torch.set_num_threads(threads)
        tc, rng = ts.tc, np.random.default_rng(0)
        batch = ts.sample_batch(rng)
        n_load, n_step, repeats = (20, 3, 2) if quick else (500, 20, 5)

        def load() -> int:
            for _ in range(n_load):
                ts.sample_batch(rng)
            return n_load

        def step() -> int:
            for _ in range(n_step):
                train_step(ts.loss_fn, ts.model, ts.ema, ts.optimizer, batch, ts.frozen, tc.grad_clip, tc.ema_decay,
                           ts.generator)
            return n_step

        load, step = synchronized(load, device), synchronized(step, device)
        load(), step()  # warm-up
        loader, steps = [], []
        for _ in range(repeats):  # interleaved, so a change in machine load hits both sides alike
            loader += repeat_rate(load, 1)
            steps += repeat_rate(step, 1)
        rows.append(make_row(f"data{_tag(device)}", f"batch path vs training step, batch {tc.batch_size}, "
                             f"{len(ts.windows)} windows, {_device_name(device)}", loader, steps, "batches/s", ">= 3",
                             note=f"{ts.method.name} step, torch threads {threads}"))
    return rows
