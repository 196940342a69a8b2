"""A student stage built from a config the way `rayexp train` builds it (``stage_config`` -> ``TrainingState``)
starts as exactly one Euler step of its frozen teacher, and a teacher it cannot start from is refused in one line."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from rayexp.config import load_config
from rayexp.data.d4rl import import_d4rl_hdf5
from rayexp.errors import RayexpError
from rayexp.train import TrainingState, save_model, stage_config
from tests.conftest import REPO

QUICKSTART = REPO / "tune_configs" / "quickstart.yaml"


@pytest.fixture(scope="module")
def two_mode_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("two_mode")
    subprocess.run([sys.executable, str(REPO / "scripts" / "two_mode_d4rl.py"), str(d / "data.hdf5"), "--episodes", "20"],
                   check=True, capture_output=True)
    return import_d4rl_hdf5(d / "data.hdf5", d / "store", env_id="InvertedPendulum-v5").path


def train_teacher(cfg, store, models) -> TrainingState:
    """A few real teacher steps (its zero-initialised output layer must move, or every net looks alike)."""
    ts = TrainingState(stage_config(cfg, "teacher", store, models, threads=1))
    ts.advance(5, np.random.default_rng(0))
    save_model(models / "teacher.pt", ts.method.cfg, ts.spec, ts.model, ts.step)
    return ts


def test_student_stage_starts_as_one_euler_step_of_its_teacher(two_mode_store, tmp_path):
    cfg = load_config(QUICKSTART, [f"data.path={two_mode_store}"])
    teacher = train_teacher(cfg, two_mode_store, tmp_path).model.eval()
    student = TrainingState(stage_config(cfg, "ctd", two_mode_store, tmp_path, threads=1)).model.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, *student.shape, generator=g)
    gc = student.global_cond(torch.randn(8, 1, teacher.obs_norm.mean.numel(), generator=g))
    t, s = torch.full((8,), 5.0), torch.full((8,), 1.0)
    with torch.no_grad():
        denoised = teacher.net(x, t, gc)
        assert not torch.allclose(denoised, teacher.net.sigma_data**2 / (25 + teacher.net.sigma_data**2) * x, atol=1e-3)
        euler = x + (s - t).view(-1, 1, 1) * (x - denoised) / t.view(-1, 1, 1)
        assert torch.allclose(student.net(x, t, s, gc), euler, atol=1e-5)
        assert torch.allclose(student.net(x, t, torch.zeros(8), gc), denoised, atol=1e-5)


@pytest.mark.parametrize("override, named", [("models.ctd.method.unet.down_dims=[16,32]", "unet.down_dims"),
                                             ("models.ctd.method.sigma_max=40", "sigma_max")])
def test_student_refuses_a_teacher_it_cannot_start_from(two_mode_store, tmp_path, override, named):
    cfg = load_config(QUICKSTART, [f"data.path={two_mode_store}"])
    train_teacher(cfg, two_mode_store, tmp_path)
    bad = load_config(QUICKSTART, [f"data.path={two_mode_store}", override])
    with pytest.raises(RayexpError, match=f"ctm_student: the student must repeat its teacher's .*{named}") as e:
        TrainingState(stage_config(bad, "ctd", two_mode_store, tmp_path, threads=1))
    assert "\n" not in str(e.value)
