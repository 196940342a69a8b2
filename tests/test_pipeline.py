"""The foundation slice end to end through the CLI: collect -> train (interrupted, resumed) -> evaluate -> report."""
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from rayexp.data.store import EpisodeStore
from tests.conftest import REPO, TINY, rayexp_cli

pytestmark = pytest.mark.slow


def test_collect_writes_a_valid_store_from_two_policies(tiny_run):
    store = EpisodeStore(tiny_run / "data")
    s = store.summary()
    assert s["episodes"] == 12 and s["env_id"] == "InvertedPendulum-v5"
    assert s["policies"] == ["ppo-iter1", "ppo-iter2"]
    assert (tiny_run / "expert" / "iteration.txt").read_text() == "2"
    out = rayexp_cli("data", "inspect", str(tiny_run / "data")).stdout
    assert "episodes: 12" in out


def test_training_interrupted_and_resumed_continues_from_checkpoint(tiny_run):
    args = ["--run-dir", str(tiny_run.parent), *TINY, "train.steps=300", "train.checkpoint_every=100",
            "models.bc.method.hidden=[512,512,512]"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "rayexp.cli", "train", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    storage = tiny_run / "ray_train" / "bc"
    deadline = time.time() + 300
    while time.time() < deadline and not list(storage.glob("checkpoint_*/step.txt")):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process tree, like a crashed driver
    proc.wait()
    assert list(storage.glob("checkpoint_*")), "a checkpoint was written before the interruption"
    model_file = tiny_run / "models" / "bc.pt"
    assert not model_file.exists(), "interrupted before the end"

    rayexp_cli("train", *args)
    ckpt = torch.load(model_file, weights_only=True)
    assert ckpt["step"] == 300
    starts = ckpt["starts"]
    assert len(starts) == 2 and starts[0] == 0 and starts[1] > 0 and starts[1] % 100 == 0, starts
    metrics = pd.read_parquet(tiny_run / "metrics.parquet")
    steps = metrics[metrics.stage == "bc"]["step"].tolist()
    assert steps == sorted(set(steps)) and steps[-1] == 300, "one history, no step lost or repeated"


def test_evaluate_and_report(tiny_run):
    args = ["--run-dir", str(tiny_run.parent), *TINY, "train.steps=300", "train.checkpoint_every=100",
            "models.bc.method.hidden=[512,512,512]"]
    rayexp_cli("train", *args)  # a no-op after the resume test; trains bc when this test runs first or alone
    out = rayexp_cli("evaluate", *args).stdout
    assert "| bc |" in out
    df = pd.read_parquet(tiny_run / "eval.parquet")
    assert len(df) == 2 and df["return"].gt(0).all()
    rep = rayexp_cli("report", str(tiny_run)).stdout
    assert "return_mean" in rep and (tiny_run / "eval.png").stat().st_size > 1000
    assert (tiny_run / "eval.csv").exists() and (tiny_run / "training.png").exists()
