"""Roundabout results beside the thesis: Fig. 2.3-style bars, Table A.5 (size, OOC reward, crashes) and Table A.6
(true vs random condition), from the run's rows (RUN/eval.parquet). Written as markdown and CSV next to the run.

Thesis rows are matched to ours by stage name (the names tune_configs/roundabout.yaml uses): ``bc`` BC (MLP),
``bc_large`` Large BC, ``planner`` the conditional diffusion model, ``ppo*`` PPO (the thesis reports one PPO; we
train one expert per training composition and list each), ``<planner>-random-cond`` the random condition.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from rayexp.artifacts import markdown_table, save_figure
from rayexp.families.roundabout.evaluate import RANDOM_SUFFIX, summarize_roundabout
from rayexp.rows import SEM_RULE

# Thesis Table A.5 (mean (s.e.) over 3 seeds, OOD = mixed traffic): params, reward, reward s.e., crashes, crashes s.e.
THESIS_A5 = {
    "BC (MLP)": (75013, 7.50, 0.03, 37.7, 0.5),
    "PPO": (148998, 8.19, 0.16, 36.0, 5.7),
    "Diffusion (conditional)": (13546370, 8.81, 0.2, 20.0, 2.5),
    "Large BC": (13912325, 7.71, 0.3, 37.3, 4.0),
    "Large PPO": (27823622, 8.43, 0.19, 31.67, 1.89),
}
# Thesis Table A.6: condition -> (crashes, s.e., reward, s.e.)
THESIS_A6 = {"ground truth": (19.67, 2.49, 8.81, 0.2), "random": (24.33, 0.47, 8.1, 0.09)}


def thesis_row(model: str) -> str | None:
    if model.endswith(RANDOM_SUFFIX):
        return None
    if model.startswith("ppo"):
        return "PPO"
    return {"bc": "BC (MLP)", "bc_large": "Large BC", "planner": "Diffusion (conditional)"}.get(model)


def _pm(mean: float, sem: float) -> str:
    return f"{mean:.2f}" if pd.isna(sem) else f"{mean:.2f} ± {sem:.2f}"


def table_a5(summary: pd.DataFrame) -> pd.DataFrame:
    """Ours on OOC traffic beside the thesis' Table A.5 (and our ID numbers for reference)."""
    ooc = summary[summary["traffic"] == "ooc"].set_index("model")
    iid = summary[summary["traffic"] == "id"].set_index("model")
    rows = []
    for model, r in ooc.iterrows():
        t = THESIS_A5.get(thesis_row(model) or "")
        rows.append({"model": model, "params": int(r["params"]), "OOC reward": _pm(r["reward_mean"], r["reward_sem"]),
                     "OOC crashes /100": _pm(r["crashes_mean"], r["crashes_sem"]),
                     "ID reward": _pm(iid.loc[model, "reward_mean"], iid.loc[model, "reward_sem"]) if model in iid.index else "",
                     "ID crashes /100": _pm(iid.loc[model, "crashes_mean"], iid.loc[model, "crashes_sem"]) if model in iid.index else "",
                     "ms per action": f"{r['ms_per_action']:.3g}",
                     "seeds x episodes": f"{int(r['seeds'])} x {int(r['episodes_per_seed'])}",
                     "thesis row": thesis_row(model) or "-",
                     "thesis params": t[0] if t else "", "thesis OOC reward": _pm(t[1], t[2]) if t else "",
                     "thesis OOC crashes": _pm(t[3], t[4]) if t else ""})
    return pd.DataFrame(rows)


def table_a6(summary: pd.DataFrame) -> pd.DataFrame:
    """Each planner with its true and its random condition on OOC traffic, beside thesis Table A.6."""
    ooc = summary[summary["traffic"] == "ooc"].set_index("model")
    rows = []
    for model in [m for m in ooc.index if m.endswith(RANDOM_SUFFIX)]:
        base = model.removesuffix(RANDOM_SUFFIX)
        for label, name in (("ground truth", base), ("random", model)):
            if name not in ooc.index:
                continue
            r, t = ooc.loc[name], THESIS_A6[label]
            rows.append({"planner": base, "condition": label, "OOC crashes /100": _pm(r["crashes_mean"], r["crashes_sem"]),
                         "OOC reward": _pm(r["reward_mean"], r["reward_sem"]), "thesis crashes": _pm(t[0], t[1]),
                         "thesis reward": _pm(t[2], t[3])})
    return pd.DataFrame(rows)


def plot_fig_2_3(summary: pd.DataFrame, out: Path) -> Path:
    """Crashes per 100 episodes and mean reward per method, OOC (solid) and ID (hatched) bars, s.e. over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models = list(dict.fromkeys(summary["model"]))
    x = np.arange(len(models))
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(models)), 4))
    for ax, metric, label in ((axes[0], "crashes", "crashes per 100 episodes"), (axes[1], "reward", "mean episode reward")):
        for off, traffic, hatch in ((-0.2, "ooc", None), (0.2, "id", "//")):
            s = summary[summary["traffic"] == traffic].set_index("model").reindex(models)
            ax.bar(x + off, s[f"{metric}_mean"], 0.4, yerr=s[f"{metric}_sem"].fillna(0), capsize=3, hatch=hatch,
                   label=f"{traffic.upper()} traffic", color="tab:red" if metric == "crashes" else "tab:blue",
                   alpha=1.0 if traffic == "ooc" else 0.45)
        ref = [THESIS_A5.get(thesis_row(m) or "") for m in models]
        idx = [i for i, t in enumerate(ref) if t]
        if idx:
            ax.scatter(x[idx] - 0.2, [ref[i][3 if metric == "crashes" else 1] for i in idx], color="k", marker="D",
                       zorder=3, label="thesis (OOC)")
        ax.set_xticks(x, models, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    axes[0].set_title("Crashes (Fig. 2.3 style)")
    axes[1].set_title("Reward")
    return save_figure(fig, out)


def roundabout_report(run_path: str | Path) -> str | None:
    """Markdown for a roundabout run; writes fig_2_3.png, table_a5.{md,csv}, table_a6.{md,csv}. None before its
    first evaluation."""
    from rayexp.rows import read_run_rows

    run_path = Path(run_path)
    rows = read_run_rows(run_path)
    if rows is None:
        return None
    summary = summarize_roundabout(rows)
    text = [f"## Roundabout (OOC = test mixtures, ID = training compositions; mean ± s.e., {SEM_RULE})", "",
            markdown_table(summary)]
    for name, table in (("table_a5", table_a5(summary)), ("table_a6", table_a6(summary))):
        if table.empty:
            continue
        table.to_csv(run_path / f"{name}.csv", index=False)
        md = markdown_table(table)
        (run_path / f"{name}.md").write_text(md + "\n")
        text += ["", f"### {'Table A.5' if name == 'table_a5' else 'Table A.6'} (ours beside the thesis)", "", md]
    text += ["", f"figure: {plot_fig_2_3(summary, run_path / 'fig_2_3.png')}"]
    values = run_path / "roundabout_values.parquet"
    values = pd.read_parquet(values) if values.exists() else pd.DataFrame()
    if not values.empty:
        from rayexp.families.roundabout.values import plot_fig_2_2

        text.append(f"values vs return-to-go: {plot_fig_2_2(values, run_path / 'fig_2_2.png')}")
    return "\n".join(text)
