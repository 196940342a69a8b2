"""Results people look at: a markdown table and a PNG plot from a run's metrics."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from rayexp.errors import RayexpError


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    cols = list(df.columns)
    fmt = lambda v: format(v, floatfmt) if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def eval_summary(run_path: Path) -> pd.DataFrame:
    from rayexp.evaluate import summarize

    path = Path(run_path) / "eval.parquet"
    if not path.exists():
        raise RayexpError(f"{run_path} has no evaluation results (eval.parquet); run `rayexp evaluate` first")
    return summarize(pd.read_parquet(path))


def plot_eval(df: pd.DataFrame, summary: pd.DataFrame, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    score = "normalized_score" if "normalized_score" in df else "return"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    models = list(summary["model"])
    axes[0].bar(models, summary[f"{score}_mean"], yerr=summary[f"{score}_sem"], capsize=4, color="tab:blue")
    axes[0].set_ylabel(f"{score.replace('_', ' ')} (mean ± s.e.)")
    axes[0].set_title("score")
    axes[1].bar(models, summary["ms_per_action"], color="tab:orange")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("ms per action (median, log)")
    axes[1].set_title("inference time")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out


def plot_training(metrics: pd.DataFrame, out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if metrics.empty or "loss" not in metrics:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for stage, g in metrics.groupby("stage"):
        ax.plot(g["step"], g["loss"], label=stage)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("symlog")
    ax.legend()
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out


def report(run_path: str | Path) -> str:
    """Print-ready markdown for a run; writes eval.png, eval.md and eval.csv beside the results."""
    run_path = Path(run_path)
    if not run_path.is_dir():
        raise RayexpError(f"run {run_path} does not exist; list runs with `ls runs/`")
    df = pd.read_parquet(run_path / "eval.parquet") if (run_path / "eval.parquet").exists() else None
    text = [f"# {run_path.name}"]
    if df is not None:
        summary = eval_summary(run_path)
        table = markdown_table(summary)
        summary.to_csv(run_path / "eval.csv", index=False)
        (run_path / "eval.md").write_text(table + "\n")
        plot_eval(df, summary, run_path / "eval.png")
        text += ["", table, "", f"plot: {run_path / 'eval.png'}"]
    metrics_path = run_path / "metrics.parquet"
    if metrics_path.exists():
        plot = plot_training(pd.read_parquet(metrics_path), run_path / "training.png")
        if plot:
            text.append(f"training curves: {plot}")
    if df is None and not metrics_path.exists():
        raise RayexpError(f"run {run_path} has no results yet (no eval.parquet or metrics.parquet)")
    return "\n".join(text)
