"""EDM preconditioning (Karras et al. 2022) for the teacher, CTM preconditioning for the student, the
pseudo-Huber distance and training-sigma sampling.

Noise levels are EDM sigmas (x_sigma = x_0 + sigma * eps); "time" t in the thesis is sigma here.
"""
from __future__ import annotations

import torch
from torch import nn


def edm_scalings(sigma: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """B -> (c_skip, c_out, c_in), each B. EDM Table 1."""
    var = sigma**2 + sigma_data**2
    return sigma_data**2 / var, sigma * sigma_data / var.sqrt(), 1 / var.sqrt()


def c_noise(sigma: torch.Tensor, sigma_min: float = 0.002) -> torch.Tensor:
    """B -> B: log(sigma) / 4, clamped at sigma_min so sigma = 0 (the student's target time 0) is finite."""
    return sigma.clamp_min(sigma_min).log() / 4


def _b(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1)


class EDMDenoiser(nn.Module):
    """D(x, sigma) = c_skip x + c_out F(c_in x, c_noise(sigma)) around any ConditionalUnet1D-like ``inner``.

    forward(x: B,H,D, sigma: B, global_cond: B,G | None, cond: B,C | None) -> denoised B,H,D.
    """

    def __init__(self, inner: nn.Module, sigma_data: float = 0.5, sigma_min: float = 0.002):
        super().__init__()
        self.inner, self.sigma_data, self.sigma_min = inner, sigma_data, sigma_min

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, global_cond: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        sigma = sigma.expand(x.shape[0]) if sigma.dim() == 0 else sigma
        c_skip, c_out, c_in = edm_scalings(sigma, self.sigma_data)
        f = self.inner(_b(c_in) * x, c_noise(sigma, self.sigma_min), global_cond, cond=cond)
        return _b(c_skip) * x + _b(c_out) * f

    def training_target(self, x0: torch.Tensor, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The clean target expressed on F's scale, (x0 - c_skip x) / c_out: a distance to it is EDM's
        lambda(sigma)-weighted distance d(x0, D) / c_out."""
        c_skip, c_out, _ = edm_scalings(sigma, self.sigma_data)
        return (x0 - _b(c_skip) * noisy) / _b(c_out)

    def raw(self, x: torch.Tensor, sigma: torch.Tensor, global_cond: torch.Tensor | None = None,
            cond: torch.Tensor | None = None) -> torch.Tensor:
        """F's output (no skip), for the weighted loss with ``training_target``."""
        _, _, c_in = edm_scalings(sigma, self.sigma_data)
        return self.inner(_b(c_in) * x, c_noise(sigma, self.sigma_min), global_cond, cond=cond)


class CTMDenoiser(nn.Module):
    """The student G(x_t, t, s): a jump along the teacher's PF-ODE from noise level t to s <= t (CTM, Kim et al.).

    G(x, t, s) = (s / t) x + (1 - s / t) g(x, t, s),  g = c_skip(t) x + c_out(t) F(c_in(t) x, c_noise(t), c_noise(s)).
    G(x, t, t) = x exactly; G(x, t, 0) = g is a one-step sample. With F's s-embedding at zero (warm start) g is
    the teacher's D and G is exactly one Euler step of the teacher's ODE from t to s.

    forward(x: B,H,D, t: B, s: B, global_cond: B,G | None, cond: B,C | None) -> B,H,D.
    """

    def __init__(self, inner: nn.Module, sigma_data: float = 0.5, sigma_min: float = 0.002):
        super().__init__()
        self.inner, self.sigma_data, self.sigma_min = inner, sigma_data, sigma_min

    def forward(self, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor, global_cond: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        n = x.shape[0]
        t = t.expand(n) if t.dim() == 0 else t
        s = s.expand(n) if s.dim() == 0 else s
        c_skip, c_out, c_in = edm_scalings(t, self.sigma_data)
        f = self.inner(_b(c_in) * x, c_noise(t, self.sigma_min), global_cond, s=c_noise(s, self.sigma_min), cond=cond)
        g = _b(c_skip) * x + _b(c_out) * f
        ratio = _b(s / t.clamp_min(1e-12))  # t = s = 0 (k = 0 in the CTM loss): c_skip = 1, c_out = 0, so G = x
        return ratio * x + (1 - ratio) * g


def pseudo_huber(a: torch.Tensor, b: torch.Tensor, c: float | None = None) -> torch.Tensor:
    """B,... x B,... -> B: sqrt(||a - b||^2 + c^2) - c per sample; c defaults to 0.00054 sqrt(dim) (iCT)."""
    diff = (a - b).flatten(1)
    c = 0.00054 * diff.shape[1] ** 0.5 if c is None else c
    return (diff.pow(2).sum(1) + c**2).sqrt() - c


def lognormal_sigmas(n: int, p_mean: float = -1.2, p_std: float = 1.2, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """n training sigmas, log sigma ~ N(p_mean, p_std^2) (EDM)."""
    return (torch.randn(n, generator=generator, device=device) * p_std + p_mean).exp()


def bin_sigmas(n: int, sigmas: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """n training sigmas drawn uniformly from a discretised grid (e.g. karras_sigmas(80))."""
    idx = torch.randint(len(sigmas), (n,), generator=generator, device=sigmas.device)
    return sigmas[idx]
