"""Results people look at: a markdown table and a PNG plot from a run's metrics."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from rayexp.artifacts import markdown_table, save_figure
from rayexp.errors import RayexpError
from rayexp.families import Family, family_for, hook
from rayexp.rows import SEM_RULE


def write_eval_tables(run_path: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """RUN/eval.csv and eval.md (atomically) from every row of the run's evaluation; returns the summary."""
    from rayexp.rows import summarize
    from rayexp.runs import atomic_write_text

    summary = summarize(rows)
    atomic_write_text(Path(run_path) / "eval.csv", summary.to_csv(index=False))
    atomic_write_text(Path(run_path) / "eval.md", markdown_table(summary) + "\n")
    return summary


def plot_eval(df: pd.DataFrame, summary: pd.DataFrame, out: Path, dataset_returns=None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    score = "normalized_score" if "normalized_score" in df else "return"
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    one_task = summary["task"].nunique() == 1
    labels = [m if one_task else f"{m} ({t})" for m, t in zip(summary["model"], summary["task"])]
    axes[0].bar(labels, summary[f"{score}_mean"], yerr=summary[f"{score}_sem"], capsize=4, color="tab:blue")
    axes[0].set_ylabel(f"{score.replace('_', ' ')} (mean ± s.e.)")
    axes[0].set_title("score")
    if "ms_per_action" in summary:  # SMAX rounds are not timed
        axes[1].bar(labels, summary["ms_per_action"], color="tab:orange")
        axes[1].set_yscale("log")
    axes[1].set_ylabel("ms per action (median, log)")
    axes[1].set_title("inference time")
    for ax in axes[:2]:
        ax.tick_params(axis="x", rotation=30)
    # Fig. 3.3 style: where each model's episode returns fall against the dataset's.
    groups = ([("dataset", dataset_returns)] if dataset_returns is not None else []) + \
        [(label, df.loc[(df["model"] == m) & (df["task"] == t), "return"])
         for label, m, t in zip(labels, summary["model"], summary["task"])]
    axes[2].hist([g for _, g in groups], bins=20, label=[n for n, _ in groups], density=True, histtype="step", linewidth=1.5)
    axes[2].set_xlabel("episode return")
    axes[2].set_title("return distribution")
    axes[2].legend(fontsize=8)
    return save_figure(fig, out)


def plot_training(metrics: pd.DataFrame, out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "kind" in metrics:
        metrics = metrics[metrics["kind"] == "train"]
    if metrics.empty or "loss" not in metrics:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for stage, g in metrics.groupby("stage"):
        ax.plot(g["step"], g["loss"], label=stage)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("symlog")
    ax.legend()
    return save_figure(fig, out)


def report(run_path: str | Path, out: str | Path | None = None) -> str:
    """Print-ready markdown for a run; writes eval.png, eval.md and eval.csv beside the results, and with ``out``
    a self-contained copy there (report.md naming the commit, the resolved config and the dataset; its figures)."""
    text = run_report(Path(run_path))
    if out is not None:
        write_report_folder(Path(run_path), Path(out), text)
    return text


def write_report_folder(run_path: Path, out: Path, text: str) -> Path:
    import json
    import shutil

    from rayexp.reports.tables import run_dataset_dir
    from rayexp.runs import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    for name in ("eval.png", "training.png", "eval.csv"):
        if (run_path / name).exists():
            tmp = out / f".{name}.tmp"
            shutil.copyfile(run_path / name, tmp)
            tmp.replace(out / name)
    commit = (run_path / "commit.txt").read_text().strip() if (run_path / "commit.txt").is_file() else "unknown"
    data = run_dataset_dir(run_path)
    meta = json.loads((data / "meta.json").read_text()) if (data / "meta.json").is_file() else {}
    provenance = ["## Provenance", "", f"- run: `{run_path}` (commit {commit})",
                  f"- dataset: `{data}`: {meta.get('description', 'no meta.json')} (source {meta.get('source', '?')})",
                  f"- dataset metadata: `{json.dumps(meta.get('extra', {}))}`"]
    if (run_path / "config.yaml").is_file():
        provenance += ["", "Resolved config:", "", "```yaml", (run_path / "config.yaml").read_text().strip(), "```"]
    body = text.replace(str(run_path / "eval.png"), "eval.png").replace(str(run_path / "training.png"), "training.png")
    atomic_write_text(out / "report.md", body + "\n\n" + "\n".join(provenance) + "\n")
    return out / "report.md"


def run_family(run_path: Path) -> Family:
    """The family of the env in the run's recorded config (the core's gymnasium path when it names none)."""
    import yaml

    recorded = run_path / "config.yaml"
    env = (yaml.safe_load(recorded.read_text()) or {}).get("env") or {} if recorded.is_file() else {}
    return family_for(env.get("id", ""), env.get("family"))


def run_report(run_path: Path) -> str:
    if not run_path.is_dir():
        raise RayexpError(f"run {run_path} does not exist; list runs with `ls runs/`")
    from rayexp.sweeps.results import is_sweep_dir, sweep_report

    if is_sweep_dir(run_path):  # a sweep folder (rayexp sweep): curves per trial config and the best configs
        return sweep_report(run_path)
    from rayexp.reports.seeds import seed_runs, seeds_report

    if seed_runs(run_path):  # a run made with `seeds: [...]`: intervals over its RUN/seed_<k>/ runs
        return seeds_report([run_path])
    from rayexp.rows import read_run_rows

    df = read_run_rows(run_path)
    text = [f"# {run_path.name}"]
    if df is not None:
        summary = write_eval_tables(run_path, df)
        table = markdown_table(summary)
        from rayexp.reports.tables import run_dataset_dir, table_3_1_markdown

        episodes = run_dataset_dir(run_path) / "episodes.parquet"  # data.path when set (e.g. a D4RL tier)
        data_returns = pd.read_parquet(episodes, columns=["return"])["return"] if episodes.exists() else None
        plot_eval(df, summary, run_path / "eval.png", data_returns)
        text += ["", table, "", f"mean ± s.e.: {SEM_RULE}; plot: {run_path / 'eval.png'}"]
        t31 = table_3_1_markdown(run_path, df)
        if t31:
            text += ["", t31]
    family_section = hook(run_family(run_path), "report")
    extra = family_section(run_path) if family_section else None
    if extra:  # e.g. the roundabout's OOC / ID traffic tables and Fig. 2.3, Maze2D's Table B.6 rows
        text += ["", extra]
    metrics_path = run_path / "metrics.parquet"
    if metrics_path.exists():
        plot = plot_training(pd.read_parquet(metrics_path), run_path / "training.png")
        if plot:
            text.append(f"training curves: {plot}")
    if df is None and not metrics_path.exists() and not extra:
        raise RayexpError(f"run {run_path} has no results yet (no eval.parquet or metrics.parquet)")
    return "\n".join(text)
