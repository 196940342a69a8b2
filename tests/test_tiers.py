"""The unit tier's guard (tests/conftest.py): inside a unit test ``ray.init`` raises, and a subprocess, which
inherits ``RAYEXP_NO_RAY=1``, cannot start Ray through ``rayexp.cluster.init_ray``."""
import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_a_unit_test_cannot_start_ray(request):
    import ray

    assert request.node.get_closest_marker("unit") is not None
    with pytest.raises(RuntimeError, match="a unit test started Ray"):
        ray.init(num_cpus=1)
    code = "from rayexp.cluster import init_ray; from rayexp.config import RayConfig; init_ray(RayConfig(num_cpus=1))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "RAYEXP_NO_RAY=1: this process may not start or join Ray" in proc.stderr, proc.stderr
