"""`rayexp sweep`: a 4-trial grid on the local Ray gives the tidy table (with a crashed trial retried),
an interrupted sweep resumes without re-running finished trials, bad sweep YAMLs are refused up front."""
from __future__ import annotations

import pandas as pd
import pytest

from rayexp.bench.sweep import TINY_SWEEP, make_tiny_run
from rayexp.errors import ConfigError
from tests.conftest import rayexp_cli

EPOCHS = 4  # sweep_tiny: train.steps 40, steps_per_epoch 10


@pytest.fixture(scope="module")
def tiny_from_run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("sweep") / "tiny_run")


def _last(table: pd.DataFrame) -> pd.DataFrame:
    return table.groupby("trial_id").tail(1).set_index("trial_id")


def test_grid_sweep_writes_tidy_table_and_retries_a_crash(tiny_from_run, tmp_path, ray_session, monkeypatch):
    from rayexp.reports.run import report
    from rayexp.sweeps.run import run_sweep

    monkeypatch.setenv("RAYEXP_SWEEP_CRASH_ONCE", f"2:{tmp_path}")  # one trial crashes once at epoch 2
    table = run_sweep(TINY_SWEEP, [f"from_run={tiny_from_run}", f"storage_path={tmp_path / 'sweeps'}"])
    folder = tmp_path / "sweeps" / "sweep_tiny"
    for ext in ("parquet", "csv"):
        assert (folder / f"results.{ext}").is_file()
    on_disk = pd.read_parquet(folder / "results.parquet")
    assert len(pd.read_csv(folder / "results.csv")) == len(on_disk) == 4 * EPOCHS
    last = _last(on_disk)
    assert len(last) == 4 and set(last["status"]) == {"TERMINATED"}
    configs = set(zip(last["config/train.lr"], last["config/models.bc.method.hidden"]))
    assert configs == {(lr, h) for lr in (0.001, 0.003) for h in ("[16]", "[32, 32]")}
    for col in ("loss", "score", "return", "final_score"):
        assert on_disk[col].notna().all(), col
    assert (on_disk.groupby("trial_id")["epoch"].apply(list) == [list(range(1, EPOCHS + 1))] * 4).all()
    assert len(list(tmp_path.glob("crashed_*"))) == 1  # the crash happened, and the retry finished the trial
    text = report(folder)
    assert "| train.lr |" in text.replace("models.bc.method.hidden | ", "") and (folder / "curves.png").stat().st_size > 1000
    assert table.attrs["expected_trials"] == 4


def test_interrupted_sweep_resumes_without_rerunning_finished_trials(tiny_from_run, tmp_path, ray_session):
    from rayexp.sweeps.run import run_sweep

    args = [f"from_run={tiny_from_run}", f"storage_path={tmp_path}", "max_concurrent=1", "base.train.steps=20"]
    first = run_sweep(TINY_SWEEP, args, stop_after=2)  # interrupts the driver as Ctrl-C would
    before = _last(first)
    finished = before.index[before["status"] == "TERMINATED"]
    assert 2 <= len(finished) < 4, before
    second = run_sweep(TINY_SWEEP, args)
    after = pd.read_parquet(tmp_path / "sweep_tiny" / "results.parquet")
    last = _last(after)
    assert len(last) == 4 and set(last["status"]) == {"TERMINATED"} and len(second) == len(after)
    for trial in finished:  # kept as they were: same report timestamps, no epoch run twice
        rows = after[after["trial_id"] == trial]
        assert rows["epoch"].tolist() == [1, 2]
        assert rows["timestamp"].iloc[-1] == before.loc[trial, "timestamp"]


@pytest.mark.parametrize("override, message", [
    ("stage=teacher", "stage: unknown stage 'teacher'; the base defines: bc, bc-eval"),
    ("space={}", "space is empty"),
    ("metric=accuracy", "metric: trials do not report 'accuracy'; they report: loss, grad_norm, score"),
    ("space={train.lrr: {grid: [1]}}", "space.train.lrr = 1: train.lrr: unknown key"),
    ("bogus=1", "bogus: unknown key (allowed: name, from_run"),
])
def test_bad_sweep_yaml_is_refused_before_anything_starts(tiny_from_run, tmp_path, override, message):
    from rayexp.sweeps.config import read_sweep

    with pytest.raises(ConfigError, match=None) as err:
        read_sweep(TINY_SWEEP, [f"from_run={tiny_from_run}", override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_refuses_bad_sweep_with_one_line(tiny_from_run, tmp_path):
    proc = rayexp_cli("sweep", str(TINY_SWEEP), f"from_run={tiny_from_run}", f"storage_path={tmp_path}",
                      "stage=planner-eval", check=False, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {TINY_SWEEP}: stage: unknown stage 'planner-eval'; the base defines: bc, bc-eval"]
    assert not (tmp_path / "sweep_tiny").exists()


@pytest.mark.parametrize("name", ["sweep_reward_weight", "sweep_loss_weights_optuna", "sweep_cfg_scale", "sweep_ooc_split"])
def test_shipped_sweeps_pass_every_check_but_their_missing_run(name, tmp_path):
    """Schema, base, stage, metric and every space value are valid; only the from_run (not made here) is missing."""
    from rayexp.sweeps.config import read_sweep

    with pytest.raises(ConfigError, match="from_run: run folder .* does not exist"):
        read_sweep(TINY_SWEEP.parent / f"{name}.yaml", [f"from_run={tmp_path / 'absent'}"])
