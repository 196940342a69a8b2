"""Soft actor-critic (Haarnoja et al. 2018): the tanh-Gaussian policy, one gradient update and a transition buffer.

Plain functions over callables, so the same update trains RLlib's ``DefaultSACTorchRLModule`` inside rayexp's
SAC algorithm (``rayexp.families.mujoco.sac``) and the minimal plain loop it is benchmarked against (``rayexp.bench.sac``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# RLlib's TorchSquashedGaussian clamps the log std to these, so training matches the env runners' exploration
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def tanh_gaussian_rsample(dist_inputs: torch.Tensor, generator: torch.Generator | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Reparameterised action in [-1, 1] and its log-probability from (mean, log std) concatenated on the last dim."""
    mean, log_std = dist_inputs.chunk(2, dim=-1)
    std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
    z = mean + std * torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    logp = (-0.5 * ((z - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    # log(1 - tanh(z)^2) in the numerically stable form
    logp = logp - (2.0 * (math.log(2.0) - z - F.softplus(-2.0 * z))).sum(-1)
    return torch.tanh(z), logp


@dataclass
class SACNets:
    """What an update needs of the networks: ``actor(obs)`` gives (mean, log std); ``critics(obs, act)`` and
    ``target_critics(obs, act)`` give the twin Q values; ``target_pairs`` are the (online, target) module pairs."""

    actor: Callable[[torch.Tensor], torch.Tensor]
    critics: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    target_critics: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    target_pairs: list[tuple[nn.Module, nn.Module]]


@dataclass
class SACOptimizers:
    critics: list[torch.optim.Optimizer]
    actor: torch.optim.Optimizer
    alpha: torch.optim.Optimizer


def sac_update(batch: dict[str, torch.Tensor], nets: SACNets, optim: SACOptimizers, log_alpha: torch.Tensor, *,
               gamma: float, tau: float, target_entropy: float) -> dict[str, torch.Tensor]:
    """One SAC step on a batch {obs, actions, rewards, next_obs, terminateds}: critics (MSE to the soft Bellman
    target), then the actor, then the temperature, then Polyak-averaged targets. Returns detached losses."""
    obs, act = batch["obs"], batch["actions"]
    alpha = log_alpha.detach().exp()
    with torch.no_grad():
        next_act, next_logp = tanh_gaussian_rsample(nets.actor(batch["next_obs"]))
        next_q = torch.min(*nets.target_critics(batch["next_obs"], next_act)) - alpha * next_logp
        target = batch["rewards"] + gamma * (1.0 - batch["terminateds"]) * next_q
    q1, q2 = nets.critics(obs, act)
    critic_loss = 0.5 * (F.mse_loss(q1, target) + F.mse_loss(q2, target))
    _step(optim.critics, critic_loss)

    new_act, logp = tanh_gaussian_rsample(nets.actor(obs))
    actor_loss = (alpha * logp - torch.min(*nets.critics(obs, new_act))).mean()
    _step([optim.actor], actor_loss)  # the critics' grads it leaves are zeroed by the next critic step

    alpha_loss = -(log_alpha * (logp.detach() + target_entropy)).mean()
    _step([optim.alpha], alpha_loss)
    with torch.no_grad():
        for online, target_net in nets.target_pairs:
            for p, tp in zip(online.parameters(), target_net.parameters()):
                tp.lerp_(p, tau)
    return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(), "alpha": alpha,
            "entropy": -logp.detach().mean()}


def _step(optimizers: list[torch.optim.Optimizer], loss: torch.Tensor) -> None:
    for o in optimizers:
        o.zero_grad(set_to_none=True)
    loss.backward()
    for o in optimizers:
        o.step()


class TransitionBuffer:
    """A replay buffer of transitions in flat numpy arrays, with each transition's episode number so complete
    episodes can be read back in order (D4RL's medium-replay tier is exactly this buffer's complete episodes)."""

    FIELDS = ("obs", "actions", "rewards", "next_obs", "terminateds", "dones", "episode")

    def __init__(self, capacity: int, obs_dim: int, act_dim: int):
        self.capacity, self.size = capacity, 0
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros((capacity, act_dim), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.terminateds = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, bool)  # terminated or truncated at this step
        self.episode = np.zeros(capacity, np.int64)

    def add(self, obs, actions, rewards, next_obs, terminated: bool, done: bool, episode: int) -> None:
        """One stretch of an episode: T observations, actions, rewards and their T next observations."""
        n = len(rewards)
        if self.size + n > self.capacity:
            raise ValueError(f"replay buffer full ({self.capacity} transitions); raise its capacity")
        s = slice(self.size, self.size + n)
        self.obs[s], self.actions[s], self.rewards[s], self.next_obs[s] = obs, actions, rewards, next_obs
        self.terminateds[s], self.dones[s], self.episode[s] = 0.0, False, episode
        self.terminateds[self.size + n - 1], self.dones[self.size + n - 1] = float(terminated), done
        self.size += n

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        idx = rng.integers(0, self.size, n)
        return {k: torch.from_numpy(getattr(self, k)[idx]) for k in ("obs", "actions", "rewards", "next_obs", "terminateds")}

    def complete_episodes(self) -> list[np.ndarray]:
        """Index arrays of every episode whose last step is in the buffer, in the order the episodes ended."""
        ep, done = self.episode[: self.size], self.dones[: self.size]
        order = np.argsort(ep, kind="stable")
        bounds = np.flatnonzero(np.diff(ep[order])) + 1
        groups = np.split(order, bounds)
        complete = [g for g in groups if len(g) and done[g[-1]]]
        return sorted(complete, key=lambda g: g[-1])

    def state(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k)[: self.size] for k in self.FIELDS}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        n = len(state["rewards"])
        if n > self.capacity:
            raise ValueError(f"saved replay buffer holds {n} transitions, more than the capacity {self.capacity}")
        for k in self.FIELDS:
            getattr(self, k)[:n] = state[k]
        self.size = n
