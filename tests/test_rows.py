"""The one rows schema and the one summary every family's evaluation goes through."""
import numpy as np
import pandas as pd
import pytest

from rayexp.errors import RayexpError
from rayexp.rows import ROW_COLUMNS, read_run_rows, summarize, write_run_rows


def rows(seeds: int, episodes: int, task: str = "t") -> pd.DataFrame:
    """Return ``10 k + i`` on episode i of seed k; success on even episodes."""
    return pd.DataFrame([{"model": "m", "task": task, "seed_index": k, "episode": i, "seed": 100000 * k + i,
                          "return": 10.0 * k + i, "length": 5, "success": i % 2 == 0, "nfe": 2.0, "ms_per_action": 1.0}
                         for k in range(seeds) for i in range(episodes)])


def test_the_standard_error_is_over_seeds_when_there_are_several_else_over_episodes():
    several = summarize(rows(3, 4)).iloc[0]
    per_seed = np.array([1.5, 11.5, 21.5])
    assert several["seeds"] == 3 and several["episodes"] == 12
    assert several["return_mean"] == pytest.approx(per_seed.mean())
    assert several["return_sem"] == pytest.approx(per_seed.std(ddof=1) / np.sqrt(3))
    assert several["success_mean"] == pytest.approx(0.5) and several["success_sem"] == pytest.approx(0.0)
    one = summarize(rows(1, 4)).iloc[0]
    assert one["seeds"] == 1 and one["return_sem"] == pytest.approx(np.std([0, 1, 2, 3], ddof=1) / 2)
    assert one["nfe"] == 2.0 and one["length"] == 5 and one["ms_per_action"] == 1.0


def test_one_row_per_model_and_task_and_a_family_score():
    both = pd.concat([rows(2, 2, "ooc"), rows(2, 2, "id").assign(**{"return": 0.0})], ignore_index=True)
    both["crashed"] = both["task"] == "ooc"
    s = summarize(both, scores=("crashed",)).set_index("task")
    assert list(s.index) == ["ooc", "id"] and s.loc["ooc", "crashed_mean"] == 1.0 and s.loc["id", "crashed_mean"] == 0.0
    assert s.loc["id", "return_mean"] == 0.0
    no_success = summarize(rows(1, 3).assign(success=None))
    assert "success_mean" not in no_success and no_success.loc[0, "episodes"] == 3


def test_rows_missing_a_column_or_in_an_old_layout_fail_in_one_line(tmp_path):
    with pytest.raises(RayexpError, match=r"lack the column\(s\) \['task'\]; every row needs"):
        write_run_rows(tmp_path, rows(1, 2).drop(columns="task"))
    assert not (tmp_path / "eval.parquet").exists()
    rows(1, 2).drop(columns=["task", "seed_index"]).to_parquet(tmp_path / "eval.parquet")
    with pytest.raises(RayexpError, match=r"lacks the column\(s\) \['task', 'seed_index'\]: it was written before"):
        read_run_rows(tmp_path)
    with pytest.raises(RayexpError, match="written before"):  # --model would keep those rows beside new ones
        write_run_rows(tmp_path, rows(1, 2), replace_models_only=True)
    (tmp_path / "eval.parquet").unlink()
    pd.DataFrame({"team_name": ["mappo"]}).to_parquet(tmp_path / "eval_rounds.parquet")
    with pytest.raises(RayexpError, match="SMAX's rows in their layout before 2026-12-07; run `rayexp evaluate` again"):
        read_run_rows(tmp_path)


def test_re_evaluating_one_model_keeps_the_others_rows(tmp_path):
    write_run_rows(tmp_path, pd.concat([rows(1, 2), rows(1, 2).assign(model="other")]))
    out = write_run_rows(tmp_path, rows(1, 3), replace_models_only=True)
    assert sorted(out.groupby("model").size().items()) == [("m", 3), ("other", 2)]
    assert list(read_run_rows(tmp_path).columns[:len(ROW_COLUMNS)]) == list(ROW_COLUMNS)
