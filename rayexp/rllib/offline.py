"""Offline RL baselines from RLlib (CQL, IQL) trained on a rayexp episode store, and their evaluation.

RLlib 2.60's offline API reads Parquet through Ray Data. ``store_to_rllib_parquet`` writes the store in
RLlib's column schema (``ray.rllib.offline.offline_prelearner.SCHEMA``: eps_id, obs, actions, rewards,
new_obs, terminateds, truncateds), one row per transition. Actions are written in the policy's normalized
[-1, 1] range, because RLlib's continuous policies act there and its env runners rescale to the env's
bounds (``normalize_actions=True``); ``rayexp.evaluate.rllib_policy`` does that rescaling for our evaluation.

Evaluation reuses ``rayexp.evaluate.run_episode`` with episode i on seed ``seed + i``, so a "cql" row
sits beside BC/teacher/RACTD rows of ``rayexp evaluate`` in one table.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rayexp.data.store import EpisodeStore
from rayexp.errors import RayexpError


def _box(low, high):
    import gymnasium as gym

    return gym.spaces.Box(np.asarray(low, np.float32), np.asarray(high, np.float32), dtype=np.float32)


def store_spaces(store: EpisodeStore):
    """Observation and action spaces for the store's env (made once, to read the bounds)."""
    from envs.registry import make_env

    env = make_env(store.meta.env_id)
    return env.observation_space, env.action_space


def normalize_actions(actions: np.ndarray, space) -> np.ndarray:
    return np.clip(2.0 * (actions - space.low) / (space.high - space.low) - 1.0, -1.0, 1.0).astype(np.float32)


def store_to_rllib_parquet(store: EpisodeStore, out: str | Path, action_space) -> Path:
    """Write the store as one Parquet file in RLlib's offline column schema; returns the file."""
    a = store.arrays()
    final = np.stack(store.episodes().column("final_obs").to_numpy(zero_copy_only=False)).astype(np.float32)
    next_obs = np.empty_like(a["obs"])
    next_obs[:-1] = a["obs"][1:]
    last = np.flatnonzero(np.diff(a["episode_id"], append=-1) != 0)
    next_obs[last] = final
    obs_dim, act_dim = a["obs"].shape[1], a["action"].shape[1]
    flat = lambda x, d: pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(x, np.float32).reshape(-1)), d)  # noqa: E731
    if hasattr(action_space, "n"):  # discrete: the store's one-hot rows -> RLlib's integer actions
        actions = pa.array(a["action"].argmax(-1).astype(np.int64) + int(action_space.start))
    else:
        actions = flat(normalize_actions(a["action"], action_space), act_dim)
    table = pa.table({
        "eps_id": pa.array(a["episode_id"].astype(str)),
        "obs": flat(a["obs"], obs_dim),
        "actions": actions,
        "rewards": pa.array(a["reward"].astype(np.float32)),
        "new_obs": flat(next_obs, obs_dim),
        "terminateds": pa.array(a["terminal"].astype(bool)),
        "truncateds": pa.array(a["timeout"].astype(bool)),
    })
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "transitions.parquet")
    return out / "transitions.parquet"


def offline_config(algo: str, parquet: Path, env_id: str, obs_space, action_space, batch_size: int, seed: int,
                   hidden: tuple[int, ...], iters_per_train: int, lr: float, gamma: float | None = None):
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.tune.registry import register_env

    def create(_ctx=None):  # RLlib builds a local env runner even offline; it is not used for training
        from envs.registry import make_env

        return make_env(env_id)

    register_env(f"rayexp-offline:{env_id}", create)

    if algo == "cql":
        from ray.rllib.algorithms.cql import CQLConfig as Config
    elif algo == "iql":
        from ray.rllib.algorithms.iql import IQLConfig as Config
    else:
        raise RayexpError(f"unknown offline algorithm {algo!r}; use cql or iql")
    cfg = (
        Config()
        .environment(f"rayexp-offline:{env_id}", observation_space=obs_space, action_space=action_space)
        .env_runners(num_env_runners=0)
        .learners(num_learners=0)
        .offline_data(input_=[str(parquet.resolve())], input_read_method="read_parquet", input_compress_columns=[],
                      dataset_num_iters_per_learner=iters_per_train,
                      # One light pre-learner actor: with the default pool, its actors hold every CPU of a
                      # 2-core Ray and the Parquet read tasks never get scheduled (a deadlock here).
                      map_batches_kwargs={"concurrency": 1, "num_cpus": 0.5})
        .training(train_batch_size_per_learner=batch_size, lr=None, actor_lr=lr, critic_lr=lr)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(hidden), fcnet_activation="relu"))
        .evaluation(evaluation_interval=None)
        .debugging(seed=seed, log_level="ERROR")
    )
    if gamma is not None:
        cfg.training(gamma=gamma)
    if algo == "cql":
        cfg.training(bc_iters=0, alpha_lr=lr)
        if hasattr(action_space, "n"):  # RLlib's CQL is Box-only: discrete CQL(H) via its extension points
            from rayexp.rllib.cql_discrete import DiscreteCQLTorchLearner, discrete_cql_module_spec

            cfg.learners(learner_class=DiscreteCQLTorchLearner).rl_module(rl_module_spec=discrete_cql_module_spec())
    return cfg


def train_cql(store_path: str | Path, out_dir: str | Path, iterations: int, algo: str = "cql", batch_size: int = 256,
              iters_per_train: int = 100, seed: int = 0, hidden: tuple[int, ...] = (256, 256), lr: float = 3e-4,
              gamma: float | None = None) -> dict:
    """Train RLlib CQL (or IQL) offline from an episode store; the RLModule goes to OUT_DIR/module.

    One ``iteration`` is ``iters_per_train`` gradient updates. Returns {module, updates, wall_s, losses}.
    """
    import torch

    torch.set_num_threads(1)
    store, out_dir = EpisodeStore(store_path), Path(out_dir)
    obs_space, action_space = store_spaces(store)
    if store.summary()["steps"] < batch_size:
        raise RayexpError(f"batch_size {batch_size} is larger than the dataset ({store.summary()['steps']} steps); lower it")
    parquet = store_to_rllib_parquet(store, out_dir / "rllib_data", action_space)
    cfg = offline_config(algo, parquet, store.meta.env_id, obs_space, action_space, batch_size, seed, hidden, iters_per_train, lr,
                         gamma)
    algo_obj = cfg.build_algo()
    t0, losses = time.perf_counter(), []
    try:
        for _ in range(iterations):
            result = algo_obj.train()
            learner = result.get("learners", {}).get("default_policy", {})
            losses.append({k: float(v) for k, v in learner.items() if "loss" in k and np.isscalar(v)})
        module_dir = out_dir / "module"
        path = str(module_dir.resolve())
        # From the learner, which holds the trained weights (IQL has no env runner to ask, and an offline
        # algorithm's local env runner is not guaranteed to be synced).
        algo_obj.learner_group.foreach_learner(lambda learner: learner.module["default_policy"].save_to_path(path))
    finally:
        algo_obj.stop()
    return {"module": str(module_dir), "updates": iterations * iters_per_train, "wall_s": time.perf_counter() - t0, "losses": losses}


def evaluate_rllib(module_dir: str | Path, env_cfg: dict, episodes: int = 100, seed: int = 1000, num_actors: int = 2,
                   model: str = "cql", ref_scores: tuple[float, float] | None = None) -> pd.DataFrame:
    """One RLlib module on ``rayexp.evaluate.evaluate``'s actors and seeds (episode i on ``seed + i``)."""
    from rayexp.evaluate import evaluate

    ev = {"episodes": episodes, "seed": seed, "execute": "first", "chunk": None}
    return evaluate(env_cfg, {model: str(Path(module_dir).resolve())}, ev, num_actors, ref_scores)


def add_rows_to_run(run_path: str | Path, df: pd.DataFrame) -> Path:
    """Put a baseline's rows into RUN/eval.parquet, replacing earlier rows of the same model name."""
    from rayexp.rows import ROWS_FILE, write_run_rows

    write_run_rows(Path(run_path), df, replace_models_only=True)
    return Path(run_path) / ROWS_FILE
