"""CTM student and the RACTD loss (thesis 3.2.3, 3.3.3): consistency trajectory distillation of the EDM teacher
plus DSM plus an optional reward objective through a frozen return-to-go model.

L = alpha L_CTM + beta L_DSM + reward_weight L_Reward  (the thesis calls reward_weight sigma)
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from algorithms.base import DataSpec, Frozen, MethodBase, Policy, Trained, check_specs
from algorithms.configs import CTMStudentConfig
from algorithms.diffusion.edm import CTMDenoiser, pseudo_huber
from algorithms.diffusion.samplers import student_sample, student_times
from algorithms.diffusion.schedules import append_zero, karras_sigmas
from algorithms.teacher import ActionDiffusionNet, as_obs_tensor, build_unet, reward_term


def warm_start(student_model: nn.Module, teacher_model: nn.Module) -> list[str]:
    """Copy every teacher weight whose name and shape match into the student; returns the copied names.
    The student's target-time embedding is not in the teacher and keeps its zero init."""
    own = student_model.state_dict()
    copied = [k for k, v in teacher_model.state_dict().items() if k in own and own[k].shape == v.shape]
    student_model.load_state_dict({k: teacher_model.state_dict()[k] for k in copied}, strict=False)
    return copied


def _b(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1)


@torch.no_grad()
def teacher_heun(denoise, x: torch.Tensor, grid: torch.Tensor, i: torch.Tensor, n: int) -> torch.Tensor:
    """n Heun steps of the teacher's PF-ODE along ``grid`` from grid[i] to grid[i + n], per sample (i: B).
    Requires grid[i + n] > 0."""
    for m in range(n):
        s, s_next = grid[i + m], grid[i + m + 1]
        d = (x - denoise(x, s)) / _b(s)
        x_e = x + _b(s_next - s) * d
        d_next = (x_e - denoise(x_e, s_next)) / _b(s_next)
        x = x + _b(s_next - s) * (d + d_next) / 2
    return x


def ctm_dsm_terms(G: Callable, G_target: Callable, teacher_denoise: Callable, x0: torch.Tensor, grid: torch.Tensor,
                  solver_steps_max: int, huber_c: float | None = None,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_CTM, L_DSM) for clean samples x0 B,... on a descending noise grid ending at 0 (bins + 1 entries).
    G / G_target(x, t: B, s: B) are the student and its EMA target; teacher_denoise(x, sigma: B) the teacher's D.

    Draw grid indices i < j < l (t = grid[i] > u = grid[j] > k = grid[l] >= 0), then
      L_CTM = d(G_tgt(G(x_t, t, k), k, 0), G_tgt(G_tgt(Heun_teacher(x_t, t -> u), u, k), k, 0))
      L_DSM = d(x_0, G(x_t, t, 0))
    """
    bins, dev, B = len(grid) - 1, x0.device, x0.shape[0]
    # n is a Python loop count: the one host synchronisation a step of a CTM loss needs on a GPU
    n = int(torch.randint(1, solver_steps_max + 1, (1,), generator=generator, device=dev))
    n = min(n, bins - 1)
    i = torch.randint(0, bins - n, (B,), generator=generator, device=dev)  # u = grid[i + n] > 0
    j = i + n
    l = j + 1 + (torch.rand(B, generator=generator, device=dev) * (bins - j).float()).long()  # j < l <= bins
    t, u, k = grid[i], grid[j], grid[l]
    zero = torch.zeros_like(t)
    x_t = x0 + _b(t) * torch.randn(x0.shape, generator=generator, device=dev)
    est_0 = G_target(G(x_t, t, k), k, zero)
    with torch.no_grad():
        x_u = teacher_heun(teacher_denoise, x_t, grid, i, n)
        tgt_0 = G_target(G_target(x_u, u, k), k, zero)
    ctm = pseudo_huber(est_0, tgt_0, huber_c).mean()
    dsm = pseudo_huber(x0, G(x_t, t, zero), huber_c).mean()
    return ctm, dsm


def ractd_loss(student: ActionDiffusionNet, target: ActionDiffusionNet, teacher: ActionDiffusionNet,
               reward_model: nn.Module | None, batch: dict[str, torch.Tensor], cfg: CTMStudentConfig,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """RACTD loss on a batch (obs_hist B,h,O; actions B,c,A; obs B,O). ``target`` is the EMA student
    (stop-gradient); teacher, target and reward model are set to requires_grad False here. L_CTM and L_DSM on the
    Karras grid (``ctm_dsm_terms``), L_Reward = -R(s_n, first action of G(x_T, T, 0)).
    """
    for net in (target, teacher, reward_model):
        if net is not None:
            net.requires_grad_(False)
    x0 = student.act_norm(batch["actions"])
    gc = student.global_cond(batch["obs_hist"])
    B, dev = x0.shape[0], x0.device
    grid = append_zero(karras_sigmas(cfg.bins, cfg.sigma_min, cfg.sigma_max, cfg.rho)).to(dev)  # bins + 1, ends at 0
    ctm, dsm = ctm_dsm_terms(lambda x, a, b: student.net(x, a, b, gc), lambda x, a, b: target.net(x, a, b, gc),
                             lambda x, s: teacher.net(x, s, gc), x0, grid, cfg.solver_steps_max, cfg.huber_c, generator)
    loss = cfg.alpha * ctm + cfg.beta * dsm
    metrics = {"ctm": ctm.detach(), "dsm": dsm.detach()}
    if cfg.reward_weight > 0:
        if reward_model is None:
            raise ValueError("reward_weight > 0 needs a reward model")
        x_T = cfg.sigma_max * torch.randn(x0.shape, generator=generator, device=dev)
        x_0 = student.net(x_T, x_T.new_full((B,), cfg.sigma_max), x_T.new_zeros(B), gc)
        r = reward_term(reward_model, batch["obs"], x_0, student)
        loss = loss + cfg.reward_weight * r
        metrics["reward_loss"] = r.detach()
    metrics["loss"] = loss.detach()
    return loss, metrics


SCHEDULE_KEYS = ("sigma_min", "sigma_max", "sigma_data")


def check_teacher(student_cfg, teacher: Trained, teacher_method: str) -> None:
    """Refuse a teacher the student cannot start from: another method, another U-Net or another noise schedule."""
    t = teacher.method
    if t.name != teacher_method:
        raise ValueError(f"the frozen teacher is a {t.name} stage; {student_cfg.name} distils a {teacher_method}")
    bad = [k for k in SCHEDULE_KEYS if getattr(t.cfg, k) != getattr(student_cfg, k)]
    bad += [f"unet.{k}" for k, v in student_cfg.unet.model_dump().items() if getattr(t.cfg.unet, k) != v]
    if bad:
        shown = ", ".join(f"{k} {_field(t.cfg, k)} != {_field(student_cfg, k)}" for k in bad)
        raise ValueError(f"the student must repeat its teacher's architecture and noise schedule ({shown}); "
                         "copy the teacher stage's values")


def _field(cfg, dotted: str):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


class CTMStudent(MethodBase):
    name = "ctm_student"
    teacher_method = "edm_teacher"
    """The method of the frozen ``teacher`` stage it distils and starts from."""

    def __init__(self, cfg: CTMStudentConfig):
        self.cfg = cfg
        self.needs = ("teacher", "reward") if cfg.reward_weight > 0 else ("teacher",)

    def build_model(self, spec: DataSpec) -> ActionDiffusionNet:
        c = self.cfg
        return ActionDiffusionNet(spec, CTMDenoiser(build_unet(spec, c.unet, two_times=True), c.sigma_data, c.sigma_min))

    def check_frozen(self, spec: DataSpec, frozen: dict[str, Trained]) -> None:
        check_specs(spec, {k: t.spec for k, t in frozen.items()}, self.needs)
        check_teacher(self.cfg, frozen["teacher"], self.teacher_method)

    def warm_start(self, model: ActionDiffusionNet, frozen: Frozen) -> None:
        """Start as the teacher: with the target-time embedding at zero, G is one Euler step of its ODE."""
        warm_start(model, frozen.nets["teacher"])

    def loss(self, model: ActionDiffusionNet, batch: dict[str, torch.Tensor], frozen: Frozen,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        nets = frozen.nets
        return ractd_loss(model, nets["ema"], nets["teacher"], nets.get("reward"), batch, self.cfg, generator)

    def make_policy(self, model: ActionDiffusionNet, spec: DataSpec, steps: int | None = None) -> Policy:
        c = self.cfg
        times = student_times(steps or c.sample_steps, c.sigma_min, c.sigma_max, c.rho)

        @torch.no_grad()
        def policy(obs_hist) -> torch.Tensor:
            obs_hist = as_obs_tensor(obs_hist, model)
            gc = model.global_cond(obs_hist)
            x = torch.randn(gc.shape[0], *model.shape, device=gc.device) * c.sigma_max
            x0 = student_sample(lambda x, t, s: model.net(x, t, s, gc), x, c.sigma_max, times)
            return model.act_norm.unnormalize(x0)

        return policy
