"""Many SMAX games advanced by one compiled, vmapped call (the batched twin of ``envs.smax.SMAXParallelEnv``).

Game ``i`` of a batch seeded ``s`` plays exactly the episodes of ``SMAXParallelEnv(seed=s + i)`` reset without a
seed after its first reset: the same team generator draws, the same JAX keys, the same programs
(``envs.smax.game_programs``), vmapped instead of jitted one game at a time.

A finished game restarts on the next ``step`` call (gymnasium's "next step" autoreset, which RLlib's vector envs
use): its actions are ignored and the call returns its first observation with ``restarted[i]`` set.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from envs.smax import (
    N_MOVE_ACTIONS,
    UNIT_TYPES,
    battle_result,
    build_smax,
    enable_compilation_cache,
    game_programs,
    split_teams_for,
)


class BatchView(NamedTuple):
    """What the caller sees of every game, host numpy arrays with the games on axis 0."""

    obs: np.ndarray          # games x n x obs_dim
    state: np.ndarray        # games x state_dim
    action_mask: np.ndarray  # games x n x n_actions, 1 = available
    alive: np.ndarray        # games x 2n


class BatchStep(NamedTuple):
    view: BatchView
    reward: np.ndarray       # games; 0 for a restarted game
    done: np.ndarray         # games, bool
    result: list[str | None]  # won / lost / draw / timeout for a game that just ended, else None
    restarted: np.ndarray    # games, bool: the game was reset instead of stepped


def _advance_program(reset, step):
    """One program for the whole batch: step every game, reset those flagged, keep each game's own outcome."""
    import jax
    import jax.numpy as jnp

    v_reset, v_step = jax.vmap(reset), jax.vmap(step)

    def advance(keys, states, actions, restart, ally_types):
        step_keys, stepped, step_view, reward, done = v_step(keys, states, actions)
        reset_keys, fresh, reset_view = v_reset(keys, ally_types)

        def pick(a, b):
            return jnp.where(restart.reshape(-1, *([1] * (a.ndim - 1))), a, b)

        keys = pick(reset_keys, step_keys)
        states = jax.tree.map(pick, fresh, stepped)
        view = jax.tree.map(pick, reset_view, step_view)
        return keys, states, view, jnp.where(restart, 0.0, reward), jnp.where(restart, False, done)

    return jax.jit(advance), jax.jit(v_reset)


class SMAXBatch:
    """``num_games`` n v n battles whose allies are drawn from ``teams`` (a ``split_teams`` generator)."""

    def __init__(self, num_games: int, teams, max_steps: int = 100, seed: int | None = None,
                 cache_dir: str | Path | None = None, enemy_attack_mode: str = "closest"):
        import jax

        if num_games < 1:
            raise ValueError(f"smax: num_games must be >= 1, got {num_games}")
        self.num_games, self.teams, self.n_units = num_games, teams, teams.n_units
        self.cache_dir = enable_compilation_cache(cache_dir)
        self.env = build_smax(self.n_units, max_steps, enemy_attack_mode)
        self._advance, self._reset_all = _advance_program(*game_programs(self.env))
        self._jax = jax
        self.obs_dim, self.state_dim = self.env.obs_size, self.env.state_size
        self.n_actions = N_MOVE_ACTIONS + self.n_units
        self._type_index = {t: i for i, t in enumerate(UNIT_TYPES)}
        self._seed(seed)
        self._states = self._done = None
        self.team: list[tuple[str, ...]] = []

    def _seed(self, seed: int | None) -> None:
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31 - self.num_games))
        self._rngs = [np.random.default_rng(seed + i) for i in range(self.num_games)]
        self._keys = np.stack([np.asarray(self._jax.random.PRNGKey(seed + i)) for i in range(self.num_games)])

    def _draw_types(self, games) -> np.ndarray:
        types = np.zeros((self.num_games, self.n_units), dtype=np.int32)
        for i in games:
            self.team[i] = tuple(self.teams.sample(self._rngs[i]))
            types[i] = [self._type_index[t] for t in self.team[i]]
        return types

    def reset(self, seed: int | None = None) -> BatchView:
        """Start every game; ``seed`` re-seeds game i with ``seed + i``."""
        if seed is not None:
            self._seed(seed)
        self.team = [()] * self.num_games
        types = self._draw_types(range(self.num_games))
        keys, self._states, view = self._reset_all(self._keys, types)
        self._keys = keys
        self._done = np.zeros(self.num_games, dtype=bool)
        return BatchView(*self._jax.device_get(view))

    def step(self, actions: np.ndarray) -> BatchStep:
        """``actions``: games x n ints. Games that ended on the previous call restart instead."""
        if self._states is None:
            raise RuntimeError("smax: step() before reset()")
        restart = self._done
        types = self._draw_types(np.flatnonzero(restart))
        actions = np.asarray(actions, dtype=np.int32).reshape(self.num_games, self.n_units)
        self._keys, self._states, view, reward, done = self._advance(self._keys, self._states, actions, restart, types)
        view, reward, done = self._jax.device_get((view, reward, done))
        view, done = BatchView(*view), np.asarray(done, dtype=bool)
        result = [battle_result(view.alive[i], self.n_units, True) if done[i] else None
                  for i in range(self.num_games)]
        self._done = done
        return BatchStep(view, np.asarray(reward, dtype=np.float32), done, result, restart)


def make_smax_batch(name: str, num_games: int, split: str | None = None, seed: int | None = None,
                    **kwargs) -> SMAXBatch:
    """``make_smax_env``'s names and splits, ``num_games`` games at once."""
    return SMAXBatch(num_games, split_teams_for(name, split), seed=seed, **kwargs)
