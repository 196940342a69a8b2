"""Noise schedules: the Karras (EDM) sigma grid and DDPM betas / cumulative alphas."""
from __future__ import annotations

import math

import torch


def karras_sigmas(n: int = 80, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """n sigmas from sigma_max down to sigma_min, spaced uniformly in sigma**(1/rho) (EDM eq. 5). Shape n."""
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return ((hi + ramp * (lo - hi)) ** rho).float()


def append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    """n -> n + 1: the sampling grid ends at sigma = 0 (clean data)."""
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def ddpm_betas(n: int = 100, kind: str = "cosine", beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """n betas, linear (Ho et al.) or cosine (Nichol & Dhariwal, clipped at 0.999). Shape n."""
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, n, dtype=torch.float64).float()
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(n + 1, dtype=torch.float64) / n
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999).float()
    raise ValueError(f"unknown beta schedule {kind!r}; use 'linear' or 'cosine'")


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """n -> n: alpha_bar_t = prod_{i<=t} (1 - beta_i)."""
    return torch.cumprod(1 - betas.double(), dim=0).float()
