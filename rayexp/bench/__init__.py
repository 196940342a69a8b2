"""``rayexp bench``: every speed claim as a ratio of two sides measured in the same run.

Each benchmark is one function ``bench_<name>(quick, workdir) -> list[row]`` (rows: see
``rayexp.bench.common.make_row``). ``run_benchmarks`` runs the named ones in order, prints one
markdown table and writes ``<out>/<time>/bench.{md,csv}`` with the machine's cores, threads and versions.
"""
from __future__ import annotations

import csv
import math
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from rayexp.bench.compute import bench_data, bench_inference, bench_student_vs_forward
from rayexp.bench.sac import bench_sac
from rayexp.bench.scaling import bench_collect_scaling, bench_eval_scaling, bench_machine, bench_memory, bench_sweep_scaling
from rayexp.bench.smax import bench_smax
from rayexp.bench.train_overhead import bench_train_overhead

BENCHMARKS: dict[str, Callable[[bool, Path], list[dict]]] = {
    "inference": bench_inference,
    "student-vs-forward": bench_student_vs_forward,
    "train-overhead": bench_train_overhead,
    "data": bench_data,
    "machine": bench_machine,
    "eval-scaling": bench_eval_scaling,
    "collect-scaling": bench_collect_scaling,
    "sweep-scaling": bench_sweep_scaling,
    "memory": bench_memory,
    "smax": bench_smax,
    "sac": bench_sac,
}
COLUMNS = ["name", "what", "side_a", "spread_a", "side_b", "spread_b", "ratio", "target", "met", "unit", "repeats", "note"]


def machine_info() -> dict[str, str]:
    import numpy
    import ray
    import torch

    from rayexp.runs import git_commit

    return {"host": platform.node(), "cpu": _cpu_model(), "device": device_info(), "cores": str(os.cpu_count()),
            "usable cores": str(len(os.sched_getaffinity(0))), "torch threads": str(torch.get_num_threads()),
            "load average (1, 5, 15 min)": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            "python": platform.python_version(), "torch": torch.__version__, "ray": ray.__version__,
            "numpy": numpy.__version__, "commit": git_commit()}


def device_info() -> str:
    """What the compute rows ran on: 'cpu' or the GPUs torch sees (then the table also has '... gpu' rows)."""
    import torch

    if not torch.cuda.is_available():
        return "cpu (no CUDA device; no gpu rows)"
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"cpu + cuda: {', '.join(names)} (gpu rows on cuda:0, CUDA {torch.version.cuda})"


def _cpu_model() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def _fmt(x, spread=None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    text = f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return text if spread is None or math.isnan(spread) else f"{text} ± {spread:.2g}"


def format_markdown(rows: list[dict]) -> str:
    lines = ["| name | what | side A | side B | ratio A/B | target | met | unit | note |", "|---" * 9 + "|"]
    for r in rows:
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        lines.append(f"| {r['name']} | {r['what']} | {_fmt(r['side_a'], r['spread_a'])} | {_fmt(r['side_b'], r['spread_b'])} "
                     f"| {_fmt(r['ratio'])} | {r['target']} | {met} | {r['unit']} | {r['note']} |")
    return "\n".join(lines)


def write_outputs(rows: list[dict], info: dict[str, str], out_dir: Path, quick: bool) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    header = [f"# rayexp bench{' --quick' if quick else ''}, {time.strftime('%Y-%m-%d %H:%M:%S')}", ""]
    header += [f"- {k}: {v}" for k, v in info.items()]
    header += ["", "Medians over repeats; ± is half the range. Ratio = side A / side B of the medians.", ""]
    (out_dir / "bench.md").write_text("\n".join(header) + format_markdown(rows) + "\n")
    with open(out_dir / "bench.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS + list(info))
        writer.writeheader()
        writer.writerows({**r, **info} for r in rows)
    return out_dir


def run_benchmarks(names: list[str] | None = None, quick: bool = False, out_root: str | Path = "runs/bench",
                   echo: Callable[[str], None] = print) -> tuple[list[dict], Path]:
    """Run the named benchmarks (default: all, in table order); returns the rows and the output folder."""
    names = names or list(BENCHMARKS)
    workdir = Path(tempfile.mkdtemp(prefix="rayexp_bench_"))
    rows: list[dict] = []
    echo(f"[bench] device: {device_info()}")
    try:
        for name in names:
            t0 = time.perf_counter()
            new = BENCHMARKS[name](quick, workdir)
            rows += new
            echo(f"[bench] {name}: {len(new)} row(s) in {time.perf_counter() - t0:.0f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info = machine_info()
    out_dir = write_outputs(rows, info, Path(out_root) / time.strftime("%Y%m%d-%H%M%S"), quick)
    echo(format_markdown(rows))
    return rows, out_dir
