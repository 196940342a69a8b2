"""Shared fixtures: a synthetic bimodal action dataset and a small EDM teacher trained on it once per session.

obs is constant; each action chunk (c=4, act_dim=2) is N(+m, s^2) or N(-m, s^2) with probability 1/2.
The exact reward of a chunk is tanh(first action mean), so the + mode is the good one.
"""
from __future__ import annotations

import copy

import pytest
import torch

torch.set_num_threads(1)  # tiny nets: threads only add overhead on 2 shared cores
from torch import nn

from algorithms.base import DataSpec, Frozen
from algorithms.configs import CTMStudentConfig, EDMTeacherConfig, UnetConfig
from algorithms.student import CTMStudent
from algorithms.teacher import EDMTeacher
from rayexp.train import init_model

M, S, C, A = 1.0, 0.1, 4, 2
TINY_UNET = UnetConfig(step_embed_dim=16, down_dims=[32], kernel_size=3, n_groups=8)


def bimodal_spec() -> DataSpec:
    return DataSpec(obs_dim=1, act_dim=A, obs_history=1, action_horizon=C,
                    stats={"act_mean": [0.0] * A, "act_std": [M] * A})


def bimodal_batch(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).view(n, 1, 1)
    actions = sign * M + S * torch.randn(n, C, A, generator=generator)
    obs = torch.zeros(n, 1)
    return {"obs_hist": obs[:, None], "actions": actions, "obs": obs, "action": actions[:, 0],
            "rtg": torch.zeros(n), "cond": torch.zeros(n, 0)}


def good_fraction(actions: torch.Tensor) -> float:
    """Share of chunks B, c, A in the + mode (mean over the chunk > 0)."""
    return (actions.mean(dim=(1, 2)) > 0).float().mean().item()


class ExactReward(nn.Module):
    """R(s, a) = tanh(mean of a): B, obs_dim x B, act_dim -> B."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))  # a parameter, so the test can check it gets no gradient

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.scale * action.mean(-1))


def train(method, model: nn.Module, steps: int, frozen: Frozen, lr: float = 2e-3, batch_size: int = 256,
          ema: nn.Module | None = None, ema_decay: float = 0.95, seed: int = 0,
          batch_fn=bimodal_batch) -> list[dict[str, float]]:
    """A minimal training loop (the real one lives in rayexp.train): Adam, optional EMA kept in frozen.nets['ema'];
    batches from ``batch_fn(batch_size, generator)``."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        loss, metrics = method.loss(model, batch_fn(batch_size, gen), frozen, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if ema is not None:
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), model.parameters()):
                    p_ema.lerp_(p, 1 - ema_decay)
        history.append(metrics)
    return history


TEACHER_BINS = 40  # fewer than the default 80 only to keep the CPU tests fast


@pytest.fixture(scope="session")
def trained_teacher():
    """(method, EMA model) of an EDM teacher trained 500 steps on the bimodal data."""
    torch.manual_seed(0)
    # Uniform-over-bins sigmas train the high noise levels, where the split between the modes is decided;
    # with 500 log-normal steps the teacher's mode balance drifts to ~0.6.
    method = EDMTeacher(EDMTeacherConfig(unet=TINY_UNET, bins=TEACHER_BINS, train_sigma="bins"))
    model = method.build_model(bimodal_spec())
    ema = ema_copy(model)
    train(method, model, 500, Frozen(), batch_size=128, ema=ema, ema_decay=0.98)
    return method, ema.eval()


def train_student(teacher: nn.Module, reward_weight: float, steps: int, seed: int = 0):
    """(method, model) of a CTM student distilled from ``teacher`` with the exact reward model."""
    method = CTMStudent(CTMStudentConfig(unet=TINY_UNET, reward_weight=reward_weight, bins=TEACHER_BINS, solver_steps_max=2))
    frozen = Frozen({"teacher": teacher, "reward": ExactReward()})
    model = init_model(method, bimodal_spec(), frozen, seed)  # as rayexp.train builds every stage
    ema = ema_copy(model)
    frozen.nets["ema"] = ema
    train(method, model, steps, frozen, lr=1e-3, batch_size=128, ema=ema, ema_decay=0.95, seed=seed)
    return method, model.eval()


@pytest.fixture(scope="session")
def plain_student(trained_teacher):
    return train_student(trained_teacher[1], reward_weight=0.0, steps=400)


def ema_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).requires_grad_(False)
