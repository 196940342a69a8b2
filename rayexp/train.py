"""Training on Ray Train: a TorchTrainer hosts any method's plain training step.

``train_step`` is the whole algorithm-independent update (loss, backward, clip, step, EMA). The
worker loop around it reads windows from the episode store, resumes from Ray Train's latest
checkpoint, reports metrics, checkpoints every N steps and finally writes ``models/<stage>.pt``
(EMA weights, the method config and the DataSpec), loadable with ``torch.load(weights_only=True)``.
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


def train_step(method, model: nn.Module, ema: nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
               frozen: Frozen, grad_clip: float | None, ema_decay: float, world_size: int = 1) -> dict[str, float]:
    """One optimisation step of any method. Returns the method's metrics plus grad_norm."""
    model.train()
    loss, metrics = method.loss(model, batch, frozen)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if world_size > 1:
        for p in model.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad, op=torch.distributed.ReduceOp.AVG)
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip else float("inf"))
    optimizer.step()
    ema_update(ema, model, ema_decay)
    return {**metrics, "grad_norm": float(norm)}


def save_model(path: Path, method_cfg, spec: DataSpec, model: nn.Module, step: int, starts: list[int] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"method": method_cfg.model_dump(mode="json"), "spec": dataclasses.asdict(spec),
                "state_dict": model.state_dict(), "step": step, "starts": starts or [0]}, tmp)
    tmp.replace(path)


def load_model(path: str | Path) -> Trained:
    """(method, model in eval mode, spec) from a ``models/<stage>.pt`` file."""
    path = Path(path)
    if not path.is_file():
        raise RayexpError(f"model checkpoint {path} does not exist; train that stage first (`rayexp train`)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
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

    Built from a plain-dict stage config (``stage_config``), so Ray Train workers and Tune trials share it.
    """

    def __init__(self, config: dict):
        from rayexp.config import DataConfig, TrainConfig
        from rayexp.store import EpisodeStore
        from rayexp.windows import build_windows

        torch.set_num_threads(config["threads"])
        self.tc, dc = TrainConfig(**config["train"]), DataConfig(**config["data"])
        self.method = make_method(_METHOD_ADAPTER.validate_python(config["method"]))
        self.windows = build_windows(EpisodeStore(config["dataset"]), dc.obs_history, dc.action_horizon, dc.gamma,
                                     dc.termination_penalty, config.get("cond_dim", 0))
        self.spec = self.windows.spec
        self.frozen = load_frozen(self.method, config["frozen"], self.spec)
        self.model = init_model(self.method, self.spec, self.frozen, self.tc.seed)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.tc.lr, weight_decay=self.tc.weight_decay)
        self.frozen.nets["ema"] = self.ema
        self.step, self.history, self.starts = 0, [], [0]  # starts: the step where each (re)start began

    def snapshot(self) -> dict:
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step, "history": self.history, "starts": self.starts}

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.history = int(state["step"]), list(state["history"])
        self.starts = [*state["starts"], self.step]

    def advance(self, until: int, rng: np.random.Generator, world: int = 1, on_step=None) -> dict[str, float]:
        """Train up to step ``until``; every ``log_every`` steps a history row holds the mean metrics since the last
        row; calls ``on_step(step, metrics)`` after each step."""
        tc, metrics, window = self.tc, {}, []
        while self.step < until:
            metrics = train_step(self.method, self.model, self.ema, self.optimizer, self.windows.sample(tc.batch_size, rng),
                                 self.frozen, tc.grad_clip, tc.ema_decay, world)
            self.step += 1
            window.append(metrics)
            if self.step % tc.log_every == 0 or self.step == tc.steps:
                # the mean over the steps since the last row: one batch's loss is too noisy to show a trend
                keys = dict.fromkeys(k for m in window for k in m)
                self.history.append({"step": self.step, **{k: float(np.mean([m[k] for m in window if k in m])) for k in keys}})
                window = []
            if on_step is not None:
                on_step(self.step, metrics)
        return metrics


def train_loop_per_worker(config: dict) -> None:
    """The Ray Train worker function. ``config`` holds plain dicts only (it crosses processes)."""
    import ray.train

    from rayexp.tracking import open_tracker

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    ts = TrainingState(config)
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
    rng = np.random.default_rng([tc.seed, rank, ts.step])
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
                ray.train.report({"step": step, **metrics}, checkpoint=ray.train.Checkpoint.from_directory(d))
        elif step % tc.log_every == 0:
            ray.train.report({"step": step, **metrics})

    ts.advance(tc.steps, rng, world, on_step)
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


def latest_checkpoint(storage: Path) -> str | None:
    """The stage's checkpoint with the highest step (a killed driver may not have recorded it with Ray)."""
    found = [(int((d / "step.txt").read_text()), d) for d in storage.glob("checkpoint_*")
             if (d / "step.txt").is_file() and (d / "state.pt").is_file()]
    return str(max(found)[1]) if found else None


def _dataset_spec(cfg, dataset) -> DataSpec:
    from rayexp.store import EpisodeStore

    meta = EpisodeStore(dataset).meta
    return DataSpec(obs_dim=meta.obs_dim, act_dim=meta.act_dim, obs_history=cfg.data.obs_history,
                    action_horizon=cfg.data.action_horizon, gamma=cfg.data.gamma, discrete_actions=meta.discrete_actions)
