"""A tiny ``from_run`` folder for sweeps (tests, the benchmark, trying the CLI) and the concurrency benchmark."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
TINY_SWEEP = REPO / "tune_configs" / "sweep_tiny.yaml"


def make_tiny_run(path: str | Path, episodes: int = 8, length: int = 40, seed: int = 0) -> Path:
    """A run folder with data/ (random InvertedPendulum-shaped episodes: obs 4, action 1), models/ and config.yaml."""
    from rayexp.data.store import DatasetMeta, Episode, write_dataset

    path = Path(path)
    if (path / "data" / "meta.json").is_file():
        return path
    rng = np.random.default_rng(seed)
    eps = []
    for i in range(episodes):
        obs = rng.normal(0, 0.1, (length, 4)).astype(np.float32)
        act = np.clip(-2.0 * obs[:, 1:2] + rng.normal(0, 0.05, (length, 1)), -3, 3).astype(np.float32)
        done = np.zeros(length, bool)
        done[-1] = True
        eps.append(Episode(obs, act, np.ones(length, np.float32), np.zeros(length, bool), done, seed=i, policy="synthetic"))
    write_dataset(path / "data", eps, DatasetMeta(env_id="InvertedPendulum-v5", obs_dim=4, act_dim=1, source="synthetic"))
    (path / "models").mkdir(exist_ok=True)
    base = yaml.safe_load(TINY_SWEEP.read_text())["base"]
    (path / "config.yaml").write_text(yaml.safe_dump({**base, "name": path.name}, sort_keys=False))
    return path


def run_sweep_bench(quick: bool = True, root: str | Path | None = None) -> dict:
    """The same 4-trial grid (sweep_tiny.yaml) with max_concurrent 1 and 2 on a local 2-CPU Ray; best wall times and ratio."""
    import os
    import tempfile

    from rayexp.cluster import init_ray
    from rayexp.config import RayConfig
    from rayexp.sweeps.run import run_sweep

    init_ray(RayConfig(num_cpus=2))  # started before the clock, as both runs share it
    root = Path(root or tempfile.mkdtemp(prefix="rayexp_bench_sweep_"))
    run = make_tiny_run(root / "tiny_run")
    steps, per_epoch, batch = (40, 10, 32) if quick else (2000, 500, 256)  # full: training dominates each trial
    out = {"trials": 4, "train_steps": steps, "batch_size": batch, "load_before": os.getloadavg()[0]}
    times: dict[int, list[float]] = {1: [], 2: []}
    for i, conc in enumerate((1, 2) if quick else (1, 2, 2, 1)):  # both orders: the first run warms caches
        t0 = time.perf_counter()
        table = run_sweep(TINY_SWEEP, [f"from_run={run}", f"storage_path={root / 'sweeps'}", f"name=conc{conc}_{i}",
                                       f"max_concurrent={conc}", f"base.train.steps={steps}",
                                       f"steps_per_epoch={per_epoch}", f"base.train.batch_size={batch}"])
        times[conc].append(round(time.perf_counter() - t0, 2))
        assert table["trial_id"].nunique() == 4, table
    out["load_after"] = os.getloadavg()[0]
    for conc, ts in times.items():
        out[f"wall_s_concurrency_{conc}"] = min(ts)
        out[f"all_wall_s_concurrency_{conc}"] = ts
    out["ratio_1_over_2"] = round(out["wall_s_concurrency_1"] / out["wall_s_concurrency_2"], 2)
    return out
