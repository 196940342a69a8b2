"""Chapter 3's claim on the path users run (slow): the quickstart's stages trained and evaluated through the CLI.

On a two-mode offline dataset imported as a D4RL file (scripts/two_mode_d4rl.py), the reward-aware one-step student
lands on the rewarded mode while the teacher and plain CTD, which imitate the data, keep falling into the other."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import REPO, rayexp_cli

QUICKSTART = str(REPO / "tune_configs" / "quickstart.yaml")
GOOD_RETURN = 20.0  # the rewarded mode's return on 20-step episodes; the other mode's is 4


def mean_returns(run) -> pd.Series:
    return pd.read_parquet(run / "eval.parquet").groupby("model")["return"].mean()


@pytest.mark.slow
def test_ractd_selects_the_rewarded_mode_of_an_imported_two_mode_dataset(tmp_path):
    h5, store = tmp_path / "two_mode.hdf5", tmp_path / "store"
    subprocess.run([sys.executable, str(REPO / "scripts" / "two_mode_d4rl.py"), str(h5), "--episodes", "1000",
                    "--bad-fraction", "0.95"], check=True, capture_output=True)
    rayexp_cli("data", "import-d4rl", str(h5), str(store), "--env-id", "InvertedPendulum-v5")
    args = ["--config", QUICKSTART, "--run-dir", str(tmp_path), "name=two_mode", f"data.path={store}",
            "env.max_episode_steps=20", "evaluate.execute=first", "evaluate.episodes=10"]
    rayexp_cli("train", *args, timeout=1500)
    rayexp_cli("evaluate", *args, timeout=900)
    r = mean_returns(tmp_path / "two_mode")
    assert r["ractd"] >= 0.8 * GOOD_RETURN, r.to_dict()
    assert r["ractd"] > r["ctd"] + 2 and r["ractd"] > r["teacher"] + 2, r.to_dict()


def test_two_mode_source_makes_both_modes_at_the_configured_mix(tmp_path):
    from rayexp.config import load_config
    from rayexp.pipeline import run_collect
    from rayexp.runs import Run

    cfg = load_config(QUICKSTART, ["collect.episodes=40"])
    store = run_collect(cfg, Run(tmp_path / "qs"))
    eps = pd.read_parquet(store.path / "episodes.parquet")
    by_mode = eps.groupby("policy")["return"]
    assert by_mode.size().to_dict() == {"bad": 38, "good": 2}
    assert by_mode.min()["good"] == GOOD_RETURN and by_mode.max()["bad"] <= 5
    assert store.meta.source == "pendulum-two-mode" and store.meta.extra["bad_fraction"] == 0.95


@pytest.mark.slow
def test_tiny_quickstart_reward_aware_student_beats_plain_ctd(tmp_path):
    rayexp_cli("quickstart", "--run-dir", str(tmp_path), "name=tiny", "collect.episodes=600",
               "models.teacher.train.steps=600", "models.reward.train.steps=400", "models.ctd.train.steps=200",
               "models.ractd.train.steps=200", "evaluate.episodes=10", timeout=1500)
    r = mean_returns(tmp_path / "tiny")
    assert r["ractd"] > r["ctd"] + 2 and r["ractd"] >= r["teacher"], r.to_dict()
