"""What every benchmark shares: repeated timing, one result row, and the small fixtures (dataset, config).

A row compares side A with side B measured in the same run: ``ratio = A / B`` of the medians, and
``met`` says whether the ratio meets the target (None where the row only prints numbers).
"""
from __future__ import annotations

import math
import operator
import statistics
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent.parent
QUICKSTART = REPO / "tune_configs" / "quickstart.yaml"
_OPS = {">=": operator.ge, "<=": operator.le}


def repeat_rate(fn: Callable[[], int], repeats: int) -> list[float]:
    """Items per second of each of ``repeats`` calls; ``fn`` does one timed block and returns how many items it did."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t0))
    return rates


def spread(values: list[float]) -> float:
    """Half the range (max - min) / 2: with 3-7 repeats a plainer, more honest spread than a standard deviation."""
    return (max(values) - min(values)) / 2 if len(values) > 1 else float("nan")


def make_row(name: str, what: str, a: list[float], b: list[float], unit: str, target: str | None = None,
             note: str = "") -> dict:
    """One table row from the repeated measurements of both sides. ``target`` is like ``'>= 1.7'``."""
    return summary_row(name, what, (statistics.median(a), spread(a), len(a)), (statistics.median(b), spread(b), len(b)),
                       unit, target, note)


def summary_row(name: str, what: str, a: tuple[float, float, int], b: tuple[float, float, int], unit: str,
                target: str | None = None, note: str = "") -> dict:
    """One table row from (median, spread, repeats) of each side."""
    ratio = a[0] / b[0]
    met = None
    if target is not None:
        op, value = target.split()
        met = bool(_OPS[op](ratio, float(value)))
    return {"name": name, "what": what, "side_a": a[0], "spread_a": a[1], "side_b": b[0], "spread_b": b[1],
            "ratio": ratio, "target": target or "printed", "met": met, "unit": unit, "repeats": min(a[2], b[2]),
            "note": note}


def finite(row: dict) -> bool:
    return all(isinstance(row[k], (int, float)) and math.isfinite(row[k]) for k in ("side_a", "side_b", "ratio"))


def bench_dataset(root: Path, quick: bool) -> Path:
    """A synthetic InvertedPendulum-shaped episode store (obs 4, action 1): 8x40 steps quick, 100x300 full."""
    from rayexp.bench.sweep import make_tiny_run

    episodes, length = (8, 40) if quick else (100, 300)
    return make_tiny_run(root / f"data_{episodes}x{length}", episodes=episodes, length=length) / "data"


def teacher_stage_config(dataset: Path, quick: bool, threads: int) -> dict:
    """The quickstart EDM teacher stage (``tune_configs/quickstart.yaml``) as the plain dict a worker gets.

    Quick: a tiny U-Net and batch 32. Full: the quickstart's network, horizon 4 and batch 256.
    """
    from rayexp.config import load_config
    from rayexp.train import stage_config

    overrides = ["models.teacher.method.unet.down_dims=[8,16]", "models.teacher.method.unet.step_embed_dim=8",
                 "train.batch_size=32"] if quick else []
    cfg = load_config(QUICKSTART, overrides)
    return stage_config(cfg, "teacher", dataset, dataset.parent / "models", threads)


def param_count(model) -> int:
    return sum(p.numel() for p in model.parameters())
