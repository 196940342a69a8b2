"""Statistics over several runs (seeds) of one experiment, the way rliable computes them (Agarwal et al., 2021).

A method's scores form a ``runs x tasks`` matrix (a run's score on a task: its mean over that run's episodes). The
interquartile mean (IQM) is the 25%-trimmed mean of all entries; 95% confidence intervals come from the stratified
bootstrap: resample runs with replacement independently within each task, recompute the statistic, take the
2.5 / 97.5 percentiles. rliable itself does not install beside this project's pins (its ``arch`` dependency fails to
import with pandas 3), so these few lines follow its ``StratifiedBootstrap`` / ``aggregate_iqm`` exactly.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd


def iqm(scores: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (rliable's ``aggregate_iqm``, i.e. scipy's
    ``trim_mean(x, 0.25)``: int(n / 4) values cut from each end; over all entries by default)."""
    x = np.asarray(scores, dtype=float)
    if axis is None:
        x, axis = x.ravel(), 0
    x = np.sort(x, axis=axis)
    n = x.shape[axis]
    cut = int(0.25 * n)
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def mean(scores: np.ndarray, axis: int | None = None) -> np.ndarray:
    return np.mean(scores, axis=axis)


def stratified_bootstrap(scores: np.ndarray, statistic: Callable, reps: int = 10_000, size: float = 0.95,
                         seed: int = 0) -> tuple[float, float]:
    """Percentile confidence interval of ``statistic`` over a ``runs x tasks`` matrix, resampling runs within each
    task. ``statistic(samples, axis=1)`` gets ``reps x (runs * tasks)`` and returns ``reps`` values."""
    scores = np.asarray(scores, dtype=float)
    runs, tasks = scores.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, runs, size=(reps, runs, tasks))  # run drawn for each (replicate, slot, task)
    samples = scores[idx, np.arange(tasks)]  # reps, runs, tasks
    values = statistic(samples.reshape(reps, -1), axis=1)
    lo, hi = np.percentile(values, [50 * (1 - size), 50 * (1 + size)])
    return float(lo), float(hi)


def score_matrix(per_run: pd.DataFrame) -> np.ndarray:
    """``run, task, score`` rows of one method -> runs x tasks (runs missing a task are dropped)."""
    return per_run.pivot_table(index="run", columns="task", values="score", aggfunc="mean").dropna().to_numpy()


def aggregate(episodes: pd.DataFrame, reps: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Episode rows ``method, run, task, score`` -> one row per method: runs (seeds) and episodes behind it, mean and
    standard error over runs, IQM, and stratified-bootstrap 95% intervals of both."""
    per_run = episodes.groupby(["method", "run", "task"], sort=False).agg(
        score=("score", "mean"), episodes=("score", "size")).reset_index()
    rows = []
    for method, g in per_run.groupby("method", sort=False):
        m = score_matrix(g)
        run_means = m.mean(axis=1)
        mean_lo, mean_hi = stratified_bootstrap(m, mean, reps, seed=seed)
        iqm_lo, iqm_hi = stratified_bootstrap(m, iqm, reps, seed=seed)
        rows.append({"method": method, "seeds": m.shape[0], "tasks": m.shape[1], "episodes": int(g["episodes"].sum()),
                     "mean": float(m.mean()),
                     "sem": float(run_means.std(ddof=1) / np.sqrt(len(run_means))) if len(run_means) > 1 else np.nan,
                     "mean_ci_low": mean_lo, "mean_ci_high": mean_hi,
                     "iqm": float(iqm(m)), "iqm_ci_low": iqm_lo, "iqm_ci_high": iqm_hi})
    return pd.DataFrame(rows)


def plot_intervals(table: pd.DataFrame, out, score_name: str = "score"):
    """rliable-style interval plot: one row per method, the 95% interval as a bar and the estimate as a tick, for
    the mean and the IQM side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rayexp.artifacts import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(9, 0.6 * len(table) + 1.4), sharey=True)
    y = np.arange(len(table))
    for ax, stat, title in zip(axes, ("mean", "iqm"), ("Mean", "IQM")):
        lo, hi = table[f"{stat}_ci_low"], table[f"{stat}_ci_high"]
        ax.barh(y, hi - lo, left=lo, height=0.6, color=plt.cm.tab10(y % 10), alpha=0.75)
        ax.vlines(table[stat], y - 0.3, y + 0.3, color="black", linewidth=2)
        ax.set_title(f"{title} (95% stratified-bootstrap CI)", fontsize=10)
        ax.set_xlabel(score_name)
        ax.grid(axis="x", alpha=0.3)
    labels = [f"{m}  ({s} seeds, {e} ep.)" for m, s, e in zip(table["method"], table["seeds"], table["episodes"])]
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    return save_figure(fig, out)
