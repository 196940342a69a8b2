"""In-process scores a sweep trial reports: seeded closed-loop episodes, or the env family's own score where it has
one (``Family.sweep_score``, e.g. Maze2D's waypoint success)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rayexp.families import family_for, hook


def score_trained(cfg, job: dict, options: dict) -> dict[str, float]:
    """Score the from_run's trained stage under the trial's (swept) method config, e.g. another guidance weight."""
    from algorithms.registry import make_method
    from rayexp.train import load_model

    _, model, spec = load_model(Path(job["models_dir"]) / f"{job['stage']}.pt")
    method = make_method(cfg.models[job["stage"]].method)  # the swept method config, the trained weights
    family_score = hook(family_for(cfg.env.id, cfg.env.family), "sweep_score")
    scores = family_score(method, model, spec, cfg, job, options) if family_score else None
    return scores if scores is not None else score_policy(method, model, spec, cfg, job)


def score_policy(method, model, spec, cfg, job: dict) -> dict[str, float]:
    """Mean return (and normalized score / success rate) over ``eval_episodes`` seeded in-process episodes."""
    from envs.registry import make_env
    from rayexp.engine import episode_seed
    from rayexp.evaluate import run_episode

    env = make_env(cfg.env.id, split=cfg.env.split, max_episode_steps=cfg.env.max_episode_steps, **cfg.env.kwargs)
    policy = method.make_policy(model.eval(), spec)
    rows = [run_episode(env, policy, episode_seed(cfg.evaluate.seed, 0, i), spec.obs_history, cfg.evaluate.execute,
                        cfg.evaluate.chunk, job["eval_max_steps"]) for i in range(max(1, job["eval_episodes"]))]
    env.close()
    ret = float(np.mean([r["return"] for r in rows]))
    out = {"return": ret, "score": ret}
    if job["ref_scores"]:
        from rayexp.data.d4rl import normalized_score

        out["score"] = float(np.mean(normalized_score(np.array([r["return"] for r in rows]), *job["ref_scores"])))
    successes = [r["success"] for r in rows if r["success"] is not None]
    out["success_rate"] = float(np.mean(successes)) if successes else float("nan")
    return out
