"""Table A.10 / A.11-style success tables and a Fig. 2.4-style improvement plot from SMAX evaluation rounds.

Rows: ID / simple / hard (from one or more runs, e.g. one trained on the simple split and one on the hard
split), columns: teams; each cell ``mean (s.e.)`` of the per-seed success rate over rounds.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from rayexp.errors import RayexpError
from rayexp.report import markdown_table, save_figure
from rayexp.smax_eval import success_summary

TEAM_LABELS = {"mappo": "n MAPPO", "mappo+random": "n-1 MAPPO + 1 random"}


def team_label(team: str, n: int) -> str:
    if team in TEAM_LABELS:
        return TEAM_LABELS[team].replace("n-1", str(n - 1)).replace("n ", f"{n} ")
    return f"{n - 1} MAPPO + 1 {team.partition('+')[2]}"


def load_rounds(run_paths: list[str | Path]) -> pd.DataFrame:
    frames = []
    for p in map(Path, run_paths):
        f = p / "eval_rounds.parquet"
        if not f.exists():
            raise RayexpError(f"{p} has no eval_rounds.parquet; run `rayexp smax evaluate` first")
        frames.append(pd.read_parquet(f).assign(run=p.name))
    return pd.concat(frames, ignore_index=True)


def success_table(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(display table: row x team 'mean (se)', long table with numbers) from evaluation rounds."""
    n = int(df["team"].iloc[0].count("-") + 1)
    rows = df.drop_duplicates("env").set_index("env")["row"].to_dict()
    long = success_summary(df)
    long.insert(0, "row", long["env"].map(rows))
    long["team"] = [team_label(t, n) for t in long["team_name"]]
    cell = long.assign(cell=[f"{m:.2f} ({s:.2f})" for m, s in zip(long["success_mean"], long["success_sem"])])
    order = list(dict.fromkeys(long["team"]))
    table = cell.pivot(index="row", columns="team", values="cell")[order]
    row_order = sorted(table.index, key=lambda r: (r.removeprefix("ID ").strip("()") in ("AAA", "hard"), not r.startswith("ID")))
    return table.loc[row_order].reset_index(), long


def plot_improvement(long: pd.DataFrame, out: Path) -> Path:
    """Fig. 2.4-style: relative success change (%) of each team over n MAPPO, per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    base = long[long["team_name"] == "mappo"].set_index("row")["success_mean"]
    other = long[long["team_name"] != "mappo"]
    teams, rows = list(dict.fromkeys(other["team"])), list(dict.fromkeys(long["row"]))
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(rows), 4))
    width = 0.8 / max(len(teams), 1)
    for k, team in enumerate(teams):
        sub = other[other["team"] == team].set_index("row")
        vals = [100 * (sub.loc[r, "success_mean"] - base[r]) / max(base[r], 1e-9) if r in sub.index else np.nan for r in rows]
        ax.bar(np.arange(len(rows)) + (k - (len(teams) - 1) / 2) * width, vals, width, label=team)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(rows)), rows)
    ax.set_ylabel("success change vs. n MAPPO (%)")
    ax.legend(fontsize=8)
    return save_figure(fig, out)


def smax_report(run_paths: list[str | Path], out: str | Path | None = None) -> str:
    """Markdown (and table.md / table.csv / fig_2_4.png in ``out``, default the first run) for the runs."""
    df = load_rounds(run_paths)
    table, long = success_table(df)
    out = Path(out or run_paths[0])
    out.mkdir(parents=True, exist_ok=True)
    md = markdown_table(table)
    (out / "table.md").write_text(md + "\n")
    long.to_csv(out / "table.csv", index=False)
    fig = plot_improvement(long, out / "fig_2_4.png")
    seeds, rounds = long["seeds"].max(), int(long["rounds"].max() // max(long["seeds"].max(), 1))
    return f"{md}\n\nsuccess rate: mean (s.e.) over {seeds} seeds x {rounds} rounds\nplot: {fig}"
