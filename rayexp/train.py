"""Training on Ray Train: a TorchTrainer hosts any method's plain training step.

``train_step`` is the whole algorithm-independent update (loss under autocast, backward, clip, step, EMA). The
worker loop around it reads windows from the episode store, resumes from Ray Train's latest
checkpoint, reports metrics, checkpoints every N steps and finally writes ``models/<stage>.pt``
(EMA weights, the method config and the DataSpec), loadable with ``torch.load(weights_only=True)`` on a CPU.

Devices: everything a step touches (model, EMA, frozen nets, batch, the noise generator) lives on the device
Ray Train hands the worker (``ray.train.torch.get_device()``); several workers train through Ray Train's own DDP
(``prepare_model`` around ``MethodLoss``), each on its own slice of one global batch. Metrics stay tensors on the
device until a step is logged. See docs/gpu.md.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import TypeAdapter
from torch import nn

from algorithms.base import DataSpec, Frozen, Method, Trained
from algorithms.registry import MethodConfig, make_method
from rayexp.errors import RayexpError

log = logging.getLogger("rayexp")
_METHOD_ADAPTER = TypeAdapter(MethodConfig)


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


class MethodLoss(nn.Module):
    """A method's loss as one module's forward: ``(batch, frozen, generator) -> (loss, metrics)``.

    DDP arms its gradient all-reduce in ``forward`` and ``torch.compile`` compiles a callable, while methods call
    their network's parts (``model.net``, normalisers) directly; wrapping the loss lets both work for every method
    without methods knowing. Its only submodule is the trained model (frozen nets are arguments)."""

    def __init__(self, method, model: nn.Module):
        super().__init__()
        self.method, self.model = method, model

    def forward(self, batch: dict[str, torch.Tensor], frozen: Frozen, generator: torch.Generator | None = None):
        return self.method.loss(self.model, batch, frozen, generator)


def train_step(loss_fn, model: nn.Module, ema: nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
               frozen: Frozen, grad_clip: float | None, ema_decay: float, generator: torch.Generator | None = None,
               precision: str = "fp32") -> dict[str, torch.Tensor]:
    """One optimisation step of any method. ``loss_fn``: a ``MethodLoss`` (or its DDP / compiled wrapper) around
    ``model``. bf16 runs the forward under autocast; parameters, gradients and the optimizer stay fp32.
    Returns the method's metrics plus grad_norm as detached tensors (no host sync)."""
    model.train()
    device_type = next(model.parameters()).device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss, metrics = loss_fn(batch, frozen, generator)
    optimizer.zero_grad(set_to_none=True)
    loss.float().backward()
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip else float("inf"))
    optimizer.step()
    ema_update(ema, model, ema_decay)
    return {**metrics, "grad_norm": norm.detach()}


def as_floats(metrics: dict) -> dict[str, float]:
    """Metric tensors -> floats: the host sync a logged step pays (and only a logged step)."""
    return {k: float(v) for k, v in metrics.items()}


def window_mean(window: list[dict]) -> dict[str, float]:
    """Per metric, the mean over a log window of steps' metric tensors: one host sync per logged row."""
    keys = dict.fromkeys(k for m in window for k in m)
    return {k: float(torch.stack([torch.as_tensor(m[k], dtype=torch.float32) for m in window if k in m]).mean())
            for k in keys}


def check_device(tc, device: torch.device) -> None:
    """Refuse, with one line naming the key, what this device cannot do (before any work)."""
    from rayexp.errors import ConfigError

    if tc.use_gpu and device.type != "cuda":
        raise ConfigError(f"train.use_gpu: true but this worker has no GPU (device {device}); set train.use_gpu=false "
                          "or run on a cluster with GPU nodes")
    if tc.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise ConfigError(f"train.precision: bf16 is not supported on {torch.cuda.get_device_name(device)} (needs "
                          "compute capability 8.0+, e.g. A100/H100/L4); set train.precision=fp32")
    if tc.compile and not _dynamo_supported():
        raise ConfigError("train.compile: true but torch.compile is not supported on this Python/platform; "
                          "set train.compile=false")


def _dynamo_supported() -> bool:
    import torch._dynamo

    return torch._dynamo.is_dynamo_supported()


def pinned_to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A CPU batch on ``device``; to a GPU through pinned memory without blocking the host."""
    if device.type != "cuda":
        return {k: v.to(device) for k, v in batch.items()}
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}


def step_seed(seed: int, rank: int, step: int) -> int:
    """The noise generator's seed of one worker from one (re)start step on: distinct per rank, reproducible."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def save_model(path: Path, method_cfg, spec: DataSpec, model: nn.Module, step: int, starts: list[int] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save({"method": method_cfg.model_dump(mode="json"), "spec": dataclasses.asdict(spec),
                    "state_dict": on_cpu(model.state_dict()), "step": step, "starts": starts or [0]}, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a write cut short (full disk) leaves no half file behind


def on_cpu(state):
    """A (nested) state dict with every tensor on the CPU, so a checkpoint written on a GPU loads anywhere."""
    if isinstance(state, torch.Tensor):
        return state.detach().cpu()
    if isinstance(state, dict):
        return {k: on_cpu(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(on_cpu(v) for v in state)
    return state


def load_model(path: str | Path) -> Trained:
    """(method, model in eval mode, spec) from a ``models/<stage>.pt`` file."""
    from rayexp.checkpoints import read_checkpoint

    path = Path(path)
    ckpt = read_checkpoint(path)  # one-line errors for missing, truncated or unsafe files
    try:
        spec = DataSpec(**ckpt["spec"])
        method = make_method(_METHOD_ADAPTER.validate_python(ckpt["method"]))
        model = method.build_model(spec)
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        raise RayexpError(f"model checkpoint {path} cannot be loaded ({str(e).splitlines()[0]}); retrain that stage") from None
    return Trained(method, model.eval(), spec)


def load_frozen(method: Method, frozen_paths: dict[str, str], spec: DataSpec) -> Frozen:
    """Load the frozen networks a method needs and let the method refuse them (shapes, architecture, schedule)."""
    missing = [n for n in method.needs if n not in frozen_paths or not Path(frozen_paths[n]).is_file()]
    if missing:
        where = ", ".join(f"{n}: {frozen_paths.get(n, '(not configured)')}" for n in missing)
        raise RayexpError(f"{method.name} needs trained {', '.join(missing)} checkpoint(s) ({where}); train them first")
    trained = {name: load_model(frozen_paths[name]) for name in method.needs}
    try:
        method.check_frozen(spec, trained)
    except ValueError as e:
        raise RayexpError(f"{method.name}: {e}") from None
    return Frozen({name: t.model.requires_grad_(False) for name, t in trained.items()})


def init_model(method: Method, spec: DataSpec, frozen: Frozen, seed: int) -> nn.Module:
    """A stage's network before its first step: built from ``seed``, then warm-started from its frozen nets."""
    torch.manual_seed(seed)
    model = method.build_model(spec)
    method.warm_start(model, frozen)
    return model


class TrainingState:
    """The one training loop's state: method, windows, frozen nets, model, EMA, optimizer, step and history.

    Built from a plain-dict stage config (``stage_config``), so Ray Train workers, Tune trials and
    ``scripts/gpu_check.py`` share it. ``device``: where model, EMA, frozen nets, batches and noise live.
    ``distribute`` makes it one of several DDP workers.
    """

    def __init__(self, config: dict, device: torch.device | str = "cpu"):
        from rayexp.config import DataConfig, TrainConfig
        from rayexp.data.store import EpisodeStore
        from rayexp.data.windows import build_windows

        torch.set_num_threads(config["threads"])
        self.tc, dc = TrainConfig(**config["train"]), DataConfig(**config["data"])
        self.device = torch.device(device)
        check_device(self.tc, self.device)
        self.method = make_method(_METHOD_ADAPTER.validate_python(config["method"]))
        self.windows = build_windows(EpisodeStore(config["dataset"]), dc.obs_history, dc.action_horizon, dc.gamma,
                                     dc.termination_penalty, config.get("cond_dim", 0))
        self.spec = self.windows.spec
        self.frozen = load_frozen(self.method, config["frozen"], self.spec)
        self.model = init_model(self.method, self.spec, self.frozen, self.tc.seed)
        # built on the CPU under the seed, then moved: the same initial weights on every device
        self.model.to(self.device)
        self.frozen = Frozen({k: net.to(self.device) for k, net in self.frozen.nets.items()})
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.tc.lr, weight_decay=self.tc.weight_decay)
        self.frozen.nets["ema"] = self.ema
        self.step, self.history, self.starts = 0, [], [0]  # starts: the step where each (re)start began
        self.rank, self.world = 0, 1
        self.loss_fn: nn.Module = MethodLoss(self.method, self.model)
        self.generator = torch.Generator(self.device)
        self._reseed()
        self.compiled = False

    def _reseed(self) -> None:
        """The noise generator from (seed, rank, the step this (re)start begins at): a resumed or re-chunked run
        draws the same noise, and ranks draw different noise."""
        self.generator.manual_seed(step_seed(self.tc.seed, self.rank, self.step))

    def distribute(self, rank: int, world: int, wrap=None) -> None:
        """Make this one of ``world`` workers: ``wrap`` (Ray's ``prepare_model``) puts the loss module in DDP, and
        each worker trains on its own slice of every global batch of ``world * batch_size`` windows."""
        self.rank, self.world = rank, world
        self._reseed()
        if wrap is not None and world > 1:
            self.loss_fn = wrap(self.loss_fn)

    def sample_batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """This worker's slice of one global batch (every rank draws the same indices from the same ``rng``), on the
        device: so N workers of batch B see exactly the windows one worker of batch N*B would."""
        b = self.tc.batch_size
        idx = rng.integers(0, len(self.windows), size=b * self.world)[self.rank * b:(self.rank + 1) * b]
        return pinned_to(self.windows.batch(idx), self.device)

    def snapshot(self) -> dict:
        """Everything a resume needs, on the CPU (loads with map_location='cpu' on a machine without a GPU)."""
        return on_cpu({"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                       "optimizer": self.optimizer.state_dict(), "step": self.step, "history": self.history,
                       "starts": self.starts})

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.history = int(state["step"]), list(state["history"])
        self.starts = [*state["starts"], self.step]
        self._reseed()

    def advance(self, until: int, rng: np.random.Generator, on_step=None) -> dict[str, float]:
        """Train up to step ``until``; every ``log_every`` steps a history row holds the mean metrics since the last
        row (floats); calls ``on_step(step, metrics)`` after each step with the step's metric tensors (convert with
        ``as_floats`` only when needed). Returns the last step's metrics."""
        tc, metrics, window = self.tc, {}, []
        if tc.compile and not self.compiled:
            self.loss_fn, self.compiled = torch.compile(self.loss_fn), True
        while self.step < until:
            metrics = train_step(self.loss_fn, self.model, self.ema, self.optimizer, self.sample_batch(rng), self.frozen,
                                 tc.grad_clip, tc.ema_decay, self.generator, tc.precision)
            self.step += 1
            if not np.isfinite(metrics.get("loss", 0.0)):  # never checkpoint or save a NaN model
                raise RayexpError(f"training loss became {metrics['loss']} at step {self.step}; lower train.lr, set "
                                  "train.grad_clip, or check the dataset (`rayexp data inspect`)")
            window.append(metrics)
            if self.step % tc.log_every == 0 or self.step == tc.steps:
                # the mean over the steps since the last row: one batch's loss is too noisy to show a trend
                self.history.append({"step": self.step, **window_mean(window)})
                window = []
            if on_step is not None:
                on_step(self.step, metrics)
        return as_floats(metrics)


def train_loop_per_worker(config: dict) -> None:
    """The Ray Train worker function. ``config`` holds plain dicts only (it crosses processes)."""
    import ray.train
    import ray.train.torch

    from rayexp.tracking import open_tracker

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    ts = TrainingState(config, ray.train.torch.get_device())
    tc = ts.tc
    # Ray's own checkpoint (a worker restarted within this run) or the newest one on disk (a rerun).
    candidates = []
    if checkpoint := ray.train.get_checkpoint():
        with checkpoint.as_directory() as d:
            candidates.append(torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=True))
    if config.get("resume_from"):
        candidates.append(torch.load(Path(config["resume_from"]) / "state.pt", map_location="cpu", weights_only=True))
    state = max(candidates, key=lambda c: c["step"], default=None)
    if state is not None:
        ts.restore(state)
    # DDP after the restore (it broadcasts rank 0's weights); the same batch rng on every rank (ranks slice it)
    ts.distribute(rank, world, lambda m: ray.train.torch.prepare_model(m, move_to_device=False))
    rng = np.random.default_rng([tc.seed, ts.step])
    # No progress bar here: the driver draws one from these reports (rayexp.progress); rank 0 feeds the trackers.
    tracker = open_tracker(config.get("tracking"), f"train/{config['stage']}", rank)

    def on_step(step: int, metrics: dict) -> None:
        if step % tc.log_every == 0 or step == tc.steps:
            tracker.log(ts.history[-1], step)  # the history row: the mean over the log window, as metrics.parquet
        if step % tc.checkpoint_every == 0 or step == tc.steps:
            with tempfile.TemporaryDirectory() as d:
                if rank == 0:
                    torch.save(ts.snapshot(), Path(d) / "state.pt")
                    (Path(d) / "step.txt").write_text(str(step))
                ray.train.report({"step": step, **as_floats(metrics)}, checkpoint=ray.train.Checkpoint.from_directory(d))
        elif step % tc.log_every == 0:
            ray.train.report({"step": step, **as_floats(metrics)})

    ts.advance(tc.steps, rng, on_step)
    tracker.close()
    if rank == 0:
        save_model(Path(config["model_out"]), ts.method.cfg, ts.spec, ts.ema, ts.step, ts.starts)


def stage_config(cfg, stage: str, dataset: str | Path, models_dir: Path, threads: int) -> dict:
    """The plain-dict config of one stage (what a worker or trial needs); frozen nets come from ``models_dir``."""
    st = cfg.models[stage]
    method = make_method(st.method)
    # A role (teacher, reward) is the stage of that name unless the stage maps it: frozen: {teacher: teacher_rw}.
    frozen_paths = {n: str(Path(models_dir) / f"{st.frozen.get(n, n)}.pt") for n in method.needs}
    return {"stage": stage, "dataset": str(dataset), "method": st.method.model_dump(mode="json"),
            "train": cfg.stage_train(stage).model_dump(), "data": cfg.data.model_dump(), "frozen": frozen_paths,
            "threads": threads}


def train_stage(cfg, run, stage: str, dataset: str | Path, cpu_share: int = 1) -> list[dict[str, Any]]:
    """Train one model stage of ``cfg`` on Ray Train (resuming from its newest checkpoint); returns its metric history.
    ``cpu_share``: runs sharing the cluster (parallel seeds), so each stage asks for its share of the CPUs."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from rayexp.cluster import num_cpus

    if stage not in cfg.models:
        raise RayexpError(f"no model stage {stage!r} in the config; defined: {sorted(cfg.models) or 'none'} (add models.{stage}.method.name=...)")
    from rayexp.console import follow
    from rayexp.progress import ProgressBoard, ReportProgress, board_poller
    from rayexp.tracking import tracking_context

    tc = cfg.stage_train(stage)
    check_cluster(tc, stage)
    method = make_method(cfg.models[stage].method)
    threads = max(1, num_cpus() // (tc.num_workers * cpu_share))
    loop_config = {**stage_config(cfg, stage, dataset, run.path / "models", threads),
                   "model_out": str(run.model_path(stage)), "tracking": tracking_context(cfg, run.path, dataset),
                   "resume_from": latest_checkpoint(run.train_storage() / stage)}
    frozen_paths = loop_config["frozen"]
    # Refuse early, in the driver, when frozen checkpoints are missing or mismatched.
    load_frozen(method, frozen_paths, _dataset_spec(cfg, dataset))
    board = ProgressBoard.remote()
    trainer = TorchTrainer(
        train_loop_per_worker, train_loop_config=loop_config,
        scaling_config=ray.train.ScalingConfig(num_workers=tc.num_workers, use_gpu=tc.use_gpu,
                                               resources_per_worker={"CPU": threads}),
        run_config=ray.train.RunConfig(name=stage, storage_path=str(run.train_storage().resolve()),
                                       checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
                                       failure_config=ray.train.FailureConfig(max_failures=1),
                                       callbacks=[ReportProgress(board, stage)]),
    )
    with follow(f"train {stage}", tc.steps, board_poller(board, stage)):
        result = trainer.fit()
    ray.kill(board)
    if result.error:
        raise result.error
    with result.checkpoint.as_directory() as d:
        history = torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=True)["history"]
    log.info("trained %s: %s", stage, result.metrics)
    return [{"stage": stage, **row} for row in history]


def check_cluster(tc, stage: str) -> None:
    """The driver's refusals before a trainer starts: GPUs the cluster lacks, bf16 on a GPU without it."""
    from rayexp.cluster import gpu_supports_bf16, require_gpus
    from rayexp.errors import ConfigError

    if tc.use_gpu:
        require_gpus(f"train.use_gpu (stage {stage}, {tc.num_workers} worker(s))", tc.num_workers)
        if tc.precision == "bf16":
            name, ok = gpu_supports_bf16()
            if not ok:
                raise ConfigError(f"train.precision: bf16 is not supported on the cluster's GPU ({name}; needs compute "
                                  "capability 8.0+, e.g. A100/H100/L4); set train.precision=fp32")


def latest_checkpoint(storage: Path) -> str | None:
    """The stage's readable checkpoint with the highest step (a killed driver may not have recorded it with Ray);
    unreadable ones (cut short by a full disk) are skipped with a warning."""
    from rayexp.checkpoints import valid_train_checkpoint

    found = [(step, d) for d in storage.glob("checkpoint_*") if (step := valid_train_checkpoint(d)) is not None]
    return str(max(found)[1]) if found else None


def _dataset_spec(cfg, dataset) -> DataSpec:
    from rayexp.data.store import EpisodeStore

    meta = EpisodeStore(dataset).meta
    return DataSpec(obs_dim=meta.obs_dim, act_dim=meta.act_dim, obs_history=cfg.data.obs_history,
                    action_horizon=cfg.data.action_horizon, gamma=cfg.data.gamma, discrete_actions=meta.discrete_actions)
