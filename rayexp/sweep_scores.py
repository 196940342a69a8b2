"""In-process scores a sweep trial reports: seeded closed-loop episodes, or for a Maze2D waypoint planner the
waypoint success of plans between start/goal pairs of one part (train or test) of the maze's OOC split."""
from __future__ import annotations

from pathlib import Path

import numpy as np

WAYPOINT_METRICS = ("waypoint_success",)


def is_waypoint_planner(cfg, stage: str) -> bool:
    return cfg.env.id.startswith("maze2d-") and cfg.models[stage].method.name == "planner"


def score_trained(cfg, job: dict, options: dict) -> dict[str, float]:
    """Score the from_run's trained stage under the trial's (swept) method config, e.g. another guidance weight."""
    from algorithms.registry import make_method
    from rayexp.train import load_model

    _, model, spec = load_model(Path(job["models_dir"]) / f"{job['stage']}.pt")
    method = make_method(cfg.models[job["stage"]].method)  # the swept method config, the trained weights
    if is_waypoint_planner(cfg, job["stage"]):
        return score_waypoints(method, model, spec, cfg, job, options.get("split", "test"))
    return score_policy(method, model, spec, cfg, job)


def score_policy(method, model, spec, cfg, job: dict) -> dict[str, float]:
    """Mean return (and normalized score / success rate) over ``eval_episodes`` seeded in-process episodes."""
    import numpy as np

    from envs.registry import make_env
    from rayexp.evaluate import run_episode

    env = make_env(cfg.env.id, split=cfg.env.split, max_episode_steps=cfg.env.max_episode_steps, **cfg.env.kwargs)
    policy = method.make_policy(model.eval(), spec)
    rows = [run_episode(env, policy, cfg.evaluate.seed + i, spec.obs_history, cfg.evaluate.execute,
                        cfg.evaluate.chunk, job["eval_max_steps"]) for i in range(max(1, job["eval_episodes"]))]
    env.close()
    ret = float(np.mean([r["return"] for r in rows]))
    out = {"return": ret, "score": ret}
    if job["ref_scores"]:
        from rayexp.d4rl import normalized_score

        out["score"] = float(np.mean(normalized_score(np.array([r["return"] for r in rows]), *job["ref_scores"])))
    successes = [r["success"] for r in rows if r["success"] is not None]
    out["success_rate"] = float(np.mean(successes)) if successes else float("nan")
    return out


def score_waypoints(method, model, spec, cfg, job: dict, part: str) -> dict[str, float]:
    """Waypoint success (Fig. 2.10's number) of ``eval_episodes`` plans between start/goal pairs of the OOC split's
    ``part``, conditioned on their shortest-path waypoints with the method's guidance weight."""
    from envs.maze2d_plots import waypoint_success_rate
    from envs.maze2d_split import maze_splits
    from rayexp.maze_figure import pair_panel

    maze = cfg.env.id.removeprefix("maze2d-")
    start_goal, _ = maze_splits(maze)
    pairs = list(start_goal.train if part == "train" else start_goal.test)
    rng = np.random.default_rng(job["seed"])
    picked = [pairs[i] for i in rng.choice(len(pairs), min(max(1, job["eval_episodes"]), len(pairs)), replace=False)]
    trajs, wps = pair_panel(method.make_policy(model.eval(), spec), maze, picked, True, method.cfg.guidance, job["seed"])
    return {"waypoint_success": waypoint_success_rate(maze, trajs, wps)}
