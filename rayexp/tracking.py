"""Experiment tracking through Ray's own integrations: MLflow, TensorBoard and W&B (``tracking:`` in the config).

Training stages: the Ray Train worker of rank 0 opens a ``Tracker`` (Ray's ``setup_mlflow`` / ``setup_wandb`` and a
tensorboardX writer) and logs the metrics it reports. Evaluation: the driver opens one for the results table. Sweeps:
Ray Tune's ``MLflowLoggerCallback``, ``TBXLoggerCallback`` and ``WandbLoggerCallback`` (``tune_callbacks``).
What crosses processes is the plain dict ``tracking_context`` builds: backends, where to write, the resolved config
(flattened, as parameters) and tags naming the commit, the run folder and the dataset's provenance.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from rayexp.errors import RayexpError

PACKAGES = {"mlflow": "mlflow", "tensorboard": "tensorboardX", "wandb": "wandb"}


def tracking_context(cfg, run_path: str | Path, dataset: str | Path | None = None) -> dict[str, Any] | None:
    """Everything a tracker needs, as plain data (None when ``tracking.backends`` is empty)."""
    t = cfg.tracking
    if not t.backends:
        return None
    check_installed(t.backends)
    run_path = Path(run_path).resolve()
    return {"backends": list(t.backends), "mlflow_uri": t.mlflow_uri or (run_path / "mlruns").as_uri(),
            "experiment": t.experiment or cfg.name, "wandb_mode": t.wandb_mode, "run_dir": str(run_path),
            "params": flat_params(cfg.model_dump(mode="json")), "tags": run_tags(cfg, run_path, dataset)}


def check_installed(backends: list[str]) -> None:
    import importlib.util

    missing = [PACKAGES[b] for b in backends if importlib.util.find_spec(PACKAGES[b]) is None]
    if missing:
        raise RayexpError(f"tracking.backends needs {', '.join(missing)}; install the extra: pip install -e '.[tracking]'")


def flat_params(d: dict, prefix: str = "") -> dict[str, str]:
    """{"train": {"steps": 5}} -> {"train.steps": "5"}; lists and empty dicts as JSON (MLflow params are strings)."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flat_params(v, key + "."))
        else:
            out[key] = v if isinstance(v, str) else json.dumps(v)
    return out


def run_tags(cfg, run_path: Path, dataset: str | Path | None) -> dict[str, str]:
    from rayexp.runs import git_commit

    tags = {"rayexp.commit": git_commit(), "rayexp.run_dir": str(run_path), "rayexp.experiment": cfg.name,
            "rayexp.seed": str(cfg.seed)}
    return {**tags, **dataset_tags(dataset)} if dataset is not None else tags


def dataset_tags(dataset: str | Path) -> dict[str, str]:
    """Where the training data came from: path, env, source, size and a digest of its files."""
    path = Path(dataset)
    meta_file, episodes = path / "meta.json", path / "episodes.parquet"
    if not meta_file.is_file():
        return {"dataset.path": str(path)}
    meta = json.loads(meta_file.read_text())
    digest = hashlib.sha256(meta_file.read_bytes())
    if episodes.is_file():
        digest.update(episodes.read_bytes())
    tags = {"dataset.path": str(path.resolve()), "dataset.env_id": str(meta.get("env_id")),
            "dataset.source": str(meta.get("source", "")), "dataset.description": str(meta.get("description", ""))[:250],
            "dataset.sha256": digest.hexdigest()[:16]}
    if episodes.is_file():
        import pyarrow.parquet as pq

        tags["dataset.episodes"] = str(pq.ParquetFile(episodes).metadata.num_rows)
    return tags


class Tracker:
    """One tracked unit of work (a training stage, an evaluation) on every configured backend.

    MLflow runs through Ray's ``setup_mlflow`` and W&B through ``setup_wandb`` (both rank-zero aware inside Ray
    Train); TensorBoard through a tensorboardX ``SummaryWriter`` writing RUN/tensorboard/<name>/."""

    def __init__(self, ctx: dict[str, Any], name: str):
        self.ctx, self.name = ctx, name
        self.mlflow = self.wandb = self.tb = None
        tags = {**ctx["tags"], "rayexp.unit": name}
        if "mlflow" in ctx["backends"]:
            from ray.air.integrations.mlflow import setup_mlflow

            allow_file_store(ctx["mlflow_uri"])
            self.mlflow = setup_mlflow(ctx["params"], tracking_uri=ctx["mlflow_uri"], experiment_name=ctx["experiment"],
                                       run_name=name, create_experiment_if_not_exists=True, tags=tags)
        if "wandb" in ctx["backends"]:
            from ray.air.integrations.wandb import setup_wandb

            os.environ["WANDB_MODE"] = ctx["wandb_mode"]  # offline: no account, no network (Ray skips the API key)
            os.environ.setdefault("WANDB_SILENT", "true")
            wandb_dir = Path(ctx["run_dir"]) / "wandb"
            wandb_dir.mkdir(parents=True, exist_ok=True)
            self.wandb = setup_wandb(ctx["params"], project=ctx["experiment"], trial_id=None, trial_name=name,
                                     group=Path(ctx["run_dir"]).name, tags=[name], dir=str(wandb_dir),
                                     mode=ctx["wandb_mode"], notes=json.dumps(tags))
        if "tensorboard" in ctx["backends"]:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(str(tensorboard_dir(ctx, name)))
            self.tb.add_text("config", "\n".join(f"    {k}: {v}" for k, v in ctx["params"].items()), 0)
            self.tb.add_text("tags", "\n".join(f"    {k}: {v}" for k, v in tags.items()), 0)

    def log(self, metrics: dict[str, Any], step: int) -> None:
        scalars = {k: float(v) for k, v in metrics.items() if _is_number(v) and k != "step"}
        if self.mlflow is not None:
            self.mlflow.log_metrics(scalars, step=step)
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(f"{self.name}/{k}", v, step)

    def log_table(self, rows: list[dict[str, Any]], keys: list[str], step: int = 0) -> None:
        """One row per method (e.g. an evaluation summary): every number logged as ``<key values>/<column>``."""
        for row in rows:
            prefix = "/".join(str(row[k]) for k in keys)
            self.log({f"{prefix}/{k}": v for k, v in row.items() if k not in keys}, step)

    def close(self) -> None:
        if self.mlflow is not None:
            self.mlflow.end_run()
        if self.wandb is not None:
            self.wandb.finish()
        if self.tb is not None:
            self.tb.close()


class NullTracker:
    """What every rank but 0, and every run without ``tracking.backends``, logs to."""

    def log(self, metrics: dict[str, Any], step: int) -> None:
        pass

    def log_table(self, rows: list[dict[str, Any]], keys: list[str], step: int = 0) -> None:
        pass

    def close(self) -> None:
        pass


def open_tracker(ctx: dict[str, Any] | None, name: str, rank: int = 0) -> Tracker | NullTracker:
    """A ``Tracker`` on rank 0 when tracking is configured, else a ``NullTracker``."""
    return Tracker(ctx, name) if ctx and rank == 0 else NullTracker()


def tensorboard_dir(ctx: dict[str, Any], name: str) -> Path:
    return Path(ctx["run_dir"]) / "tensorboard" / name.replace("/", "_")


def allow_file_store(uri: str) -> None:
    """MLflow 3.x refuses its file store (it is in maintenance mode) unless told it may use it; a local folder of
    plain files is what a run folder wants (no server, no database), so opt in for file URIs only."""
    if uri.startswith("file:") or "://" not in uri:
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"


def prepare(ctx: dict[str, Any] | None) -> None:
    """In the driver, before parallel work: create the MLflow experiment once (parallel seeds would race)."""
    if not ctx or "mlflow" not in ctx["backends"]:
        return
    import mlflow

    allow_file_store(ctx["mlflow_uri"])
    client = mlflow.tracking.MlflowClient(ctx["mlflow_uri"])
    if client.get_experiment_by_name(ctx["experiment"]) is None:
        client.create_experiment(ctx["experiment"])


def tune_callbacks(ctx: dict[str, Any] | None) -> list:
    """Ray Tune's own logger callbacks for a sweep (TensorBoard event files land in each trial's folder)."""
    if not ctx:
        return []
    callbacks = []
    if "mlflow" in ctx["backends"]:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        allow_file_store(ctx["mlflow_uri"])
        callbacks.append(MLflowLoggerCallback(tracking_uri=ctx["mlflow_uri"], experiment_name=ctx["experiment"],
                                              tags=ctx["tags"]))
    if "tensorboard" in ctx["backends"]:
        from ray.tune.logger import TBXLoggerCallback

        callbacks.append(TBXLoggerCallback())
    if "wandb" in ctx["backends"]:
        from ray.air.integrations.wandb import WandbLoggerCallback

        os.environ["WANDB_MODE"] = ctx["wandb_mode"]
        callbacks.append(WandbLoggerCallback(project=ctx["experiment"], group=Path(ctx["run_dir"]).name,
                                             mode=ctx["wandb_mode"], dir=str(Path(ctx["run_dir"]) / "wandb")))
    return callbacks


def _is_number(v: Any) -> bool:
    import numbers

    return isinstance(v, numbers.Number) and not isinstance(v, bool) and v == v  # drop NaN
