"""Chapter 3's central claim in miniature: the teacher and a plain student cover both modes, the
reward-aware student selects the good one, and the one-step student tracks the teacher's ODE."""
import pytest
import torch
from conftest import bimodal_batch, good_fraction, train_student

from algorithms.diffusion.samplers import heun_sample

pytestmark = pytest.mark.training  # trains an EDM teacher and CTM students for hundreds of steps: ~1.5 min on 2 cores

N = 200


def test_teacher_covers_both_modes(trained_teacher):
    method, model = trained_teacher
    torch.manual_seed(1)
    actions = method.make_policy(model, None)(torch.zeros(N, 1, 1))
    assert 0.3 <= good_fraction(actions) <= 0.7
    # samples sit on the modes, not between them
    assert (actions.mean(dim=(1, 2)).abs() - 1.0).abs().mean() < 0.2


def test_plain_student_covers_both_modes(plain_student):
    method, model = plain_student
    torch.manual_seed(2)
    assert 0.3 <= good_fraction(method.make_policy(model, None)(torch.zeros(N, 1, 1))) <= 0.7


def test_reward_aware_student_selects_good_mode(trained_teacher):
    method, model = train_student(trained_teacher[1], reward_weight=1.0, steps=120, seed=3)
    torch.manual_seed(3)
    assert good_fraction(method.make_policy(model, None)(torch.zeros(N, 1, 1))) >= 0.9


def test_one_step_student_tracks_teacher_ode(trained_teacher, plain_student):
    t_method, teacher = trained_teacher
    s_method, student = plain_student
    g = torch.Generator().manual_seed(4)
    x_T = torch.randn(N, 4, 2, generator=g) * t_method.cfg.sigma_max
    gc = torch.zeros(N, 1)
    with torch.no_grad():
        teacher_x0 = heun_sample(lambda x, s: teacher.net(x, s, gc), x_T, t_method.sigmas())
        student_x0 = student.net(x_T, torch.full((N,), s_method.cfg.sigma_max), torch.zeros(N), gc)
    data = bimodal_batch(2 * N, g)["actions"]
    spread = (data[:N] - data[N:]).flatten(1).norm(dim=1).mean()
    gap = (student_x0 - teacher_x0).flatten(1).norm(dim=1).mean()
    assert gap < 0.4 * spread, (gap.item(), spread.item())
