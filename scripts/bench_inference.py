"""Per-action-chunk latency and NFE of DDPM(100), DDIM(10), the EDM teacher and the CTM student (1-4 steps).

    python scripts/bench_inference.py [--quick] [--threads N] [--batch-sizes 1 64]
"""
from __future__ import annotations

import argparse

import torch

from algorithms.bench import format_table, run_inference_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny network and few repeats (smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64], help="policy batch sizes")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, CPU, torch.set_num_threads = {torch.get_num_threads()}, random weights")
    rows = run_inference_bench(quick=args.quick, batch_sizes=tuple(args.batch_sizes))
    print(format_table(rows))
    by = {(r["method"], r["batch"]): r["ms"] for r in rows}
    for batch in sorted({r["batch"] for r in rows}):
        teacher = next(v for (m, b), v in by.items() if b == batch and m.startswith("EDM teacher"))
        print(f"batch {batch}: teacher / student(1) = {teacher / by[('student 1-step', batch)]:.0f}x")


if __name__ == "__main__":
    main()
