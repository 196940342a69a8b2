"""Maze2D pictures like thesis Fig. 2.10 / A.7, and the waypoint-following metric.

Panels: (a) training samples; (b) unconditioned, in-distribution start/goal; (c) unconditioned, unseen
start/goal; (d) conditioned on unseen waypoints (cfg 1.3). Trajectories are B, H, >=2 arrays (x, y first).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from envs.maze2d import cell_to_xy, check_maze, is_wall, wall_grid

PANEL_TITLES = ("(a) training samples", "(b) uncond., ID start/goal", "(c) uncond., unseen start/goal",
                "(d) cond. on unseen waypoints, cfg 1.3")


def crosses_wall(maze: str, traj_xy: np.ndarray, step: float = 0.02) -> bool:
    """H, 2 -> True if any point on the polyline (checked every ``step``) lies in a wall or outside the maze."""
    traj_xy = np.asarray(traj_xy, dtype=float)[:, :2]
    seg = np.diff(traj_xy, axis=0)
    n = np.maximum(1, np.ceil(np.linalg.norm(seg, axis=1) / step)).astype(int)
    pts = [traj_xy[:1]] + [a + np.linspace(0, 1, k + 1)[1:, None] * d for a, d, k in zip(traj_xy[:-1], seg, n)]
    return bool(is_wall(maze, np.concatenate(pts)).any())


def passes_waypoints(traj_xy: np.ndarray, waypoints_xy: np.ndarray, radius: float) -> bool:
    """H, 2 and K, 2 -> True if the trajectory comes within ``radius`` of every waypoint (in any order)."""
    d = np.linalg.norm(np.asarray(traj_xy)[:, None, :2] - np.asarray(waypoints_xy)[None, :, :2], axis=-1)  # H, K
    return bool((d.min(axis=0) <= radius).all())


def jumps(traj_xy: np.ndarray, max_step: float) -> bool:
    """H, 2 -> True if two consecutive states lie more than ``max_step`` apart (a teleport, not a path)."""
    return bool((np.linalg.norm(np.diff(np.asarray(traj_xy)[:, :2], axis=0), axis=1) > max_step).any())


# The controller data moves at most ~0.06 per step (measured on U-Maze); 4x that is no longer a path.
MAX_STEP = 0.25


def waypoint_success_rate(maze: str, trajs: np.ndarray, waypoints: np.ndarray, radius: float = 0.5,
                          max_step: float = MAX_STEP) -> float:
    """Share of trajectories (B, H, >=2) that pass within ``radius`` of every requested waypoint (K, 2 or
    B, K, 2) without crossing a wall or jumping more than ``max_step`` between consecutive states."""
    check_maze(maze)
    trajs = np.asarray(trajs)
    if trajs.ndim != 3 or trajs.shape[-1] < 2:
        raise ValueError(f"trajs must be B, H, >=2 (x, y first); got shape {trajs.shape}")
    wps = np.asarray(waypoints, dtype=float)[..., :2]
    wps = np.broadcast_to(wps, (len(trajs),) + wps.shape) if wps.ndim == 2 else wps
    ok = [passes_waypoints(t, w, radius) and not crosses_wall(maze, t) and not jumps(t, max_step)
          for t, w in zip(trajs, wps)]
    return float(np.mean(ok)) if ok else 0.0


def draw_maze(ax, maze: str) -> None:
    """Walls as grey squares in env coordinates; equal aspect, no ticks."""
    from matplotlib.patches import Rectangle

    walls = wall_grid(maze)
    for r, c in zip(*np.nonzero(walls)):
        x, y = cell_to_xy(maze, (r, c))
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, color="0.45", lw=0))
    rows, cols = walls.shape
    ax.set_xlim(-cols / 2, cols / 2)
    ax.set_ylim(-rows / 2, rows / 2)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_trajectories(ax, trajs: np.ndarray, waypoints: np.ndarray | None = None) -> None:
    """B, H, >=2 trajectories coloured by time (start green, goal red); waypoints K, 2 or B, K, 2 as black dots."""
    for traj in np.asarray(trajs):
        ax.scatter(traj[:, 0], traj[:, 1], c=np.linspace(0, 1, len(traj)), cmap="viridis", s=2, zorder=2)
        ax.plot(*traj[0, :2], "o", color="tab:green", ms=5, zorder=3)
        ax.plot(*traj[-1, :2], "o", color="tab:red", ms=5, zorder=3)
    if waypoints is not None:
        w = np.asarray(waypoints).reshape(-1, np.shape(waypoints)[-1])
        ax.scatter(w[:, 0], w[:, 1], c="black", s=30, zorder=4)


def save_png(fig, path: str | Path) -> Path:
    """Write a figure atomically: temp file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def plot_maze_panels(maze: str, panels: list[tuple[np.ndarray, np.ndarray | None]], path: str | Path,
                     titles: tuple[str, ...] = PANEL_TITLES) -> Path:
    """One row of panels, each (trajectories B, H, >=2, waypoints or None), drawn on the maze; PNG at ``path``."""
    from matplotlib.figure import Figure  # no pyplot: Agg canvas, no global backend state

    check_maze(maze)
    fig = Figure(figsize=(3.2 * len(panels), 3.2))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (trajs, wps), title in zip(axes[0], panels, list(titles) + [""] * len(panels)):
        draw_maze(ax, maze)
        draw_trajectories(ax, trajs, wps)
        ax.set_title(title, fontsize=8)
    return save_png(fig, path)
