"""Inference latency and NFE of every sampler on one backbone (Table 3.3 / 3.5 in kind), CPU or a GPU, random weights
(latency does not depend on the weights). ``run_inference_bench`` is what ``rayexp bench`` calls. On a GPU every
timed call ends with ``torch.cuda.synchronize()``: kernels run asynchronously, so a time without it is wrong."""
from __future__ import annotations

import statistics
import time

import torch

from algorithms.base import DataSpec, Frozen
from algorithms.configs import CTMStudentConfig, DDPMConfig, EDMTeacherConfig, UnetConfig
from algorithms.nfe import NetworkCalls
from algorithms.student import CTMStudent
from algorithms.teacher import DDPM, EDMTeacher

MODERATE = UnetConfig(step_embed_dim=64, down_dims=[64, 128, 256], kernel_size=5)
QUICK = UnetConfig(step_embed_dim=16, down_dims=[16, 32], kernel_size=3)


def synchronized(fn, device: torch.device | str = "cpu"):
    """``fn`` followed by a wait for the device's queued kernels (a no-op on the CPU)."""
    if torch.device(device).type != "cuda":
        return fn

    def call():
        out = fn()
        torch.cuda.synchronize(device)
        return out

    return call


def _median_seconds(fn, repeats: int, budget_s: float, warmup_s: float) -> tuple[float, float]:
    """Median and half-range over up to ``repeats`` timed calls (the caller already made a warm-up call lasting
    ``warmup_s``); slow samplers get fewer (>= 3) repeats so one case takes about ``budget_s``."""
    repeats = max(3, min(repeats, int(budget_s / max(warmup_s, 1e-9))))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), (max(times) - min(times)) / 2


def _count_nfe(net: torch.nn.Module, fn) -> int:
    calls = NetworkCalls(net)
    try:
        fn()
    finally:
        calls.remove()
    return calls.count


def run_inference_bench(quick: bool = False, batch_sizes: tuple[int, ...] = (1, 64), repeats: int | None = None,
                        spec: DataSpec | None = None, device: torch.device | str = "cpu") -> list[dict]:
    """One row per (method, batch): method, nfe, batch, ms (median per policy call = one action chunk per row),
    ms_spread (half the range), threads, device. Shapes default to hopper (obs 11, act 3, h 1, c 16)."""
    spec = spec or DataSpec(obs_dim=11, act_dim=3, obs_history=1, action_horizon=16)
    unet = QUICK if quick else MODERATE
    repeats = repeats or (3 if quick else 15)
    budget = 0.5 if quick else 6.0
    teacher_m = EDMTeacher(EDMTeacherConfig(unet=unet, bins=10 if quick else 80))
    teacher = teacher_m.build_model(spec).eval().to(device)
    student_m = CTMStudent(CTMStudentConfig(unet=unet))
    student = student_m.build_model(spec)
    student_m.warm_start(student, Frozen({"teacher": teacher}))
    student = student.eval().to(device)
    ddpm_m = DDPM(DDPMConfig(unet=unet, train_steps=100, sampler="ddpm", sample_steps=10 if quick else 100))
    ddim_m = DDPM(DDPMConfig(unet=unet, train_steps=100, sampler="ddim", sample_steps=10))
    ddpm = ddpm_m.build_model(spec).eval().to(device)
    cases = [(f"DDPM({ddpm_m.cfg.sample_steps})", ddpm.net, ddpm_m.make_policy(ddpm, spec)),
             ("DDIM(10)", ddpm.net, ddim_m.make_policy(ddpm, spec)),
             (f"EDM teacher (Heun, {teacher_m.cfg.bins} bins)", teacher.net.inner, teacher_m.make_policy(teacher, spec))]
    cases += [(f"student {n}-step", student.net.inner, student_m.make_policy(student, spec, steps=n)) for n in (1, 2, 3, 4)]
    rows = []
    for batch in batch_sizes:
        obs = torch.randn(batch, spec.obs_history, spec.obs_dim, device=device)
        x = torch.randn(batch, spec.action_horizon, spec.act_dim, device=device)
        t, gc = torch.ones(batch, device=device), torch.randn(batch, spec.obs_history * spec.obs_dim, device=device)
        bare = torch.no_grad()(lambda: student.net.inner(x, t, gc, s=t))
        cases_b = cases + [("bare student forward", student.net.inner, bare)]
        for name, net, fn in cases_b:
            call = synchronized(fn if name.startswith("bare") else (lambda fn=fn: fn(obs)), device)
            t0 = time.perf_counter()
            nfe = _count_nfe(net, call)  # doubles as the warm-up call
            median, half_range = _median_seconds(call, repeats, budget, time.perf_counter() - t0)
            rows.append({"method": name, "batch": batch, "nfe": nfe, "ms": 1000 * median, "ms_spread": 1000 * half_range,
                         "threads": torch.get_num_threads(), "device": str(device)})
    return rows


def format_table(rows: list[dict]) -> str:
    """Markdown table with teacher/student(1-step) and student/bare-forward ratios per batch size."""
    lines = ["| method | batch | NFE | median ms / call | x student(1) | x bare forward |", "|---|---|---|---|---|---|"]
    for r in rows:
        same = [q for q in rows if q["batch"] == r["batch"]]
        student = next(q["ms"] for q in same if q["method"] == "student 1-step")
        bare = next(q["ms"] for q in same if q["method"] == "bare student forward")
        lines.append(f"| {r['method']} | {r['batch']} | {r['nfe']} | {r['ms']:.2f} | {r['ms'] / student:.1f} | {r['ms'] / bare:.1f} |")
    return "\n".join(lines)
