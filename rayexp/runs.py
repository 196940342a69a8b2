"""A run folder: ``runs/<name>/`` holds config.yaml, data/, models/, metrics.parquet, plots, run.log.

A finished run (one with ``DONE``) is never overwritten without ``--overwrite``.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd

from rayexp.config import ExperimentConfig, dump_config
from rayexp.errors import RayexpError


class Run:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def data_dir(self) -> Path:
        return self.path / "data"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.parquet"

    def model_path(self, stage: str) -> Path:
        return self.path / "models" / f"{stage}.pt"

    def train_storage(self) -> Path:
        return self.path / "ray_train"

    def is_finished(self) -> bool:
        return (self.path / "DONE").exists()

    def mark_finished(self) -> None:
        (self.path / "DONE").write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))


def open_run(root: str | Path, cfg: ExperimentConfig, overwrite: bool = False, resume: bool = True) -> Run:
    """Create (or resume) ``root/<cfg.name>``, write the resolved config and the git commit."""
    run = Run(Path(root).resolve() / cfg.name)  # absolute: Ray Train workers run in another working dir
    if run.is_finished() and not overwrite:
        raise RayexpError(f"run {run.path} is finished; pass --overwrite to replace it or choose another name=...")
    if overwrite and run.path.exists():
        shutil.rmtree(run.path)
    run.path.mkdir(parents=True, exist_ok=True)
    if run.config_path.exists() and resume:
        old = run.config_path.read_text()
        if old != dump_config(cfg):
            logging.getLogger("rayexp").info("config differs from the one recorded in %s; recording the new one", run.path)
    atomic_write_text(run.config_path, dump_config(cfg))
    atomic_write_text(run.path / "commit.txt", git_commit() + "\n")
    setup_log(run.path / "run.log")
    return run


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def append_metrics(run: Run, rows: list[dict]) -> pd.DataFrame:
    """Append rows to the run's metrics table (Parquet), atomically; returns the whole table."""
    new = pd.DataFrame(rows)
    table = pd.concat([pd.read_parquet(run.metrics_path), new], ignore_index=True) if run.metrics_path.exists() else new
    tmp = run.metrics_path.with_name(".metrics.parquet.tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(run.metrics_path)
    return table


def setup_log(path: Path) -> None:
    log = logging.getLogger("rayexp")
    log.setLevel(logging.INFO)
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve() for h in log.handlers):
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
