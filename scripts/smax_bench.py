"""Measure the SMAX PettingZoo wrapper: steps/s (one env, random masked actions) and warm-up time of a
fresh process with a cold and a warm JAX persistent compilation cache.

    python scripts/smax_bench.py --units 3 5 --steps 2000
Prints one JSON line per measurement (wall and CPU seconds; on a shared machine trust CPU more).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time


def warmup(n_units: int, cache_dir: str) -> dict:
    """Import, build, reset and take 2 steps; the time a fresh Ray worker waits before its first real step."""
    w0, c0 = time.perf_counter(), time.process_time()
    from envs.smax import STOP, SMAXParallelEnv

    env = SMAXParallelEnv(n_units, seed=0, cache_dir=cache_dir)
    env.reset(seed=0)
    for _ in range(2):
        env.step({a: STOP for a in env.agents})
    return {"wall_s": round(time.perf_counter() - w0, 2), "cpu_s": round(time.process_time() - c0, 2)}


def steps_per_second(n_units: int, steps: int, cache_dir: str) -> dict:
    import numpy as np

    from envs.smax import SMAXParallelEnv

    env, rng = SMAXParallelEnv(n_units, seed=0, cache_dir=cache_dir), np.random.default_rng(0)
    _, infos = env.reset(seed=0)
    env.step({a: int(rng.choice(np.flatnonzero(infos[a]["action_mask"]))) for a in env.agents})  # compile
    _, infos = env.reset(seed=1)
    w0, c0, episodes = time.perf_counter(), time.process_time(), 0
    for _ in range(steps):
        if not env.agents:
            _, infos = env.reset()
            episodes += 1
        acts = {a: int(rng.choice(np.flatnonzero(infos[a]["action_mask"]))) for a in env.agents}
        _, _, _, _, infos = env.step(acts)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"steps": steps, "episodes": episodes, "steps_per_s_wall": round(steps / wall),
            "steps_per_s_cpu": round(steps / cpu), "obs": env.observation_space("ally_0").shape[0],
            "state": env.state_space.shape[0], "actions": int(env.action_space("ally_0").n)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--units", type=int, nargs="+", default=[3, 5])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--child", nargs=2, metavar=("N_UNITS", "CACHE_DIR"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(warmup(int(args.child[0]), args.child[1])))
        return
    for n in args.units:
        with tempfile.TemporaryDirectory() as cache:
            for label in ("cold cache", "warm cache"):
                out = subprocess.run([sys.executable, __file__, "--child", str(n), cache], capture_output=True,
                                     text=True, check=True).stdout.strip().splitlines()[-1]
                print(json.dumps({"units": f"{n}v{n}", "warmup": label, **json.loads(out)}), flush=True)
            print(json.dumps({"units": f"{n}v{n}", **steps_per_second(n, args.steps, cache)}), flush=True)


if __name__ == "__main__":
    main()
