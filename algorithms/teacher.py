"""Diffusion policies over action chunks p(a_n..a_n+c | s_n-h..s_n): the EDM teacher (Heun, 80 bins) and the
DDPM baseline (DDPM(n) / DDIM(k) sampling) of Table 3.3. Both share ``ActionDiffusionNet``.

x = normalised actions B, c, act_dim; global condition = normalised observation history flattened, B, h*obs_dim.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.base import DataSpec, Frozen, MethodBase, Policy
from algorithms.configs import DDPMConfig, EDMTeacherConfig, UnetConfig
from algorithms.diffusion.edm import EDMDenoiser, bin_sigmas, lognormal_sigmas, pseudo_huber
from algorithms.diffusion.samplers import ddim_sample, ddpm_sample, heun_sample
from algorithms.diffusion.schedules import alphas_cumprod, append_zero, ddpm_betas, karras_sigmas
from algorithms.nets.mlp import Normalizer
from algorithms.nets.unet1d import ConditionalUnet1D


def build_unet(spec: DataSpec, cfg: UnetConfig, two_times: bool = False) -> ConditionalUnet1D:
    return ConditionalUnet1D(spec.act_dim, spec.obs_history * spec.obs_dim, cfg.step_embed_dim, cfg.down_dims,
                             cfg.kernel_size, cfg.n_groups, two_times=two_times,
                             cond_dim=spec.cond_dim if cfg.cond_mode != "none" else 0,
                             cond_embed_dim=cfg.cond_embed_dim, cond_mode=cfg.cond_mode)


def spec_stat(spec: DataSpec, key: str, default: float, dim: int) -> list[float]:
    return spec.stats.get(key, [default] * dim)


class ActionDiffusionNet(nn.Module):
    """Normalisers (buffers, so checkpoints carry them) plus a denoiser ``net`` (EDM, CTM or an eps-UNet)."""

    def __init__(self, spec: DataSpec, net: nn.Module):
        super().__init__()
        self.obs_norm = Normalizer(spec_stat(spec, "obs_mean", 0.0, spec.obs_dim), spec_stat(spec, "obs_std", 1.0, spec.obs_dim))
        self.act_norm = Normalizer(spec_stat(spec, "act_mean", 0.0, spec.act_dim), spec_stat(spec, "act_std", 1.0, spec.act_dim))
        self.net = net
        self.shape = (spec.action_horizon, spec.act_dim)
        # The data's action range, rebuilt from the spec (not saved): what the env executes and the reward model saw.
        inf = float("inf")
        self.register_buffer("act_low", torch.tensor(spec_stat(spec, "act_min", -inf, spec.act_dim)), persistent=False)
        self.register_buffer("act_high", torch.tensor(spec_stat(spec, "act_max", inf, spec.act_dim)), persistent=False)

    def global_cond(self, obs_hist: torch.Tensor) -> torch.Tensor:
        """B, h, obs_dim -> B, h*obs_dim normalised."""
        return self.obs_norm(obs_hist).flatten(1)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self.net(x, *args, **kwargs)


def as_obs_tensor(obs_hist, model: nn.Module) -> torch.Tensor:
    """numpy or torch B, h, obs_dim -> float tensor on the model's device."""
    device = next(model.parameters()).device
    return torch.as_tensor(obs_hist, dtype=torch.float32, device=device)


def reward_term(reward_model: nn.Module, obs: torch.Tensor, actions_norm: torch.Tensor, net: ActionDiffusionNet) -> torch.Tensor:
    """-R(s_n, a_hat_n): the frozen reward model on the first action of a predicted normalised chunk B, c, A.

    The action is clamped to the data's range first: the env clips what it executes, and R never saw actions
    outside the data, so without the clamp the student is rewarded for pushing actions where R extrapolates."""
    action = net.act_norm.unnormalize(actions_norm[:, 0])
    action = torch.maximum(torch.minimum(action, net.act_high), net.act_low)
    return -reward_model(obs, action).mean()


class EDMTeacher(MethodBase):
    name = "edm_teacher"
    needs: tuple[str, ...] = ()
    """Frozen checkpoints required; ("reward",) when reward_weight > 0 (set per instance)."""

    def __init__(self, cfg: EDMTeacherConfig):
        self.cfg = cfg
        self.needs = ("reward",) if cfg.reward_weight > 0 else ()

    def build_model(self, spec: DataSpec) -> ActionDiffusionNet:
        return ActionDiffusionNet(spec, EDMDenoiser(build_unet(spec, self.cfg.unet), self.cfg.sigma_data, self.cfg.sigma_min))

    def sigmas(self, device: torch.device | str = "cpu") -> torch.Tensor:
        c = self.cfg
        return append_zero(karras_sigmas(c.bins, c.sigma_min, c.sigma_max, c.rho)).to(device)

    def loss(self, model: ActionDiffusionNet, batch: dict[str, torch.Tensor], frozen: Frozen,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.cfg
        x0 = model.act_norm(batch["actions"])
        gc = model.global_cond(batch["obs_hist"])
        cond = batch.get("cond") if c.unet.cond_mode != "none" else None
        n = x0.shape[0]
        if c.train_sigma == "lognormal":
            sigma = lognormal_sigmas(n, generator=generator, device=x0.device)
        else:
            sigma = bin_sigmas(n, self.sigmas(x0.device)[:-1], generator=generator)
        noisy = x0 + sigma.view(-1, 1, 1) * torch.randn(x0.shape, generator=generator, device=x0.device)
        dsm = pseudo_huber(model.net.raw(noisy, sigma, gc, cond), model.net.training_target(x0, noisy, sigma), c.huber_c).mean()
        metrics = {"dsm": dsm.detach()}
        loss = dsm
        if c.reward_weight > 0:
            r = reward_term(frozen.nets["reward"], batch["obs"], model.net(noisy, sigma, gc, cond), model)
            loss = loss + c.reward_weight * r
            metrics["reward_loss"] = r.detach()
        metrics["loss"] = loss.detach()
        return loss, metrics

    def make_policy(self, model: ActionDiffusionNet, spec: DataSpec) -> Policy:
        @torch.no_grad()
        def policy(obs_hist) -> torch.Tensor:
            obs_hist = as_obs_tensor(obs_hist, model)
            gc = model.global_cond(obs_hist)
            sigmas = self.sigmas(gc.device)
            x = torch.randn(gc.shape[0], *model.shape, device=gc.device) * sigmas[0]
            return model.act_norm.unnormalize(heun_sample(lambda x, s: model.net(x, s, gc), x, sigmas))

        return policy


class DDPM(MethodBase):
    """Epsilon-prediction DDPM on the same backbone (the integer timestep feeds the time embedding)."""

    name = "ddpm"
    needs: tuple[str, ...] = ()

    def __init__(self, cfg: DDPMConfig):
        self.cfg = cfg
        self.alphas_cumprod = alphas_cumprod(ddpm_betas(cfg.train_steps, cfg.beta_schedule))

    def build_model(self, spec: DataSpec) -> ActionDiffusionNet:
        return ActionDiffusionNet(spec, build_unet(spec, self.cfg.unet))

    def loss(self, model: ActionDiffusionNet, batch: dict[str, torch.Tensor], frozen: Frozen,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x0 = model.act_norm(batch["actions"])
        gc = model.global_cond(batch["obs_hist"])
        cond = batch.get("cond") if self.cfg.unet.cond_mode != "none" else None
        t = torch.randint(self.cfg.train_steps, (x0.shape[0],), generator=generator, device=x0.device)
        a = self.alphas_cumprod.to(x0.device)[t].view(-1, 1, 1)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device)
        loss = F.mse_loss(model.net(a.sqrt() * x0 + (1 - a).sqrt() * eps, t.float(), gc, cond=cond), eps)
        return loss, {"loss": loss.detach()}

    def make_policy(self, model: ActionDiffusionNet, spec: DataSpec) -> Policy:
        c = self.cfg

        @torch.no_grad()
        def policy(obs_hist) -> torch.Tensor:
            obs_hist = as_obs_tensor(obs_hist, model)
            gc = model.global_cond(obs_hist)
            x = torch.randn(gc.shape[0], *model.shape, device=gc.device)
            ac = self.alphas_cumprod.to(gc.device)
            eps = lambda x, t: model.net(x, t.float(), gc)  # noqa: E731
            if c.sampler == "ddpm":
                x = ddpm_sample(eps, x, ac, c.sample_steps, clip_x0=c.clip_x0)
            else:
                x = ddim_sample(eps, x, ac, c.sample_steps, clip_x0=c.clip_x0)
            return model.act_norm.unnormalize(x)

        return policy
