"""The one evaluation engine every evaluator runs on (the core's episodes, Maze2D plans, roundabout traffic, SMAX
rounds): a pool of Ray actors with jobs dealt round-robin, and one per-episode seed rule. A job's seed depends
only on its place in the evaluation, and callers sort the rows, so the actor count never changes a number."""
from __future__ import annotations

from typing import Any

SEED_STRIDE = 100_000
"""Evaluation seed k's episodes start ``SEED_STRIDE * k`` after the base seed (more episodes than this per seed
would overlap the next seed's)."""


def episode_seed(base: int, seed_index: int, episode: int) -> int:
    """The env seed of episode ``episode`` of evaluation seed ``seed_index``."""
    return base + SEED_STRIDE * seed_index + episode


def run_on_actors(worker_cls: type, args: tuple, jobs: list[tuple], num_actors: int, desc: str,
                  num_gpus: float = 0.0, kwargs: dict[str, Any] | None = None) -> list[dict]:
    """``worker_cls(*args, **kwargs)`` on ``num_actors`` Ray actors (one CPU each); job k's arguments go to
    ``actors[k mod n].run``, which returns a row or a list of rows. Rows come back in finishing order, with a
    progress bar; the actors are killed afterwards, and the jobs left are cancelled when one fails."""
    import ray
    from tqdm.auto import tqdm

    remote = ray.remote(num_cpus=1, num_gpus=num_gpus)(worker_cls)
    # an actor the cluster has no CPU for never starts, and the jobs dealt to it would wait forever
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = [remote.remote(*args, **(kwargs or {})) for _ in range(max(1, min(num_actors, len(jobs), cpus)))]
    pending = [actors[k % len(actors)].run.remote(*job) for k, job in enumerate(jobs)]
    rows: list[dict] = []
    try:
        with tqdm(total=len(pending), desc=desc, leave=False) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for out in ray.get(done):
                    rows += out if isinstance(out, list) else [out]
                bar.update(len(done))
    finally:  # also when a job failed: the others are cancelled, so no unretrieved error is printed later
        for ref in pending:
            ray.cancel(ref)
        for a in actors:
            ray.kill(a)
    return rows
