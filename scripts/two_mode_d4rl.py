"""Write a D4RL-layout hdf5 of InvertedPendulum-v5 episodes from two action modes, only one rewarded
(``envs/pendulum_modes.py``: a stabilising controller, and the same controller pushed until the pole falls).

    python scripts/two_mode_d4rl.py OUT.hdf5 [--episodes 1000] [--steps 20] [--bad-fraction 0.95] [--seed 0]
    rayexp data import-d4rl OUT.hdf5 runs/two_mode/data --env-id InvertedPendulum-v5
"""
from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np

from envs.pendulum_modes import two_mode_episodes

KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--bad-fraction", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    episodes = two_mode_episodes(a.episodes, a.steps, a.seed, a.bad_fraction)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_name(f".{a.out.name}.tmp")
    with h5py.File(tmp, "w") as f:
        for k in KEYS:
            f[k] = np.concatenate([ep[k] for ep in episodes])
    tmp.replace(a.out)
    print(f"wrote {a.out}: {a.episodes} episodes, {sum(len(ep['rewards']) for ep in episodes)} steps")


if __name__ == "__main__":
    main()
