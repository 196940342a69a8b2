"""Maze2D's sweep trial score: the waypoint success (Fig. 2.10's number) of a waypoint planner's plans between
start/goal pairs of one part (train or test) of the maze's OOC split."""
from __future__ import annotations

import numpy as np

WAYPOINT_METRICS = ("waypoint_success",)


def is_waypoint_planner(cfg, stage: str) -> bool:
    return cfg.models[stage].method.name == "planner"


def trial_metrics(cfg, stage: str) -> tuple[str, ...] | None:
    """The family's ``sweep_metrics`` hook: a planner stage reports waypoint success (None: the core's metrics)."""
    return WAYPOINT_METRICS if is_waypoint_planner(cfg, stage) else None


def trial_score(method, model, spec, cfg, job: dict, options: dict) -> dict[str, float] | None:
    """The family's ``sweep_score`` hook: ``eval_episodes`` plans conditioned on their shortest-path waypoints
    with the method's guidance weight (None for other stages: the core's closed-loop episodes)."""
    if not is_waypoint_planner(cfg, job["stage"]):
        return None
    from envs.maze2d_plots import waypoint_success_rate
    from envs.maze2d_split import maze_splits
    from rayexp.families.maze2d.figure import pair_panel

    maze = cfg.env.id.removeprefix("maze2d-")
    start_goal, _ = maze_splits(maze)
    pairs = list(start_goal.train if options.get("split", "test") == "train" else start_goal.test)
    rng = np.random.default_rng(job["seed"])
    picked = [pairs[i] for i in rng.choice(len(pairs), min(max(1, job["eval_episodes"]), len(pairs)), replace=False)]
    trajs, wps = pair_panel(method.make_policy(model.eval(), spec), maze, picked, True, method.cfg.guidance, job["seed"])
    return {"waypoint_success": waypoint_success_rate(maze, trajs, wps)}
