"""Per-agent controllers for SMAX rounds: MAPPO's shared actor, random, BC, and the ego diffusion planner.

Every agent follows one contract: ``act(obs: obs_dim, mask: A) -> int``, always an available action (mask 1).
BC and the planner output one-hot action *scores* (discrete actions are one-hot in their training data); the
executed action is the best-scoring available one (``masked_argmax``).
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import torch

from algorithms.mappo_module import SharedActor


class Agent(Protocol):
    def act(self, obs: np.ndarray, mask: np.ndarray) -> int: ...


def masked_argmax(scores: np.ndarray, mask: np.ndarray) -> int:
    """The highest-scoring action among those with mask 1."""
    scores = np.where(np.asarray(mask) > 0, np.asarray(scores, dtype=np.float64), -np.inf)
    return int(np.argmax(scores))


class RandomAgent:
    """Uniform over the available actions."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def act(self, obs: np.ndarray, mask: np.ndarray) -> int:
        return int(self.rng.choice(np.flatnonzero(mask)))


class MAPPOAgent:
    """MAPPO's shared actor: samples from the masked softmax (``greedy``: takes its mode)."""

    def __init__(self, actor: SharedActor, rng: np.random.Generator, greedy: bool = False):
        self.actor, self.rng, self.greedy = actor, rng, greedy

    @torch.no_grad()
    def act(self, obs: np.ndarray, mask: np.ndarray) -> int:
        logits = self.actor(torch.tensor(np.asarray(obs), dtype=torch.float32)[None],
                            torch.tensor(np.asarray(mask), dtype=torch.float32)[None])[0].double()
        if self.greedy:
            return masked_argmax(logits.numpy(), mask)
        p = torch.softmax(logits, -1).numpy()
        return int(self.rng.choice(len(p), p=p / p.sum()))


class ScoreAgent:
    """A chunk policy (``obs_hist B, 1, obs_dim -> action scores B, c, A``: BC, the planner): the best-scoring
    available action of the plan's current step. ``replan_every`` 1 plans every step (closed loop, the thesis);
    k > 1 follows one plan's next k score vectors (k times fewer plans on a CPU). One agent plays one round."""

    def __init__(self, policy: Callable[[torch.Tensor], torch.Tensor], replan_every: int = 1):
        self.policy, self.replan_every = policy, replan_every
        self.plan: np.ndarray | None = None
        self.k = 0

    def act(self, obs: np.ndarray, mask: np.ndarray) -> int:
        if self.plan is None or self.k >= min(self.replan_every, len(self.plan)):
            self.plan = np.asarray(self.policy(torch.tensor(np.asarray(obs), dtype=torch.float32)[None, None])[0], np.float64)
            self.k = 0
        self.k += 1
        return masked_argmax(self.plan[self.k - 1], mask)


def load_actor(path: str) -> SharedActor:
    """A MAPPO actor saved by ``rayexp.families.smax.mappo.export_actor``: {obs_dim, n_actions, hidden, state_dict}."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    actor = SharedActor(blob["obs_dim"], blob["n_actions"], list(blob["hidden"]))
    actor.load_state_dict(blob["state_dict"])
    return actor.eval()


def floor_unseen_std(model: torch.nn.Module, min_std: float = 1e-3) -> torch.nn.Module:
    """Observation dimensions constant in the training data (a unit type the split never shows) get std 1, so an
    out-of-combination test observation is not scaled by 1/eps into the millions before the network sees it."""
    for norm in (m for m in model.modules() if m.__class__.__name__ == "Normalizer"):
        norm.std[norm.std < min_std] = 1.0
    return model
