"""The device path on CPU (device = cpu through the same code a GPU worker runs), DDP across two Ray Train workers,
bf16 autocast, and the one-line refusals of GPU keys on a cluster without GPUs (issue 17)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rayexp.bench.sweep import make_tiny_run
from rayexp.config import load_config
from rayexp.errors import ConfigError
from rayexp.train import TrainingState, stage_config, train_step
from tests.conftest import REPO

UNET = "{step_embed_dim: 8, down_dims: [8, 16], kernel_size: 3}"
MODELS = (f"models={{bc: {{method: {{name: bc, hidden: [16]}}}}, teacher: {{method: {{name: edm_teacher, unet: {UNET}}}}}, "
          f"student: {{method: {{name: ctm_student, bins: 10, unet: {UNET}}}}}}}")
BASE = ["data.action_horizon=4", "train.batch_size=16", "train.log_every=5", "train.checkpoint_every=5", MODELS]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("dev") / "run")


def state(run_dir, stage: str, *overrides: str, device: str = "cpu") -> TrainingState:
    cfg = load_config(None, [*BASE, *overrides])
    return TrainingState(stage_config(cfg, stage, run_dir / "data", run_dir / "models", 1), device)


def test_device_path_on_cpu_places_everything_and_keeps_metrics_on_device(run_dir):
    ts = state(run_dir, "teacher", "train.steps=10")
    ts.advance(10, np.random.default_rng(0))  # the teacher the student below loads as a frozen net
    from rayexp.train import save_model

    save_model(run_dir / "models" / "teacher.pt", ts.method.cfg, ts.spec, ts.ema, ts.step)
    ts = state(run_dir, "student", "train.steps=10")
    dev = torch.device("cpu")
    nets = {"model": ts.model, **ts.frozen.nets}
    assert set(nets) == {"model", "teacher", "ema"}
    assert all(t.device == dev for net in nets.values() for t in [*net.parameters(), *net.buffers()])
    assert ts.generator.device == dev
    batch = ts.sample_batch(np.random.default_rng(0))
    assert all(v.device == dev for v in batch.values())
    metrics = train_step(ts.loss_fn, ts.model, ts.ema, ts.optimizer, batch, ts.frozen, 1.0, 0.9, ts.generator)
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad for v in metrics.values())
    assert set(metrics) == {"ctm", "dsm", "loss", "grad_norm"}
    seen = []
    last = ts.advance(10, np.random.default_rng(0), on_step=lambda step, m: seen.append(m))
    assert all(isinstance(v, torch.Tensor) for m in seen for v in m.values())  # converted only when logged
    assert [r["step"] for r in ts.history] == [5, 10] and all(isinstance(v, float) for v in last.values())


def test_same_seed_same_run_and_noise_comes_from_the_loop_generator(run_dir):
    """Every random draw of a step comes from the loop's generator: reseeding it reproduces a run exactly."""
    runs = []
    for seed in (0, 0, 1):
        ts = state(run_dir, "teacher", "train.steps=4", f"train.seed={seed}")
        ts.advance(4, np.random.default_rng(0))
        runs.append(torch.cat([p.flatten() for p in ts.model.parameters()]))
    assert torch.equal(runs[0], runs[1]) and not torch.allclose(runs[0], runs[2])
    chunked = state(run_dir, "teacher", "train.steps=4")  # advanced in two calls, as a sweep's epochs do
    rng = np.random.default_rng(0)
    chunked.advance(2, rng)
    chunked.advance(4, rng)
    assert torch.equal(runs[0], torch.cat([p.flatten() for p in chunked.model.parameters()]))


@pytest.mark.slow  # inductor compiles forward and backward: ~45 s on 2 cores
def test_compile_trains_like_eager(run_dir):
    eager, compiled = state(run_dir, "bc", "train.steps=3"), state(run_dir, "bc", "train.steps=3", "train.compile=true")
    for ts in (eager, compiled):
        ts.advance(3, np.random.default_rng(0))
    assert type(compiled.loss_fn).__name__ == "OptimizedModule"
    for a, b in zip(eager.model.parameters(), compiled.model.parameters()):
        assert torch.allclose(a, b, atol=1e-5)


def test_bf16_run_on_cpu_trains_with_fp32_master_weights(run_dir):
    # horizon 1: the next action is the learnable part of this synthetic data (later ones are noise)
    common = ("train.steps=60", "train.lr=3e-3", "data.action_horizon=1")
    fp32, bf16 = state(run_dir, "bc", *common), state(run_dir, "bc", *common, "train.precision=bf16")
    first = {}
    for name, ts in (("fp32", fp32), ("bf16", bf16)):
        batch = ts.sample_batch(np.random.default_rng(1))
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=name == "bf16"):
            first[name] = float(ts.loss_fn(batch, ts.frozen)[0])
        ts.advance(60, np.random.default_rng(0))
    assert first["bf16"] != first["fp32"] and abs(first["bf16"] - first["fp32"]) < 0.05 * first["fp32"]
    losses = [r["loss"] for r in bf16.history]
    assert losses[-1] < 0.5 * losses[0] and losses[-1] < 1.5 * fp32.history[-1]["loss"], losses
    assert all(p.dtype == torch.float32 for p in [*bf16.model.parameters(), *bf16.ema.parameters()])
    assert all(s.dtype == torch.float32 for st in bf16.optimizer.state.values() for s in st.values() if s.dim())


def test_config_refuses_unknown_precision_and_cpu_worker_refuses_use_gpu(run_dir):
    with pytest.raises(ConfigError, match="train.precision"):
        load_config(None, ["train.precision=fp16"])
    with pytest.raises(ConfigError, match="evaluate.gpus_per_actor"):
        load_config(None, ["evaluate.gpus_per_actor=2"])
    with pytest.raises(ConfigError, match="train.use_gpu: true but this worker has no GPU"):
        state(run_dir, "bc", "train.use_gpu=true")


@pytest.mark.slow  # two TorchTrainer starts: ~60 s on a quiet machine, over 3 min on a loaded one
def test_ddp_two_workers_equal_one_worker_with_twice_the_batch(run_dir, ray_session, tmp_path):
    """Through ``run_train`` (what `rayexp train` calls): 2 DDP workers x batch 16 == 1 worker x batch 32 after N
    steps, and the worker-written checkpoints load on this GPU-less machine with weights_only=True."""
    from rayexp.pipeline import run_train
    from rayexp.runs import Run
    from rayexp.train import latest_checkpoint, load_model

    params = {}
    for workers, batch in ((1, 32), (2, 16)):
        run = Run(make_tiny_run(tmp_path / f"w{workers}"))
        cfg = load_config(None, [*BASE, "train.steps=6", "train.lr=1e-2", "train.ema_decay=0.5",
                                 f"train.num_workers={workers}", f"train.batch_size={batch}"])
        run_train(cfg, run, ["bc"])
        _, model, _ = load_model(run.model_path("bc"))  # the EMA weights rank 0 wrote
        ckpt = latest_checkpoint(run.train_storage() / "bc")
        snap = torch.load(f"{ckpt}/state.pt", map_location="cpu", weights_only=True)
        assert snap["step"] == 6 and all(v.device.type == "cpu" for v in snap["model"].values())
        params[workers] = (model.state_dict(), snap["model"])
    init = state(run_dir, "bc").model.state_dict()
    for one, two in zip(params[1], params[2]):
        for k in one:
            assert torch.allclose(one[k], two[k], atol=1e-5), k
            if k.endswith("weight"):
                assert not torch.allclose(one[k], init[k], atol=1e-3), f"{k} did not train"


def test_gpu_keys_refused_on_a_cluster_without_gpus(run_dir, ray_session, tmp_path):
    from rayexp.evaluate import evaluate
    from rayexp.pipeline import run_train
    from rayexp.runs import Run

    run = Run(make_tiny_run(tmp_path / "r"))
    with pytest.raises(ConfigError, match=r"train.use_gpu .* needs 1 GPU\(s\) but the Ray cluster has 0"):
        run_train(load_config(None, [*BASE, "train.use_gpu=true"]), run, ["bc"])
    assert not run.train_storage().exists() and not run.model_path("bc").exists()  # refused before any work
    with pytest.raises(ConfigError, match="evaluate.gpus_per_actor needs 0.5 GPU"):
        evaluate({"id": "InvertedPendulum-v5"}, {}, {"gpus_per_actor": 0.5, "episodes": 1, "seed": 0}, 1)
    from rayexp.sweeps.config import read_sweep
    from rayexp.sweeps.run import run_sweep

    sweep_file = REPO / "tune_configs" / "sweep_tiny.yaml"
    args = [f"from_run={run.path}", f"storage_path={tmp_path / 'sweeps'}"]
    with pytest.raises(ConfigError, match="resources_per_trial.gpu needs 1 GPU"):
        run_sweep(sweep_file, [*args, "resources_per_trial={cpu: 1, gpu: 1}"])
    assert not (tmp_path / "sweeps").exists()  # refused before the sweep folder is written
    with pytest.raises(ConfigError, match="lower case"):
        read_sweep(sweep_file, [*args, "resources_per_trial={CPU: 1, GPU: 1}"])


def test_gpu_check_smoke_on_cpu_and_refusal_without_cuda(tmp_path):
    """scripts/gpu_check.py drives the same loop on the CPU: a same-seed rerun agrees exactly (0.000); asking for
    cuda on a machine without one stops with one line before any work."""
    import subprocess
    import sys

    script = str(REPO / "scripts" / "gpu_check.py")
    proc = subprocess.run([sys.executable, script, "--devices", "cpu", "--size", "small", "--steps", "4", "--cpu-steps",
                           "2", "--warmup", "1", "--repeats", "2", "--threads", "1", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("| reward", "| teacher", "| student"))]
    assert len(rows) == 6 and sum(row.endswith("| 0.000 |") for row in rows) == 3, proc.stdout
    assert "teacher/student" in proc.stdout and (tmp_path / "gpu_check.json").is_file()
    if not torch.cuda.is_available():
        proc = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=120, cwd=REPO)
        assert proc.returncode != 0 and proc.stderr.strip().count("\n") == 0 and "no CUDA device" in proc.stderr
        assert not any(tmp_path.glob("gpu_check_*"))
