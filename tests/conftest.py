"""Shared fixtures (one local Ray per test session, one tiny collected run reused by several tests) and the tiers.

Tiers (markers): ``ray`` is set here on every test using the ``ray_session`` or ``tiny_run`` fixture (directly or
through another fixture) and written by hand on one whose ``rayexp`` subprocess starts Ray; ``training`` (trains a
model for about a minute) and ``slow`` (end-to-end runs) are written by hand; ``unit`` is set here on every other
test. A unit test cannot start Ray: ``ray.init`` raises in-process, and its subprocesses inherit ``RAYEXP_NO_RAY=1``
(``rayexp.cluster.init_ray`` refuses) and ``RAY_ENABLE_AUTO_CONNECT=0``; when every selected test is a unit test
(``-m unit``) that holds for the whole session, session fixtures included. ``--reverse`` runs the selected tests in
reverse order: the suite must not depend on its order."""
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


RAY_FIXTURES = {"ray_session", "tiny_run"}
NOT_UNIT = ("ray", "training", "slow")
NO_RAY = "RAYEXP_NO_RAY"  # read by rayexp.cluster.init_ray


def pytest_addoption(parser):
    parser.addoption("--reverse", action="store_true", help="run the selected tests in reverse order")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        if RAY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("ray")
        if not any(item.get_closest_marker(m) for m in NOT_UNIT):
            item.add_marker("unit")
    if config.getoption("--reverse"):
        items.reverse()


def _refuse_ray(*args, **kwargs):
    raise RuntimeError("a unit test started Ray (ray.init): mark it @pytest.mark.ray or use the ray_session fixture "
                       "(tests/conftest.py)")


def forbid_ray(setenv, setattr) -> None:
    """No Ray start from here on (``setenv`` / ``setattr``: the monkeypatch's for one test, the builtins for a run)."""
    import ray

    setenv(NO_RAY, "1")
    setenv("RAY_ENABLE_AUTO_CONNECT", "0")
    setattr(ray, "init", _refuse_ray)


def pytest_collection_finish(session):
    if session.items and all(item.get_closest_marker("unit") for item in session.items):
        forbid_ray(os.environ.__setitem__, setattr)  # the whole run: session fixtures too


@pytest.fixture(autouse=True)
def _unit_tests_start_no_ray(request, monkeypatch):
    if request.node.get_closest_marker("unit") is not None:
        forbid_ray(monkeypatch.setenv, monkeypatch.setattr)


def rayexp_cli(*args: str, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run the installed ``rayexp`` CLI in a subprocess, as a user would."""
    env = {**os.environ, "RAY_DEDUP_LOGS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "rayexp.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)
    if NO_RAY in proc.stderr:
        raise AssertionError(f"rayexp {' '.join(args)} started Ray in a unit test; mark the test @pytest.mark.ray:\n"
                             f"{proc.stderr[-1500:]}")
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
