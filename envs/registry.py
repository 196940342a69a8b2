"""``make_env(name, split, seed)``: one door to every environment rayexp runs.

Names are gymnasium ids (``Hopper-v5``) or rayexp families registered in ``FAMILIES`` by the
env modules (imported lazily, so ``import envs`` stays light).
"""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable

import gymnasium as gym

from envs.errors import UnknownEnvError

# prefix -> "module:function"; the function takes (name, split, seed, **kwargs) and returns an env.
FAMILIES: dict[str, str] = {
    "maze2d-": "envs.maze2d:make_registered_env",
    "roundabout-": "envs.roundabout:make_registered_env",
    "smax-": "envs.smax:make_smax_env",  # a PettingZoo ParallelEnv, not a gym.Env (its family steps it)
}


def _family(name: str) -> Callable[..., gym.Env] | None:
    for prefix, target in FAMILIES.items():
        if name.startswith(prefix):
            module, fn = target.split(":")
            return getattr(importlib.import_module(module), fn)
    return None


def check_env_id(name: str) -> None:
    """Raise a one-line error naming close matches when ``name`` is no known environment."""
    family = _family(name)
    if family is not None:
        names = getattr(importlib.import_module(family.__module__), "ENV_NAMES", None)  # a family may list its names
        if names is None or name in names:
            return
        raise UnknownEnvError(f"env.id: unknown environment {name!r}; valid: {', '.join(names)}")
    if name in gym.registry:
        return
    if ":" in name:  # "package.module:EnvId-v0", gymnasium's own form: importing the module registers the id
        module = name.partition(":")[0]
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise UnknownEnvError(f"env.id: cannot import {module!r} for {name!r} ({e})") from None
        if name.partition(":")[2] in gym.registry:
            return
    if name.startswith(("Point", "Ant", "Adroit")):
        import gymnasium_robotics  # noqa: F401  (registers its ids)

        gym.register_envs(gymnasium_robotics)
        if name in gym.registry:
            return
    known = list(gym.registry) + [p + "*" for p in FAMILIES]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `python -c 'import gymnasium; gymnasium.pprint_registry()'`"
    raise UnknownEnvError(f"env.id: unknown environment {name!r}{hint}")


def make_env(name: str, split: str | None = None, seed: int | None = None, max_episode_steps: int | None = None,
             **kwargs: Any) -> gym.Env:
    check_env_id(name)
    family = _family(name)
    if family is not None:
        env = family(name, split=split, seed=seed, max_episode_steps=max_episode_steps, **kwargs)
    else:
        if split is not None:
            raise UnknownEnvError(f"env.split: {name} has no element combinations, so no OOC split applies; remove env.split")
        env = gym.make(name, max_episode_steps=max_episode_steps, **kwargs)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def episode_success(info: dict, terminated: bool, truncated: bool) -> bool | None:
    """Success as the env defines it (``is_success``/``success`` in the last info), else unknown."""
    for key in ("is_success", "success"):
        if key in info:
            return bool(info[key])
    return None
