"""Roundabout sanity numbers: steps/s and the success rate of scripted egos per traffic composition.

    .venv/bin/python scripts/roundabout_check.py --policy lookahead --episodes 50 --traffic bicycle

Policies: ``idle`` / ``slower`` / ``faster`` repeat one meta-action; ``lookahead`` is a privileged competent
driver: it tries IDLE, SLOWER, FASTER, LANE_LEFT, LANE_RIGHT in turn on a copy of the simulator and takes the
first that stays crash-free for ``--depth`` steps (followed by SLOWER). If it succeeds on nearly every
episode, the traffic placement can be survived, and a learned expert has something to learn.
"""
from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np

from envs.registry import make_env

TRAFFIC = {"car": ("car",) * 4, "bicycle": ("bicycle",) * 4}
ACTIONS = {"LANE_LEFT": 0, "IDLE": 1, "LANE_RIGHT": 2, "FASTER": 3, "SLOWER": 4}
PREFERENCE = ("IDLE", "SLOWER", "FASTER", "LANE_LEFT", "LANE_RIGHT")


def lookahead_action(env, depth: int) -> int:
    base = env.unwrapped
    for name in PREFERENCE:
        sim = copy.deepcopy(base)
        crashed = False
        for k in range(depth):
            sim.step(ACTIONS[name] if k == 0 else ACTIONS["SLOWER"])
            if sim.vehicle.crashed:
                crashed = True
                break
        if not crashed:
            return ACTIONS[name]
    return ACTIONS["SLOWER"]


def run(policy: str, traffic: str, episodes: int, seed: int, depth: int, slots: dict | None, pandas: bool) -> dict:
    env = make_env("roundabout-ooc-test" if traffic == "mixed" else "roundabout-ooc", seed=seed,
                   numpy_observation=not pandas, **({"slots": slots} if slots else {}))
    rng = np.random.default_rng(seed)
    successes, returns, steps, t0 = 0, [], 0, time.process_time()
    for ep in range(episodes):
        options = {"composition": TRAFFIC[traffic]} if traffic in TRAFFIC else None
        env.reset(seed=int(rng.integers(2**31)), options=options)
        done, ret, info = False, 0.0, {}
        while not done:
            action = lookahead_action(env, depth) if policy == "lookahead" else ACTIONS[policy.upper()]
            _, r, term, trunc, info = env.step(action)
            ret, steps, done = ret + r, steps + 1, term or trunc
        successes += bool(info["is_success"])
        returns.append(ret)
    cpu = time.process_time() - t0  # CPU seconds: the machine is shared, wall time would measure the neighbours
    return {"policy": policy, "traffic": traffic, "episodes": episodes, "success": successes / episodes,
            "mean_return": round(float(np.mean(returns)), 3), "observation": "pandas" if pandas else "numpy",
            "steps_per_cpu_s": round(steps / cpu, 1) if policy != "lookahead" else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", default="idle", choices=["idle", "slower", "faster", "lookahead"])
    p.add_argument("--traffic", default="bicycle", choices=["car", "bicycle", "mixed"])
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--pandas", action="store_true", help="highway-env's pandas observation instead of the numpy one")
    p.add_argument("--slots", default=None, help="JSON {car: [[lane, s], ...], bicycle: [...]} overriding envs.roundabout.SLOTS")
    a = p.parse_args()
    print(json.dumps(run(a.policy, a.traffic, a.episodes, a.seed, a.depth, json.loads(a.slots) if a.slots else None,
                         a.pandas)))


if __name__ == "__main__":
    main()
