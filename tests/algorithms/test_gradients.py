"""After one RACTD step every student parameter has a finite gradient and the frozen nets none."""
import pytest
import torch
from conftest import TINY_UNET, bimodal_batch, bimodal_spec, ema_copy

from algorithms.base import DataSpec, Frozen, Trained
from algorithms.configs import CTMStudentConfig, EDMTeacherConfig, RewardModelConfig
from algorithms.reward_model import RewardModel
from algorithms.student import CTMStudent, warm_start
from algorithms.teacher import EDMTeacher
from rayexp.train import init_model

# Behind the zero-initialised last layer of the target-time embedding: exactly zero on the very first step.
ZERO_AT_INIT = ("net.inner.s_embed.1.",)


@pytest.mark.parametrize("reward_weight", [0.0, 1.0])
def test_ractd_grads_reach_student_only(reward_weight):
    torch.manual_seed(0)
    spec = bimodal_spec()
    teacher = EDMTeacher(EDMTeacherConfig(unet=TINY_UNET)).build_model(spec)
    reward = RewardModel(RewardModelConfig()).build_model(spec)
    method = CTMStudent(CTMStudentConfig(unet=TINY_UNET, reward_weight=reward_weight))
    frozen = Frozen({"teacher": teacher, "reward": reward})
    student = init_model(method, spec, frozen, seed=0)
    frozen.nets["ema"] = ema_copy(student)
    loss, metrics = method.loss(student, bimodal_batch(16, torch.Generator().manual_seed(0)), frozen)
    loss.backward()
    assert torch.isfinite(loss) and ("reward_loss" in metrics) == (reward_weight > 0)
    for name, p in student.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if not name.startswith(ZERO_AT_INIT):
            assert p.grad.abs().sum() > 0, name
    for key, net in frozen.nets.items():
        assert all(p.grad is None for p in net.parameters()), key


def test_warm_start_copies_backbone_and_student_starts_as_teacher_euler_step():
    torch.manual_seed(0)
    spec = bimodal_spec()
    teacher = EDMTeacher(EDMTeacherConfig(unet=TINY_UNET)).build_model(spec)
    student = CTMStudent(CTMStudentConfig(unet=TINY_UNET)).build_model(spec)
    copied = warm_start(student, teacher)
    assert "net.inner.time_embed.1.weight" in copied and not any("s_embed" in k for k in copied)
    x, gc = torch.randn(8, 4, 2), torch.zeros(8, 1)
    t, s = torch.full((8,), 5.0), torch.full((8,), 1.0)
    with torch.no_grad():
        euler = x + (s - t).view(-1, 1, 1) * (x - teacher.net(x, t, gc)) / t.view(-1, 1, 1)
        assert torch.allclose(student.net(x, t, s, gc), euler, atol=1e-5)
        assert torch.allclose(student.net(x, t, t, gc), x, atol=1e-6)  # G(x, t, t) = x


def test_check_frozen_refuses_mismatched_teacher():
    spec = bimodal_spec()
    method = CTMStudent(CTMStudentConfig(reward_weight=1.0))
    assert method.needs == ("teacher", "reward")
    assert CTMStudent(CTMStudentConfig()).needs == ("teacher",)
    teacher_m = EDMTeacher(EDMTeacherConfig())
    teacher = Trained(teacher_m, teacher_m.build_model(spec), spec)
    reward = Trained(RewardModel(RewardModelConfig()), None, spec)
    method.check_frozen(spec, {"teacher": teacher, "reward": reward})
    with pytest.raises(ValueError, match="action_horizon"):
        other = DataSpec(obs_dim=1, act_dim=2, action_horizon=8)
        method.check_frozen(spec, {"teacher": teacher._replace(spec=other), "reward": reward})
    with pytest.raises(ValueError, match="reward"):
        method.check_frozen(spec, {"teacher": teacher})
    with pytest.raises(ValueError, match=r"unet.down_dims \[32, 64, 128\] != \[32\]"):
        CTMStudent(CTMStudentConfig(unet=TINY_UNET)).check_frozen(spec, {"teacher": teacher})
    with pytest.raises(ValueError, match="sigma_max 80.0 != 40.0"):
        CTMStudent(CTMStudentConfig(sigma_max=40.0)).check_frozen(spec, {"teacher": teacher})
    with pytest.raises(ValueError, match="distils a edm_teacher"):
        CTMStudent(CTMStudentConfig()).check_frozen(spec, {"teacher": reward})


def test_reward_aware_teacher_needs_reward_and_trains():
    torch.manual_seed(0)
    method = EDMTeacher(EDMTeacherConfig(unet=TINY_UNET, reward_weight=0.5))
    assert method.needs == ("reward",)
    model = method.build_model(bimodal_spec())
    loss, metrics = method.loss(model, bimodal_batch(8, torch.Generator().manual_seed(0)),
                                Frozen({"reward": RewardModel(RewardModelConfig()).build_model(bimodal_spec())}))
    loss.backward()
    assert "reward_loss" in metrics and all(torch.isfinite(p.grad).all() for p in model.parameters())
