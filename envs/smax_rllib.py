"""The SMAX ParallelEnv as an RLlib ``MultiAgentEnv`` for MAPPO / IPPO (thesis §2.6.3, Table A.7).

Every agent sees a Dict observation, the shape RLlib's action-masking modules expect:

    obs          the agent's local observation (what the actor and the diffusion planner read)
    state        the global state plus the agent's one-hot index (what a centralized critic reads)
    action_mask  1 = available (the actor's logits of unavailable actions are pushed to -inf)

All agents act every step (dead ones may only stop, as in SMACv2) and the episode ends for all together.
The shared team reward goes to every agent; ``infos[agent]["won"]`` is the env's won flag.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from envs.smax import SMAXParallelEnv, make_smax_env


def agent_state(state: np.ndarray, index: int, n_agents: int) -> np.ndarray:
    """Global state D_s -> D_s + n_agents: the critic input of agent ``index`` (MAPPO's agent-specific state)."""
    return np.concatenate([state, np.eye(n_agents, dtype=np.float32)[index]]).astype(np.float32)


class SMAXMultiAgentEnv(MultiAgentEnv):
    """``config``: ``name`` (a ``make_smax_env`` name, e.g. smax-2v2-simple), ``seed`` and SMAX kwargs."""

    def __init__(self, config: dict | None = None, env: SMAXParallelEnv | None = None):
        super().__init__()
        worker = getattr(config, "worker_index", 0) * 100 + getattr(config, "vector_index", 0)
        config = dict(config or {})
        if env is None:
            seed = config.pop("seed", 0)
            env = make_smax_env(config.pop("name", "smax-3v3-simple"), seed=None if seed is None else seed + 1000 * worker,
                                **config)
        self.env = env
        self.possible_agents = list(env.possible_agents)
        self.agents = list(self.possible_agents)
        n, act = len(self.possible_agents), env.action_space(self.possible_agents[0])
        space = gym.spaces.Dict({
            "obs": env.observation_space(self.possible_agents[0]),
            "state": gym.spaces.Box(-np.inf, np.inf, (env.state_space.shape[0] + n,), np.float32),
            "action_mask": gym.spaces.Box(0.0, 1.0, (act.n,), np.float32),
        })
        self.observation_spaces = {a: space for a in self.possible_agents}
        self.action_spaces = {a: act for a in self.possible_agents}

    def _dict_obs(self, obs: dict, infos: dict) -> dict:
        state, n = self.env.state(), len(self.possible_agents)
        return {a: {"obs": obs[a], "state": agent_state(state, i, n),
                    "action_mask": infos[a]["action_mask"].astype(np.float32)}
                for i, a in enumerate(self.possible_agents)}

    def reset(self, *, seed=None, options=None):
        obs, infos = self.env.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        return self._dict_obs(obs, infos), infos

    def step(self, action_dict):
        obs, rewards, terms, truncs, infos = self.env.step(action_dict)
        done_term, done_trunc = all(terms.values()), all(truncs.values())
        terms["__all__"], truncs["__all__"] = done_term, done_trunc
        if done_term or done_trunc:
            self.agents = []
        return self._dict_obs(obs, infos), rewards, terms, truncs, infos
