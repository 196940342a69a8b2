"""One row per evaluated episode, the same columns for every family, in RUN/eval.parquet; and the one summary.

Every evaluator (the core's episodes, Maze2D plans, roundabout traffic, SMAX rounds, RLlib baselines) returns rows
with these columns (``ROW_COLUMNS``):

- ``model``: what was evaluated (a stage, a Table B.6 row label, a SMAX team such as ``mappo+bc``);
- ``task``: where it played (the env id; the roundabout's ``ooc`` / ``id`` traffic; a SMAX test-team env);
- ``seed_index``, ``episode``, ``seed``: episode i of evaluation seed k, on env seed ``engine.episode_seed``;
- ``return``, ``length``, ``success`` (None where the env defines no success).

Optional shared columns: ``normalized_score``, ``nfe``, ``ms_per_action``, ``ms_per_plan``, ``params``; a family
adds its own (the roundabout's ``crashed``, SMAX's ``result`` and ``units``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from rayexp.errors import RayexpError

ROWS_FILE = "eval.parquet"
KEYS = ("model", "task", "seed_index", "episode", "seed")
ROW_COLUMNS = (*KEYS, "return", "length", "success")
SCORES = ("normalized_score", "return", "success")
"""Columns summarized as mean ± s.e. (before any a family names)."""
SEM_RULE = "s.e. over evaluation seeds when there are several, else over episodes"
OLD_FILES = {"roundabout_eval.parquet": "the roundabout", "eval_rounds.parquet": "SMAX"}
"""Rows files of the families before they shared RUN/eval.parquet (2026-12-07)."""


def _missing(df: pd.DataFrame) -> list[str]:
    return [c for c in ROW_COLUMNS if c not in df]


def check_rows(df: pd.DataFrame, who: str = "evaluation") -> pd.DataFrame:
    missing = _missing(df)
    if missing:
        raise RayexpError(f"{who} rows lack the column(s) {missing}; every row needs {list(ROW_COLUMNS)} (rayexp.rows)")
    return df


def write_run_rows(run_path: Path, df: pd.DataFrame, replace_models_only: bool = False) -> pd.DataFrame:
    """Write RUN/eval.parquet atomically and return what it holds. ``replace_models_only``: earlier rows of the
    models not in ``df`` are kept (re-evaluating one method replaces only its rows)."""
    from rayexp.artifacts import write_rows

    if replace_models_only:
        read_run_rows(run_path)  # earlier rows in another layout would be kept beside the new ones
    return write_rows(check_rows(df), Path(run_path) / ROWS_FILE, "model" if replace_models_only else None)


def read_run_rows(run_path: Path) -> pd.DataFrame | None:
    """RUN/eval.parquet (None when the run has no evaluation yet)."""
    path = Path(run_path) / ROWS_FILE
    if path.is_file():
        rows = pd.read_parquet(path)
        missing = _missing(rows)
        if missing:
            raise RayexpError(f"{path} lacks the column(s) {missing}: it was written before 2026-12-07; run `rayexp "
                              f"evaluate` on the run again (without --model) to rewrite it")
        return rows
    old = next((name for name in OLD_FILES if (Path(run_path) / name).is_file()), None)
    if old:
        raise RayexpError(f"{Path(run_path) / old} holds {OLD_FILES[old]}'s rows in their layout before 2026-12-07; "
                          f"run `rayexp evaluate` again to write {ROWS_FILE}")
    return None


def summarize(rows: pd.DataFrame, scores: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per (model, task): seeds and episodes behind it; for each score its mean over seeds of the per-seed
    mean and its standard error, over seeds when there are several, else over the episodes; the mean length and
    NFE, the median time per action and plan, the parameter count."""
    keys = ["model", "task"]
    rows = rows.assign(success=pd.to_numeric(rows["success"], errors="coerce"))  # None (no success defined) -> NaN
    names = [c for c in (*SCORES, *scores) if c in rows and rows[c].notna().any()]
    rows = rows.assign(**{c: rows[c].astype(float) for c in names})
    per_seed = rows.groupby([*keys, "seed_index"], sort=False, dropna=False)[names].mean()
    per_seed = per_seed.groupby(level=keys, sort=False, dropna=False)
    per_episode = rows.groupby(keys, sort=False, dropna=False)
    out = pd.DataFrame({"seeds": per_seed.size(), "episodes": per_episode.size()})
    for c in names:
        out[f"{c}_mean"] = per_seed[c].mean()
        out[f"{c}_sem"] = per_seed[c].sem(ddof=1).where(out["seeds"] > 1, per_episode[c].sem(ddof=1))
    for c, how in (("length", "mean"), ("nfe", "mean"), ("ms_per_action", "median"), ("ms_per_plan", "median"),
                   ("params", "first")):
        if c in rows and rows[c].notna().any():
            out[c] = per_episode[c].agg(how)
    return out.reset_index()
