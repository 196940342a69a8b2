"""The one contract every trainable method follows.

A method is a plain object: it builds its network from the dataset's shapes, computes a loss on a
batch, and turns a trained network into a policy. The training loop (``rayexp.train``) owns the
optimizer, EMA, device, checkpoints and Ray; methods never see them.

Batches are dicts of float tensors (see ``rayexp.data.windows``):
    obs_hist  B, h, obs_dim   the last h observations (first one repeated at episode start)
    actions   B, c, act_dim   the next c actions (last one repeated at episode end)
    obs       B, obs_dim      the current observation s_n
    action    B, act_dim      the current action a_n
    rtg       B               discounted return-to-go from s_n
    cond      B, cond_dim     the element combination / condition vector (zeros when unused)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn


@dataclass(frozen=True)
class DataSpec:
    """Shapes and statistics a method needs from a dataset; saved inside every checkpoint."""

    obs_dim: int
    act_dim: int
    obs_history: int = 1  # h
    action_horizon: int = 16  # c
    cond_dim: int = 0
    gamma: float = 0.99
    discrete_actions: bool = False
    # obs_mean, obs_std, act_mean, act_std, act_min, act_max, rtg_mean, rtg_std (lists of floats)
    stats: dict[str, list[float]] = field(default_factory=dict)


# A policy maps a batch of observation histories (B, h, obs_dim) numpy-or-torch to actions (B, c, act_dim).
Policy = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Frozen:
    """Frozen networks a loss may use (teacher, reward model, EMA target); never trained by it."""

    nets: dict[str, nn.Module] = field(default_factory=dict)


class Trained(NamedTuple):
    """A trained stage read back from its checkpoint, as a method sees the frozen nets it needs."""

    method: "Method"
    model: nn.Module
    spec: DataSpec


@runtime_checkable
class Method(Protocol):
    """Everything the training loop (``rayexp.train``) calls on a method, in the order it calls it:
    ``needs`` (the frozen roles to load), ``check_frozen`` (refuse them before any training), ``build_model``,
    ``warm_start`` (initialise from the frozen nets), then ``loss`` every step; ``make_policy`` for evaluation."""

    name: str
    needs: tuple[str, ...]

    def check_frozen(self, spec: DataSpec, frozen: dict[str, Trained]) -> None: ...

    def build_model(self, spec: DataSpec) -> nn.Module: ...

    def warm_start(self, model: nn.Module, frozen: Frozen) -> None: ...

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], frozen: Frozen,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss, metrics). Random draws use ``generator`` (on the batch's device) and ``device=`` the batch's device;
        metrics are detached 0-d tensors, turned into floats by the loop only when it logs (no host sync per step)."""
        ...

    def make_policy(self, model: nn.Module, spec: DataSpec) -> Policy: ...


class MethodBase:
    """The hooks of ``Method`` that most methods leave as they are: no frozen nets, their own initialisation."""

    name: str = ""
    needs: tuple[str, ...] = ()

    def check_frozen(self, spec: DataSpec, frozen: dict[str, Trained]) -> None:
        check_specs(spec, {k: t.spec for k, t in frozen.items()}, self.needs)

    def warm_start(self, model: nn.Module, frozen: Frozen) -> None:
        return None


def check_specs(spec: DataSpec, frozen_specs: dict[str, DataSpec], needs: tuple[str, ...]) -> None:
    """Raise ValueError if a needed frozen checkpoint is missing or was trained on other shapes."""
    for name in needs:
        if name not in frozen_specs:
            raise ValueError(f"missing frozen checkpoint {name!r} (needs {needs})")
        other = frozen_specs[name]
        keys = ("obs_dim", "act_dim") if name == "reward" else ("obs_dim", "act_dim", "obs_history", "action_horizon")
        bad = [f"{k} {getattr(other, k)} != {getattr(spec, k)}" for k in keys if getattr(other, k) != getattr(spec, k)]
        if bad:
            raise ValueError(f"frozen {name!r} checkpoint does not match the dataset: {', '.join(bad)}")
