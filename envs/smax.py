"""SMACv2-style Protoss battles on JaxMARL's SMAX as a PettingZoo ``ParallelEnv`` (thesis §2.6.3, A.4.9).

The agents are the allied units; the enemies mirror the allied team and are played by SMAX's own
heuristic (``HeuristicEnemySMAX``), as SMACv2's enemies are played by the built-in AI.

- Unit types: SMAX's six as shipped (stalker and zealot among them) plus a **Colossus** added through
  SMAX's unit-type keyword arguments, not a fork. It is a *simplified* Colossus: SMACv2's range 7 and
  sight 10, health 200 + 150 shields = 350, speed 3.15, 2 x 10 damage per attack = 20 every 1.07 s,
  radius 1; SMAX models no shields, armour, bonus damage or splash, so its Thermal Lances hit one unit.
- Each agent's observation carries the type one-hot of itself, its teammates and the enemies it sees
  (SMAX's ``unit_list`` observation); ``state()`` is SMAX's world state for a centralized critic.
- ``infos[agent]``: ``action_mask`` (uint8, 1 = available) and ``won``; at the end also ``result``,
  one of won / lost / draw / timeout, from the final state (SMAX has no win flag; both sides can die
  in the same step, and a draw can still return 1 or more).
- One compiled call per ``step`` (SMAX's ``step_env``, not ``step``, which resets every call); the
  state stays inside JAX and one ``device_get`` per step brings back what the caller sees.
- Dead units stay in ``agents`` until the episode ends, with only the no-op (stop) action available,
  as in SMACv2; all agents terminate (a side wiped out) or truncate (time limit) together.
- JAX's persistent compilation cache is switched on (``RAYEXP_JAX_CACHE`` or ``~/.cache/rayexp/jax``).

``import envs.smax`` imports neither jax nor jaxmarl; in a Ray worker call ``ray.init`` before the
first env is built (jax must not be imported before Ray forks its workers).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

UNIT_TYPES = ("marine", "marauder", "stalker", "zealot", "zergling", "hydralisk", "colossus")
COLOSSUS = {"shorthand": "C", "velocity": 3.15, "attack": 20.0, "attack_range": 7.0, "sight_range": 10.0,
            "radius": 1.0, "health": 350.0, "weapon_cooldown": 1.07}
_SMAX_ARRAYS = {"velocity": "unit_type_velocities", "attack": "unit_type_attacks",
                "attack_range": "unit_type_attack_ranges", "sight_range": "unit_type_sight_ranges",
                "radius": "unit_type_radiuses", "health": "unit_type_health",
                "weapon_cooldown": "unit_type_weapon_cooldowns"}
N_MOVE_ACTIONS = 5  # 4 moves + stop; attack enemy j is action 5 + j
STOP = 4


def default_cache_dir() -> Path:
    return Path(os.environ.get("RAYEXP_JAX_CACHE", Path.home() / ".cache" / "rayexp" / "jax"))


def enable_compilation_cache(cache_dir: str | Path | None = None) -> Path:
    """Turn on JAX's persistent compilation cache (every compiled program, however fast it compiled)."""
    import jax

    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def unit_type_kwargs() -> dict[str, Any]:
    """SMAX keyword arguments for its six shipped unit types plus the simplified Colossus (index 6)."""
    import inspect

    import jax.numpy as jnp
    from jaxmarl.environments.smax import SMAX

    defaults = {k: p.default for k, p in inspect.signature(SMAX.__init__).parameters.items()}
    kw: dict[str, Any] = {"unit_type_names": [*defaults["unit_type_names"], "colossus"],
                          "unit_type_shorthands": [*defaults["unit_type_shorthands"], COLOSSUS["shorthand"]]}
    for field, arg in _SMAX_ARRAYS.items():
        kw[arg] = jnp.append(jnp.asarray(defaults[arg], dtype=jnp.float32), COLOSSUS[field])
    assert tuple(kw["unit_type_names"]) == UNIT_TYPES, kw["unit_type_names"]
    return kw


def battle_result(alive: np.ndarray, n_allies: int, done: bool) -> str:
    """won: an ally alive and no enemy; lost: no ally and an enemy; draw: both wiped out; else timeout/running."""
    ally, enemy = bool(np.any(alive[:n_allies])), bool(np.any(alive[n_allies:]))
    if ally and not enemy:
        return "won"
    if enemy and not ally:
        return "lost"
    if not ally and not enemy:
        return "draw"
    return "timeout" if done else "running"


def build_smax(n_units: int, max_steps: int, enemy_attack_mode: str = "closest"):
    """JaxMARL's ``HeuristicEnemySMAX``: n v n, SMACv2 start positions, the six unit types plus the Colossus."""
    from jaxmarl.environments.smax import HeuristicEnemySMAX

    return HeuristicEnemySMAX(attack_mode=enemy_attack_mode, num_allies=n_units, num_enemies=n_units,
                              max_steps=max_steps, smacv2_position_generation=True, **unit_type_kwargs())


def game_programs(env):
    """The pure JAX ``reset(key, ally_types)`` and ``step(key, state, actions)`` of one game of ``env``.

    Both return the new key, the state and the view (obs n x D, world state, action masks n x A, unit_alive 2n);
    ``step`` also the team reward and the done flag. ``SMAXParallelEnv`` jits them; ``SMAXBatch`` vmaps them.
    """
    import jax
    import jax.numpy as jnp

    def view(state):
        obs = env.get_obs(state)
        avail = env.get_avail_actions(state)
        return (jnp.stack([obs[a] for a in env.agents]), env.get_world_state(state),
                jnp.stack([avail[a] for a in env.agents]), state.state.unit_alive)

    def reset(key, ally_types):
        key, sub = jax.random.split(key)
        _, state = env.reset(sub)
        types = jnp.concatenate([ally_types, ally_types]).astype(state.state.unit_types.dtype)
        inner = state.state.replace(unit_types=types, unit_health=env.unit_type_health[types])
        state = state.replace(state=env._env._push_units_away(inner))
        # Cast to the dtypes step_env returns, so the first step does not compile a second program.
        out = jax.eval_shape(lambda s: env.step_env(key, s, {a: jnp.int32(0) for a in env.agents})[1], state)
        state = jax.tree.map(lambda x, s: jnp.asarray(x, s.dtype), state, out)
        return key, state, view(state)

    def step(key, state, actions):
        key, sub = jax.random.split(key)
        _, state, rewards, _, _ = env.step_env(sub, state, {a: actions[i] for i, a in enumerate(env.agents)})
        return key, state, view(state), rewards[env.agents[0]], state.state.done

    return reset, step


class SMAXParallelEnv(ParallelEnv):
    """``n_units`` v ``n_units`` Protoss battle; ``teams`` (``.sample(rng) -> team``) draws each episode's allies.

    ``reset(options={"team": ("stalker", "zealot", "zealot")})`` forces a composition for one episode.
    """

    metadata = {"name": "rayexp_smax_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, n_units: int = 3, teams=None, max_steps: int = 100, seed: int | None = None,
                 cache_dir: str | Path | None = None, enemy_attack_mode: str = "closest"):
        from envs.smax_teams import WeightedTeams

        self.n_units = n_units
        self.teams = teams if teams is not None else WeightedTeams(n_units)
        if self.teams.n_units != n_units:
            raise ValueError(f"smax: team generator makes {self.teams.n_units}-unit teams, env has {n_units} units")
        self.max_steps = max_steps
        self.cache_dir = enable_compilation_cache(cache_dir)
        self.possible_agents = [f"ally_{i}" for i in range(n_units)]
        self.agents: list[str] = []
        self._build(enemy_attack_mode)
        self._obs_space = spaces.Box(-1.0, 1.0, (self._env.obs_size,), np.float32)
        self._act_space = spaces.Discrete(N_MOVE_ACTIONS + n_units)
        self.state_space = spaces.Box(-np.inf, np.inf, (self._env.state_size,), np.float32)
        self._rng = np.random.default_rng(seed)
        self._state = self._key = self._view = None
        self.team: tuple[str, ...] = ()

    def _build(self, enemy_attack_mode: str) -> None:
        import jax

        self._env = build_smax(self.n_units, self.max_steps, enemy_attack_mode)
        reset, step = game_programs(self._env)
        self._reset_fn, self._step_fn = jax.jit(reset), jax.jit(step)
        self._jax = jax
        self._type_index = {t: i for i, t in enumerate(UNIT_TYPES)}

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_space

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent: str) -> spaces.Discrete:
        return self._act_space

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self._key = self._jax.random.PRNGKey(seed)
        elif self._key is None:
            self._key = self._jax.random.PRNGKey(int(self._rng.integers(2**31)))
        team = (options or {}).get("team") or self.teams.sample(self._rng)
        self.team = self._check_team(team)
        types = np.array([self._type_index[t] for t in self.team], dtype=np.int32)
        self._key, self._state, view = self._reset_fn(self._key, types)
        self._view = self._jax.device_get(view)
        self.agents = list(self.possible_agents)
        self._steps = 0
        return self._observations(), self._infos(None)

    def step(self, actions: dict[str, int]):
        if not self.agents:
            raise RuntimeError("smax: step() after the episode ended; call reset()")
        arr = np.full(self.n_units, STOP, dtype=np.int32)
        for i, a in enumerate(self.possible_agents):
            if a in actions:
                arr[i] = int(actions[a])
        self._key, self._state, view, reward, done = self._step_fn(self._key, self._state, arr)
        self._view, reward, done = self._jax.device_get((view, reward, done))
        self._steps += 1
        result = battle_result(self._view[3], self.n_units, bool(done))
        done = bool(done)
        truncated = done and result == "timeout"
        agents = self.agents
        obs, infos = self._observations(), self._infos(result if done else None)
        rewards = {a: float(reward) for a in agents}
        terms = {a: done and not truncated for a in agents}
        truncs = {a: truncated for a in agents}
        if done:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def state(self) -> np.ndarray:
        """Global state for a centralized critic: every unit's health, position, cooldown, type; teams; types."""
        return np.asarray(self._view[1], dtype=np.float32)

    def action_masks(self) -> dict[str, np.ndarray]:
        return {a: np.asarray(self._view[2][i], dtype=np.uint8) for i, a in enumerate(self.possible_agents)}

    def _observations(self) -> dict[str, np.ndarray]:
        return {a: np.asarray(self._view[0][i], dtype=np.float32) for i, a in enumerate(self.possible_agents)}

    def _infos(self, result: str | None) -> dict[str, dict]:
        masks = self.action_masks()
        won = result == "won"
        extra = {"result": result, "team": self.team} if result is not None else {}
        return {a: {"action_mask": masks[a], "won": won, **extra} for a in self.possible_agents}

    def _check_team(self, team) -> tuple[str, ...]:
        team = tuple(team)
        bad = sorted({t for t in team if t not in self._type_index})
        if bad or len(team) != self.n_units:
            raise ValueError(f"smax: team {team} must name {self.n_units} unit types from {', '.join(UNIT_TYPES)}")
        return team

    def close(self) -> None:
        self._state = None


def split_teams_for(name: str, split: str | None = None):
    """The team generator of a ``smax-<n>v<n>-<simple|hard>[-id][-test]`` env name (``split``: a saved OOCSplit JSON)."""
    from envs.smax_teams import all_splits, split_teams
    from envs.splits import OOCSplit

    part = "test" if name.endswith("-test") else "train"
    base = name.removesuffix("-test")
    splits = all_splits()
    if base not in splits:
        raise ValueError(f"env.id: unknown smax env {name!r}; valid: {', '.join(sorted(splits))} (each also with -test)")
    split_obj = OOCSplit.load(split) if split is not None else splits[base]
    return split_teams(split_obj, part)


def make_smax_env(name: str = "smax-3v3-simple", split: str | None = None, seed: int | None = None,
                  **kwargs) -> SMAXParallelEnv:
    """``smax-<n>v<n>-<simple|hard>[-id][-test]``: allies drawn from the split's training (or test) teams.
    ``split``: a saved OOCSplit JSON replacing the built-in one; ``kwargs`` go to ``SMAXParallelEnv``."""
    teams = split_teams_for(name, split)
    return SMAXParallelEnv(n_units=teams.n_units, teams=teams, seed=seed, **kwargs)


OTHER_FEATURES, OWN_FEATURES = 7 + len(UNIT_TYPES), 4 + len(UNIT_TYPES)  # SMAX's unit_features / own_features
CONDITION_TYPES = ("stalker", "zealot", "colossus")


def units_from_obs_dim(obs_dim: int) -> int:
    """n for an n v n observation: (2n - 1) other-unit blocks plus the agent's own block."""
    others, rest = divmod(obs_dim - OWN_FEATURES, OTHER_FEATURES)
    if rest or others % 2 == 0:
        raise ValueError(f"smax: observation width {obs_dim} is not (2n-1) x {OTHER_FEATURES} + {OWN_FEATURES}")
    return (others + 1) // 2


def unit_type_condition(obs: np.ndarray) -> np.ndarray:
    """Ego observation(s) ..., obs_dim -> unit types ..., 2n x 3: self, teammates, enemies, each a Stalker / Zealot /
    Colossus one-hot (zeros for a unit the ego cannot see or that is dead), in the observation's order."""
    obs = np.asarray(obs, dtype=np.float32)
    n = units_from_obs_dim(obs.shape[-1])
    cols = [UNIT_TYPES.index(t) for t in CONDITION_TYPES]
    others = obs[..., :(2 * n - 1) * OTHER_FEATURES].reshape(*obs.shape[:-1], 2 * n - 1, OTHER_FEATURES)
    own = obs[..., None, -OWN_FEATURES:]
    types = np.concatenate([own[..., -len(UNIT_TYPES):], others[..., -len(UNIT_TYPES):]], axis=-2)[..., cols]
    return types.reshape(*obs.shape[:-1], 2 * n * len(CONDITION_TYPES))


def with_unit_types(obs: np.ndarray, teammates: list[str] | None = None, enemies: list[str] | None = None) -> np.ndarray:
    """A copy of ego observation(s) ..., obs_dim with the type bits of the visible teammates / enemies replaced, in
    the observation's order (Fig. 2.5's counterfactual conditions); unseen units stay zero."""
    out = np.array(obs, dtype=np.float32, copy=True)
    n = units_from_obs_dim(out.shape[-1])
    blocks = out[..., :(2 * n - 1) * OTHER_FEATURES].reshape(*out.shape[:-1], 2 * n - 1, OTHER_FEATURES)
    for first, types, who, count in ((0, teammates, "teammates", n - 1), (n - 1, enemies, "enemies", n)):
        if types is None:
            continue
        if len(types) != count or any(t not in CONDITION_TYPES for t in types):
            raise ValueError(f"{who}: give {count} of {', '.join(CONDITION_TYPES)}, not {list(types)}")
        for i, t in enumerate(types):
            block = blocks[..., first + i, :]
            bits = np.eye(len(UNIT_TYPES), dtype=np.float32)[UNIT_TYPES.index(t)]
            block[..., -len(UNIT_TYPES):] = np.where(block[..., :1] > 0, bits, block[..., -len(UNIT_TYPES):])
    out[..., :(2 * n - 1) * OTHER_FEATURES] = blocks.reshape(*out.shape[:-1], -1)
    return out
