"""The one temporal 1D U-Net every diffusion model in rayexp uses (Diffusion-Policy ConditionalUnet1D style).

Shapes: x is B, H, D (horizon H, channels D = act_dim or obs_dim + act_dim); the network convolves along H.
Conditioning is FiLM: per residual block a linear map of the "global feature" (diffusion-time embedding,
optionally the student's target-time embedding, the flattened global condition, and in ``concat`` mode the
condition embedding) gives a per-channel scale and bias.

Sizes. Defaults are small so the CPU tests train in minutes; the thesis sizes (Tables B.1, B.2) are:

| setting        | step_embed_dim | down_dims               | horizon | kernel |
|----------------|----------------|-------------------------|---------|--------|
| MuJoCo         | 128            | [512, 1024, 2048]       | 16      | 5      |
| Maze2D U-Maze  | 256            | [256, 512, 1024]        | 128     | 5      |
| Maze2D Medium  | 256            | [512, 1024, 2048]       | 256     | 5      |
| Maze2D Large   | 256            | [256, 512, 1024, 2048]  | 384     | 5      |

Any H works: the input is padded at the end (edge values repeated) to a multiple of 2**(len(down_dims)-1)
and the output cropped back.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.configs import CondMode


class SinusoidalEmbedding(nn.Module):
    """B -> B, dim. Standard transformer sinusoidal embedding of a scalar (time or noise level)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / max(half - 1, 1))
        arg = t.float()[:, None] * freqs[None]
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


def time_mlp(dim: int) -> nn.Sequential:
    return nn.Sequential(SinusoidalEmbedding(dim), nn.Linear(dim, dim * 4), nn.Mish(), nn.Linear(dim * 4, dim))


class Conv1dBlock(nn.Sequential):
    """Conv1d -> GroupNorm -> Mish on B, C, H."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, n_groups: int):
        super().__init__(nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
                         nn.GroupNorm(min(n_groups, c_out), c_out), nn.Mish())


class FiLMResBlock(nn.Module):
    """Two conv blocks; the second is modulated by scale and bias computed from the global feature B, F."""

    def __init__(self, c_in: int, c_out: int, feat_dim: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.block1 = Conv1dBlock(c_in, c_out, kernel_size, n_groups)
        self.block2 = Conv1dBlock(c_out, c_out, kernel_size, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(feat_dim, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        scale, bias = self.film(feat)[..., None].chunk(2, dim=1)
        h = self.block1(x) * (1 + scale) + bias
        return self.block2(h) + self.skip(x)


class CrossAttention1d(nn.Module):
    """Features B, C, H attend to condition tokens B, E, N; Q, K, V are 1D convolutions (thesis A.4.3).

    With a single condition token (N = 1) the softmax is trivially 1 and the block is a learned,
    condition-dependent bias per position; use several tokens (e.g. one per waypoint) for real attention.
    """

    def __init__(self, channels: int, cond_embed_dim: int, dim: int = 64, kernel_size: int = 3):
        super().__init__()
        self.q = nn.Conv1d(channels, dim, kernel_size, padding=kernel_size // 2)
        self.k = nn.Conv1d(cond_embed_dim, dim, 1)
        self.v = nn.Conv1d(cond_embed_dim, dim, 1)
        self.out = nn.Conv1d(dim, channels, 1)
        self.norm = nn.GroupNorm(1, channels)

    def forward(self, x: torch.Tensor, cond_tokens: torch.Tensor) -> torch.Tensor:
        q = self.q(self.norm(x)).transpose(1, 2)  # B, H, d
        k, v = self.k(cond_tokens).transpose(1, 2), self.v(cond_tokens).transpose(1, 2)  # B, N, d
        return x + self.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2))


class ConditionalUnet1D(nn.Module):
    """forward(x: B,H,D, t: B, global_cond: B,G | None, s: B | None, cond: B,C or B,N,C | None) -> B,H,D.

    ``t`` and ``s`` are already-scaled noise inputs (e.g. EDM's c_noise = log(sigma) / 4); the wrappers in
    ``algorithms.diffusion.edm`` choose them. ``two_times`` adds the student's target-time embedding; its last
    layer starts at zero, so a warm-started student initially ignores s (see ``student.warm_start``).
    """

    def __init__(self, input_dim: int, global_cond_dim: int = 0, step_embed_dim: int = 64,
                 down_dims: tuple[int, ...] | list[int] = (32, 64, 128), kernel_size: int = 5, n_groups: int = 8,
                 two_times: bool = False, cond_dim: int = 0, cond_embed_dim: int = 32, cond_mode: CondMode = "none"):
        super().__init__()
        down_dims = list(down_dims)
        self.cond_mode = cond_mode if cond_dim > 0 else "none"
        self.time_embed = time_mlp(step_embed_dim)
        self.s_embed = time_mlp(step_embed_dim) if two_times else None
        if self.s_embed is not None:
            nn.init.zeros_(self.s_embed[-1].weight)
            nn.init.zeros_(self.s_embed[-1].bias)
        self.cond_embed = nn.Sequential(nn.Linear(cond_dim, cond_embed_dim), nn.Mish(),
                                        nn.Linear(cond_embed_dim, cond_embed_dim)) if self.cond_mode != "none" else None
        feat = step_embed_dim + global_cond_dim + (cond_embed_dim if self.cond_mode == "concat" else 0)
        attn = self.cond_mode == "cross_attention"

        def res(c_in: int, c_out: int) -> FiLMResBlock:
            return FiLMResBlock(c_in, c_out, feat, kernel_size, n_groups)

        def cross(c: int) -> nn.Module:
            return CrossAttention1d(c, cond_embed_dim) if attn else nn.Identity()

        dims = [input_dim] + down_dims
        n = len(down_dims)
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == n - 1
            self.down.append(nn.ModuleList([res(c_in, c_out), cross(c_out), res(c_out, c_out), cross(c_out),
                                            nn.Identity() if last else nn.Conv1d(c_out, c_out, 3, 2, 1)]))
        self.mid = nn.ModuleList([res(down_dims[-1], down_dims[-1]), res(down_dims[-1], down_dims[-1])])
        self.up = nn.ModuleList()
        for c_out, c_in in reversed(list(zip(down_dims[:-1], down_dims[1:]))):
            self.up.append(nn.ModuleList([res(2 * c_in, c_out), cross(c_out), res(c_out, c_out), cross(c_out),
                                          nn.ConvTranspose1d(c_out, c_out, 4, 2, 1)]))
        self.final = nn.Sequential(Conv1dBlock(down_dims[0], down_dims[0], kernel_size, n_groups),
                                   nn.Conv1d(down_dims[0], input_dim, 1))
        self.multiple = 2 ** (n - 1)

    def _features(self, t: torch.Tensor, global_cond: torch.Tensor | None, s: torch.Tensor | None,
                  cond_tokens: torch.Tensor | None) -> torch.Tensor:
        emb = self.time_embed(t)
        if self.s_embed is not None:
            if s is None:
                raise ValueError("two_times network needs the target time s")
            emb = emb + self.s_embed(s)
        parts = [emb]
        if global_cond is not None:
            parts.append(global_cond.flatten(1))
        if self.cond_mode == "concat":
            parts.append(cond_tokens.mean(1))
        return torch.cat(parts, dim=-1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, global_cond: torch.Tensor | None = None,
                s: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        horizon = x.shape[1]
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        s = s.expand(x.shape[0]) if s is not None and s.dim() == 0 else s
        tokens = None
        if self.cond_embed is not None:
            if cond is None:
                raise ValueError(f"cond_mode={self.cond_mode!r} needs cond")
            tokens = self.cond_embed(cond if cond.dim() == 3 else cond[:, None])  # B, N, E
        feat = self._features(t, global_cond, s, tokens)
        tokens_c = tokens.transpose(1, 2) if tokens is not None else None  # B, E, N

        pad = (-horizon) % self.multiple
        h = F.pad(x.transpose(1, 2), (0, pad), mode="replicate") if pad else x.transpose(1, 2)  # B, D, H'
        skips = []
        for res1, att1, res2, att2, down in self.down:
            h = self._cross(att2, res2(self._cross(att1, res1(h, feat), tokens_c), feat), tokens_c)
            skips.append(h)
            h = down(h)
        for block in self.mid:
            h = block(h, feat)
        for res1, att1, res2, att2, up in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = up(self._cross(att2, res2(self._cross(att1, res1(h, feat), tokens_c), feat), tokens_c))
        return self.final(h)[..., :horizon].transpose(1, 2)

    @staticmethod
    def _cross(block: nn.Module, h: torch.Tensor, tokens_c: torch.Tensor | None) -> torch.Tensor:
        return h if isinstance(block, nn.Identity) else block(h, tokens_c)


def drop_condition(cond: torch.Tensor, p: float, null: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Classifier-free-guidance condition dropout: B, ... -> B, ... with a Bernoulli(p) subset of rows replaced
    by ``null`` (broadcastable to one row, e.g. a learned ``nn.Parameter``) or by zeros when ``null`` is None."""
    if p <= 0:
        return cond
    drop = torch.rand(cond.shape[0], device=cond.device, generator=generator) < p
    drop = drop.view(-1, *[1] * (cond.dim() - 1))
    fill = torch.zeros_like(cond) if null is None else null.expand_as(cond)
    return torch.where(drop, fill, cond)
