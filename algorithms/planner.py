"""The chapter-2 conditional diffusion planner (Diffuser-style DDPM over state-action trajectories).

Two kinds of condition: Maze2D's waypoints (below), or an element combination read from the window's first
observation by a named function (``envs.conditions``: the roundabout's vehicle types, SMAX's unit types),
split into one token per element and embedded by the U-Net's condition MLP. Closed-loop use (Algorithm 1):
call the policy with the current observation; it inpaints it, reads the condition from it and plans.

x = concat(normalised states, normalised actions): B, H, D with D = obs_dim + act_dim. Training: DDPM over
``n_diffusion_steps``; the start state (and optionally the goal state, the last one) is inpainted in the noisy
input and the prediction; condition dropout ``cond_drop`` for classifier-free guidance. The condition is the
3 waypoint states at H/4, H/2, 3H/4 of each window (thesis 2.7.1), each dimension passed through a NeRF-style
positional encoding [v, sin(2^k v), cos(2^k v)], k < 10: 21 numbers per dimension (Appendix A.4.6).
Cross-attention gets the 3 waypoints as 3 tokens (3, 21 * obs_dim); concat gets them flattened as one vector.

Batch keys: ``future_obs`` B, H, obs_dim and ``actions`` B, H, act_dim (actions[:, i] taken in future_obs[:, i]).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from algorithms.base import DataSpec, Frozen, MethodBase
from algorithms.configs import PlannerConfig
from algorithms.diffusion.samplers import apply_inpainting, cfg_denoiser, ddim_sample, ddpm_sample, inpaint_denoiser
from algorithms.diffusion.schedules import alphas_cumprod, ddpm_betas
from algorithms.nets.mlp import Normalizer
from algorithms.nets.unet1d import ConditionalUnet1D, drop_condition

WAYPOINT_FRACTIONS = (0.25, 0.5, 0.75)


def waypoint_indices(horizon: int) -> list[int]:
    return [int(horizon * f) for f in WAYPOINT_FRACTIONS]


def positional_encoding(v: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """..., K -> ..., K * (1 + 2 n_freqs): each value v becomes [v, sin(2^k v), cos(2^k v)] for k < n_freqs."""
    freqs = 2.0 ** torch.arange(n_freqs, device=v.device, dtype=v.dtype)
    arg = v[..., None] * freqs
    return torch.cat([v[..., None], arg.sin(), arg.cos()], dim=-1).flatten(-2)


class PlannerNet(nn.Module):
    """forward(x: B,H,D, t: B int, cond: B,3,E | B,3E | None, s: B int | None) -> prediction B,H,D (x0 or epsilon).
    ``two_times``: the one-step student's net (``algorithms.planner_student``), which also takes a target step s."""

    def __init__(self, spec: DataSpec, cfg: PlannerConfig, two_times: bool = False):
        super().__init__()
        self.predict_epsilon = cfg.predict_epsilon
        s = spec.stats
        self.obs_dim, self.act_dim, self.horizon, self.pos_freqs = spec.obs_dim, spec.act_dim, cfg.horizon, cfg.pos_freqs
        self.obs_norm = Normalizer(s.get("obs_mean", [0.0] * spec.obs_dim), s.get("obs_std", [1.0] * spec.obs_dim))
        self.act_norm = Normalizer(s.get("act_mean", [0.0] * spec.act_dim), s.get("act_std", [1.0] * spec.act_dim))
        self.cond_mode, self.condition = cfg.cond_mode, cfg.condition
        if cfg.condition == "waypoints":
            self.n_tokens, token = 3, spec.obs_dim * (1 + 2 * cfg.pos_freqs)
        else:
            from envs.conditions import CONDITIONS, condition_fn

            self.n_tokens = CONDITIONS[cfg.condition].tokens
            self.condition_fn = condition_fn(cfg.condition)
            width = self.condition_fn(np.zeros(spec.obs_dim, np.float32)).shape[-1]
            if width % self.n_tokens:
                raise ValueError(f"condition {cfg.condition!r} has {width} numbers, not {self.n_tokens} equal tokens")
            token = width // self.n_tokens
        cond_dim = {"cross_attention": token, "concat": self.n_tokens * token, "none": 0}[cfg.cond_mode]
        self.unet = ConditionalUnet1D(spec.obs_dim + spec.act_dim, step_embed_dim=cfg.step_embed_dim, down_dims=cfg.down_dims,
                                      kernel_size=cfg.kernel_size, cond_dim=cond_dim, cond_embed_dim=cfg.cond_embed_dim,
                                      cond_mode=cfg.cond_mode, two_times=two_times)
        self.register_buffer("alphas_cumprod", alphas_cumprod(ddpm_betas(cfg.n_diffusion_steps, cfg.beta_schedule)))

    def encode_waypoints(self, waypoints_norm: torch.Tensor) -> torch.Tensor | None:
        """B, 3, obs_dim normalised waypoint states -> condition B, 3, 21 obs_dim (or B, 63 obs_dim for concat)."""
        if self.cond_mode == "none":
            return None
        tokens = positional_encoding(waypoints_norm, self.pos_freqs)
        return tokens.flatten(1) if self.cond_mode == "concat" else tokens

    def encode_observation(self, obs_raw: torch.Tensor) -> torch.Tensor | None:
        """B, obs_dim raw observations -> condition B, n_tokens, token (or B, n_tokens * token for concat)."""
        if self.cond_mode == "none":
            return None
        vec = torch.as_tensor(self.condition_fn(obs_raw.detach().cpu().numpy()), dtype=torch.float32, device=obs_raw.device)
        return vec if self.cond_mode == "concat" else vec.view(len(vec), self.n_tokens, -1)

    def null_condition(self, B: int) -> torch.Tensor | None:
        if self.cond_mode == "none":
            return None
        if self.condition == "waypoints":
            return self.encode_waypoints(torch.zeros(B, 3, self.obs_dim)).zero_()
        return self.encode_observation(torch.zeros(B, self.obs_dim)).zero_()

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None,
                s: torch.Tensor | None = None) -> torch.Tensor:
        return self.unet(x, t.float(), None, s=None if s is None else s.float(), cond=cond)

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None,
                   s: torch.Tensor | None = None) -> torch.Tensor:
        """The clean-trajectory estimate at DDPM step t (converted from epsilon when the net predicts noise)."""
        out = self(x, t, cond, s)
        if not self.predict_epsilon:
            return out
        a = self.alphas_cumprod[t].view(-1, 1, 1)
        return (x - (1 - a).sqrt() * out) / a.sqrt()

    def sigmas(self) -> torch.Tensor:
        """The DDPM steps as EDM noise levels, ascending with the step index: sqrt((1 - abar_t) / abar_t)."""
        return ((1 - self.alphas_cumprod) / self.alphas_cumprod).sqrt()

    def step_of(self, sigma: torch.Tensor) -> torch.Tensor:
        """B noise levels taken from ``sigmas()`` -> their B step indices."""
        return torch.searchsorted(self.sigmas(), sigma.contiguous()).clamp_max(len(self.alphas_cumprod) - 1)

    def x0_at_sigma(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None, known: torch.Tensor,
                    mask: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """The DDPM model as an EDM denoiser D(x, sigma) (x = x_0 + sigma eps, sigma on the ``sigmas()`` grid): the
        net sees x sqrt(abar_t) with the known entries clean, as in training; the estimate keeps them too."""
        t = self.step_of(sigma)
        a = self.alphas_cumprod[t].view(-1, 1, 1)
        return apply_inpainting(self.predict_x0(apply_inpainting(x * a.sqrt(), known, mask), t, cond, s), known, mask)


def window_condition(model: PlannerNet, future_obs: torch.Tensor, states: torch.Tensor) -> torch.Tensor | None:
    """A training window's condition: its waypoints (normalised ``states`` at H/4, H/2, 3H/4) or the condition
    read from its first raw observation."""
    if model.condition == "waypoints":
        return model.encode_waypoints(states[:, waypoint_indices(states.shape[1])])
    return model.encode_observation(future_obs[:, 0])


def window_trajectory(model: PlannerNet, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(normalised states B, H, obs_dim, x0 = [states, normalised actions] B, H, D) of a window batch."""
    states = model.obs_norm(batch["future_obs"])
    return states, torch.cat([states, model.act_norm(batch["actions"])], dim=-1)


def known_entries(model: PlannerNet, first: torch.Tensor, last: torch.Tensor | None, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Known values and mask, both B, H, D: first (and last) normalised states B, obs_dim."""
    known, mask = torch.zeros_like(like), torch.zeros_like(like, dtype=torch.bool)
    known[:, 0, :model.obs_dim], mask[:, 0, :model.obs_dim] = first, True
    if last is not None:
        known[:, -1, :model.obs_dim], mask[:, -1, :model.obs_dim] = last, True
    return known, mask


class Planner(MethodBase):
    name = "planner"
    needs: tuple[str, ...] = ()

    def __init__(self, cfg: PlannerConfig):
        self.cfg = cfg
        self._splits = None

    def train_rows(self, future_obs: torch.Tensor) -> torch.Tensor | None:
        """B bools: windows outside the held-out maze split (None when nothing is held out)."""
        if self.cfg.hold_out_maze is None:
            return None
        from envs.maze2d_split import maze_splits, train_window_mask

        self._splits = self._splits or maze_splits(self.cfg.hold_out_maze)
        keep = train_window_mask(self.cfg.hold_out_maze, future_obs.detach().cpu().numpy(), *self._splits)
        return torch.as_tensor(keep, device=future_obs.device)

    def build_model(self, spec: DataSpec) -> nn.Module:
        return PlannerNet(spec, self.cfg)

    def loss(self, model: PlannerNet, batch: dict[str, torch.Tensor], frozen: Frozen,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        states, x0 = window_trajectory(model, batch)
        if x0.shape[1] != self.cfg.horizon:
            raise ValueError(f"planner horizon is {self.cfg.horizon} but the batch has windows of {x0.shape[1]} steps")
        t = torch.randint(len(model.alphas_cumprod), (x0.shape[0],), generator=generator, device=x0.device)
        a = model.alphas_cumprod[t].view(-1, 1, 1)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        known, mask = known_entries(model, states[:, 0], states[:, -1] if self.cfg.inpaint_goal else None, x0)
        xt = apply_inpainting(a.sqrt() * x0 + (1 - a).sqrt() * noise, known, mask)
        cond = window_condition(model, batch["future_obs"], states)
        cond = drop_condition(cond, self.cfg.cond_drop, generator=generator) if cond is not None else None
        pred = model(xt, t, cond)
        weight = torch.ones_like(x0[0])
        weight[0, model.obs_dim:] = self.cfg.action_weight
        weight = weight * (~mask[0]).float()  # known entries carry no information
        err = (pred - (noise if self.cfg.predict_epsilon else x0)).pow(2) * weight
        keep = self.train_rows(batch["future_obs"])
        err = err[keep] if keep is not None else err
        loss = err.sum() / (weight.sum() * max(len(err), 1))
        return loss, {"loss": loss.detach(), "a0_loss": (pred - x0)[:, 0, model.obs_dim:].pow(2).mean().detach()}

    def make_policy(self, model: PlannerNet, spec: DataSpec) -> "PlannerPolicy":
        return PlannerPolicy(model, self.cfg)


class PlannerPolicy:
    """``plan(start_obs, goal_xy, waypoints, guidance) -> states B, H, obs_dim``; calling it with obs_hist
    B, h, obs_dim plans from the last observation and returns the planned actions B, H, act_dim."""

    def __init__(self, model: PlannerNet, cfg: PlannerConfig):
        self.model, self.cfg = model, cfg

    def __call__(self, obs_hist: torch.Tensor) -> torch.Tensor:
        """Closed loop: plan from the last observation (conditioned on it unless the condition is waypoints)."""
        obs = torch.as_tensor(obs_hist, dtype=torch.float32)[:, -1]
        cond = None if self.cfg.condition == "waypoints" else obs
        return self.sample(obs, condition_obs=cond)[1]

    def plan(self, start_obs, goal_xy=None, waypoints=None, guidance: float | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """start_obs B, obs_dim; goal_xy B, 2 | None; waypoints B, 3, 2 (xy; velocity set to the data mean) or
        B, 3, obs_dim | None -> planned states B, H, obs_dim (raw units)."""
        return self.sample(start_obs, goal_xy, waypoints, guidance, generator)[0]

    @torch.no_grad()
    def sample(self, start_obs, goal_xy=None, waypoints=None, guidance: float | None = None,
               generator: torch.Generator | None = None, condition_obs=None) -> tuple[torch.Tensor, torch.Tensor]:
        """As ``plan``, returning (states B, H, obs_dim, actions B, H, act_dim). ``condition_obs`` B, obs_dim: the
        observations an observation-read condition comes from (None: unconditional)."""
        m, cfg = self.model, self.cfg
        start = m.obs_norm(torch.as_tensor(start_obs, dtype=torch.float32).reshape(-1, m.obs_dim))
        B = start.shape[0]
        goal = None
        if goal_xy is not None and cfg.inpaint_goal:
            g = torch.as_tensor(goal_xy, dtype=torch.float32).reshape(B, 2)
            goal = m.obs_norm(torch.cat([g, torch.zeros(B, m.obs_dim - 2)], dim=-1))
        x = torch.randn(B, cfg.horizon, m.obs_dim + m.act_dim, generator=generator)
        known, mask = known_entries(m, start, goal, x)
        cond, null = self.condition(waypoints, B, condition_obs)
        x = self.generate(x, known, mask, cond, null, cfg.guidance if guidance is None else guidance, generator)
        x = apply_inpainting(x, known, mask)
        return m.obs_norm.unnormalize(x[..., :m.obs_dim]), m.act_norm.unnormalize(x[..., m.obs_dim:])

    def condition(self, waypoints, B: int, condition_obs=None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(condition or None for unconditional, null condition or None for cond_mode none) of a batch."""
        m = self.model
        if m.cond_mode == "none":
            return None, None
        null = m.null_condition(B)
        if m.condition != "waypoints":
            if condition_obs is None:
                return None, null
            return m.encode_observation(torch.as_tensor(condition_obs, dtype=torch.float32).reshape(B, m.obs_dim)), null
        if waypoints is None:
            return None, null
        wp = torch.as_tensor(waypoints, dtype=torch.float32).reshape(B, 3, -1)
        if wp.shape[-1] == 2:  # positions only: velocities at the data mean (0 after normalisation)
            wp = torch.cat([wp, m.obs_norm.mean[2:].expand(B, 3, m.obs_dim - 2)], dim=-1)
        return m.encode_waypoints(m.obs_norm(wp)), null

    def generate(self, x: torch.Tensor, known: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor | None,
                 null: torch.Tensor | None, w: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalised trajectories B, H, D from noise x: DDPM (or DDIM) with classifier-free guidance weight w."""
        m, cfg, acp = self.model, self.cfg, self.model.alphas_cumprod
        guided = (lambda x, t: m.predict_x0(x, t, null)) if cond is None else cfg_denoiser(m.predict_x0, cond, w, null)
        denoise = inpaint_denoiser(guided, known, mask)

        def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            x = apply_inpainting(x, known, mask)  # the net was trained seeing the known entries clean (Diffuser)
            a = acp[t].view(-1, 1, 1)
            return (x - a.sqrt() * denoise(x, t)) / (1 - a).sqrt()

        if cfg.sample_steps is None:
            return ddpm_sample(eps, x, acp, generator=generator)
        return ddim_sample(eps, x, acp, cfg.sample_steps)


class OpenLoopPlanExecutor:
    """Plan once, then follow the planned states with inverse dynamics; replan every ``replan_every`` steps.

    plan_fn(obs: obs_dim) -> states H, obs_dim (numpy or torch); inverse_dynamics(obs: B, obs_dim, next: B, obs_dim)
    -> actions B, act_dim (e.g. ``InverseDynamicsNet.predict``). ``act(obs) -> action act_dim`` (numpy).
    """

    def __init__(self, plan_fn: Callable, inverse_dynamics: Callable, replan_every: int | None = None):
        self.plan_fn, self.inverse_dynamics, self.replan_every = plan_fn, inverse_dynamics, replan_every
        self.reset()

    def reset(self) -> None:
        self.states: np.ndarray | None = None
        self.k = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self.states is None or (self.replan_every and self.k >= self.replan_every):
            self.states, self.k = np.asarray(self.plan_fn(np.asarray(obs, dtype=np.float32)), dtype=np.float32), 0
        target = self.states[min(self.k + 1, len(self.states) - 1)]
        self.k += 1
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32))[None]
        return np.asarray(self.inverse_dynamics(obs_t, torch.as_tensor(target)[None]))[0]
