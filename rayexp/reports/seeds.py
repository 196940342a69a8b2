"""``rayexp report`` over several runs (seeds) of one experiment: per method the mean and standard error over seeds,
the IQM, and stratified-bootstrap 95% intervals of both (``rayexp.reports.stats``), with the seeds and episodes behind each
number; written as seeds.md / seeds.csv and an interval plot, seeds_intervals.png.

The runs are either the RUN/seed_<k>/ folders of a run made with ``seeds: [...]`` or run folders named one by one.
A run's score on a task is its mean episode score there: the D4RL normalized score when the dataset has reference
scores, else the return, on each of the rows' tasks (``rayexp.rows``: the env; the roundabout's OOC and ID traffic).
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from rayexp.errors import RayexpError
from rayexp.reports.stats import aggregate, plot_intervals
from rayexp.rows import ROWS_FILE, read_run_rows

REPS = 10_000


def seed_runs(path: Path) -> list[Path]:
    """The RUN/seed_<k>/ folders of ``path`` that hold evaluation results."""
    return sorted((p for p in Path(path).glob("seed_*") if (p / ROWS_FILE).is_file()), key=lambda p: p.name)


def episode_scores(run: Path) -> tuple[pd.DataFrame, str]:
    """One row per evaluated episode of ``run``: method, task, score; and the score's name."""
    df = read_run_rows(run)
    if df is None:
        raise RayexpError(f"{run} has no evaluation results ({ROWS_FILE}); run `rayexp evaluate` there first")
    score = "normalized_score" if "normalized_score" in df else "return"
    return pd.DataFrame({"method": df["model"], "task": df["task"], "score": df[score]}), score


def seeds_table(runs: list[Path], reps: int = REPS) -> tuple[pd.DataFrame, str]:
    frames, names = [], set()
    for run in runs:
        df, score = episode_scores(run)
        frames.append(df.assign(run=run.name if run.name not in names else str(run)))
        names.add(run.name)
    scores = {s for s in (episode_scores(r)[1] for r in runs)}
    if len(scores) > 1:
        raise RayexpError(f"the runs score episodes differently ({', '.join(sorted(scores))}); report runs of one experiment")
    return aggregate(pd.concat(frames, ignore_index=True), reps=reps), scores.pop()


def provenance(runs: list[Path]) -> str:
    """Per run: its commit, its resolved config, its dataset's source, and its own table (NFE, ms per action)."""
    import json

    from rayexp.runs import Run

    parts = ["## Runs"]
    for run in runs:
        commit = (run / "commit.txt").read_text().strip() if (run / "commit.txt").is_file() else "unknown"
        meta = next((json.loads(m.read_text()) for m in [run / "data" / "meta.json"] if m.is_file()), {})
        parts += [f"### {run.name}", f"commit {commit}; dataset {meta.get('source', 'unknown')} "
                  f"{meta.get('extra', {})}; finished: {Run(run).is_finished()}", ""]
        if (run / "eval.md").is_file():
            parts += [(run / "eval.md").read_text().strip(), ""]
        if (run / "config.yaml").is_file():
            parts += ["```yaml", (run / "config.yaml").read_text().strip(), "```", ""]
    return "\n".join(parts)


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    f = lambda v: f"{v:.3g}"  # noqa: E731
    return pd.DataFrame({
        "method": table["method"], "seeds": table["seeds"], "episodes": table["episodes"],
        "mean ± s.e.": [f"{f(m)} ± {f(s)}" if s == s else f(m) for m, s in zip(table["mean"], table["sem"])],
        "mean 95% CI": [f"[{f(lo)}, {f(hi)}]" for lo, hi in zip(table["mean_ci_low"], table["mean_ci_high"])],
        "IQM": table["iqm"].map(f),
        "IQM 95% CI": [f"[{f(lo)}, {f(hi)}]" for lo, hi in zip(table["iqm_ci_low"], table["iqm_ci_high"])]})


def seeds_report(paths: list[Path], out: str | Path | None = None) -> str:
    """Markdown for several runs (or one run's seed_<k>/ folders); writes seeds.md, seeds.csv, seeds_intervals.png."""
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.is_dir()]
    if missing:
        raise RayexpError(f"no run folder {', '.join(missing)}")
    runs = seed_runs(paths[0]) if len(paths) == 1 else paths
    if not runs:
        raise RayexpError(f"{paths[0]} has no seed_<k>/ runs with results; run it with `seeds: [0, 1, 2]` first")
    out = Path(out) if out else (paths[0] if len(paths) == 1 else Path(os.path.commonpath([p.resolve() for p in paths])))
    out.mkdir(parents=True, exist_ok=True)
    from rayexp.artifacts import markdown_table

    table, score = seeds_table(runs)
    table.to_csv(out / "seeds.csv", index=False)
    text = markdown_table(format_table(table))
    note = (f"{score.replace('_', ' ')}; one score per seed and task (the seed's mean over its episodes); s.e. over "
            f"seeds; 95% intervals from a stratified bootstrap over seeds ({REPS:,} resamples; rliable's method). "
            f"Runs: {', '.join(r.name for r in runs)}.")
    (out / "seeds.md").write_text(text + "\n\n" + note + "\n\n" + provenance(runs) + "\n")
    plot = plot_intervals(table, out / "seeds_intervals.png", score.replace("_", " "))
    return "\n".join([f"# {out.name}: {len(runs)} seeds", "", text, "", note, "", f"intervals: {plot}"])
