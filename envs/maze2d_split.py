"""The Maze2D OOC splits: held-out start/goal cell pairs and held-out waypoint-cell triples.

Elements are free-cell names ("r3c1"). ``OOCSplit`` treats a combination as a set, so a held-out pair
{A, B} removes both A -> B and B -> A. The waypoint triples are the cells at 1/4, 1/2, 3/4 of the shortest
path of each pair, so every test triple is reachable in order; a triple that also arises from a training
pair stays in train (the split must be disjoint).
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from envs.maze2d import cell_name, check_maze, free_cells, shortest_path, xy_to_cell
from envs.splits import OOCSplit, canonical

WAYPOINT_FRACTIONS = (0.25, 0.5, 0.75)


def waypoint_indices(horizon: int) -> list[int]:
    """The 3 time indices that cut a horizon-H window into 4 equal parts: H/4, H/2, 3H/4."""
    return [int(horizon * f) for f in WAYPOINT_FRACTIONS]


def path_waypoints(path: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """The cells at 1/4, 1/2, 3/4 of a cell path."""
    return tuple(path[int(round((len(path) - 1) * f))] for f in WAYPOINT_FRACTIONS)


def maze_splits(maze: str, test_fraction: float = 0.2, seed: int = 0) -> tuple[OOCSplit, OOCSplit]:
    """(start_goal split, waypoint split) for ``maze``; a random ``test_fraction`` of cell pairs is held out."""
    check_maze(maze)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    cells = free_cells(maze)
    pairs = list(combinations(cells, 2))
    rng = np.random.default_rng(seed)
    n_test = max(1, int(round(test_fraction * len(pairs))))
    test_idx = set(rng.choice(len(pairs), n_test, replace=False).tolist())
    names = tuple(cell_name(c) for c in cells)
    part = {"train": [], "test": []}
    triples: dict[str, set] = {"train": set(), "test": set()}
    for i, (a, b) in enumerate(pairs):
        key = "test" if i in test_idx else "train"
        part[key].append((cell_name(a), cell_name(b)))
        triples[key].add(canonical([cell_name(c) for c in path_waypoints(shortest_path(maze, a, b))]))
    triples["test"] -= triples["train"]
    if not triples["test"]:
        raise ValueError(f"maze {maze!r}, seed {seed}: no waypoint triple is unique to the test pairs; raise test_fraction or change seed")
    start_goal = OOCSplit(name=f"maze2d-{maze}-start-goal", elements=names, train=tuple(part["train"]), test=tuple(part["test"]))
    waypoints = OOCSplit(name=f"maze2d-{maze}-waypoints", elements=names, train=tuple(sorted(triples["train"])),
                         test=tuple(sorted(triples["test"])))
    return start_goal, waypoints


def window_combinations(maze: str, future_obs: np.ndarray) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """B, H, obs_dim windows -> (start/goal cell pairs, waypoint cell triples), as canonical name tuples."""
    future_obs = np.asarray(future_obs)
    if future_obs.ndim != 3 or future_obs.shape[-1] < 2:
        raise ValueError(f"future_obs must be B, H, obs_dim with x, y first; got shape {future_obs.shape}")
    idx = [0, future_obs.shape[1] - 1] + waypoint_indices(future_obs.shape[1])
    cells = xy_to_cell(maze, future_obs[:, idx, :2])  # B, 5, 2
    names = [[cell_name(tuple(rc)) for rc in row] for row in cells]
    return [canonical(n[:2]) for n in names], [canonical(n[2:]) for n in names]


def train_window_mask(maze: str, future_obs: np.ndarray, start_goal: OOCSplit, waypoints: OOCSplit) -> np.ndarray:
    """B bools: True where a window's start/goal pair and waypoint triple are both outside the test parts."""
    test_pairs = {canonical(c) for c in start_goal.test}
    test_triples = {canonical(c) for c in waypoints.test}
    pairs, triples = window_combinations(maze, future_obs)
    return np.array([p not in test_pairs and t not in test_triples for p, t in zip(pairs, triples)], dtype=bool)
