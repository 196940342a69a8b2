"""A user's gymnasium env runs the whole pipeline from a config alone, without editing rayexp (issue #16)."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import TINY, rayexp_cli

pytestmark = pytest.mark.slow


def test_custom_gymnasium_env_runs_collect_train_evaluate_from_config(tmp_path):
    args = ["--run-dir", str(tmp_path), *[a for a in TINY if not a.startswith("name=")], "name=user",
            "env.id=tests.user_envs:Reach1D-v0"]
    rayexp_cli("collect", *args)
    rayexp_cli("train", *args)
    out = rayexp_cli("evaluate", *args).stdout
    assert "| bc |" in out
    run = tmp_path / "user"
    data = pd.read_parquet(run / "data" / "episodes.parquet")
    assert len(data) == 12 and (data["length"] == 30).all()  # the user's env's own episodes, in the store
    df = pd.read_parquet(run / "eval.parquet")
    assert len(df) == 2 and (df["length"] == 30).all() and df["success"].notna().all()
    assert "tests.user_envs:Reach1D-v0" in (run / "config.yaml").read_text()


def test_a_users_family_from_config_collects_with_its_own_source_and_adds_its_report(tmp_path):
    """``env.family`` names a user's Family: its data source and its report section run without editing rayexp."""
    args = ["--run-dir", str(tmp_path), *[a for a in TINY if not a.startswith(("name=", "collect."))], "name=fam",
            "env.id=tests.user_envs:Reach1D-v0", "env.family=tests.user_envs:FAMILY", "collect.source=scripted",
            "collect.episodes=6"]
    rayexp_cli("collect", *args)
    data = pd.read_parquet(tmp_path / "fam" / "data" / "episodes.parquet")
    assert len(data) == 6 and (data["policy"] == "scripted").all()
    rayexp_cli("train", *args)
    rayexp_cli("evaluate", *args)
    report = rayexp_cli("report", str(tmp_path / "fam")).stdout
    assert "## Reach1D family" in report and "1 trained stage(s)" in report and "| bc |" in report
