"""Time export_minari and import_minari on Hopper-shaped random data (obs 11, act 3, 1000-step episodes).

    python scripts/bench_minari.py --steps 1000000 [--format hdf5|arrow]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from rayexp.data.d4rl import d4rl_ref_scores
from rayexp.data.minari import export_minari, import_minari
from rayexp.data.store import DatasetMeta, Episode, write_dataset


def random_store(path: Path, steps: int, ep_len: int = 1000, seed: int = 0):
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(max(1, steps // ep_len)):
        T = min(ep_len, steps - i * ep_len)
        terminals = np.zeros(T, bool)
        terminals[-1] = i % 2 == 0
        episodes.append(Episode(rng.standard_normal((T, 11), np.float32), rng.uniform(-1, 1, (T, 3)).astype(np.float32),
                                rng.standard_normal(T).astype(np.float32), terminals, ~terminals & (np.arange(T) == T - 1),
                                final_observation=rng.standard_normal(11).astype(np.float32), seed=i, policy="random"))
    lo, hi = d4rl_ref_scores("hopper")
    meta = DatasetMeta("Hopper-v5", 11, 3, ref_min_score=lo, ref_max_score=hi, source="bench-random")
    return write_dataset(path, episodes, meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--format", default="hdf5", choices=["hdf5", "arrow"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = random_store(tmp / "store", args.steps)
        t0 = time.perf_counter()
        export_minari(store, "bench/hopper/random-v0", tmp / "minari", data_format=args.format)
        t1 = time.perf_counter()
        back = import_minari(str(tmp / "minari" / "bench/hopper/random-v0"), tmp / "back")
        t2 = time.perf_counter()
        assert back.num_steps == store.num_steps
        n = store.num_steps
        print(f"{args.format}: {n} steps, {len(store)} episodes")
        print(f"export: {t1 - t0:.2f} s, {n / (t1 - t0):,.0f} steps/s")
        print(f"import: {t2 - t1:.2f} s, {n / (t2 - t1):,.0f} steps/s")


if __name__ == "__main__":
    main()
