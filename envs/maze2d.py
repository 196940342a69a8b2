"""Maze2D on gymnasium-robotics PointMaze: layouts, cell <-> xy, a sparse-reward env, BFS shortest paths,
a PD waypoint controller (D4RL's recipe, rewritten) and the normalized-score references of *our* env.

Coordinates follow gymnasium-robotics: the maze is centred at the origin, one cell is 1 x 1, cell (row, col)
has its centre at x = col + 0.5 - width / 2, y = height / 2 - (row + 0.5). Observations are (x, y, vx, vy).
Reward: 1 for every step within ``GOAL_RADIUS`` of the goal, else 0 (no termination), like D4RL's maze2d;
D4RL's constants do not apply here, use ``reference_scores`` (stored in the dataset meta).
"""
from __future__ import annotations

from collections import deque
from typing import Callable

import numpy as np

LAYOUTS: dict[str, tuple[str, ...]] = {
    # '#' wall, '.' free; the same grids as gymnasium-robotics U_MAZE / MEDIUM_MAZE / LARGE_MAZE (and D4RL).
    "umaze": ("#####", "#...#", "###.#", "#...#", "#####"),
    "medium": ("########", "#..##..#", "#..#...#", "##...###", "#..#...#", "#.#..#.#", "#...#..#", "########"),
    "large": ("############", "#....#.....#", "#.##.#.#.#.#", "#......#...#", "#.####.###.#", "#..#.#.....#",
              "##.#.#.#.###", "#..#...#...#", "############"),
}
ENV_NAMES = tuple(f"maze2d-{m}" for m in LAYOUTS)  # the names make_env accepts (envs.registry checks them)
GYM_IDS = {"umaze": "PointMaze_UMaze-v3", "medium": "PointMaze_Medium-v3", "large": "PointMaze_Large-v3"}
EPISODE_STEPS = {"umaze": 300, "medium": 600, "large": 800}  # D4RL's maze2d episode lengths
HORIZONS = {"umaze": 128, "medium": 256, "large": 384}  # planning horizons (Diffuser, thesis 3.4.2)
GOAL_RADIUS = 0.45  # gymnasium-robotics' success radius (D4RL used 0.5 in its own units)
OBS_DIM, ACT_DIM = 4, 2
Cell = tuple[int, int]


def check_maze(maze: str) -> str:
    if maze not in LAYOUTS:
        raise ValueError(f"unknown maze {maze!r}; valid: {sorted(LAYOUTS)}")
    return maze


def wall_grid(maze: str) -> np.ndarray:
    """rows, cols bool array, True where there is a wall."""
    return np.array([[ch == "#" for ch in row] for row in LAYOUTS[check_maze(maze)]])


def free_cells(maze: str) -> list[Cell]:
    walls = wall_grid(maze)
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(~walls))]


def cell_name(cell: Cell) -> str:
    return f"r{cell[0]}c{cell[1]}"


def parse_cell(name: str) -> Cell:
    r, c = name[1:].split("c")
    return int(r), int(c)


def cell_to_xy(maze: str, cell: Cell | np.ndarray) -> np.ndarray:
    """(row, col) or N, 2 cells -> (x, y) or N, 2 cell centres."""
    rows, cols = wall_grid(maze).shape
    cell = np.asarray(cell, dtype=float)
    return np.stack([cell[..., 1] + 0.5 - cols / 2, rows / 2 - cell[..., 0] - 0.5], axis=-1)


def xy_to_cell(maze: str, xy: np.ndarray) -> np.ndarray:
    """(x, y) or N, 2 positions -> integer (row, col) of the containing cell (may lie outside the grid)."""
    rows, cols = wall_grid(maze).shape
    xy = np.asarray(xy, dtype=float)
    return np.stack([np.floor(rows / 2 - xy[..., 1]), np.floor(xy[..., 0] + cols / 2)], axis=-1).astype(int)


def is_wall(maze: str, xy: np.ndarray) -> np.ndarray:
    """N, 2 (or 2) positions -> N bools: inside a wall cell or outside the grid."""
    walls = wall_grid(maze)
    rc = xy_to_cell(maze, xy)
    inside = (rc[..., 0] >= 0) & (rc[..., 0] < walls.shape[0]) & (rc[..., 1] >= 0) & (rc[..., 1] < walls.shape[1])
    r, c = np.clip(rc[..., 0], 0, walls.shape[0] - 1), np.clip(rc[..., 1], 0, walls.shape[1] - 1)
    return ~inside | walls[r, c]


def shortest_path(maze: str, start_cell: Cell, goal_cell: Cell) -> list[Cell]:
    """BFS over free cells (4-neighbourhood): the cells from start to goal, both included."""
    walls = wall_grid(maze)
    start, goal = tuple(map(int, start_cell)), tuple(map(int, goal_cell))
    for name, cell in (("start_cell", start), ("goal_cell", goal)):
        if not (0 <= cell[0] < walls.shape[0] and 0 <= cell[1] < walls.shape[1]) or walls[cell]:
            raise ValueError(f"{name} {cell} is not a free cell of maze {maze!r}")
    parent: dict[Cell, Cell | None] = {start: None}
    queue = deque([start])
    while queue:
        cur = queue.popleft()
        if cur == goal:
            break
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nxt = (cur[0] + dr, cur[1] + dc)
            if nxt not in parent and not walls[nxt]:
                parent[nxt] = cur
                queue.append(nxt)
    path, node = [], goal
    while node is not None:
        path.append(node)
        node = parent[node]
    return path[::-1]


class WaypointController:
    """PD controller through the centres of the BFS path cells, then onto the exact target (D4RL's recipe).

    Intermediate waypoints are jittered by up to ``jitter`` so the data does not run on rails.
    ``act(obs: 4) -> (action: 2, reached: bool)``; a new target replans from the current cell.
    """

    def __init__(self, maze: str, p_gain: float = 10.0, d_gain: float = -1.0, solve_thresh: float = 0.1,
                 jitter: float = 0.1, rng: np.random.Generator | None = None):
        self.maze, self.p_gain, self.d_gain, self.solve_thresh, self.jitter = check_maze(maze), p_gain, d_gain, solve_thresh, jitter
        self.rng = rng or np.random.default_rng()
        self.target: np.ndarray | None = None
        self.waypoints: np.ndarray = np.zeros((0, 2))
        self.idx = 0

    def set_target(self, position: np.ndarray, target: np.ndarray) -> None:
        path = shortest_path(self.maze, tuple(xy_to_cell(self.maze, position)), tuple(xy_to_cell(self.maze, target)))
        centres = cell_to_xy(self.maze, np.array(path[1:-1], dtype=float).reshape(-1, 2))
        centres = centres + self.rng.uniform(-self.jitter, self.jitter, centres.shape)
        self.waypoints = np.concatenate([centres, np.asarray(target, dtype=float)[None]])
        self.target, self.idx = np.asarray(target, dtype=float).copy(), 0

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, bool]:
        pos, vel = obs[:2], obs[2:4]
        if self.target is None:
            raise ValueError("WaypointController has no target; call set_target(position, target) first")
        wp = self.waypoints[self.idx]
        if self.idx < len(self.waypoints) - 1 and np.linalg.norm(pos - wp) < self.solve_thresh:
            self.idx += 1
            wp = self.waypoints[self.idx]
        action = np.clip(self.p_gain * (wp - pos) + self.d_gain * vel, -1.0, 1.0)
        return action, bool(np.linalg.norm(pos - self.target) < self.solve_thresh)


class Maze2DEnv:
    """A thin Gymnasium-style env over PointMazeEnv: obs is (x, y, vx, vy) (4,), info carries ``goal``.

    reset(seed, options={"start_cell": (r, c), "goal_cell": (r, c)}) -> obs, info; step(a: 2) -> obs, r, term, trunc, info.
    Steps the unwrapped MuJoCo env (3x faster than through gym.make's checkers); truncates at max_episode_steps.
    """

    def __init__(self, maze: str, max_episode_steps: int | None = None):
        import gymnasium as gym
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
        self.maze = check_maze(maze)
        self.max_episode_steps = max_episode_steps or EPISODE_STEPS[maze]
        self.env = gym.make(GYM_IDS[maze], continuing_task=True, reset_target=False).unwrapped
        self.action_space, self.t = self.env.action_space, 0

    @property
    def goal(self) -> np.ndarray:
        return self.env.goal.copy()

    def set_goal(self, goal_xy: np.ndarray) -> None:
        self.env.goal = np.asarray(goal_xy, dtype=float).copy()
        self.env.update_target_site_pos()

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        opts = None
        if options:
            opts = {"reset_cell": options.get("start_cell"), "goal_cell": options.get("goal_cell")}
            opts = {k: None if v is None else np.asarray(v, dtype=int) for k, v in opts.items()}
        obs, info = self.env.reset(seed=seed, options=opts)
        self.t = 0
        return obs["observation"].copy(), {"goal": self.goal, **info}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, _, info = self.env.step(np.asarray(action, dtype=np.float64))
        self.t += 1
        return obs["observation"].copy(), float(reward), bool(terminated), self.t >= self.max_episode_steps, {"goal": self.goal, **info}

    def close(self) -> None:
        self.env.close()


def make_maze_env(maze: str, seed: int | None = None, max_episode_steps: int | None = None) -> Maze2DEnv:
    """The rayexp maze2d task: sparse reward (1 within GOAL_RADIUS of the goal), fixed goal per episode."""
    env = Maze2DEnv(maze, max_episode_steps)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def random_policy(rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """obs (4,) -> uniform action in [-1, 1]^2."""
    return lambda obs: rng.uniform(-1.0, 1.0, ACT_DIM)


def evaluate_returns(maze: str, policy: str, episodes: int, seed: int, max_episode_steps: int | None = None) -> list[float]:
    """Returns of ``policy`` ('random' or 'controller') over episodes with random start and goal cells."""
    if policy not in ("random", "controller"):
        raise ValueError(f"unknown reference policy {policy!r}; valid: ['controller', 'random']")
    env, rng = make_maze_env(maze, max_episode_steps=max_episode_steps), np.random.default_rng(seed)
    returns = []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed * 100_003 + ep)
        ctrl = WaypointController(maze, rng=rng)
        ctrl.set_target(obs[:2], info["goal"])
        act = random_policy(rng) if policy == "random" else (lambda o: ctrl.act(o)[0])
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs))
            total, done = total + r, term or trunc
        returns.append(total)
    env.close()
    return returns


def reference_scores(maze: str, episodes: int = 100, seed: int = 0, max_episode_steps: int | None = None) -> tuple[float, float]:
    """(ref_min, ref_max) = mean return of the random policy and of the waypoint controller on our env."""
    lo = float(np.mean(evaluate_returns(maze, "random", episodes, seed, max_episode_steps)))
    hi = float(np.mean(evaluate_returns(maze, "controller", episodes, seed, max_episode_steps)))
    return lo, hi


def make_registered_env(name: str, split: str | None = None, seed: int | None = None,
                        max_episode_steps: int | None = None, **kwargs) -> Maze2DEnv:
    """``make_env("maze2d-umaze" | "maze2d-medium" | "maze2d-large")``: the sparse-reward PointMaze task.

    Episodes draw a random start and goal cell; pass ``options={"start_cell", "goal_cell"}`` to reset to fix them.
    """
    from envs.registry import UnknownEnvError

    maze = name.removeprefix("maze2d-")
    if maze not in LAYOUTS:
        raise UnknownEnvError(f"env.id: unknown maze {name!r}; valid: {', '.join('maze2d-' + m for m in sorted(LAYOUTS))}")
    if split is not None:
        raise UnknownEnvError(f"env.split: {name} takes no split (its OOC splits are start/goal pairs and waypoints, "
                              "see envs.maze2d_split); remove env.split")
    if kwargs:
        raise UnknownEnvError(f"env.kwargs: {name} takes none, got {sorted(kwargs)}")
    return make_maze_env(maze, seed=seed, max_episode_steps=max_episode_steps)
