"""The one evaluation engine: rows do not depend on the actor count, a worker may return one row or several, a
failing job surfaces its error, and the seed rule keeps evaluation seeds apart."""
from __future__ import annotations

import pytest

from rayexp.engine import SEED_STRIDE, episode_seed, run_on_actors
from tests.engine_workers import NoisyWorker


def _sorted(rows):
    return sorted(rows, key=lambda r: (r["name"], r["episode"], r["part"]))


def test_rows_are_the_same_for_one_and_three_actors(ray_session):
    jobs = [(n, i, episode_seed(7, k, i)) for k, n in enumerate(["one", "pair"]) for i in range(4)]
    one = _sorted(run_on_actors(NoisyWorker, (2.0,), jobs, 1, "t"))
    three = _sorted(run_on_actors(NoisyWorker, (), jobs, 3, "t", kwargs={"scale": 2.0}))
    assert one == three and len(one) == 4 + 8  # a list of rows is flattened


def test_a_failing_job_raises_its_error(ray_session):
    with pytest.raises(Exception, match="boom in a worker"):
        run_on_actors(NoisyWorker, (1.0,), [("one", 0, 0), ("bad", 1, 1), ("one", 2, 2)], 2, "t")


def test_seed_rule_keeps_seeds_apart():
    seeds = {episode_seed(1000, k, i) for k in range(3) for i in range(500)}
    assert len(seeds) == 1500 and episode_seed(1000, 2, 5) == 1000 + 2 * SEED_STRIDE + 5
