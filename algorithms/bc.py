"""Behaviour cloning: an MLP from the observation history to the next action chunk."""
from __future__ import annotations

import torch
from torch import nn

from algorithms.base import DataSpec, Frozen, MethodBase, Policy
from algorithms.configs import BCConfig
from algorithms.nets.mlp import Normalizer, mlp


class BCNet(nn.Module):
    def __init__(self, spec: DataSpec, hidden: list[int]):
        super().__init__()
        s = spec.stats
        self.obs_norm = Normalizer(s.get("obs_mean", [0.0] * spec.obs_dim), s.get("obs_std", [1.0] * spec.obs_dim))
        self.act_norm = Normalizer(s.get("act_mean", [0.0] * spec.act_dim), s.get("act_std", [1.0] * spec.act_dim))
        self.shape = (spec.action_horizon, spec.act_dim)
        self.net = mlp(spec.obs_history * spec.obs_dim, hidden, spec.action_horizon * spec.act_dim)

    def forward(self, obs_hist: torch.Tensor) -> torch.Tensor:
        """B, h, obs_dim -> normalised actions B, c, act_dim."""
        return self.net(self.obs_norm(obs_hist).flatten(1)).view(-1, *self.shape)


class BC(MethodBase):
    name = "bc"
    needs: tuple[str, ...] = ()
    """Frozen checkpoints this method needs (none)."""

    def __init__(self, cfg: BCConfig):
        self.cfg = cfg

    def build_model(self, spec: DataSpec) -> nn.Module:
        return BCNet(spec, self.cfg.hidden)

    def loss(self, model: BCNet, batch: dict[str, torch.Tensor], frozen: Frozen,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = (model(batch["obs_hist"]) - model.act_norm(batch["actions"])).pow(2).mean()
        return loss, {"loss": loss.detach()}

    def make_policy(self, model: BCNet, spec: DataSpec) -> Policy:
        @torch.no_grad()
        def policy(obs_hist: torch.Tensor) -> torch.Tensor:
            obs_hist = torch.as_tensor(obs_hist, dtype=torch.float32, device=model.act_norm.mean.device)
            return model.act_norm.unnormalize(model(obs_hist))

        return policy
