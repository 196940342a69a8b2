"""Table 3.1 layout: D4RL normalized scores (mean ± s.e.) per dataset and method, thesis numbers beside ours;
Table 3.4: the reward-objective ablation (plain / reward-aware teacher x plain / reward-aware student).

The thesis numbers (shared/REFERENCE.md, Table 3.1) are reference values from the thesis' runs on D4RL's
v2 files, not results of this code; they are labelled "(thesis)". Our scores use D4RL's reference
constants on gymnasium v5 envs (close to D4RL's v2, not identical).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from rayexp.rows import SEM_RULE, summarize

THESIS_COLUMNS = ("BC", "CQL", "IQL", "Diffuser", "Diffusion QL", "Consistency AC", "RACTD")
THESIS_TABLE_3_1 = {
    "halfcheetah-me": (55.2, 91.6, 86.7, 88.9, 97.2, 89.2, 95.9),
    "hopper-me": (52.5, 105.4, 91.5, 103.3, 112.3, 106.0, 129.0),
    "walker2d-me": (107.5, 108.8, 109.6, 106.9, 111.2, 111.6, 119.6),
    "halfcheetah-m": (42.6, 44.0, 47.4, 42.8, 51.5, 71.9, 59.3),
    "hopper-m": (52.9, 58.5, 66.3, 74.3, 96.6, 99.7, 121.0),
    "walker2d-m": (75.3, 72.5, 78.3, 79.6, 87.3, 84.1, 98.9),
    "halfcheetah-mr": (36.6, 45.5, 44.2, 37.7, 48.3, 62.7, 57.9),
    "hopper-mr": (18.1, 95.0, 94.7, 93.6, 102.0, 100.4, 104.9),
    "walker2d-mr": (26.0, 77.2, 73.9, 70.6, 98.0, 83.0, 91.5),
}
# Table 3.4 (hopper-mr): (teacher reward-aware, student reward-aware) -> thesis score
THESIS_TABLE_3_4 = {(False, False): 50.8, (True, False): 96.2, (True, True): 96.0, (False, True): 104.9}
# Our stage names -> the thesis column they correspond to.
MODEL_TO_COLUMN = {"bc": "BC", "cql": "CQL", "iql": "IQL", "ractd": "RACTD"}
TIER_ABBREV = {"medium-expert": "me", "medium-replay": "mr", "medium": "m", "expert": "e"}


def dataset_key(env_id: str, tier: str | None) -> str | None:
    """'Hopper-v5' + 'medium-replay' -> 'hopper-mr' (None when the tier is unknown)."""
    if tier not in TIER_ABBREV:
        return None
    return f"{env_id.split('-')[0].lower()}-{TIER_ABBREV[tier]}"


def table_3_1(df: pd.DataFrame, dataset: str | None) -> pd.DataFrame:
    """One row per evaluated model: our normalized score as 'mean ± s.e.' (``rayexp.rows.summarize``) and the
    thesis value for that cell. ``df`` holds a run's per-episode rows with ``normalized_score``."""
    if "normalized_score" not in df:
        raise ValueError("no normalized_score column: the dataset has no reference scores (meta ref_min/max_score)")
    thesis = dict(zip(THESIS_COLUMNS, THESIS_TABLE_3_1.get(dataset or "", ())))
    rows = []
    for r in summarize(df).to_dict("records"):
        column = MODEL_TO_COLUMN.get(r["model"])
        rows.append({"dataset": dataset or "?", "model": r["model"], "episodes": r["episodes"],
                     "normalized score (ours)": _mean_se(r),
                     "thesis (reference)": f"{thesis[column]:.1f}" if column in thesis else "",
                     "NFE per plan": _value(r, "nfe"), "ms per action": _value(r, "ms_per_action")})
    return pd.DataFrame(rows)


def _mean_se(r: dict) -> str:
    mean, sem = r["normalized_score_mean"], r["normalized_score_sem"]
    return f"{mean:.1f}" if pd.isna(sem) else f"{mean:.1f} ± {sem:.1f}"


def _value(r: dict, col: str) -> str:
    return f"{r[col]:.3g}" if col in r else ""


def ablation_cells(config: dict) -> dict[str, tuple[bool, bool]]:
    """Each consistency student of a resolved config -> (its teacher is reward-aware, it is reward-aware),
    read from the methods' ``reward_weight`` and the student's ``frozen.teacher`` (default: the model 'teacher')."""
    models = config.get("models", {})

    def reward_aware(name: str) -> bool:
        return float((models.get(name, {}).get("method") or {}).get("reward_weight", 0.0) or 0.0) > 0

    cells = {}
    for name, spec in models.items():
        if (spec.get("method") or {}).get("name") == "ctm_student":
            teacher = (spec.get("frozen") or {}).get("teacher", "teacher")
            cells[name] = (reward_aware(teacher), reward_aware(name))
    return cells


def table_3_4(df: pd.DataFrame, config: dict) -> pd.DataFrame | None:
    """Rows: plain / reward-aware student; columns: plain / reward-aware teacher; cells 'ours (thesis)'. None
    unless the run evaluated a student in all four cells."""
    by_cell, summary = {}, {r["model"]: r for r in summarize(df).to_dict("records")}
    for name, cell in ablation_cells(config).items():
        if name in summary:
            by_cell[cell] = f"{_mean_se(summary[name])} ({name}; thesis {THESIS_TABLE_3_4[cell]})"
    if len(by_cell) < 4:
        return None
    return pd.DataFrame([{"student": label, "plain teacher": by_cell[(False, ra)], "reward-aware teacher": by_cell[(True, ra)]}
                         for label, ra in (("plain student", False), ("reward-aware student", True))])


def run_dataset_dir(run_path) -> Path:
    """The dataset a run trained on: ``data.path`` from its config.yaml, else RUN/data."""
    import yaml

    run_path = Path(run_path)
    cfg_file = run_path / "config.yaml"
    path = (yaml.safe_load(cfg_file.read_text()) or {}).get("data", {}).get("path") if cfg_file.exists() else None
    return Path(path) if path and not str(path).startswith("minari:") else run_path / "data"


def table_3_1_markdown(run_path, df: pd.DataFrame) -> str | None:
    """Table 3.1 block for ``rayexp report`` (None when the run's scores are not normalized)."""
    import json

    import yaml

    from rayexp.artifacts import markdown_table

    if "normalized_score" not in df:
        return None
    meta_file = run_dataset_dir(run_path) / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    key = dataset_key(meta.get("env_id", ""), meta.get("extra", {}).get("tier"))
    note = (f"D4RL normalized score, mean ± s.e. ({SEM_RULE}); 'thesis (reference)' is the thesis' Table 3.1 value "
            f"for {key} (D4RL v2 files), not a result of this run.") if key else \
        "D4RL normalized score, mean ± s.e. (dataset tier unknown, so no thesis reference shown)."
    text = "## Table 3.1 (in kind)\n\n" + markdown_table(table_3_1(df, key)) + "\n\n" + note
    cfg_file = Path(run_path) / "config.yaml"
    t34 = table_3_4(df, yaml.safe_load(cfg_file.read_text()) or {}) if cfg_file.exists() else None
    if t34 is not None:
        text += ("\n\n## Table 3.4 (in kind): where the reward objective enters\n\n" + markdown_table(t34) +
                 f"\n\nD4RL normalized score, mean ± s.e. ({SEM_RULE}); the thesis values are its hopper-medium-replay "
                 "numbers (100 seeds, D4RL v2), not results of this run.")
    return text
