"""Sweep wall time with max_concurrent 1 vs 2: the same 4-trial grid (tune_configs/sweep_tiny.yaml) on a local Ray.

    python scripts/bench_sweep.py [--quick]

The machine may be shared: the load average before and after is printed beside the times.
"""
from __future__ import annotations

import argparse
import json

from rayexp.bench_sweep import run_sweep_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 training steps of batch 32 per trial (instead of 2000 of 256), one run each")
    args = parser.parse_args()
    out = run_sweep_bench(quick=args.quick)
    print(json.dumps(out, indent=1))
    print(f"4 trials: concurrency 1 {out['wall_s_concurrency_1']} s, concurrency 2 {out['wall_s_concurrency_2']} s, "
          f"ratio {out['ratio_1_over_2']} (load {out['load_before']:.1f} -> {out['load_after']:.1f})")


if __name__ == "__main__":
    main()
