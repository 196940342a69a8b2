"""Samplers, one short function each, k-diffusion style: ``sampler(denoise, x, sigmas) -> x``.

``denoise(x: B,H,D, sigma: B) -> x0-estimate B,H,D`` is a closure over the network and its conditioning;
guidance (``cfg_denoiser``) and inpainting (``inpaint_denoiser``) are closures around it, so samplers never
know about them. DDPM/DDIM take ``eps(x: B,H,D, t: B int) -> B,H,D`` and the cumulative alphas.
Wrap any of these callables in ``NFECounter`` to count network evaluations.
"""
from __future__ import annotations

from typing import Callable

import torch

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class NFECounter:
    """Callable wrapper that counts calls (number of function evaluations)."""

    def __init__(self, fn: Callable[..., torch.Tensor]):
        self.fn, self.n = fn, 0

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        self.n += 1
        return self.fn(*args, **kwargs)


def _full(x: torch.Tensor, v: torch.Tensor | float) -> torch.Tensor:
    return x.new_full((x.shape[0],), float(v))


@torch.no_grad()
def euler_sample(denoise: Denoise, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """PF-ODE Euler steps along ``sigmas`` (descending, ending at 0); x starts as N(0, sigmas[0]^2). NFE = len - 1."""
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        d = (x - denoise(x, _full(x, sigma))) / sigma
        x = x + (sigma_next - sigma) * d
    return x


@torch.no_grad()
def heun_sample(denoise: Denoise, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """EDM's 2nd-order Heun (Algorithm 1, deterministic); Euler for the last step to sigma = 0.
    NFE = 2 (len - 1) - 1 when sigmas ends at 0."""
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        x = heun_step(denoise, x, sigma, sigma_next)
    return x


def heun_step(denoise: Denoise, x: torch.Tensor, sigma: torch.Tensor | float, sigma_next: torch.Tensor | float) -> torch.Tensor:
    """One Heun step of the PF-ODE from sigma to sigma_next (scalars); Euler if sigma_next == 0."""
    d = (x - denoise(x, _full(x, sigma))) / sigma
    x_next = x + (sigma_next - sigma) * d
    if float(sigma_next) == 0:
        return x_next
    d_next = (x_next - denoise(x_next, _full(x, sigma_next))) / sigma_next
    return x + (sigma_next - sigma) * (d + d_next) / 2


@torch.no_grad()
def ddim_sample(eps: Callable, x: torch.Tensor, alphas_cumprod: torch.Tensor, steps: int, eta: float = 0.0,
                generator: torch.Generator | None = None, clip_x0: float | None = None) -> torch.Tensor:
    """DDIM over ``steps`` evenly strided timesteps of a model trained on len(alphas_cumprod) steps.
    eta = 0 is deterministic DDIM, eta = 1 is ancestral (DDPM-like). x starts as N(0, I). NFE = steps."""
    n = len(alphas_cumprod)
    ts = torch.linspace(n - 1, 0, steps).round().long().tolist()
    for i, t in enumerate(ts):
        a = alphas_cumprod[t]
        a_prev = alphas_cumprod[ts[i + 1]] if i + 1 < len(ts) else alphas_cumprod.new_tensor(1.0)
        e = eps(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        x0 = (x - (1 - a).sqrt() * e) / a.sqrt()
        if clip_x0 is not None:
            x0 = x0.clamp(-clip_x0, clip_x0)
            e = (x - a.sqrt() * x0) / (1 - a).sqrt()
        var = eta**2 * (1 - a_prev) / (1 - a) * (1 - a / a_prev)
        x = a_prev.sqrt() * x0 + (1 - a_prev - var).clamp_min(0).sqrt() * e
        if eta > 0 and i + 1 < len(ts):
            x = x + var.sqrt() * torch.randn(x.shape, generator=generator, device=x.device)
    return x


def ddpm_sample(eps: Callable, x: torch.Tensor, alphas_cumprod: torch.Tensor, steps: int | None = None,
                generator: torch.Generator | None = None, clip_x0: float | None = None) -> torch.Tensor:
    """Ancestral DDPM sampling (eta = 1) over all (or ``steps`` strided) training timesteps. NFE = steps."""
    return ddim_sample(eps, x, alphas_cumprod, steps or len(alphas_cumprod), eta=1.0, generator=generator, clip_x0=clip_x0)


def student_times(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> list[float]:
    """The steps - 1 intermediate re-noising levels for multi-step student sampling (Karras-spaced, descending)."""
    from algorithms.diffusion.schedules import karras_sigmas

    return karras_sigmas(steps + 1, sigma_min, sigma_max, rho)[1:-1].tolist()


@torch.no_grad()
def student_sample(G: Callable, x: torch.Tensor, sigma_max: float, steps_schedule: list[float] = (),
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Consistency sampling with a trajectory model G(x, t: B, s: B): jump T -> 0, then for each t_i in
    ``steps_schedule`` re-noise to t_i and jump t_i -> 0 (thesis 3.5.3). x ~ N(0, sigma_max^2). NFE = 1 + len."""
    zero = _full(x, 0.0)
    x0 = G(x, _full(x, sigma_max), zero)
    for t in steps_schedule:
        noisy = x0 + t * torch.randn(x0.shape, generator=generator, device=x0.device)
        x0 = G(noisy, _full(x, t), zero)
    return x0


def cfg_denoiser(denoise: Callable, cond: torch.Tensor, w: float, null: torch.Tensor | None = None) -> Denoise:
    """Classifier-free guidance: D_u + w (D_c - D_u), with ``denoise(x, sigma, cond)`` and the null condition
    ``null`` (zeros if None). w = 0 is unconditional, w = 1 conditional (one network call: D_u cancels out);
    otherwise two network calls per evaluation."""
    null_cond = torch.zeros_like(cond) if null is None else null.expand_as(cond)
    if w == 1:
        return lambda x, sigma: denoise(x, sigma, cond)

    def guided(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        d_u = denoise(x, sigma, null_cond)
        return d_u if w == 0 else d_u + w * (denoise(x, sigma, cond) - d_u)

    return guided


def apply_inpainting(x: torch.Tensor, known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """B,H,D: entries where ``mask`` is true take the ``known`` value (both broadcastable to x)."""
    return torch.where(mask, known, x)


def inpaint_denoiser(denoise: Denoise, known: torch.Tensor, mask: torch.Tensor) -> Denoise:
    """Overwrite the known entries (e.g. the first state of a plan) in every denoised estimate. The ODE then
    moves those entries straight towards ``known`` and the last step (to sigma = 0) lands on it exactly."""

    def inpainted(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return apply_inpainting(denoise(x, sigma), known, mask)

    return inpainted
