"""The same battles on real StarCraft II through SMACv2, for users who have it (an optional extra).

``SMACv2ParallelEnv`` offers ``SMAXParallelEnv``'s interface (agents ``ally_i``, ``infos[a]["action_mask"]``,
``won``, ``result``, ``state()``) over SMACv2's ``StarCraftCapabilityEnvWrapper`` on ``10gen_protoss``.
Teams come from SMACv2's own capability config: ``weighted_teams`` (``unit_types``, ``weights``,
``exception_unit_types``) by default, or a split's fixed compositions through a team distribution
registered with SMACv2's ``register_distribution`` (its extension point). Here ``won`` is SMACv2's
``battle_won``. smacv2 is not on PyPI and needs StarCraft II (``SC2PATH``); without them building an env
raises ``SMACv2Unavailable`` with a one-line reason.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.smax_teams import EXCEPTIONS, PROTOSS, WEIGHTS

FIXED_TEAMS = "rayexp_fixed_teams"


class SMACv2Unavailable(RuntimeError):
    """smacv2 or StarCraft II is not installed here."""


def smacv2_missing_reason() -> str | None:
    """Why the smacv2 backend cannot run here, or None when it can."""
    try:
        import smacv2  # noqa: F401
    except ImportError:
        return "smacv2 is not installed (pip install git+https://github.com/oxwhirl/smacv2; it needs StarCraft II)"
    sc2 = Path(os.environ.get("SC2PATH", Path.home() / "StarCraftII"))
    if not sc2.is_dir():
        return f"StarCraft II not found at {sc2} (set SC2PATH)"
    return None


def capability_config(n_units: int, compositions=None, weights=None) -> dict[str, Any]:
    """SMACv2's capability config: weighted_teams over Stalker/Zealot/Colossus, or fixed compositions."""
    team_gen: dict[str, Any] = {"dist_type": "weighted_teams", "unit_types": list(PROTOSS), "weights": list(WEIGHTS),
                                "exception_unit_types": list(EXCEPTIONS), "observe": True}
    if compositions is not None:
        team_gen = {"dist_type": FIXED_TEAMS, "compositions": [list(c) for c in compositions],
                    "weights": None if weights is None else list(weights), "observe": True}
    return {"n_units": n_units, "n_enemies": n_units, "team_gen": team_gen,
            "start_positions": {"dist_type": "surrounded_and_reflect", "p": 0.5, "n_enemies": n_units,
                                "map_x": 32, "map_y": 32}}


def _register_fixed_teams() -> None:
    from smacv2.env.starcraft2.distributions import Distribution, register_distribution

    class FixedTeamsDistribution(Distribution):
        """A split's compositions (enemies mirror allies), in the format SMACv2's team distributions return."""

        def __init__(self, config):
            self.compositions = [list(c) for c in config["compositions"]]
            w = config.get("weights")
            self.p = None if w is None else np.asarray(w, dtype=float) / sum(w)
            self.env_key = config["env_key"]
            self.rng = np.random.default_rng(config.get("seed"))

        def generate(self):
            i = int(self.rng.choice(len(self.compositions), p=self.p))
            team = list(self.compositions[i])
            return {self.env_key: {"ally_team": team, "enemy_team": team, "id": i}}

        @property
        def n_tasks(self):
            return len(self.compositions)

    register_distribution(FIXED_TEAMS, FixedTeamsDistribution)


class SMACv2ParallelEnv(ParallelEnv):
    """``n_units`` v ``n_units`` on ``10gen_protoss``; ``teams``: a ``FixedTeams`` (None: weighted_teams)."""

    metadata = {"name": "rayexp_smacv2_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, n_units: int = 3, teams=None, map_name: str = "10gen_protoss", **env_kwargs):
        reason = smacv2_missing_reason()
        if reason:
            raise SMACv2Unavailable(f"smacv2 backend unavailable: {reason}; the default 'smax' backend runs anywhere")
        from smacv2.env.starcraft2.wrapper import StarCraftCapabilityEnvWrapper

        _register_fixed_teams()
        config = capability_config(n_units, *((teams.compositions, teams.weights) if teams is not None else ()))
        self._env = StarCraftCapabilityEnvWrapper(capability_config=config, map_name=map_name, **env_kwargs)
        info = self._env.get_env_info()
        self.n_units = n_units
        self.possible_agents = [f"ally_{i}" for i in range(info["n_agents"])]
        self.agents: list[str] = []
        self._obs_space = spaces.Box(-np.inf, np.inf, (info["obs_shape"],), np.float32)
        self._act_space = spaces.Discrete(info["n_actions"])
        self.state_space = spaces.Box(-np.inf, np.inf, (info["state_shape"],), np.float32)

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._act_space

    def reset(self, seed: int | None = None, options: dict | None = None):
        if options and options.get("team"):
            raise ValueError("smacv2 backend: forcing a team per episode is not supported; pass teams=FixedTeams(...)")
        self._env.reset()
        self.agents = list(self.possible_agents)
        return self._observations(), self._infos(None)

    def step(self, actions: dict[str, int]):
        masks = self.action_masks()
        arr = [int(actions.get(a, int(np.argmax(masks[a])))) for a in self.possible_agents]
        reward, terminated, info = self._env.step(arr)
        agents, done = self.agents, bool(terminated)
        result = None
        if done:
            won = bool(info.get("battle_won", False))
            timeout = bool(info.get("episode_limit", False))
            result = "won" if won else ("timeout" if timeout else ("draw" if info.get("dead_allies") == self.n_units
                                                                   and info.get("dead_enemies") == self.n_units else "lost"))
            self.agents = []
        truncated = result == "timeout"
        return (self._observations(), {a: float(reward) for a in agents}, {a: done and not truncated for a in agents},
                {a: truncated for a in agents}, self._infos(result))

    def state(self) -> np.ndarray:
        return np.asarray(self._env.get_state(), dtype=np.float32)

    def action_masks(self) -> dict[str, np.ndarray]:
        avail = self._env.get_avail_actions()
        return {a: np.asarray(avail[i], dtype=np.uint8) for i, a in enumerate(self.possible_agents)}

    def _observations(self) -> dict[str, np.ndarray]:
        return {a: np.asarray(o, dtype=np.float32) for a, o in zip(self.possible_agents, self._env.get_obs())}

    def _infos(self, result: str | None) -> dict[str, dict]:
        masks = self.action_masks()
        extra = {"result": result} if result is not None else {}
        return {a: {"action_mask": masks[a], "won": result == "won", **extra} for a in self.possible_agents}

    def close(self) -> None:
        self._env.close()
