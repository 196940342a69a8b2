"""Start or join Ray: a local Ray on this machine by default, a cluster with ``--address``."""
from __future__ import annotations

import logging
import os

from rayexp.config import RayConfig
from rayexp.errors import RayexpError


def init_ray(cfg: RayConfig) -> None:
    import ray

    if ray.is_initialized():
        return
    # Workers import rayexp/algorithms/envs from the installed package; keep them quiet and light.
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    # Ray starts its workers at nice 15; a local Ray's workers are rayexp's own work, so run them at the
    # driver's priority: on a shared machine niced workers lose the cores to everyone else's processes.
    os.environ.setdefault("RAY_worker_niceness", "0")
    from rayexp.console import mute_stderr, quiet_warnings, verbose

    # Default: workers' output stays in Ray's log folder and Ray's own warnings are hidden (rayexp.console);
    # --verbose forwards everything, as Ray does by default.
    kwargs = dict(include_dashboard=cfg.dashboard, logging_level=logging.WARNING if verbose() else logging.ERROR,
                  log_to_driver=verbose())
    if cfg.dashboard:
        kwargs["dashboard_host"] = "127.0.0.1"
    if not verbose():  # the driver's C++ core worker logs to fd 2 ('Actor ... constructor arguments in the object store')
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        with mute_stderr():  # ... and announces that log level there once, during ray.init
            if cfg.address:
                ray.init(address=cfg.address, **({} if cfg.address.startswith("ray://") else kwargs))
            else:
                ray.init(num_cpus=cfg.num_cpus or os.cpu_count(), **kwargs)
        quiet_warnings()  # ray.init configures Ray's loggers; set them again
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RayexpError(f"cannot connect to Ray at ray.address={cfg.address!r} ({str(e).splitlines()[0]}); "
                          "start one with `ray start --head` or leave --address out for a local Ray") from None


def num_cpus() -> int:
    import ray

    return int(ray.cluster_resources().get("CPU", 1))


def run_round_robin(actors: list, jobs: list[tuple], desc: str) -> list:
    """Job k's arguments go to ``actors[k mod n].run``; returns the results in finishing order, with a progress
    bar, and kills the actors afterwards. Callers sort the rows, so the actor count never changes the result."""
    import ray
    from tqdm.auto import tqdm

    pending = [actors[k % len(actors)].run.remote(*job) for k, job in enumerate(jobs)]
    rows = []
    with tqdm(total=len(pending), desc=desc, leave=False) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            rows += ray.get(done)
            bar.update(len(done))
    for a in actors:
        ray.kill(a)
    return rows
