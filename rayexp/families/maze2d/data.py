"""D4RL-style Maze2D datasets: the waypoint controller drives to random goals, a new goal on arrival.

Each Ray task generates one chunk: a continuing stream of ``steps / num_chunks`` steps with its own seed,
cut into episodes of ``episode_len`` steps (the last one timed out, like D4RL's ``timeouts``; the stream goes
on across the cut, so ``final_obs`` is the next episode's first observation). D4RL's sizes are one config
away: umaze 1M, medium 2M, large 4M steps. The normalized-score references of our env go into DatasetMeta.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from envs.maze2d import (
    ACT_DIM,
    EPISODE_STEPS,
    OBS_DIM,
    WaypointController,
    cell_to_xy,
    check_maze,
    free_cells,
    make_maze_env,
    reference_scores,
    xy_to_cell,
)
from rayexp.data.store import DatasetMeta, Episode, EpisodeStore, write_dataset

DEFAULT_STEPS = {"umaze": 100_000, "medium": 150_000, "large": 200_000}  # CPU defaults
D4RL_STEPS = {"umaze": 1_000_000, "medium": 2_000_000, "large": 4_000_000}


def _new_goal(maze: str, position: np.ndarray, rng: np.random.Generator, noise: float = 0.25) -> tuple[tuple[int, int], np.ndarray]:
    """A random free cell other than the current one, and its centre plus uniform noise."""
    here = tuple(xy_to_cell(maze, position))
    cells = [c for c in free_cells(maze) if c != here]
    cell = cells[int(rng.integers(len(cells)))]
    return cell, cell_to_xy(maze, cell) + rng.uniform(-noise, noise, 2)


def _cut(stream: dict[str, list], lo: int, hi: int, seed: int, goals: list, last_obs: np.ndarray) -> Episode:
    rewards = np.asarray(stream["reward"][lo:hi], dtype=np.float32)
    timeouts = np.zeros(hi - lo, dtype=bool)
    timeouts[-1] = True
    return Episode(observations=np.asarray(stream["obs"][lo:hi], dtype=np.float32),
                   actions=np.asarray(stream["action"][lo:hi], dtype=np.float32), rewards=rewards,
                   terminals=np.zeros(hi - lo, dtype=bool), timeouts=timeouts, final_observation=last_obs.astype(np.float32),
                   success=bool(rewards.max() > 0), seed=seed, policy="pd-controller", condition={"goals": goals})


def generate_chunk(maze: str, steps: int, seed: int, episode_len: int, action_noise: float = 0.0) -> list[Episode]:
    """One continuing controller stream of ``steps`` steps cut into episodes of ``episode_len`` (T, 4 / T, 2).

    An episode's condition is {"goals": [[row, col], ...]}: the goal cells active during it, in order.
    ``action_noise`` adds N(0, noise^2) to the controller's action (clipped to [-1, 1]).
    """
    rng = np.random.default_rng(seed)
    env = make_maze_env(maze, max_episode_steps=steps + 1)
    obs, _ = env.reset(seed=seed)
    ctrl = WaypointController(maze, rng=rng)
    cell, goal = _new_goal(maze, obs[:2], rng)
    env.set_goal(goal)
    ctrl.set_target(obs[:2], goal)
    stream: dict[str, list] = {"obs": [], "action": [], "reward": []}
    episodes, goals, lo = [], [list(cell)], 0
    for t in range(steps):
        action, reached = ctrl.act(obs)
        if reached:
            cell, goal = _new_goal(maze, obs[:2], rng)
            env.set_goal(goal)
            ctrl.set_target(obs[:2], goal)
            goals.append(list(cell))
            action, _ = ctrl.act(obs)
        if action_noise > 0:
            action = np.clip(action + rng.normal(0, action_noise, ACT_DIM), -1.0, 1.0)
        stream["obs"].append(obs)
        stream["action"].append(action)
        obs, reward, _, _, _ = env.step(action)
        stream["reward"].append(reward)
        if t + 1 - lo == episode_len or t + 1 == steps:
            episodes.append(_cut(stream, lo, t + 1, seed, goals, obs))
            goals, lo = [list(cell)], t + 1
    env.close()
    return episodes


def _reference_task(maze: str, policy: str, episodes: int, seed: int, max_episode_steps: int) -> float:
    from envs.maze2d import evaluate_returns

    return float(np.mean(evaluate_returns(maze, policy, episodes, seed, max_episode_steps)))


def make_maze_dataset(maze: str, steps: int | None = None, out: str | Path = "data/maze2d", num_chunks: int = 4,
                      seed: int = 0, overwrite: bool = False, episode_len: int | None = None,
                      action_noise: float = 0.0, ref_episodes: int = 100) -> EpisodeStore:
    """Generate ``steps`` controller steps in ``num_chunks`` Ray tasks and write them to the store at ``out``.

    Starts a local Ray if none is running. ref_min/ref_max: random-policy and controller mean returns over
    ``ref_episodes`` evaluation episodes of ``episode_len`` steps (see envs.maze2d.reference_scores).
    """
    import ray

    from rayexp.parallel import ray_map

    check_maze(maze)
    steps = DEFAULT_STEPS[maze] if steps is None else int(steps)
    episode_len = episode_len or EPISODE_STEPS[maze]
    if steps < num_chunks or num_chunks < 1:
        raise ValueError(f"steps={steps} must be >= num_chunks={num_chunks} >= 1")
    if Path(out).exists() and not overwrite:
        from rayexp.errors import DataError

        raise DataError(f"dataset {out} already exists; pass overwrite=True or choose another path")
    if not ray.is_initialized():  # the CLI has started it already; a direct call gets the same local Ray
        from rayexp.cluster import init_ray
        from rayexp.config import RayConfig

        init_ray(RayConfig())
    sizes = [steps // num_chunks + (i < steps % num_chunks) for i in range(num_chunks)]
    seeds = np.random.SeedSequence(seed).generate_state(num_chunks).tolist()
    kw = [dict(maze=maze, steps=n, seed=int(s), episode_len=episode_len, action_noise=action_noise) for n, s in zip(sizes, seeds)]
    chunks = ray_map(generate_chunk, kw, desc=f"maze2d-{maze} data")
    refs = ray_map(_reference_task, [dict(maze=maze, policy=p, episodes=ref_episodes, seed=seed + 1, max_episode_steps=episode_len)
                                     for p in ("random", "controller")], desc="reference scores")
    meta = DatasetMeta(env_id=f"rayexp/maze2d-{maze}", obs_dim=OBS_DIM, act_dim=ACT_DIM, ref_min_score=refs[0],
                       ref_max_score=refs[1], source="pd-controller",
                       description=f"PointMaze {maze}: PD waypoint controller to random goals, resampled on arrival",
                       extra={"maze": maze, "steps": steps, "num_chunks": num_chunks, "seed": seed, "chunk_seeds": seeds,
                              "episode_len": episode_len, "action_noise": action_noise, "ref_episodes": ref_episodes})
    return write_dataset(out, [ep for chunk in chunks for ep in chunk], meta, overwrite=overwrite)


__all__ = ["generate_chunk", "make_maze_dataset", "reference_scores", "DEFAULT_STEPS", "D4RL_STEPS"]


def collect_controller_data(cfg, out: Path, overwrite: bool) -> EpisodeStore:
    """``collect.source: maze2d-controller``: the configured maze's controller dataset with its reference scores."""
    return make_maze_dataset(cfg.env.id.removeprefix("maze2d-"), cfg.family.steps, out, cfg.collect.num_env_runners,
                             cfg.seed, overwrite, cfg.env.max_episode_steps, ref_episodes=cfg.collect.episodes)
