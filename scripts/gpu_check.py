"""Device check for a GPU machine (Ray-free): the training loop Ray Train workers run, on cuda and on this CPU.

    .venv/bin/python scripts/gpu_check.py                       # thesis MuJoCo size, cuda fp32 + bf16 vs cpu fp32
    .venv/bin/python scripts/gpu_check.py --devices cpu --size small --steps 6 --cpu-steps 3   # CPU smoke run

It drives ``rayexp.train.TrainingState`` (what ``train_loop_per_worker`` builds and advances) on a synthetic
HalfCheetah-shaped dataset (obs 17, act 6, horizon 16) and prints, per stage (reward model, EDM teacher, RACTD
student) and device/precision: steps/s (synchronised timing, after warm-up steps), the final loss; the loss curve's
agreement with a CPU fp32 run of the same seed over ``--cpu-steps`` steps (the two devices' noise generators draw
different numbers, so expect agreement within the batch noise, not bitwise); and the student/teacher policy latency
ratio at batch 1 with ``torch.cuda.synchronize()``. ``--size thesis`` is Table B.2's U-Net ([512, 1024, 2048],
~187M parameters): on a CPU keep ``--cpu-steps`` small (minutes per step at batch 256). Writes ``--out``/gpu_check.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rayexp.bench.inference import synchronized
from rayexp.config import load_config
from rayexp.train import TrainingState, save_model, stage_config

SIZES = {  # U-Net, batch, episodes x length of the synthetic dataset
    "thesis": ("{step_embed_dim: 128, down_dims: [512, 1024, 2048], kernel_size: 5}", 256, (100, 1000)),
    "small": ("{step_embed_dim: 8, down_dims: [8, 16], kernel_size: 3}", 16, (8, 60)),
}
STAGES = ("reward", "teacher", "student")


def make_dataset(root: Path, episodes: int, length: int, seed: int = 0) -> Path:
    """Random HalfCheetah-shaped episodes (obs 17, act 6) whose actions depend on the observation."""
    from rayexp.data.store import DatasetMeta, Episode, write_dataset

    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.3, (17, 6))
    eps = []
    for i in range(episodes):
        obs = rng.normal(0, 1, (length, 17)).astype(np.float32)
        act = np.tanh(obs @ w + rng.normal(0, 0.1, (length, 6))).astype(np.float32)
        eps.append(Episode(obs, act, act.sum(1).astype(np.float32), np.zeros(length, bool),
                           np.eye(1, length, length - 1, dtype=bool)[0], seed=i, policy="synthetic"))
    write_dataset(root / "data", eps, DatasetMeta(env_id="HalfCheetah-v5", obs_dim=17, act_dim=6, source="synthetic"))
    return root / "data"


def experiment(size: str, extra: list[str]):
    unet, batch, _ = SIZES[size]
    models = (f"{{reward: {{method: {{name: reward_model}}}}, teacher: {{method: {{name: edm_teacher, unet: {unet}}}}}, "
              f"student: {{method: {{name: ctm_student, reward_weight: 0.1, unet: {unet}}}}}}}")
    return load_config(None, ["data.action_horizon=16", f"train.batch_size={batch}", "train.lr=2e-4", f"models={models}",
                              *extra])


def train(size: str, data: Path, models: Path, stage: str, device: str, precision: str, steps: int, log_every: int,
          warmup: int = 0) -> dict:
    """Train one stage ``steps`` steps from the seed's initial weights; steps/s timed after ``warmup`` steps."""
    cfg = experiment(size, [f"train.precision={precision}", f"train.log_every={log_every}", f"train.steps={steps}",
                            f"train.use_gpu={str(device != 'cpu').lower()}"])
    ts = TrainingState(stage_config(cfg, stage, data, models, torch.get_num_threads()), device)
    rng = np.random.default_rng(0)
    synchronized(lambda: ts.advance(min(warmup, steps), rng), device)()
    t0 = time.perf_counter()
    synchronized(lambda: ts.advance(steps, rng), device)()
    rate = (steps - min(warmup, steps)) / max(time.perf_counter() - t0, 1e-9)
    return {"ts": ts, "steps_per_s": rate, "history": ts.history,
            "params": sum(p.numel() for p in ts.model.parameters())}


def latency_ms(models: Path, stage: str, device: str, repeats: int) -> float:
    """Median ms per policy call (one action chunk, batch 1) with synchronised timing."""
    from rayexp.train import load_model

    method, model, spec = load_model(models / f"{stage}.pt")
    policy = method.make_policy(model.to(device), spec)
    obs = torch.randn(1, spec.obs_history, spec.obs_dim, device=device)
    call = synchronized(lambda: policy(obs), device)
    call()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def agreement(curve: list[dict], ref: list[dict]) -> float:
    """Mean relative difference of two loss curves at their common logged steps."""
    ref_at = {r["step"]: r["loss"] for r in ref}
    diffs = [abs(r["loss"] - ref_at[r["step"]]) / max(abs(ref_at[r["step"]]), 1e-12) for r in curve if r["step"] in ref_at]
    return float(np.mean(diffs)) if diffs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="cuda,cpu", help="accelerator(s) first, the CPU reference last")
    ap.add_argument("--size", choices=sorted(SIZES), default="thesis")
    ap.add_argument("--steps", type=int, default=300, help="training steps per stage on each accelerator run")
    ap.add_argument("--cpu-steps", type=int, default=3, help="steps of the fp32 agreement runs (CPU and first device)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=20, help="timed policy calls per latency")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices.split(",")
    if any(d.startswith("cuda") for d in devices) and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here (torch.cuda.is_available() is False); run it on a GPU machine, "
                 "or pass --devices cpu --size small for a smoke run")
    accel, ref = devices[0], devices[-1]
    precisions = ["fp32", "bf16"] if accel.startswith("cuda") else ["fp32"]
    root = Path(args.out or tempfile.mkdtemp(prefix="gpu_check_"))
    _, _, (episodes, length) = SIZES[args.size]
    data = make_dataset(root, episodes, length) if not (root / "data").exists() else root / "data"
    models = root / "models"
    rows = []
    for stage in STAGES:  # the fp32 run on the first device writes the frozen net the next stage loads
        for precision in precisions:
            r = train(args.size, data, models, stage, accel, precision, args.steps, log_every=50, warmup=args.warmup)
            if precision == "fp32":
                save_model(models / f"{stage}.pt", r["ts"].method.cfg, r["ts"].spec, r["ts"].ema, r["ts"].step)
            rows.append({"stage": stage, "device": accel, "precision": precision, "steps": args.steps,
                         "steps_per_s": r["steps_per_s"], "final_loss": r["history"][-1]["loss"], "params": r["params"]})
        # agreement: the same seed, fp32, logged every step, on the first device and the CPU reference
        a = train(args.size, data, models, stage, accel, "fp32", args.cpu_steps, log_every=1)
        b = train(args.size, data, models, stage, ref, "fp32", args.cpu_steps, log_every=1, warmup=1)
        rows.append({"stage": stage, "device": ref, "precision": "fp32", "steps": args.cpu_steps,
                     "steps_per_s": b["steps_per_s"], "final_loss": b["history"][-1]["loss"], "params": b["params"],
                     "loss_vs_ref": agreement(a["history"], b["history"])})
    lat = {d: {s: latency_ms(models, s, d, args.repeats) for s in ("teacher", "student")}
           for d in dict.fromkeys([accel] + ([ref] if args.size == "small" else []))}
    report = {"machine": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu only",
              "torch": torch.__version__, "size": args.size, "rows": rows, "latency_ms": lat}
    (root / "gpu_check.json").write_text(json.dumps(report, indent=1))
    teacher_params = next(r["params"] for r in rows if r["stage"] == "teacher")
    print(f"gpu_check on {report['machine']}, torch {torch.__version__}, size {args.size}, {teacher_params:,} teacher "
          f"parameters, threads {torch.get_num_threads()}\n")
    print("| stage | device | precision | steps | steps/s | final loss | |loss - cpu| / cpu, first steps |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        agree = f"{r['loss_vs_ref']:.3f}" if "loss_vs_ref" in r else ""
        print(f"| {r['stage']} | {r['device']} | {r['precision']} | {r['steps']} | {r['steps_per_s']:.2f} | "
              f"{r['final_loss']:.4f} | {agree} |")
    for d, ms in lat.items():
        print(f"\nlatency on {d}, batch 1 (synchronised): teacher {ms['teacher']:.2f} ms, student {ms['student']:.2f} ms, "
              f"teacher/student {ms['teacher'] / ms['student']:.1f}x")
    print(f"\nwrote {root / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
