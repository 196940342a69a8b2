"""Table A.10 / A.11-style success tables and Fig. 2.4 / 2.11 / A.16-style plots from SMAX evaluation rounds.

Rows: ID / simple / hard (from one or more runs, e.g. one trained on the simple split and one on the hard
split), columns: teams; each cell ``mean (s.e.)`` of the per-seed success rate over rounds. Fig. 2.4: change over
n MAPPO per team; Fig. 2.11: the ego planner per condition mode (none / concat / cross-attention); Fig. A.16:
success against the number k of agents replaced by an ego stage (teams ``mappo+k*<stage>``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from rayexp.artifacts import markdown_table, save_figure
from rayexp.errors import RayexpError
from rayexp.families.smax.evaluate import team_parts
from rayexp.rows import read_run_rows, summarize
from rayexp.runs import atomic_write_text

COND_MODES = ("none", "concat", "cross_attention")


def team_label(team: str, n: int) -> str:
    ego, k = team_parts(team)
    return f"{n} MAPPO" if ego is None else f"{n - k} MAPPO + {k} {ego}"


def load_rounds(run_paths: list[str | Path]) -> pd.DataFrame:
    frames = []
    for p in map(Path, run_paths):
        rows = read_run_rows(p)
        if rows is None:
            raise RayexpError(f"{p} has no evaluation rounds (eval.parquet); run `rayexp evaluate` on it first")
        frames.append(rows.assign(run=p.name))
    return pd.concat(frames, ignore_index=True)


def success_table(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(display table: row x team 'mean (se)', long table with numbers) from evaluation rounds."""
    n = int(df["units"].iloc[0].count("-") + 1)
    rows = df.drop_duplicates("task").set_index("task")["row"].to_dict()
    long = summarize(df).rename(columns={"task": "env", "model": "team_name", "episodes": "rounds"})
    long.insert(0, "row", long["env"].map(rows))
    long["team"] = [team_label(t, n) for t in long["team_name"]]
    cell = long.assign(cell=[f"{m:.2f} ({s:.2f})" for m, s in zip(long["success_mean"], long["success_sem"])])
    k_of = dict(zip(long["team"], (team_parts(t)[1] for t in long["team_name"])))
    order = sorted(dict.fromkeys(long["team"]), key=lambda t: k_of[t] > 1)  # n-k MAPPO + k X teams last
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


def _bars(ax, groups: list[str], series: dict[str, list[tuple[float, float]]]) -> None:
    """Grouped bars: one group per row label, one bar (mean, s.e.) per series."""
    import numpy as np

    width = 0.8 / max(len(series), 1)
    for k, (label, vals) in enumerate(series.items()):
        ax.bar(np.arange(len(groups)) + (k - (len(series) - 1) / 2) * width, [v[0] for v in vals], width,
               yerr=[v[1] for v in vals], capsize=3, label=label)
    ax.set_xticks(np.arange(len(groups)), groups)


def plot_condition_modes(long: pd.DataFrame, cond_modes: dict[str, str], out: Path) -> Path | None:
    """Fig. 2.11-style: success of n-1 MAPPO + 1 planner ego per condition mode, per row (None: < 2 modes run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    one_ego = long[[team_parts(t)[1] == 1 and team_parts(t)[0] in cond_modes for t in long["team_name"]]]
    modes = [m for m in COND_MODES if m in {cond_modes[team_parts(t)[0]] for t in one_ego["team_name"]}]
    if len(modes) < 2:
        return None
    rows = list(dict.fromkeys(long["row"]))
    cell = {(r, cond_modes[team_parts(t)[0]]): (m, e) for r, t, m, e in
            one_ego[["row", "team_name", "success_mean", "success_sem"]].itertuples(index=False)}
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(rows), 4))
    _bars(ax, rows, {mode: [cell.get((r, mode), (float("nan"), 0.0)) for r in rows] for mode in modes})
    ax.set_ylabel("success rate (n-1 MAPPO + 1 planner)")
    ax.set_title("Condition modes (Fig. 2.11 style)")
    ax.legend(fontsize=8)
    return save_figure(fig, out)


def plot_k_replaced(long: pd.DataFrame, out: Path) -> Path | None:
    """Fig. A.16-style: success against k, the agents replaced by each ego stage (k = 0: n MAPPO), one line per
    (stage, row). None when no stage was run at two or more k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [team_parts(t) for t in long["team_name"]]
    ks = pd.DataFrame(parts, columns=["ego", "k"], index=long.index)
    egos = [e for e, g in ks.dropna().groupby("ego") if g["k"].nunique() >= 2]
    if not egos:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for ego in egos:
        for row in dict.fromkeys(long["row"]):
            sel = long[(long["row"] == row) & ((ks["ego"] == ego) | (ks["k"] == 0))].assign(k=ks["k"]).sort_values("k")
            ax.errorbar(sel["k"], sel["success_mean"], yerr=sel["success_sem"], marker="o", capsize=3, label=f"{ego}, {row}")
    ax.set_xticks(sorted(ks["k"].dropna().unique().astype(int)))
    ax.set_xlabel("agents replaced by the ego stage (k of n)")
    ax.set_ylabel("success rate")
    ax.set_title("k agents replaced (Fig. A.16 style)")
    ax.legend(fontsize=8)
    return save_figure(fig, out)


def planner_cond_modes(run_paths: list[str | Path]) -> dict[str, str]:
    """Ego stage -> cond_mode for the planner stages recorded in the runs' config.yaml."""
    from algorithms.configs import PlannerConfig
    from algorithms.registry import PLANNER_METHODS

    default, modes = PlannerConfig.model_fields["cond_mode"].default, {}
    for p in map(Path, run_paths):
        f = p / "config.yaml"
        for stage, st in ((yaml.safe_load(f.read_text()) or {}).get("models", {}) if f.exists() else {}).items():
            method = (st or {}).get("method", {})
            if method.get("name") in PLANNER_METHODS:
                modes[stage] = method.get("cond_mode", default)
    return modes


def mappo_budget(run: Path) -> str:
    """One line on the run's MAPPO training: env steps, wall time, the training win rate of its last iterations."""
    metrics = run / "mappo" / "mappo_metrics.csv"
    if not metrics.exists():
        return "MAPPO: no training record (mappo/mappo_metrics.csv)"
    m = pd.read_csv(metrics)
    last = m.tail(10)
    return (f"MAPPO: {int(m['env_steps'].iloc[-1]):,} env steps in {m['wall_s'].iloc[-1] / 60:.1f} min "
            f"({m['env_steps'].iloc[-1] / m['wall_s'].iloc[-1]:.0f} env steps/s), {int(m['iteration'].iloc[-1])} "
            f"iterations; training win rate {last['win_rate'].mean():.2f} over the last {len(last)} iterations")


def plot_mappo_training(run_paths: list[Path], out: Path) -> Path | None:
    """The training win rate of every run's MAPPO against env steps (None: no run has a training record)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [p for p in run_paths if (p / "mappo" / "mappo_metrics.csv").exists()]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for p in runs:
        m = pd.read_csv(p / "mappo" / "mappo_metrics.csv")
        ax.plot(m["env_steps"], m["win_rate"], label=p.name)
    ax.set_xlabel("env steps")
    ax.set_ylabel("training win rate (last 100 episodes)")
    ax.legend(fontsize=8)
    return save_figure(fig, out)


def run_provenance(run: Path) -> str:
    """The run's commit, MAPPO budget and resolved config (its config.yaml), as a report section."""
    cfg, commit = run / "config.yaml", run / "commit.txt"
    text = cfg.read_text() if cfg.exists() else ""
    commit = commit.read_text().strip() if commit.exists() else "unknown"
    return (f"### {run.name}\ncommit {commit}; dataset: the run's own MAPPO rounds ({run / 'data'})\n\n"
            f"{mappo_budget(run)}\n\n```yaml\n{text.strip()}\n```")


def smax_report(run_paths: list[str | Path], out: str | Path | None = None) -> str:
    """Markdown (and table.md / table.csv / report.md with each run's commit, MAPPO budget and config /
    fig_2_4.png, fig_2_11.png, fig_a16.png, mappo_training.png in ``out``, default the first run) for the runs."""
    df = load_rounds(run_paths)
    table, long = success_table(df)
    out = Path(out or run_paths[0])
    out.mkdir(parents=True, exist_ok=True)
    md = markdown_table(table)
    (out / "table.md").write_text(md + "\n")
    long.to_csv(out / "table.csv", index=False)
    figs = [plot_improvement(long, out / "fig_2_4.png"),
            plot_condition_modes(long, planner_cond_modes(run_paths), out / "fig_2_11.png"),
            plot_k_replaced(long, out / "fig_a16.png"), plot_mappo_training(list(map(Path, run_paths)), out / "mappo_training.png")]
    seeds, rounds = long["seeds"].max(), int(long["rounds"].max() // max(long["seeds"].max(), 1))
    caption = f"success rate: mean (s.e.) over {seeds} seeds x {rounds} rounds"
    sections = "\n\n".join(run_provenance(Path(p)) for p in run_paths)
    images = "".join(f"![]({f.name})\n" for f in figs if f is not None)
    atomic_write_text(out / "report.md", f"# SMAX success (Table A.10 layout)\n\n{md}\n\n{caption}\n\n{images}\n"
                                         f"## Runs\n{sections}\n")
    plots = "\n".join(f"plot: {f}" for f in figs if f is not None)
    return f"{md}\n\n{caption}\nreport: {out / 'report.md'}\n{plots}"
