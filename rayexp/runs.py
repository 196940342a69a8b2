"""A run folder: ``runs/<name>/`` holds config.yaml, data/, models/, metrics.parquet, plots, run.log.

A finished run (one with ``DONE``) is never overwritten without ``--overwrite``, and a run whose outputs a changed config
would no longer reproduce is refused (``check_run``) before anything is written.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

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

    def offline_module(self, stage: str) -> Path:
        """The RLlib module folder of an ``offline_rl`` stage."""
        return self.path / "offline_rl" / stage / "module"

    def train_storage(self) -> Path:
        return self.path / "ray_train"

    def is_finished(self) -> bool:
        return (self.path / "DONE").exists()

    def mark_finished(self) -> None:
        (self.path / "DONE").write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))


def run_folder(root: str | Path, cfg: ExperimentConfig) -> Run:
    """``root/<cfg.name>``, absolute: Ray Train workers run in another working directory."""
    return Run(Path(root).resolve() / cfg.name)


def check_run(run: Run, cfg: ExperimentConfig, overwrite: bool = False, redo: Iterable[str] = (), hint: str = "") -> None:
    """Refuse, before anything is written, a finished run without ``--overwrite`` and a config that differs from the
    recorded one where the difference invalidates an output this command does not redo (``redo``: output names such
    as ``data``, ``models/bc``, see ``stale_outputs``)."""
    if run.is_finished() and not overwrite:
        raise RayexpError(f"run {run.path} is finished; pass --overwrite to replace its results or choose another name=...")
    if "*" in redo:  # the command redoes everything (quickstart --overwrite)
        return
    stale = {out: keys for out, keys in stale_outputs(run, cfg).items() if out not in set(redo)}
    if stale:
        what = "; ".join(f"{out} ({', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''})" for out, keys in stale.items())
        raise RayexpError(f"run {run.path} has outputs made with another config: {what}; "
                          f"{hint or 'choose another name=... for a new run'}")


def open_run(root: str | Path, cfg: ExperimentConfig, overwrite: bool = False, redo: Iterable[str] = (),
             clear: Iterable[str] = (), hint: str = "") -> Run:
    """Check (``check_run``), then create or resume ``root/<cfg.name>``: write the resolved config and the git commit.
    With ``overwrite``, the run's ``clear`` entries (paths inside it; "." for the whole run) are removed first; nothing
    else is ever deleted."""
    run = run_folder(root, cfg)
    check_run(run, cfg, overwrite, redo, hint)
    if overwrite:
        for rel in clear:
            target = (run.path / rel).resolve()
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    run.path.mkdir(parents=True, exist_ok=True)
    setup_log(run.path / "run.log")
    changes = config_changes(recorded_config(run), cfg.model_dump(mode="json")) if run.config_path.exists() else {}
    if changes:
        logging.getLogger("rayexp").info("config differs from the recorded one in %s (%s); recording the new one",
                                         ", ".join(changes), run.path)
    atomic_write_text(run.config_path, dump_config(cfg))
    atomic_write_text(run.path / "commit.txt", git_commit() + "\n")
    return run


DATA_SECTIONS = ("seed", "env", "expert", "collect")
"""Top-level config keys that shape the collected data (and the PPO expert that recorded it)."""


def recorded_config(run: Run) -> dict:
    """The run's config.yaml as the current defaults read it (a key added since is not a change); {} when absent."""
    from pydantic import ValidationError

    from rayexp.config import ExperimentConfig

    if not run.config_path.is_file():
        return {}
    raw = yaml.safe_load(run.config_path.read_text()) or {}
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError:
        return raw
    if cfg.data.path and not cfg.data.path.startswith("minari:"):  # recorded relative by an older rayexp
        cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
    return cfg.model_dump(mode="json")


def config_changes(old: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (recorded, new) for every leaf that differs."""
    a, b = _flatten(old), _flatten(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def stale_outputs(run: Run, cfg: ExperimentConfig) -> dict[str, list[str]]:
    """Outputs already in the run that ``cfg`` would not reproduce -> the changed keys (``key old -> new``) behind it:
    ``data``/``expert`` (collected here), ``models/<stage>`` (model file or Ray Train checkpoints), ``offline_rl/<stage>``."""
    old = recorded_config(run)
    if not old:
        return {}
    new = cfg.model_dump(mode="json")
    out: dict[str, list[str]] = {}
    data_keys = _described(config_changes({s: old.get(s) for s in DATA_SECTIONS}, {s: new.get(s) for s in DATA_SECTIONS}))
    for name in ("data", "expert"):
        if (run.path / name).exists() and data_keys and (name == "expert" or cfg.data.path is None):
            out[name] = data_keys
    for stage in cfg.models:
        if run.model_path(stage).exists() or (run.train_storage() / stage).exists():
            keys = config_changes(_stage_inputs(old, stage), _stage_inputs(new, stage))
            if keys:
                out[f"models/{stage}"] = _described(keys)
    for stage in cfg.offline_rl:
        if (run.path / "offline_rl" / stage).exists():
            keys = config_changes({"data": old.get("data"), **{f"offline_rl.{stage}": old.get("offline_rl", {}).get(stage)}},
                                  {"data": new.get("data"), **{f"offline_rl.{stage}": new["offline_rl"][stage]}})
            if keys:
                out[f"offline_rl/{stage}"] = _described(keys)
    return out


def _described(changes: dict[str, tuple[Any, Any]]) -> list[str]:
    return [f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items()]


def _stage_inputs(cfg: dict, stage: str, seen: tuple[str, ...] = ()) -> dict:
    """What a trained stage depends on in a config dict: the data section, its method, its effective train settings
    and, through ``frozen``, the stages it loads (a teacher retrained with other settings invalidates its student)."""
    st = (cfg.get("models") or {}).get(stage)
    if st is None:
        return {}
    out = {"data": cfg.get("data"), f"models.{stage}.method": st.get("method"),
           f"models.{stage}.frozen": st.get("frozen"), "train": {**(cfg.get("train") or {}), **(st.get("train") or {})}}
    for role, dep in (st.get("frozen") or {}).items():
        if dep not in seen and dep != stage:
            out.update({k: v for k, v in _stage_inputs(cfg, dep, (*seen, stage)).items() if k.startswith("models.")})
    return out


def check_writable(path: Path) -> None:
    """Refuse a run folder that cannot be created or written (read-only file system, a file in the way)."""
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise RayexpError(f"cannot create {path}: {parent} is a file; choose another --run-dir")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        raise RayexpError(f"cannot write in {parent} ({os.strerror(e.errno) if e.errno else e}); choose another --run-dir") from None


def dataset_path(cfg: ExperimentConfig, run: Run) -> Path:
    """The run's episode store: ``data.path`` (a folder or ``minari:<id>``) or the run's own RUN/data."""
    if cfg.data.path is None:
        return run.data_dir
    if cfg.data.path.startswith("minari:"):
        from rayexp.data.minari import resolve_dataset

        return resolve_dataset(cfg.data.path, run.path / "minari_cache").path
    return Path(cfg.data.path).expanduser().resolve()  # absolute: Ray Train workers run in another directory


def git_commit(repo: Path | None = None) -> str:
    """HEAD's hash (of rayexp's own checkout by default), with " (dirty)" when tracked files differ from it: a
    result then names code no commit holds."""
    here = repo or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=here)
        if not head.stdout.strip():
            return "unknown"
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                                timeout=10, cwd=here)
        return head.stdout.strip() + (" (dirty)" if status.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a write cut short (full disk) leaves no half file behind


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
        handler = _RunLogHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)


class _RunLogHandler(logging.FileHandler):
    """run.log: a write that fails (a full disk) raises, so the command stops with one line instead of logging's
    own traceback on every later message."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            raise
        super().handleError(record)
