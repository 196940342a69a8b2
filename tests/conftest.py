"""Shared fixtures: one local Ray per test session, and one tiny collected run reused by several tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TINY = [
    "name=tiny", "expert.iterations=2", "expert.train_batch_size=500", "expert.minibatch_size=250",
    "expert.num_epochs=2", "collect.episodes=12", "collect.snapshots=[0.5,1.0]",
    "data.action_horizon=4", "train.steps=60", "train.batch_size=64", "train.checkpoint_every=30",
    "train.log_every=10", "models={bc: {method: {name: bc, hidden: [32, 32]}}}",
    "evaluate.episodes=2", "evaluate.num_actors=2",
]


def rayexp_cli(*args: str, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run the installed ``rayexp`` CLI in a subprocess, as a user would."""
    env = {**os.environ, "RAY_DEDUP_LOGS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "rayexp.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"rayexp {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from rayexp.cluster import init_ray
    from rayexp.config import RayConfig

    init_ray(RayConfig(num_cpus=2))
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """`rayexp collect` of a tiny PPO expert on InvertedPendulum; returns the run folder."""
    run_dir = tmp_path_factory.mktemp("runs")
    rayexp_cli("collect", "--run-dir", str(run_dir), *TINY)
    return run_dir / "tiny"
