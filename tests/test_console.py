"""What a person reads: the quickstart's console at default verbosity (a screen, not 1,300 lines of worker progress
bars and Ray warnings), with tracking on; and `seeds: [...]` running seeds in parallel with a report over them."""
from __future__ import annotations

import json

import pytest

from rayexp.console import duration
from tests.conftest import rayexp_cli
from tests.test_tracking import read_mlflow, read_tensorboard

NETS = "unet: {step_embed_dim: 16, down_dims: [16, 32]}"
TINY_QUICKSTART = [  # the quickstart preset with every budget shrunk: same stages (teacher -> student), minutes
    "expert.iterations=2", "expert.train_batch_size=500", "expert.minibatch_size=250", "expert.num_epochs=2",
    "collect.episodes=12", "train.steps=60", "train.checkpoint_every=30", "train.log_every=10",
    f"models={{teacher: {{method: {{name: edm_teacher, {NETS}}}}}, ctd: {{method: {{name: ctm_student, reward_weight: 0.0, "
    f"solver_steps_max: 2, {NETS}}}, train: {{batch_size: 32}}}}}}",
    "evaluate.episodes=2", "evaluate.models=[teacher, ctd]",
]
RAY_NOISE = ("PlacementGroupCleaner", "PreemptionWatcher", "gputil", "DeprecationWarning", "new API stack",
             "RayTrainWorker", "TrainController", "core_worker", "Token authentication", "it/s]")


def test_durations_read_as_a_person_says_them():
    assert duration(3.24) == "3.2 s" and duration(75) == "1 min 15 s" and duration(3700) == "1 h 1 min"


@pytest.mark.slow
def test_quickstart_console_fits_a_screen_and_every_stage_reaches_the_trackers(tmp_path):
    pytest.importorskip("mlflow")
    proc = rayexp_cli("quickstart", "--run-dir", str(tmp_path), "name=qs", *TINY_QUICKSTART,
                      "tracking.backends=[mlflow, tensorboard]", timeout=900)
    lines = (proc.stdout + proc.stderr).splitlines()  # \r redraws of a bar are not lines; there are none here anyway
    assert len(lines) < 60, "\n".join(lines)
    text = "\n".join(lines)
    assert not [w for w in RAY_NOISE if w in text], text
    run = tmp_path / "qs"
    for stage in ("teacher", "ctd"):  # one line per stage: what, how long, where
        assert any(ln.startswith(f"train {stage}: 60 steps") and f"-> {run / 'models' / stage}.pt" in ln for ln in lines), text
    assert any(ln.startswith("collect: 12 episodes") for ln in lines) and any(ln.startswith("evaluate: 2 methods") for ln in lines)

    runs = read_mlflow((run / "mlruns").as_uri(), "qs")
    assert set(runs) == {"train/teacher", "train/ctd", "evaluate"}
    params, tags, history, _ = runs["train/ctd"]
    assert [s for s, _ in history["loss"]] == [10, 20, 30, 40, 50, 60] and params["models.ctd.method.name"] == "ctm_student"
    meta = json.loads((run / "data" / "meta.json").read_text())
    assert tags["dataset.source"] == meta["source"] and tags["dataset.episodes"] == "12" and len(tags["rayexp.commit"]) >= 7
    assert runs["evaluate"][2]["teacher/nfe"][0][1] > runs["evaluate"][2]["ctd/nfe"][0][1]
    assert len(read_tensorboard(run / "tensorboard" / "train_teacher")["train/teacher/loss"]) == 6


@pytest.mark.slow
def test_seeds_run_in_parallel_tasks_and_report_intervals(tmp_path):
    from tests.conftest import TINY

    proc = rayexp_cli("quickstart", "--run-dir", str(tmp_path), *TINY, "name=seeds", "seeds=[0, 1]", "evaluate.episodes=3", "evaluate.models=[]",
                      timeout=900)
    run = tmp_path / "seeds"
    for k in (0, 1):
        cfg = (run / f"seed_{k}" / "config.yaml").read_text()
        assert f"seed: {k}" in cfg and str(run / "data") in cfg  # the seed's own seeds, the run's one dataset
        assert (run / f"seed_{k}" / "eval.parquet").is_file() and (run / f"seed_{k}" / "models" / "bc.pt").is_file()
    assert not (run / "seed_0" / "data").exists()
    # parallel: with 2 CPUs each seed's trainer gets one, so both train at once (their checkpoint times overlap)
    spans = [sorted(p.name for p in (run / f"seed_{k}" / "ray_train" / "bc").glob("checkpoint_2*")) for k in (0, 1)]
    assert max(s[0] for s in spans) < min(s[-1] for s in spans), spans
    out = proc.stdout
    assert "# seeds: 2 seeds" in out and "IQM 95% CI" in out
    assert any(ln.startswith("| bc | 2 | 6 |") for ln in out.splitlines()), out  # 2 seeds, 3 episodes each
    assert (run / "seeds_intervals.png").is_file()
    assert len((proc.stdout + proc.stderr).splitlines()) < 40
