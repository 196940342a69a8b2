"""Training windows cut from an episode store: the batch layout every method reads.

For each step n of an episode (see ``algorithms/base.py``):
    obs_hist   h, obs_dim   s_{n-h+1..n}, the first observation repeated before the episode starts
    actions    c, act_dim   a_{n..n+c-1}, the last action repeated past the episode end
    future_obs c, obs_dim   s_{n..n+c-1}, padded the same way
    obs, action, next_obs   s_n, a_n, s_{n+1} (the final observation after the last step)
    rtg                     discounted return-to-go from s_n, with the termination penalty
    cond       cond_dim     the episode's condition vector (zeros when the env has none)
Index arrays are built once; a batch is a gather, so sampling costs no Python loop per row.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch

from algorithms.base import DataSpec
from algorithms.reward_model import discounted_return_to_go
from rayexp.data.store import EpisodeStore


@dataclass
class Windows:
    spec: DataSpec
    arrays: dict[str, np.ndarray]  # per-step arrays, N rows
    hist_idx: np.ndarray  # N, h
    fut_idx: np.ndarray  # N, c
    next_obs: np.ndarray  # N, obs_dim

    def __len__(self) -> int:
        return len(self.hist_idx)

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        a = self.arrays
        out = {
            "obs_hist": a["obs"][self.hist_idx[idx]],
            "actions": a["action"][self.fut_idx[idx]],
            "future_obs": a["obs"][self.fut_idx[idx]],
            "obs": a["obs"][idx],
            "action": a["action"][idx],
            "next_obs": self.next_obs[idx],
            "rtg": a["rtg"][idx],
            "cond": a["cond"][idx],
        }
        return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in out.items()}

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return self.batch(rng.integers(0, len(self), size=batch_size))


def _window_index(starts: np.ndarray, lengths: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """For every step, the indices step+offset clipped to its own episode. N, len(offsets)."""
    ep_start = np.repeat(starts, lengths)
    ep_end = np.repeat(starts + lengths - 1, lengths)
    n = np.arange(lengths.sum())
    return np.clip(n[:, None] + offsets[None, :], ep_start[:, None], ep_end[:, None])


def condition_vector(condition, cond_dim: int) -> np.ndarray:
    """An episode's JSON condition as a float vector: a list of numbers is used as is; else zeros."""
    vec = np.zeros(cond_dim, dtype=np.float32)
    if cond_dim and isinstance(condition, (list, tuple)) and all(isinstance(x, (int, float)) for x in condition):
        vec[: min(cond_dim, len(condition))] = condition[:cond_dim]
    return vec


def build_windows(store: EpisodeStore, obs_history: int, action_horizon: int, gamma: float,
                  termination_penalty: float = -100.0, cond_dim: int = 0) -> Windows:
    a = store.arrays()
    table = store.episodes()
    lengths = table.column("length").to_numpy()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rtg = np.concatenate([
        discounted_return_to_go(a["reward"][s:s + n], a["terminal"][s:s + n], gamma, termination_penalty)
        for s, n in zip(starts, lengths)
    ])
    conds = [condition_vector(json.loads(c), cond_dim) for c in table.column("condition").to_pylist()]
    a["rtg"] = rtg.astype(np.float32)
    a["cond"] = np.repeat(np.stack(conds) if conds else np.zeros((0, cond_dim)), lengths, axis=0)
    hist_idx = _window_index(starts, lengths, np.arange(-obs_history + 1, 1))
    fut_idx = _window_index(starts, lengths, np.arange(action_horizon))
    final = np.stack(table.column("final_obs").to_numpy(zero_copy_only=False)).astype(np.float32)
    next_obs = np.empty_like(a["obs"])
    next_obs[:-1] = a["obs"][1:]
    next_obs[starts + lengths - 1] = final
    spec = DataSpec(
        obs_dim=store.meta.obs_dim, act_dim=store.meta.act_dim, obs_history=obs_history,
        action_horizon=action_horizon, cond_dim=cond_dim, gamma=gamma,
        discrete_actions=store.meta.discrete_actions, stats=dataset_stats(a),
    )
    return Windows(spec, a, hist_idx, fut_idx, next_obs)


def dataset_stats(a: dict[str, np.ndarray]) -> dict[str, list[float]]:
    def f(x):
        return [float(v) for v in np.atleast_1d(x)]

    return {
        "obs_mean": f(a["obs"].mean(0)), "obs_std": f(a["obs"].std(0)),
        "act_mean": f(a["action"].mean(0)), "act_std": f(a["action"].std(0)),
        "act_min": f(a["action"].min(0)), "act_max": f(a["action"].max(0)),
        "rtg_mean": f(a["rtg"].mean()), "rtg_std": f(a["rtg"].std()),
    }
