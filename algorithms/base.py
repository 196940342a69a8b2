"""The one contract every trainable method follows.

A method is a plain object: it builds its network from the dataset's shapes, computes a loss on a
batch, and turns a trained network into a policy. The training loop (``rayexp.train``) owns the
optimizer, EMA, device, checkpoints and Ray; methods never see them.

Batches are dicts of float tensors (see ``rayexp.windows``):
    obs_hist  B, h, obs_dim   the last h observations (first one repeated at episode start)
    actions   B, c, act_dim   the next c actions (last one repeated at episode end)
    obs       B, obs_dim      the current observation s_n
    action    B, act_dim      the current action a_n
    rtg       B               discounted return-to-go from s_n
    cond      B, cond_dim     the element combination / condition vector (zeros when unused)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from torch import nn


@dataclass(frozen=True)
class DataSpec:
    """Shapes and statistics a method needs from a dataset; saved inside every checkpoint."""

    obs_dim: int
    act_dim: int
    obs_history: int = 1  # h
    action_horizon: int = 16  # c
    cond_dim: int = 0
    gamma: float = 0.99
    discrete_actions: bool = False
    # obs_mean, obs_std, act_mean, act_std, act_min, act_max, rtg_mean, rtg_std (lists of floats)
    stats: dict[str, list[float]] = field(default_factory=dict)


# A policy maps a batch of observation histories (B, h, obs_dim) numpy-or-torch to actions (B, c, act_dim).
Policy = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Frozen:
    """Frozen networks a loss may use (teacher, reward model, EMA target); never trained by it."""

    nets: dict[str, nn.Module] = field(default_factory=dict)


class Method(Protocol):
    name: str

    def build_model(self, spec: DataSpec) -> nn.Module: ...

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], frozen: Frozen) -> tuple[torch.Tensor, dict[str, float]]: ...

    def make_policy(self, model: nn.Module, spec: DataSpec) -> Policy: ...
