"""The chapter-2 planner distilled to one network evaluation with the chapter-3 CTM student (CTD: L_CTM + L_DSM).

The teacher is a trained ``planner`` stage, read as an EDM denoiser on its own DDPM grid: step t is the noise level
sigma_t = sqrt((1 - abar_t) / abar_t), x = x_0 + sigma_t eps (``PlannerNet.x0_at_sigma``). Its probability-flow
ODE (the one DDIM integrates) with the teacher's guidance weight is what the student learns to jump along.

The student is the planner's own network with a second (target-step) time input, warm-started from the teacher:
G(x, t, s) = (s / t) x + (1 - s / t) g(x, t, s), with g the student's inpainted x_0 estimate. With the target-step
embedding at its zero init, g is the teacher's estimate and G is one Euler step of the teacher's ODE. Condition
dropout (``cond_drop``) teaches it the unconditional jump too, so a null or random condition means what it means
for the planner. Sampling:
x_T ~ N(0, 1 + sigma_T^2), one jump T -> 0, with the start state inpainted and the condition read from the
observation as in the planner (guidance is baked in: the student has no guidance weight of its own).
"""
from __future__ import annotations

import torch

from algorithms.base import DataSpec, Frozen, Trained, check_specs
from algorithms.diffusion.samplers import cfg_denoiser, student_sample
from algorithms.diffusion.schedules import append_zero
from algorithms.nets.unet1d import drop_condition
from algorithms.planner import Planner, PlannerNet, PlannerPolicy, known_entries, window_condition, window_trajectory
from algorithms.student import ctm_dsm_terms, warm_start


def jump(net: PlannerNet, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor, cond: torch.Tensor | None,
         known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """G(x, t, s) for noise levels t >= s on the net's grid (s = 0: a clean sample); known entries stay inpainted."""
    s_step = torch.where(s > 0, net.step_of(s), torch.full_like(s, -1, dtype=torch.long))
    g = net.x0_at_sigma(x, t, cond, known, mask, s=s_step)
    ratio = (s / t.clamp_min(1e-12)).view(-1, 1, 1)
    return torch.where((t == 0).view(-1, 1, 1), x, ratio * x + (1 - ratio) * g)  # G(x, 0, 0) = x


def teacher_denoiser(teacher: PlannerNet, cond: torch.Tensor | None, w: float, known: torch.Tensor, mask: torch.Tensor):
    """D(x, sigma) of the teacher planner with classifier-free guidance weight w on ``cond``."""
    d = lambda x, sigma, c: teacher.x0_at_sigma(x, sigma, c, known, mask)  # noqa: E731
    if cond is None:
        return lambda x, sigma: d(x, sigma, None)
    return cfg_denoiser(d, cond, w, teacher.null_condition(cond.shape[0]))


def descending_grid(net: PlannerNet) -> torch.Tensor:
    """The DDPM steps' noise levels from the top down, then 0: the CTM grid (n_diffusion_steps + 1 entries)."""
    return append_zero(net.sigmas().flip(0))


class PlannerCTD(Planner):
    """Built from a ``PlannerCTDConfig``; the frozen ``teacher`` is a trained ``planner`` stage."""

    name = "planner_ctd"
    needs: tuple[str, ...] = ("teacher",)

    def build_model(self, spec: DataSpec) -> PlannerNet:
        return PlannerNet(spec, self.cfg, two_times=True)

    def check_frozen(self, spec: DataSpec, frozen: dict[str, Trained]) -> None:
        """Refuse a teacher planner whose architecture or schedule differs (the warm start copies it whole)."""
        check_specs(spec, {k: t.spec for k, t in frozen.items()}, self.needs)
        teacher = frozen["teacher"]
        if teacher.method.name != "planner":
            raise ValueError(f"the frozen teacher is a {teacher.method.name} stage; planner_ctd distils a planner")
        own, theirs = self.build_model(teacher.spec).state_dict(), teacher.model.state_dict()
        bad = [k for k, v in theirs.items() if k not in own or own[k].shape != v.shape]
        if bad or not torch.allclose(own["alphas_cumprod"], theirs["alphas_cumprod"]):
            raise ValueError("planner_ctd must repeat its teacher planner's fields (horizon, n_diffusion_steps, "
                             "beta_schedule, down_dims, step_embed_dim, kernel_size, cond_mode, cond_embed_dim, "
                             f"condition); they differ{f' at {bad[0]}' if bad else ' in the noise schedule'}")

    def warm_start(self, model: PlannerNet, frozen: Frozen) -> None:
        """Start as the teacher planner: one Euler step of its ODE (the target-time embedding starts at zero)."""
        warm_start(model, frozen.nets["teacher"])

    def loss(self, model: PlannerNet, batch: dict[str, torch.Tensor], frozen: Frozen,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        teacher, target = frozen.nets["teacher"], frozen.nets["ema"]
        teacher.requires_grad_(False)
        target.requires_grad_(False)
        keep = self.train_rows(batch["future_obs"])
        if keep is not None:
            if not keep.any():  # every window is held out: nothing to learn from this batch
                zero = sum(p.sum() for p in model.parameters()) * 0.0
                return zero, {"loss": zero.detach()}
            batch = {k: v[keep] for k, v in batch.items()}
        states, x0 = window_trajectory(model, batch)
        known, mask = known_entries(model, states[:, 0], states[:, -1] if self.cfg.inpaint_goal else None, x0)
        cond = window_condition(model, batch["future_obs"], states)
        if cond is not None:  # null-condition rows distil the teacher's unconditional ODE, as the planner learnt it
            cond = drop_condition(cond, self.cfg.cond_drop, generator=generator)
        ctm, dsm = ctm_dsm_terms(lambda x, t, s: jump(model, x, t, s, cond, known, mask),
                                 lambda x, t, s: jump(target, x, t, s, cond, known, mask),
                                 teacher_denoiser(teacher, cond, self.cfg.guidance, known, mask),
                                 x0, descending_grid(model), self.cfg.solver_steps_max, self.cfg.huber_c, generator)
        loss = self.cfg.alpha * ctm + self.cfg.beta * dsm
        return loss, {"loss": loss.detach(), "ctm": ctm.detach(), "dsm": dsm.detach()}

    def make_policy(self, model: PlannerNet, spec: DataSpec) -> "PlannerCTDPolicy":
        return PlannerCTDPolicy(model, self.cfg)


class PlannerCTDPolicy(PlannerPolicy):
    """The planner's policy (closed loop, ``plan``, ``sample``) with the student's jump as the sampler."""

    def generate(self, x: torch.Tensor, known: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor | None,
                 null: torch.Tensor | None, w: float, generator: torch.Generator | None = None) -> torch.Tensor:
        m, steps = self.model, self.cfg.sample_steps
        grid = descending_grid(m)
        c = null if cond is None else cond
        n = len(grid) - 1
        renoise = [float(grid[round(i * n / steps)]) for i in range(1, steps)]
        return student_sample(lambda x, t, s: jump(m, x, t, s, c, known, mask), x * (1 + grid[0] ** 2).sqrt(),
                              float(grid[0]), renoise, generator)
