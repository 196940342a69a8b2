"""`rayexp bench --quick` runs every benchmark and each row has finite numbers (no timing is asserted)."""
import math

import pandas as pd
import pytest

from rayexp.bench import BENCHMARKS
from tests.conftest import rayexp_cli


@pytest.mark.ray  # the benchmarks start a local Ray in the subprocess
def test_bench_quick_every_row_finite(tmp_path):
    proc = rayexp_cli("bench", "--quick", "--out", str(tmp_path), timeout=600)
    (out,) = tmp_path.iterdir()
    table = pd.read_csv(out / "bench.csv")
    assert {n.split()[0] for n in table["name"]} == set(BENCHMARKS)
    for _, row in table.iterrows():
        assert all(math.isfinite(row[k]) for k in ("side_a", "side_b", "ratio")), row.to_dict()
    assert "| eval-scaling |" in proc.stdout and "torch threads" in (out / "bench.md").read_text()
