"""The report of a `rayexp data make-d4rl` folder: each tier's size, returns, D4RL-normalized score and the wall
time it took, the SAC run behind them, and the tiers' return distributions (one figure)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from rayexp.artifacts import markdown_table, save_figure
from rayexp.data.d4rl import normalized_score
from rayexp.data.store import EpisodeStore
from rayexp.families.mujoco.make_d4rl import TIERS


def is_tiers_dir(path: Path) -> bool:
    return (path / "sac" / "progress.json").is_file() or any((path / t / "meta.json").is_file() for t in TIERS)


def tier_rows(path: Path) -> pd.DataFrame:
    rows = []
    for tier in TIERS:
        if not (path / tier / "meta.json").is_file():
            continue
        store = EpisodeStore(path / tier)
        s, meta, extra = store.summary(), store.meta, store.meta.extra
        norm = (normalized_score(s["return_mean"], meta.ref_min_score, meta.ref_max_score)
                if meta.ref_max_score is not None else float("nan"))
        elapsed = extra.get("elapsed_s")
        rows.append({"tier": tier, "episodes": s["episodes"], "steps": s["steps"], "return_mean": s["return_mean"],
                     "return_min": s["return_min"], "return_max": s["return_max"], "d4rl_normalized": norm,
                     "sac_env_steps": extra.get("env_steps"),
                     "elapsed_min": elapsed / 60 if elapsed is not None else float("nan"),
                     "commit": str(extra.get("commit", "not recorded"))[:12]})
    return pd.DataFrame(rows)


def plot_tier_returns(path: Path, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for tier in TIERS:
        if (path / tier / "episodes.parquet").is_file():
            rets = pd.read_parquet(path / tier / "episodes.parquet", columns=["return"])["return"]
            ax.hist(rets, bins=30, histtype="step", density=True, linewidth=1.5, label=f"{tier} ({len(rets)})")
    ax.set_xlabel("episode return")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return save_figure(fig, out)


def tiers_report(path: Path, out: Path | None = None) -> str:
    """Markdown for a tiers folder; writes tiers.png beside the tiers (and with ``out``: report.md, tiers.csv and
    the figure there)."""
    from rayexp.runs import atomic_write_text

    rows = tier_rows(path)
    progress_file = path / "sac" / "progress.json"
    progress = json.loads(progress_file.read_text()) if progress_file.is_file() else {}
    lines = [f"# D4RL-style tiers: {path.name}", "", markdown_table(rows) if len(rows) else "no tier written yet", ""]
    if progress:
        medium = progress.get("medium") or {}
        lines += [f"SAC (RayexpSAC, `rayexp data make-d4rl`), as of its last checkpoint: {progress.get('env_steps', 0):,} env "
                  f"steps in {progress.get('wall_s', 0) / 60:.1f} min of training, last training return "
                  f"{progress.get('train_return', float('nan')):.1f}; medium threshold reached at "
                  f"{medium.get('env_steps', 'not yet')} env steps. Rerun `make-d4rl` with the same --out to resume."]
    lines += ["", "elapsed_min: wall time from the start of `make-d4rl` until the tier was written (2-core CPU).",
              "d4rl_normalized: 100 * (return - random) / (expert - random) with D4RL's reference scores."]
    figure = plot_tier_returns(path, path / "tiers.png")
    text = "\n".join(lines + ["", f"return distributions: {figure}"])
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / ".tiers.png.tmp"  # the figure drawn above, copied (reading every tier again would double the I/O)
        shutil.copyfile(figure, tmp)
        tmp.replace(out / "tiers.png")
        atomic_write_text(out / "tiers.csv", rows.to_csv(index=False))
        atomic_write_text(out / "report.md", text.replace(str(figure), "tiers.png") + f"\n\ntiers folder: `{path}`\n")
    return text
