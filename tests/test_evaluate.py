"""Parallel evaluation gives the same numbers from one actor or several."""
import numpy as np

from algorithms.base import DataSpec
from algorithms.bc import BC
from algorithms.configs import BCConfig
from rayexp.evaluate import evaluate
from rayexp.rows import check_rows, summarize
from rayexp.train import save_model


def test_two_actors_equal_one_actor(tmp_path, ray_session):
    import torch

    torch.manual_seed(0)
    method = BC(BCConfig(hidden=[16]))
    spec = DataSpec(obs_dim=17, act_dim=6, obs_history=2, action_horizon=3)
    model = method.build_model(spec)
    save_model(tmp_path / "bc.pt", method.cfg, spec, model, step=0)
    env = {"id": "HalfCheetah-v5", "split": None, "max_episode_steps": 25, "kwargs": {}}
    ev = {"episodes": 4, "seed": 7, "execute": "first", "chunk": None}
    one = evaluate(env, {"bc": str(tmp_path / "bc.pt")}, ev, num_actors=1)
    two = evaluate(env, {"bc": str(tmp_path / "bc.pt")}, ev, num_actors=2)
    np.testing.assert_array_equal(one["return"], two["return"])
    np.testing.assert_array_equal(one["seed"], [7, 8, 9, 10])
    assert one["return"].nunique() > 1, "different seeds give different episodes"
    assert check_rows(one) is one and set(one["task"]) == {"HalfCheetah-v5"} and set(one["seed_index"]) == {0}
    s = summarize(two)
    assert s.loc[0, "episodes"] == 4 and np.isfinite(s.loc[0, "return_sem"])


def test_write_rows_replaces_only_the_methods_evaluated_now(tmp_path):
    import pandas as pd

    from rayexp.artifacts import write_rows

    path = tmp_path / "rows.parquet"
    write_rows(pd.DataFrame({"model": ["a", "a", "b"], "score": [1, 2, 3]}), path)
    out = write_rows(pd.DataFrame({"model": ["b", "c"], "score": [30, 40]}), path, keep_other="model")
    assert sorted(zip(out["model"], out["score"])) == [("a", 1), ("a", 2), ("b", 30), ("c", 40)]
    assert pd.read_parquet(path).equals(out) and not list(tmp_path.glob(".*"))
    assert write_rows(pd.DataFrame({"model": ["c"], "score": [5]}), path)["model"].tolist() == ["c"]  # no keep: replace
