"""Start or join Ray: a local Ray on this machine by default, a cluster with ``--address``."""
from __future__ import annotations

import logging
import os

from rayexp.config import RayConfig
from rayexp.errors import ConfigError, RayexpError


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
    if cfg.address and cfg.address != "auto":
        check_reachable(cfg.address)
    if os.environ.get("RAYEXP_NO_RAY") == "1":  # set by the test suite's unit tier (tests/conftest.py)
        raise RuntimeError("RAYEXP_NO_RAY=1: this process may not start or join Ray (a unit test; mark it "
                           "@pytest.mark.ray, tests/conftest.py)")
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


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast, naming the address, when nothing accepts a TCP connection at ``host:port`` (or ``ray://host:port``):
    ``ray.init`` itself keeps retrying such an address for minutes."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayexpError(f"ray.address={address!r} is not 'auto', HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise RayexpError(f"cannot reach a Ray cluster at ray.address={address!r} ({e.strerror or e}); start one with "
                          "`ray start --head` or leave --address out for a local Ray") from None


def num_cpus() -> int:
    import ray

    return int(ray.cluster_resources().get("CPU", 1))


def require_gpus(key: str, needed: float) -> None:
    """Refuse, in the driver and before any work, a config asking for more GPUs than the Ray cluster has (else Ray
    would wait for them forever, or a job would silently run on CPUs)."""
    import ray

    have = ray.cluster_resources().get("GPU", 0.0)
    if needed > 0 and have < needed:
        raise ConfigError(f"{key} needs {needed:g} GPU(s) but the Ray cluster has {have:g}; "
                          f"join a cluster with GPU nodes (--address) or turn {key.split(' ')[0]} off")


def gpu_supports_bf16() -> tuple[str, bool]:
    """(device name, native bf16 support) of a GPU of the cluster, probed by a one-GPU Ray task."""
    import ray

    def probe() -> tuple[str, bool]:
        import torch

        return torch.cuda.get_device_name(), torch.cuda.is_bf16_supported(including_emulation=False)

    return ray.get(ray.remote(num_gpus=1, num_cpus=0)(probe).remote())
