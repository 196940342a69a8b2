"""Plain MLPs and the normalizer whose statistics travel inside a checkpoint."""
from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, hidden: list[int], out_dim: int, act: type[nn.Module] = nn.Mish) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), act()]
        in_dim = h
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class Normalizer(nn.Module):
    """Affine normalisation with statistics stored as buffers, so checkpoints carry them."""

    def __init__(self, mean: list[float] | torch.Tensor, std: list[float] | torch.Tensor, eps: float = 1e-6):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).clamp_min(eps))

    @classmethod
    def identity(cls, dim: int) -> "Normalizer":
        return cls(torch.zeros(dim), torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean
