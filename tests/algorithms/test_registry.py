import subprocess
import sys

import pytest
from pydantic import BaseModel, ValidationError

from algorithms.base import Method, MethodBase
from algorithms.registry import METHODS, MethodConfig, make_method, method_class


class Run(BaseModel):
    method: MethodConfig


@pytest.mark.parametrize("name", sorted(METHODS))
def test_discriminated_union_round_trip(name):
    cfg = Run.model_validate({"method": {"name": name}}).method
    assert isinstance(cfg, METHODS[name][0])
    method = make_method(cfg)
    assert isinstance(method, method_class(name)) and method.name == name


@pytest.mark.parametrize("name", sorted(METHODS))
def test_methods_follow_the_contract_the_loop_calls(name):
    """Every hook of ``Method`` (needs, check_frozen, build_model, warm_start, loss, make_policy) is there, and a
    method that distils a frozen teacher starts from it (its own warm_start, not the no-op default)."""
    method = make_method(METHODS[name][0]())
    assert isinstance(method, Method) and isinstance(method.needs, tuple)
    if "teacher" in method.needs:
        assert type(method).warm_start is not MethodBase.warm_start


def test_unknown_keys_fail():
    with pytest.raises(ValidationError):
        Run.model_validate({"method": {"name": "ctm_student", "reward_wieght": 1.0}})
    with pytest.raises(ValidationError):
        Run.model_validate({"method": {"name": "edm_teacher", "unet": {"downdims": [8]}}})


def test_import_is_light():
    code = ("import sys, algorithms.registry, rayexp.bench.inference;"
            "bad = [m for m in ('ray', 'gymnasium', 'mujoco', 'jax') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
