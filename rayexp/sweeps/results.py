"""A finished (or interrupted) sweep as one tidy table, and the sweep report: Fig. 3.4-style curves plus
the best configurations.

``results.parquet`` / ``results.csv``: one row per trial and epoch with columns trial_id, status, error,
``config/<dotted key>`` for each swept key, epoch, step, the reported metrics, and ``final_<metric>``
(the trial's last reported value of the sweep metric).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from rayexp.artifacts import save_figure
from rayexp.errors import RayexpError

RESULTS = "results"
# Tune's bookkeeping columns that are not results.
DROP = {"trial_id", "done", "date", "hostname", "node_ip", "pid", "time_this_iter_s", "time_since_restore",
        "iterations_since_restore", "checkpoint_dir_name", "should_checkpoint", "training_iteration", "experiment_tag"}


def tidy_table(where: str, metric: str) -> pd.DataFrame:
    """Read every trial of the Tune experiment at ``where`` into the tidy table."""
    from ray import tune

    analysis = tune.ExperimentAnalysis(where)
    frames = []
    for trial in analysis.trials:
        df = analysis.trial_dataframes.get(trial.trial_id)
        if df is None or df.empty:
            df = pd.DataFrame({"epoch": pd.Series(dtype="int64")})
        df = df[[c for c in df.columns if c not in DROP and not c.startswith("config/")]]
        df = df.drop_duplicates("epoch", keep="last") if "epoch" in df else df
        df.insert(0, "trial_id", trial.trial_id)
        df.insert(1, "status", trial.status)
        df.insert(2, "error", _error_line(trial))
        for i, (key, value) in enumerate(sorted(trial.config.items())):
            value = value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
            df.insert(3 + i, f"config/{key}", [value] * len(df))
        df[f"final_{metric}"] = df[metric].iloc[-1] if metric in df and len(df) else float("nan")
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["trial_id", "status", "epoch"])
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["trial_id", "epoch"], kind="stable").reset_index(drop=True)


def _error_line(trial) -> str:
    if trial.status != "ERROR":
        return ""
    try:
        text = str(trial.get_error() or "")
    except Exception:  # noqa: BLE001 (an unreadable error file must not hide the table)
        text = ""
    lines = [ln for ln in str(text).splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "error"


def write_results(where: str, sweep) -> pd.DataFrame:
    """Write the tidy table as Parquet and CSV into the sweep folder (local or a cloud URI)."""
    from pyarrow import fs as pafs

    table = tidy_table(where, sweep.metric)
    filesystem, root = pafs.FileSystem.from_uri(where) if "://" in where else (pafs.LocalFileSystem(), where)
    for ext, write in (("parquet", lambda t, f: t.to_parquet(f, index=False)), ("csv", lambda t, f: t.to_csv(f, index=False))):
        tmp, final = f"{root}/.{RESULTS}.{ext}.tmp", f"{root}/{RESULTS}.{ext}"
        with filesystem.open_output_stream(tmp) as f:
            if ext == "csv":
                f.write(table.to_csv(index=False).encode())
            else:
                write(table, f)
        filesystem.move(tmp, final)
    return table


def is_sweep_dir(path: str | Path) -> bool:
    return (Path(path) / "sweep.yaml").is_file()


def best_configs(table: pd.DataFrame, metric: str, mode: str, top: int = 5) -> pd.DataFrame:
    """One row per finished trial: its config and final metric, best first."""
    last = table.dropna(subset=["epoch"]).groupby("trial_id", sort=False).tail(1)
    cols = ["trial_id", "status", *[c for c in table.columns if c.startswith("config/")], "epoch", metric]
    last = last[[c for c in cols if c in last]].rename(columns=lambda c: c.removeprefix("config/"))
    return last.sort_values(metric, ascending=mode == "min", na_position="last").head(top)


def plot_curves(table: pd.DataFrame, metric: str, out: Path) -> Path:
    """Fig. 3.4 style: the metric per epoch, one line per trial config."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [c for c in table.columns if c.startswith("config/")]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for trial_id, g in table.dropna(subset=["epoch"]).groupby("trial_id", sort=False):
        label = ", ".join(f"{k.removeprefix('config/').split('.')[-1]}={_short(g[k].iloc[0])}" for k in keys) or trial_id
        ax.plot(g["epoch"], g[metric], marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    return save_figure(fig, out)


def _short(v) -> str:
    return format(v, ".3g") if isinstance(v, float) else str(v)


def sweep_report(path: str | Path) -> str:
    """Markdown for a sweep folder; writes curves.png and best.md beside results.parquet."""
    import yaml

    from rayexp.artifacts import markdown_table

    path = Path(path)
    sweep = yaml.safe_load((path / "sweep.yaml").read_text())["sweep"]
    results = path / f"{RESULTS}.parquet"
    if not results.exists():
        raise RayexpError(f"sweep {path} has no {RESULTS}.parquet yet; run `rayexp sweep` on its YAML first")
    table = pd.read_parquet(results)
    metric, mode = sweep["metric"], sweep["mode"]
    if metric not in table:
        raise RayexpError(f"sweep {path}: no trial reported {metric!r} yet")
    best = best_configs(table, metric, mode)
    (path / "best.md").write_text(markdown_table(best) + "\n")
    plot = plot_curves(table, metric, path / "curves.png")
    n = table["trial_id"].nunique()
    status = json.dumps(table.groupby("trial_id").tail(1)["status"].value_counts().to_dict())
    return "\n".join([f"# sweep {path.name}: {sweep['stage']}, {metric} ({mode}), {n} trials {status}", "",
                      markdown_table(best), "", f"curves: {plot}"])
