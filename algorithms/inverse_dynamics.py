"""Inverse dynamics: an MLP (s_t, s_{t+1}) -> a_t, used to execute the planner's open-loop state plans.

Batch keys: ``obs`` B, obs_dim; ``next_obs`` B, obs_dim; ``action`` B, act_dim.
"""
from __future__ import annotations

import torch
from torch import nn

from algorithms.base import DataSpec, Frozen, MethodBase, Policy
from algorithms.configs import InverseDynamicsConfig
from algorithms.nets.mlp import Normalizer, mlp


class InverseDynamicsNet(nn.Module):
    def __init__(self, spec: DataSpec, hidden: list[int]):
        super().__init__()
        s = spec.stats
        self.obs_norm = Normalizer(s.get("obs_mean", [0.0] * spec.obs_dim), s.get("obs_std", [1.0] * spec.obs_dim))
        self.act_norm = Normalizer(s.get("act_mean", [0.0] * spec.act_dim), s.get("act_std", [1.0] * spec.act_dim))
        self.register_buffer("act_min", torch.as_tensor(s.get("act_min", [-float("inf")] * spec.act_dim), dtype=torch.float32))
        self.register_buffer("act_max", torch.as_tensor(s.get("act_max", [float("inf")] * spec.act_dim), dtype=torch.float32))
        # the state difference is an input too: it carries most of the signal and is badly scaled after obs_norm
        self.net = mlp(3 * spec.obs_dim, hidden, spec.act_dim)

    def forward(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """B, obs_dim x B, obs_dim -> normalised action B, act_dim."""
        a, b = self.obs_norm(obs), self.obs_norm(next_obs)
        return self.net(torch.cat([a, b, (b - a) * 10.0], dim=-1))

    @torch.no_grad()
    def predict(self, obs: torch.Tensor, next_obs: torch.Tensor, clip: bool = True) -> torch.Tensor:
        """Raw (unnormalised) actions B, act_dim."""
        act = self.act_norm.unnormalize(self(obs, next_obs))
        return torch.maximum(torch.minimum(act, self.act_max), self.act_min) if clip else act


class InverseDynamics(MethodBase):
    name = "inverse_dynamics"
    needs: tuple[str, ...] = ()

    def __init__(self, cfg: InverseDynamicsConfig):
        self.cfg = cfg

    def build_model(self, spec: DataSpec) -> nn.Module:
        return InverseDynamicsNet(spec, self.cfg.hidden)

    def loss(self, model: InverseDynamicsNet, batch: dict[str, torch.Tensor], frozen: Frozen,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = (model(batch["obs"], batch["next_obs"]) - model.act_norm(batch["action"])).pow(2).mean()
        return loss, {"loss": loss.detach()}

    def make_policy(self, model: InverseDynamicsNet, spec: DataSpec) -> Policy:
        """obs_hist B, 2, obs_dim read as (s_t, desired s_{t+1}) -> actions B, 1, act_dim."""

        def policy(obs_hist: torch.Tensor) -> torch.Tensor:
            obs_hist = torch.as_tensor(obs_hist, dtype=torch.float32, device=model.act_min.device)
            if obs_hist.dim() != 3 or obs_hist.shape[1] != 2:
                raise ValueError(f"inverse dynamics policy wants B, 2, obs_dim (s_t, s_t+1); got {tuple(obs_hist.shape)}")
            return model.predict(obs_hist[:, 0], obs_hist[:, 1], clip=self.cfg.clip_actions)[:, None]

        return policy
