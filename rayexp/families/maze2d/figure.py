"""Fig. 2.10-style panels from a trained chapter-2 planner (stage ``planner``), with the waypoint-success number of
each panel: the share of trajectories that pass within ``radius`` of every requested waypoint without crossing a wall.

(a) training windows (requested waypoints: their own states at H/4, H/2, 3H/4);
(b) unconditioned plans between in-distribution start/goal cells, (c) between held-out (unseen) start/goal cells
    (requested waypoints: the cells at 1/4, 1/2, 3/4 of the shortest path);
(d) plans conditioned on held-out waypoint triples with classifier-free guidance 1.3.
The split is ``envs.maze2d_split.maze_splits(maze)``; the planner excludes its test windows when trained with
``hold_out_maze: <maze>``. Output: ``<run>/fig_2_10.png`` and ``<run>/fig_2_10.json``.
"""
from __future__ import annotations

import json

import numpy as np
import torch

from envs.maze2d import cell_to_xy, parse_cell, shortest_path
from envs.maze2d_plots import PANEL_TITLES, plot_maze_panels, waypoint_success_rate
from envs.maze2d_split import maze_splits, path_waypoints, train_window_mask, waypoint_indices


def training_windows(arrays: dict, horizon: int, n: int, rng: np.random.Generator, keep) -> np.ndarray:
    """n, H, obs_dim windows that stay inside one episode and pass ``keep(windows) -> bools``."""
    ep = arrays["episode_id"]
    starts = rng.integers(0, len(ep) - horizon, 50 * n)
    starts = starts[ep[starts] == ep[starts + horizon - 1]]
    windows = np.stack([arrays["obs"][s:s + horizon] for s in starts])
    return windows[keep(windows)][:n]


def pair_panel(policy, maze: str, pairs: list[tuple[str, str]], waypoints: bool, guidance: float, seed: int):
    """Plans (n, H, obs_dim) between cell pairs, and the pairs' shortest-path waypoints (n, 3, 2)."""
    cells = [(parse_cell(a), parse_cell(b)) for a, b in pairs]
    start = np.concatenate([cell_to_xy(maze, np.array([a for a, _ in cells], float)), np.zeros((len(cells), 2))], 1)
    goal = cell_to_xy(maze, np.array([b for _, b in cells], float))
    wps = np.stack([cell_to_xy(maze, np.array(path_waypoints(shortest_path(maze, a, b)), float)) for a, b in cells])
    gen = torch.Generator().manual_seed(seed)
    plans = policy.plan(torch.as_tensor(start, dtype=torch.float32), torch.as_tensor(goal, dtype=torch.float32),
                        torch.as_tensor(wps, dtype=torch.float32) if waypoints else None, guidance=guidance, generator=gen)
    return plans.numpy(), wps


def maze_figure(cfg, run, n: int = 8, radius: float = 0.5, guidance: float = 1.3, seed: int = 0) -> dict[str, float]:
    """Draw the four panels into ``<run>/fig_2_10.png``; returns (and writes to fig_2_10.json) each panel's rate."""
    from envs.splits import canonical
    from rayexp.data.store import EpisodeStore
    from rayexp.runs import dataset_path
    from rayexp.train import load_model

    maze = cfg.env.id.removeprefix("maze2d-")
    method, model, spec = load_model(run.model_path("planner"))
    policy = method.make_policy(model, spec)
    H = method.cfg.horizon
    sg, wp = maze_splits(maze)
    rng = np.random.default_rng(seed)
    train = training_windows(EpisodeStore(dataset_path(cfg, run)).arrays(), H, n, rng,
                             lambda w: train_window_mask(maze, w, sg, wp))
    test_triples = {canonical(t) for t in wp.test}
    unseen_wp = [p for p in sg.test if _names(p, maze) in test_triples]  # pairs whose waypoints are held out

    def pick(pairs):
        return [pairs[i] for i in rng.choice(len(pairs), min(n, len(pairs)), replace=False)]

    panels = [(train, train[:, waypoint_indices(H), :2])]
    panels.append(pair_panel(policy, maze, pick(list(sg.train)), False, 0.0, seed))
    panels.append(pair_panel(policy, maze, pick(list(sg.test)), False, 0.0, seed))
    panels.append(pair_panel(policy, maze, pick(unseen_wp or list(sg.test)), True, guidance, seed))
    rates = {title: waypoint_success_rate(maze, trajs, wps, radius) for title, (trajs, wps) in zip(PANEL_TITLES, panels)}
    titles = tuple(f"{t}\nwaypoint success {r:.2f}" for t, r in rates.items())
    path = plot_maze_panels(maze, panels, run.path / "fig_2_10.png", titles)
    (run.path / "fig_2_10.json").write_text(json.dumps({"png": str(path), "radius": radius, "n": n, **rates}, indent=1))
    return rates


def _names(pair: tuple[str, str], maze: str) -> tuple[str, ...]:
    from envs.maze2d import cell_name
    from envs.splits import canonical

    return canonical([cell_name(c) for c in path_waypoints(shortest_path(maze, *map(parse_cell, pair)))])
