"""Train MAPPO (or IPPO) on SMAX with RLlib: checkpointed every few iterations, resumable, actor exported.

``out/`` holds ``checkpoint/`` (RLlib's Algorithm state), ``progress.json`` (env steps and iterations so far,
the resume point), ``mappo_metrics.csv`` (one row per iteration) and ``actor.pt`` (the shared actor as a plain
torch file, all a rollout needs: ``algorithms.smax_agents.load_actor``).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import pandas as pd

ENV_NAME = "rayexp-smax"


def _won(infos: dict) -> bool:
    return any(isinstance(i, dict) and i.get("won") for i in infos.values())


def on_episode_end(*, episode, metrics_logger=None, **kwargs) -> None:
    """Log the won flag of every finished episode (SMAX's return is no test for a win)."""
    if metrics_logger is not None:
        metrics_logger.log_value("win_rate", float(_won(episode.get_infos(-1))), reduce="mean", window=100)


def build_algo(settings, env_name: str, seed: int):
    from ray.tune.registry import register_env

    from algorithms.mappo_rllib import mappo_config
    from envs.smax_rllib import SMAXMultiAgentEnv, with_batched_games

    register_env(ENV_NAME, lambda ctx: SMAXMultiAgentEnv(ctx))
    config = mappo_config(settings, ENV_NAME, {"name": env_name, "seed": seed}, seed)
    if settings.batched_envs:
        config = with_batched_games(config)
    return config.callbacks(on_episode_end=on_episode_end).build_algo()


def export_actor(algo, path: Path, hidden: list[int]) -> Path:
    """Save the shared actor's weights and shapes, atomically."""
    import torch

    from algorithms.mappo_rllib import SHARED_POLICY

    actor = algo.get_module(SHARED_POLICY).actor
    first = actor.net[0]
    blob = {"obs_dim": int(first.in_features), "n_actions": int(actor.net[-1].out_features),
            "hidden": [int(h) for h in hidden],
            "state_dict": {k: v.detach().cpu() for k, v in actor.state_dict().items()}}
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def sampled_env_steps(result: dict, requested: int) -> int:
    """Env steps this iteration sampled; RLlib reports NaN when an env runner's metrics did not arrive in time
    (seen on a loaded machine), then PPO still sampled at least the requested batch."""
    n = result.get("env_runners", {}).get("num_env_steps_sampled", float("nan"))
    return int(n) if n == n else requested


def iteration_row(result: dict, it: int, env_steps: int, wall: float) -> dict:
    runners = result.get("env_runners", {})
    learner = result.get("learners", {}).get("shared_policy", {})
    return {"iteration": it, "env_steps": env_steps, "wall_s": wall, "win_rate": runners.get("win_rate"),
            "return_mean": runners.get("episode_return_mean"), "episode_len": runners.get("episode_len_mean"),
            "vf_loss": learner.get("vf_loss"), "entropy": learner.get("entropy"),
            "vf_explained_var": learner.get("vf_explained_var")}


def train_mappo(settings, env_name: str, out: str | Path, seed: int = 0,
                echo: Callable[[str], None] = print) -> pd.DataFrame:
    """Train until ``settings.total_env_steps`` env steps, resuming from ``out/checkpoint`` when present."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt, progress_file, metrics_file = out / "checkpoint", out / "progress.json", out / "mappo_metrics.csv"
    progress = json.loads(progress_file.read_text()) if progress_file.exists() else {"env_steps": 0, "iterations": 0, "wall_s": 0.0}
    rows = pd.read_csv(metrics_file).to_dict("records") if metrics_file.exists() else []
    if progress["env_steps"] >= settings.total_env_steps and (out / "actor.pt").exists():
        echo(f"mappo: already trained ({progress['env_steps']} env steps); raise mappo.total_env_steps to continue")
        return pd.DataFrame(rows)
    algo = build_algo(settings, env_name, seed)
    if ckpt.exists():
        algo.restore_from_path(str(ckpt))
        echo(f"mappo: resumed from {ckpt} at {progress['env_steps']} env steps")
    t0, start_wall = time.perf_counter(), progress["wall_s"]
    try:
        while progress["env_steps"] < settings.total_env_steps:
            result = algo.train()
            progress["iterations"] += 1
            progress["env_steps"] += sampled_env_steps(result, settings.train_batch_size)
            progress["wall_s"] = start_wall + time.perf_counter() - t0
            rows.append(iteration_row(result, progress["iterations"], progress["env_steps"], progress["wall_s"]))
            r = rows[-1]
            echo(f"mappo it {r['iteration']}: {r['env_steps']} env steps, win {r['win_rate']}, "
                 f"return {r['return_mean']}, {r['wall_s']:.0f} s")
            done = progress["env_steps"] >= settings.total_env_steps
            if progress["iterations"] % settings.checkpoint_every == 0 or done:
                algo.save_to_path(str(ckpt))
                export_actor(algo, out / "actor.pt", settings.hidden)
                pd.DataFrame(rows).to_csv(metrics_file, index=False)
                progress_file.write_text(json.dumps(progress))
    finally:
        algo.stop()
    return pd.DataFrame(rows)
