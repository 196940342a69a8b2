"""Samplers driven by exact denoisers of a Gaussian, guidance and inpainting closures, NFE counting."""
import pytest
import torch

from algorithms.diffusion.samplers import (
    NFECounter,
    cfg_denoiser,
    ddim_sample,
    ddpm_sample,
    euler_sample,
    heun_sample,
    inpaint_denoiser,
    student_sample,
    student_times,
)
from algorithms.diffusion.schedules import alphas_cumprod, append_zero, ddpm_betas, karras_sigmas

MU, STD = 1.5, 0.3


def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """E[x0 | x_sigma] for x0 ~ N(MU, STD^2)."""
    return MU + STD**2 / (STD**2 + sigma.view(-1, 1, 1) ** 2) * (x - MU)


def gaussian_eps(ac: torch.Tensor):
    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = ac[t].view(-1, 1, 1)
        return (1 - a).sqrt() * (x - a.sqrt() * MU) / (a * STD**2 + 1 - a)

    return eps


@pytest.mark.parametrize("sampler, bins", [(heun_sample, 80), (euler_sample, 200)])
def test_exact_gaussian_denoiser_recovers_mean_and_std(sampler, bins):
    torch.manual_seed(0)
    sigmas = append_zero(karras_sigmas(bins))
    counter = NFECounter(gaussian_denoiser)
    x = sampler(counter, torch.randn(20000, 1, 1) * sigmas[0], sigmas)
    assert abs(x.mean().item() - MU) < 0.02 and abs(x.std().item() - STD) < 0.02
    assert counter.n == (2 * bins - 1 if sampler is heun_sample else bins)


@pytest.mark.parametrize("kind, steps, tol", [("ddpm", 100, 0.03), ("ddim", 50, 0.03), ("ddim", 10, 0.1)])
def test_ddpm_ddim_with_exact_eps(kind, steps, tol):
    torch.manual_seed(0)
    ac = alphas_cumprod(ddpm_betas(100, "cosine"))
    counter = NFECounter(gaussian_eps(ac))
    x0 = torch.randn(20000, 1, 1)
    x = ddpm_sample(counter, x0, ac) if kind == "ddpm" else ddim_sample(counter, x0, ac, steps)
    assert abs(x.mean().item() - MU) < tol and abs(x.std().item() - STD) < tol  # DDIM(10) has ODE error
    assert counter.n == steps


def test_schedules():
    s = karras_sigmas(80, 0.002, 80.0, 7.0)
    assert s.shape == (80,) and torch.isclose(s[0], torch.tensor(80.0)) and torch.isclose(s[-1], torch.tensor(0.002))
    assert (s[1:] < s[:-1]).all()
    ac = alphas_cumprod(ddpm_betas(100, "cosine"))
    assert (ac[1:] < ac[:-1]).all() and 0 <= ac[-1] < 0.01 < 0.99 < ac[0] <= 1
    ac = alphas_cumprod(ddpm_betas(1000, "linear"))  # Ho et al.'s linear betas are meant for 1000 steps
    assert (ac[1:] < ac[:-1]).all() and 0 < ac[-1] < 0.01 < 0.99 < ac[0] <= 1


def test_student_sample_counts_steps_and_uses_schedule():
    calls = []

    def G(x, t, s):
        calls.append((t[0].item(), s[0].item()))
        return torch.zeros_like(x)

    times = student_times(3)
    assert len(times) == 2 and 80 > times[0] > times[1] > 0.002
    counter = NFECounter(G)
    student_sample(counter, torch.randn(4, 2, 2) * 80, 80.0, times)
    assert counter.n == 3 and calls == [(80.0, 0.0), (times[0], 0.0), (times[1], 0.0)]


def test_cfg_weights():
    def denoise(x, sigma, cond):
        return x + cond.view(-1, 1, 1)

    x, sigma, cond = torch.randn(3, 2, 2), torch.ones(3), torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(cfg_denoiser(denoise, cond, 0.0)(x, sigma), x)
    assert torch.allclose(cfg_denoiser(denoise, cond, 1.0)(x, sigma), denoise(x, sigma, cond))
    assert torch.allclose(cfg_denoiser(denoise, cond, 2.0)(x, sigma), x + 2 * cond.view(-1, 1, 1))


def test_inpainting_keeps_known_entries():
    torch.manual_seed(0)
    sigmas = append_zero(karras_sigmas(20))
    known = torch.randn(8, 6, 3)
    mask = torch.zeros(8, 6, 3, dtype=torch.bool)
    mask[:, 0, :2] = True  # e.g. the first state of a plan
    x = heun_sample(inpaint_denoiser(gaussian_denoiser, known, mask), torch.randn(8, 6, 3) * sigmas[0], sigmas)
    assert torch.allclose(x[mask], known[mask], atol=1e-5)
    assert not torch.allclose(x[~mask], known[~mask], atol=0.1)
