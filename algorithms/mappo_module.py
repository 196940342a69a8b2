"""MAPPO's networks as plain ``nn.Module``s (``algorithms.mappo_rllib`` wraps them in an RLlib ``RLModule``).

One actor is shared by every agent (all agents map to one module); it reads the agent's local observation and
masks unavailable actions. The critic reads ``state`` (the global state plus the agent's one-hot: MAPPO) or the
local ``obs`` (IPPO), chosen by ``model_config["critic_input"]``. Observations are the Dict of
``envs.smax_rllib``: obs / state / action_mask.
"""
from __future__ import annotations

import torch
from torch import nn

FLOAT_MIN = -3.4e38


def mlp(sizes: list[int], act: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``act`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def mask_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """B, A logits and 0/1 mask -> logits with unavailable actions at the float minimum (probability 0)."""
    return logits + torch.clamp(torch.log(mask), min=FLOAT_MIN)


class SharedActor(nn.Module):
    """forward(obs B, obs_dim, mask B, A) -> masked logits B, A. Kept free of RLlib so rollouts need only torch."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: list[int]):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, n_actions])

    def forward(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask_logits(self.net(obs), mask)
