"""Chapter 3 on Maze2D: the EDM teacher, the DDPM baseline and the CTM / RACTD student over STATE sequences
(open-loop planning, thesis 3.4.2), reusing the action-chunk methods of ``teacher.py`` / ``student.py`` unchanged.

The adapter is a change of view. A window's states s_0..s_{H-1} play the role of the action chunk (x: B, H, obs_dim,
normalised with the observation statistics), and the "observation history" the U-Net is FiLM-conditioned on is
(s_0, goal) with goal = (x_{H-1}, y_{H-1}, 0, 0): the start state and the goal position. At sampling the start
state and the goal position are also inpainted in every denoised estimate (Diffuser). Actions come from a separately
trained inverse-dynamics model (``algorithms.inverse_dynamics``).

Maze reward model (``maze_reward``): R(s, g) = P(|s_xy - g| < radius), an MLP classifier of the sparse maze reward
(1 when the state reaches the goal, else 0). RACTD's reward term is -mean_n R(s_hat_n, g) over the one-step plan.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.base import DataSpec, Frozen, MethodBase
from algorithms.configs import CTMStudentConfig, MazeRewardConfig, StateCTMStudentConfig
from algorithms.diffusion.samplers import (
    apply_inpainting,
    ddim_sample,
    ddpm_sample,
    heun_sample,
    inpaint_denoiser,
    student_sample,
    student_times,
)
from algorithms.nets.mlp import Normalizer, mlp
from algorithms.student import CTMStudent, ractd_loss
from algorithms.teacher import DDPM, ActionDiffusionNet, EDMTeacher

# A sampler gets (model, global cond B,G, known B,H,D, mask B,H,D) and returns the normalised plan B, H, D.
Sampler = Callable[[ActionDiffusionNet, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def state_spec(spec: DataSpec) -> DataSpec:
    """The dataset's spec seen by the action-chunk nets: 'actions' are the states, the history is (start, goal)."""
    s = dict(spec.stats)
    s.update({"act_mean": s.get("obs_mean", [0.0] * spec.obs_dim), "act_std": s.get("obs_std", [1.0] * spec.obs_dim)})
    for key in ("act_min", "act_max"):  # the 'actions' are states: no action range applies
        s.pop(key, None)
    return DataSpec(obs_dim=spec.obs_dim, act_dim=spec.obs_dim, obs_history=2, action_horizon=spec.action_horizon,
                    gamma=spec.gamma, stats=s)


def goal_state(goal_xy: torch.Tensor, obs_dim: int) -> torch.Tensor:
    """B, 2 -> B, obs_dim: the goal position with zero velocity."""
    return torch.cat([goal_xy, goal_xy.new_zeros(goal_xy.shape[0], obs_dim - 2)], dim=-1)


def state_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Window batch (future_obs B, H, obs_dim) -> the action-chunk view: actions = states, obs_hist = (s_0, goal)."""
    s = batch["future_obs"]
    goal = goal_state(s[:, -1, :2], s.shape[-1])
    return {**batch, "actions": s, "obs_hist": torch.stack([s[:, 0], goal], dim=1), "obs": s[:, 0], "goal": goal[:, :2]}


def plan_known(start_norm: torch.Tensor, goal_norm: torch.Tensor, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Known values and mask (B, H, D) for inpainting: the whole first state and the last state's position."""
    known, mask = torch.zeros(shape), torch.zeros(shape, dtype=torch.bool)
    known[:, 0], mask[:, 0] = start_norm, True
    known[:, -1, :2], mask[:, -1, :2] = goal_norm[:, :2], True
    return known, mask


class StatePlanPolicy:
    """``plan(start_obs B, obs_dim, goal_xy B, 2) -> states B, H, obs_dim`` (raw units, start and goal inpainted).
    Calling it with obs_hist B, 2, obs_dim reads the rows as (start, goal)."""

    def __init__(self, model: ActionDiffusionNet, sampler: Sampler):
        self.model, self.sampler = model, sampler

    def __call__(self, obs_hist) -> torch.Tensor:
        obs_hist = torch.as_tensor(obs_hist, dtype=torch.float32)
        return self.plan(obs_hist[:, 0], obs_hist[:, 1, :2])

    @torch.no_grad()
    def plan(self, start_obs, goal_xy, generator: torch.Generator | None = None) -> torch.Tensor:
        m = self.model
        start = torch.as_tensor(start_obs, dtype=torch.float32).reshape(-1, m.shape[1])
        goal = goal_state(torch.as_tensor(goal_xy, dtype=torch.float32).reshape(-1, 2), m.shape[1])
        gc = m.global_cond(torch.stack([start, goal], dim=1))
        known, mask = plan_known(m.act_norm(start), m.act_norm(goal), (start.shape[0], *m.shape))
        x = apply_inpainting(self.sampler(m, gc, known, mask), known, mask)
        return m.act_norm.unnormalize(x)


class StateEDMTeacher(EDMTeacher):
    """EDM teacher over state plans: Heun over ``bins`` Karras sigmas, start and goal inpainted. NFE 2 bins - 1."""

    name = "state_edm_teacher"

    def build_model(self, spec: DataSpec) -> ActionDiffusionNet:
        return super().build_model(state_spec(spec))

    def loss(self, model, batch, frozen: Frozen, generator: torch.Generator | None = None):
        return super().loss(model, state_batch(batch), frozen, generator)

    def make_policy(self, model: ActionDiffusionNet, spec: DataSpec) -> StatePlanPolicy:
        def sample(m, gc, known, mask):
            sigmas = self.sigmas()
            x = torch.randn(known.shape) * sigmas[0]
            return heun_sample(inpaint_denoiser(lambda x, s: m.net(x, s, gc), known, mask), x, sigmas)

        return StatePlanPolicy(model, sample)


class StateDDPM(DDPM):
    """DDPM baseline over state plans: DDPM(n) ancestral or DDIM(k); inpainting through the x0 estimate."""

    name = "state_ddpm"

    def build_model(self, spec: DataSpec) -> ActionDiffusionNet:
        return super().build_model(state_spec(spec))

    def loss(self, model, batch, frozen: Frozen, generator: torch.Generator | None = None):
        return super().loss(model, state_batch(batch), frozen, generator)

    def make_policy(self, model: ActionDiffusionNet, spec: DataSpec) -> StatePlanPolicy:
        c, acp = self.cfg, self.alphas_cumprod

        def sample(m, gc, known, mask):
            def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                a = acp[t].view(-1, 1, 1)
                x0 = apply_inpainting((x - (1 - a).sqrt() * m.net(x, t.float(), gc)) / a.sqrt(), known, mask)
                return (x - a.sqrt() * x0) / (1 - a).sqrt()

            x = torch.randn(known.shape)
            sampler = ddpm_sample if c.sampler == "ddpm" else ddim_sample
            return sampler(eps, x, acp, c.sample_steps, clip_x0=c.clip_x0)

        return StatePlanPolicy(model, sample)


class StateCTMStudent(CTMStudent):
    """CTM student over state plans, distilled from a ``state_edm_teacher`` (stage ``teacher``), warm-started from it."""

    name = "state_ctm_student"
    teacher_method = "state_edm_teacher"

    def __init__(self, cfg: StateCTMStudentConfig):
        super().__init__(cfg)
        self._plain = CTMStudentConfig(**{**cfg.model_dump(), "name": "ctm_student", "reward_weight": 0.0})

    def build_model(self, spec: DataSpec) -> ActionDiffusionNet:
        return super().build_model(state_spec(spec))

    def loss(self, model, batch, frozen: Frozen, generator: torch.Generator | None = None):
        b = state_batch(batch)
        nets = frozen.nets
        loss, metrics = ractd_loss(model, nets["ema"], nets["teacher"], None, b, self._plain, generator)
        if self.cfg.reward_weight > 0:
            r = plan_reward_term(model, nets["reward"], b, self.cfg.sigma_max, generator)
            loss = loss + self.cfg.reward_weight * r
            metrics.update(reward_loss=r.detach(), loss=loss.detach())
        return loss, metrics

    def make_policy(self, model: ActionDiffusionNet, spec: DataSpec) -> StatePlanPolicy:
        c = self.cfg
        times = student_times(c.sample_steps, c.sigma_min, c.sigma_max, c.rho)

        def sample(m, gc, known, mask):
            G = lambda x, t, s: apply_inpainting(m.net(x, t, s, gc), known, mask)  # noqa: E731
            return student_sample(G, torch.randn(known.shape) * c.sigma_max, c.sigma_max, times)

        return StatePlanPolicy(model, sample)


def plan_reward_term(student: ActionDiffusionNet, reward_net: nn.Module, b: dict[str, torch.Tensor], sigma_max: float,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """-mean_n R(s_hat_n, goal) over the student's one-step plan G(x_T, T, 0) from pure noise; gradients reach the
    student only (the reward net is frozen)."""
    reward_net.requires_grad_(False)
    x0_shape = b["actions"].shape
    x_T = sigma_max * torch.randn(x0_shape, generator=generator, device=b["actions"].device)
    B, H, D = x0_shape
    plan = student.net(x_T, x_T.new_full((B,), sigma_max), x_T.new_zeros(B), student.global_cond(b["obs_hist"]))
    states = student.act_norm.unnormalize(plan).reshape(B * H, D)
    goals = b["goal"].repeat_interleave(H, dim=0)
    return -reward_net.reward(states, goals).mean()


class MazeRewardNet(nn.Module):
    """forward(obs: B, obs_dim, goal_xy: B, 2) -> logit B; ``reward`` -> P(at goal) B (raw units in)."""

    def __init__(self, spec: DataSpec, hidden: list[int]):
        super().__init__()
        s = spec.stats
        self.obs_norm = Normalizer(s.get("obs_mean", [0.0] * spec.obs_dim), s.get("obs_std", [1.0] * spec.obs_dim))
        self.net = mlp(spec.obs_dim + 2, hidden, 1)

    def forward(self, obs: torch.Tensor, goal_xy: torch.Tensor) -> torch.Tensor:
        rel = (goal_xy - obs[:, :2]) / self.obs_norm.std[:2]
        return self.net(torch.cat([self.obs_norm(obs), rel], dim=-1)).squeeze(-1)

    def reward(self, obs: torch.Tensor, goal_xy: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(obs, goal_xy))


class MazeReward(MethodBase):
    """Classifier of the sparse maze reward on (state, goal) pairs: the window's own goal for every state in it,
    plus a goal drawn near each state (balanced positives). Labels are exact: |s_xy - g| < radius."""

    name = "maze_reward"
    needs: tuple[str, ...] = ()

    def __init__(self, cfg: MazeRewardConfig):
        self.cfg = cfg

    def build_model(self, spec: DataSpec) -> MazeRewardNet:
        return MazeRewardNet(spec, self.cfg.hidden)

    def loss(self, model: MazeRewardNet, batch: dict[str, torch.Tensor], frozen: Frozen,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s = batch["future_obs"]
        B, H, D = s.shape
        obs = s.reshape(B * H, D)
        own = s[:, -1:, :2].expand(B, H, 2).reshape(B * H, 2)
        near = obs[:, :2] + self.cfg.near * (2 * torch.rand(obs[:, :2].shape, generator=generator, device=obs.device) - 1)
        obs, goals = torch.cat([obs, obs]), torch.cat([own, near])
        label = ((obs[:, :2] - goals).norm(dim=-1) < self.cfg.radius).float()
        logit = model(obs, goals)
        loss = F.binary_cross_entropy_with_logits(logit, label)
        acc = ((logit > 0).float() == label).float().mean()
        return loss, {"loss": loss.detach(), "accuracy": acc.detach(), "positives": label.mean().detach()}

    def make_policy(self, model: MazeRewardNet, spec: DataSpec):
        raise TypeError("a reward model is not a policy; evaluate the stages that use it (students) instead")
