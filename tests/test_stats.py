"""Aggregation over seeds (rayexp.reports.stats): IQM, standard error and stratified-bootstrap intervals on known numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rayexp.reports.stats import aggregate, iqm, mean, stratified_bootstrap


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.arange(1, 9.0)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert iqm(np.array([0.0, 1, 1, 1, 1, 1, 1, 100])) == pytest.approx(1.0)  # outliers cut, the mean is 13.25
    assert iqm(np.array([[1.0, 2], [3, 4]])) == pytest.approx(2.5)  # over all entries (runs x tasks)


def test_bootstrap_interval_brackets_the_estimate_and_collapses_on_constant_scores():
    x = np.arange(1, 9.0)[:, None]  # 8 runs, 1 task
    lo, hi = stratified_bootstrap(x, iqm, reps=4000)
    assert 1 < lo < iqm(x) < hi < 8
    assert stratified_bootstrap(np.full((5, 2), 3.0), mean, reps=500) == (3.0, 3.0)
    wide = stratified_bootstrap(np.arange(1, 5.0)[:, None], mean, reps=4000)
    narrow = stratified_bootstrap(np.tile(np.arange(1, 5.0), 8)[:, None], mean, reps=4000)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]  # more runs, tighter interval


def test_bootstrap_is_stratified_by_task():
    # Task 0 always scores 0, task 1 always 10: resampling runs within each task keeps one of each per slot, so
    # the mean is exactly 5 in every resample. A bootstrap over all entries would mix them and give a wide interval.
    scores = np.array([[0.0, 10.0]] * 6)
    assert stratified_bootstrap(scores, mean, reps=2000) == (5.0, 5.0)


def test_aggregate_counts_seeds_and_episodes_and_takes_the_se_over_seeds():
    rows = [{"method": m, "run": f"seed_{s}", "task": "all", "score": base + s + 0.1 * e}
            for m, base in (("a", 0.0), ("b", 10.0)) for s in range(3) for e in range(4)]
    t = aggregate(pd.DataFrame(rows), reps=2000).set_index("method")
    assert t.loc["a", "seeds"] == 3 and t.loc["a", "episodes"] == 12 and t.loc["a", "tasks"] == 1
    per_seed = np.array([0.15, 1.15, 2.15])  # each seed's mean over its 4 episodes
    assert t.loc["a", "mean"] == pytest.approx(per_seed.mean())
    assert t.loc["a", "sem"] == pytest.approx(per_seed.std(ddof=1) / np.sqrt(3))
    assert t.loc["b", "mean"] == pytest.approx(per_seed.mean() + 10)
    for m in "ab":
        assert t.loc[m, "mean_ci_low"] <= t.loc[m, "mean"] <= t.loc[m, "mean_ci_high"]
        assert t.loc[m, "iqm_ci_low"] <= t.loc[m, "iqm"] <= t.loc[m, "iqm_ci_high"]


def _fake_run(path, seed: int) -> None:
    path.mkdir(parents=True)
    rows = [{"model": m, "task": "Hopper-v5", "seed_index": 0, "episode": e, "seed": 1000 + e, "return": base + seed + e, "length": 10, "success": None,
             "plans": 3, "ms_per_plan": 1.0, "ms_per_action": 0.3, "nfe": 1.0}
            for m, base in (("teacher", 50.0), ("ractd", 60.0)) for e in range(5)]
    pd.DataFrame(rows).to_parquet(path / "eval.parquet", index=False)


def test_report_over_seed_runs_prints_intervals_and_counts(tmp_path):
    from tests.conftest import rayexp_cli

    for k in range(3):
        _fake_run(tmp_path / "exp" / f"seed_{k}", k)
    out = rayexp_cli("report", str(tmp_path / "exp")).stdout
    assert "3 seeds" in out and "IQM 95% CI" in out
    row = next(line for line in out.splitlines() if line.startswith("| ractd"))
    assert "| 3 | 15 |" in row and "63 ± 0.577" in row  # seeds 0-2: per-seed means 62, 63, 64
    assert (tmp_path / "exp" / "seeds_intervals.png").stat().st_size > 1000
    csv = pd.read_csv(tmp_path / "exp" / "seeds.csv").set_index("method")
    assert csv.loc["teacher", "seeds"] == 3 and csv.loc["teacher", "episodes"] == 15
    # The same runs named one by one give the same table.
    named = rayexp_cli("report", *(str(tmp_path / "exp" / f"seed_{k}") for k in range(3)), "--out", str(tmp_path / "r"))
    assert row in named.stdout
