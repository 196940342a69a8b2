"""Return-to-go model R(s_n, a_n) (thesis 3.3.3, Table B.3): an MLP with Mish regressing the normalised
discounted return-to-go; trained on its own and frozen during distillation."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from algorithms.base import DataSpec, Frozen, MethodBase, Policy
from algorithms.configs import RewardModelConfig
from algorithms.nets.mlp import Normalizer, mlp


def discounted_return_to_go(rewards: np.ndarray, terminals: np.ndarray, gamma: float,
                            termination_penalty: float = -100.0) -> np.ndarray:
    """One episode, T -> T: rtg_n = sum_j gamma^j r_{n+j}. ``terminals`` marks true terminations (not timeouts);
    a terminal step's reward gets ``termination_penalty`` added before discounting."""
    r = np.asarray(rewards, dtype=np.float64).copy()
    r[np.asarray(terminals, dtype=bool)] += termination_penalty
    rtg = np.zeros_like(r)
    acc = 0.0
    for n in range(len(r) - 1, -1, -1):
        acc = r[n] + gamma * acc
        rtg[n] = acc
    return rtg


class RewardNet(nn.Module):
    """forward(obs: B, obs_dim, action: B, act_dim) in raw units -> normalised rtg B."""

    def __init__(self, spec: DataSpec, hidden: list[int]):
        super().__init__()
        s = spec.stats
        self.obs_norm = Normalizer(s.get("obs_mean", [0.0] * spec.obs_dim), s.get("obs_std", [1.0] * spec.obs_dim))
        self.act_norm = Normalizer(s.get("act_mean", [0.0] * spec.act_dim), s.get("act_std", [1.0] * spec.act_dim))
        self.rtg_norm = Normalizer(s.get("rtg_mean", [0.0]), s.get("rtg_std", [1.0]))
        self.net = mlp(spec.obs_dim + spec.act_dim, hidden, 1)
        inf = float("inf")  # the data's action range, rebuilt from the spec (not saved)
        self.register_buffer("act_low", torch.tensor(s.get("act_min", [-inf] * spec.act_dim)), persistent=False)
        self.register_buffer("act_high", torch.tensor(s.get("act_max", [inf] * spec.act_dim)), persistent=False)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([self.obs_norm(obs), self.act_norm(action)], dim=-1)).squeeze(-1)

    def predict_rtg(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Unnormalised return-to-go, B."""
        return self.rtg_norm.unnormalize(self(obs, action)[:, None]).squeeze(-1)


class RewardModel(MethodBase):
    name = "reward_model"
    needs: tuple[str, ...] = ()

    def __init__(self, cfg: RewardModelConfig):
        self.cfg = cfg

    def build_model(self, spec: DataSpec) -> RewardNet:
        return RewardNet(spec, self.cfg.hidden)

    def loss(self, model: RewardNet, batch: dict[str, torch.Tensor], frozen: Frozen,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        target = model.rtg_norm(batch["rtg"][:, None]).squeeze(-1)
        fit = (model(batch["obs"], batch["action"]) - target).pow(2).mean()
        loss, metrics = fit, {"fit": fit.detach()}
        if self.cfg.off_data_weight > 0 and torch.isfinite(model.act_high - model.act_low).all():
            u = torch.rand(batch["action"].shape, generator=generator, device=target.device)
            off = (model(batch["obs"], model.act_low + u * (model.act_high - model.act_low)) - target.min()).pow(2).mean()
            loss = loss + self.cfg.off_data_weight * off
            metrics["off_data"] = off.detach()
        metrics["loss"] = loss.detach()
        return loss, metrics

    def make_policy(self, model: RewardNet, spec: DataSpec) -> Policy:
        raise TypeError("a reward model is not a policy; evaluate the stages that use it (students) instead")
