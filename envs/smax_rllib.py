"""The SMAX ParallelEnv as an RLlib ``MultiAgentEnv`` for MAPPO / IPPO (thesis §2.6.3, Table A.7).

Every agent sees a Dict observation, the shape RLlib's action-masking modules expect:

    obs          the agent's local observation (what the actor and the diffusion planner read)
    state        the global state plus the agent's one-hot index (what a centralized critic reads)
    action_mask  1 = available (the actor's logits of unavailable actions are pushed to -inf)

All agents act every step (dead ones may only stop, as in SMACv2) and the episode ends for all together.
The shared team reward goes to every agent; ``infos[agent]["won"]`` is the env's won flag.

``SMAXVectorEnv`` is RLlib's vector env over an ``envs.smax_batch.SMAXBatch`` (all games in one compiled call);
``SMAXEnvRunner`` is RLlib's ``MultiAgentEnvRunner`` building it instead of its Python loop over sub-envs
(``SyncVectorMultiAgentEnv``). Pass it as ``env_runners(env_runner_cls=SMAXEnvRunner)``.
"""
from __future__ import annotations

from collections import Counter
from functools import partial

import gymnasium as gym
import numpy as np
from ray.rllib.callbacks.utils import make_callback
from ray.rllib.env.env_context import EnvContext
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.env.multi_agent_episode import MultiAgentEpisode
from ray.rllib.env.vector.vector_multi_agent_env import VectorMultiAgentEnv
from ray.rllib.utils.metrics import (
    NUM_AGENT_STEPS_SAMPLED,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_EPISODES,
    NUM_EPISODES_LIFETIME,
    NUM_MODULE_STEPS_SAMPLED,
    NUM_MODULE_STEPS_SAMPLED_LIFETIME,
)

from envs.smax import STOP, SMAXParallelEnv, make_smax_env
from envs.smax_connectors import env_to_module_connectors, module_to_env_connectors


def agent_states(state: np.ndarray, n_agents: int) -> np.ndarray:
    """Global state ... x D_s -> ... x n_agents x (D_s + n_agents): each agent's critic input (state + its one-hot
    index), for one game or a batch of games."""
    state = np.asarray(state, dtype=np.float32)
    lead = state.shape[:-1]
    return np.concatenate([np.broadcast_to(state[..., None, :], (*lead, n_agents, state.shape[-1])),
                           np.broadcast_to(np.eye(n_agents, dtype=np.float32), (*lead, n_agents, n_agents))], -1)


def dict_observations(agents: list[str], obs: np.ndarray, state: np.ndarray, masks: np.ndarray) -> dict:
    """One game's obs (n x D), world state and masks (n x A) as the per-agent Dict observations."""
    states, masks = agent_states(state, len(agents)), np.asarray(masks, dtype=np.float32)
    return {a: {"obs": np.asarray(obs[i], dtype=np.float32), "state": states[i], "action_mask": masks[i]}
            for i, a in enumerate(agents)}


def dict_space(obs_dim: int, state_dim: int, n_agents: int, n_actions: int) -> gym.spaces.Dict:
    return gym.spaces.Dict({
        "obs": gym.spaces.Box(-1.0, 1.0, (obs_dim,), np.float32),
        "state": gym.spaces.Box(-np.inf, np.inf, (state_dim + n_agents,), np.float32),
        "action_mask": gym.spaces.Box(0.0, 1.0, (n_actions,), np.float32),
    })


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
        space = dict_space(env.observation_space(self.possible_agents[0]).shape[0], env.state_space.shape[0], n, act.n)
        self.observation_spaces = {a: space for a in self.possible_agents}
        self.action_spaces = {a: act for a in self.possible_agents}

    def _dict_obs(self, obs: dict, infos: dict) -> dict:
        agents = self.possible_agents
        return dict_observations(agents, [obs[a] for a in agents], self.env.state(),
                                 [infos[a]["action_mask"] for a in agents])

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


class _GameSpaces(MultiAgentEnv):
    """What RLlib's runner reads of one sub-env (agents and spaces); the batch does the stepping."""

    def __init__(self, agents: list[str], space: gym.spaces.Dict, action_space: gym.spaces.Discrete):
        super().__init__()
        self.possible_agents = self.agents = list(agents)
        self.observation_spaces = {a: space for a in agents}
        self.action_spaces = {a: action_space for a in agents}


class SMAXVectorEnv(VectorMultiAgentEnv):
    """``num_envs`` SMAX games as one RLlib vector env, stepped by one compiled call (``SMAXBatch``).

    Per game it returns what ``SMAXMultiAgentEnv`` returns (Dict observations, the team reward to every agent,
    ``action_mask`` / ``won`` / ``result`` / ``team`` infos, ``__all__`` flags); a finished game restarts on the
    next step with zero rewards, as ``SyncVectorMultiAgentEnv`` does.
    """

    metadata = {"autoreset_mode": "next_step"}

    def __init__(self, num_envs: int, name: str = "smax-3v3-simple", seed: int | None = 0, split: str | None = None,
                 **kwargs):
        from envs.smax_batch import make_smax_batch

        self.batch = make_smax_batch(name, num_envs, split=split, seed=seed, **kwargs)
        self.num_envs, n = num_envs, self.batch.n_units
        self.possible_agents = [f"ally_{i}" for i in range(n)]
        space = dict_space(self.batch.obs_dim, self.batch.state_dim, n, self.batch.n_actions)
        action_space = gym.spaces.Discrete(self.batch.n_actions)
        self.envs = [_GameSpaces(self.possible_agents, space, action_space) for _ in range(num_envs)]
        self.single_observation_spaces = {a: space for a in self.possible_agents}
        self.single_action_spaces = {a: action_space for a in self.possible_agents}
        self.single_observation_space = gym.spaces.Dict(self.single_observation_spaces)
        self.single_action_space = gym.spaces.Dict(self.single_action_spaces)

    def _games(self, view, results: list[str | None]) -> tuple[list[dict], list[dict]]:
        """Every game's ``dict_observations`` and infos, sliced from arrays converted once for the whole batch."""
        agents = self.possible_agents
        obs, masks = np.asarray(view.obs, dtype=np.float32), np.asarray(view.action_mask, dtype=np.float32)
        states, info_masks = agent_states(view.state, len(agents)), np.asarray(view.action_mask, dtype=np.uint8)
        observations, infos = [], []
        for i, result in enumerate(results):
            observations.append({a: {"obs": obs[i, j], "state": states[i, j], "action_mask": masks[i, j]}
                                 for j, a in enumerate(agents)})
            extra = {"result": result, "team": self.batch.team[i]} if result is not None else {}
            infos.append({a: {"action_mask": info_masks[i, j], "won": result == "won", **extra}
                          for j, a in enumerate(agents)})
        return observations, infos

    def reset(self, *, seed=None, options=None):
        return self._games(self.batch.reset(seed=seed), [None] * self.num_envs)

    def step(self, actions: list[dict]):
        arr = np.full((self.num_envs, len(self.possible_agents)), STOP, dtype=np.int32)
        for i, game in enumerate(actions):
            for j, a in enumerate(self.possible_agents):
                if a in game:
                    arr[i, j] = int(game[a])
        out = self.batch.step(arr)
        obs, infos = self._games(out.view, out.result)
        rewards, terms, truncs = [], [], []
        for i in range(self.num_envs):
            result = out.result[i]
            truncated = result == "timeout"
            terminated = result is not None and not truncated
            rewards.append({a: float(out.reward[i]) for a in self.possible_agents})
            terms.append({**{a: terminated for a in self.possible_agents}, "__all__": terminated})
            truncs.append({**{a: truncated for a in self.possible_agents}, "__all__": truncated})
        return obs, rewards, terms, truncs, infos


class SMAXEnvRunner(MultiAgentEnvRunner):
    """RLlib's multi-agent env runner with every sub-env of the runner in one ``SMAXVectorEnv``.

    ``env_config``: ``SMAXMultiAgentEnv``'s keys (``name``, ``seed``, SMAX kwargs); runner ``w`` seeds its games
    from ``seed + 1000 * w``, as ``SMAXMultiAgentEnv`` seeds runner ``w``'s env.

    The step counters RLlib logs per game and agent at every step (a dozen ``MetricsLogger`` calls per game step,
    ~15% of sampling here) are summed during ``_sample`` and logged once at its end: the same sums, fewer calls.
    Returned episodes are numpy-ized once each, at the end of ``_sample``.
    """

    def _sample(self, **kwargs):
        self._step_counts: Counter = Counter()
        # RLlib's loop numpy-izes every episode finished so far in the chunk again at every step (~25% of sampling
        # with 32 games); numpy-izing each returned episode once at the end gives the same episodes.
        to_numpy, self.episodes_to_numpy = self.episodes_to_numpy, False
        try:
            episodes = super()._sample(**kwargs)
        finally:
            self.episodes_to_numpy = to_numpy
            counts, self._step_counts = self._step_counts, None
            for (key, reduce), value in counts.items():
                self.metrics.log_value(key, value, reduce=reduce,
                                       with_throughput=key == NUM_ENV_STEPS_SAMPLED_LIFETIME)
        return [e.to_numpy() for e in episodes] if to_numpy else episodes

    def _increase_sampled_metrics(self, num_steps, next_obs, episode):
        counts = getattr(self, "_step_counts", None)
        if counts is None:  # outside _sample (RLlib calls it from nowhere else today)
            return super()._increase_sampled_metrics(num_steps, next_obs, episode)
        counts[NUM_ENV_STEPS_SAMPLED, "sum"] += num_steps
        counts[NUM_ENV_STEPS_SAMPLED_LIFETIME, "lifetime_sum"] += num_steps
        if episode.is_done:
            counts[NUM_EPISODES, "sum"] += 1
            counts[NUM_EPISODES_LIFETIME, "lifetime_sum"] += 1
        for aid in next_obs:
            module = episode.module_for(aid)
            counts[(NUM_AGENT_STEPS_SAMPLED, str(aid)), "sum"] += 1
            counts[(NUM_AGENT_STEPS_SAMPLED_LIFETIME, str(aid)), "lifetime_sum"] += 1
            counts[(NUM_MODULE_STEPS_SAMPLED, module), "sum"] += 1
            counts[(NUM_MODULE_STEPS_SAMPLED_LIFETIME, module), "lifetime_sum"] += 1
        return num_steps

    def make_env(self):
        if self.env is not None:
            self.env.close()
        config = dict(self.config.env_config)
        seed = config.pop("seed", 0)
        worker = self.worker_index or 0
        self.env = SMAXVectorEnv(self.config.num_envs_per_env_runner, seed=None if seed is None else seed + 1000 * worker,
                                 **config)
        self.num_envs = self.env.num_envs
        self._needs_initial_reset = True
        make_callback("on_environment_created", callbacks_objects=self._callbacks,
                      callbacks_functions=self.config.callbacks_on_environment_created,
                      kwargs=dict(env_runner=self, metrics_logger=self.metrics, env=self.env,
                                  env_context=EnvContext(config, worker_index=worker)))


def with_batched_games(config):
    """An RLlib config whose env runners step all their games in one ``SMAXVectorEnv`` and use the cheaper
    connectors of ``envs.smax_connectors`` instead of RLlib's default per-item pieces."""
    mapping = config.policy_mapping_fn
    to_module = partial(env_to_module_connectors, module_for=lambda agent: mapping(agent, MultiAgentEpisode()))
    return config.env_runners(env_runner_cls=SMAXEnvRunner, env_to_module_connector=to_module,
                              module_to_env_connector=module_to_env_connectors,
                              add_default_connectors_to_env_to_module_pipeline=False,
                              add_default_connectors_to_module_to_env_pipeline=False)
