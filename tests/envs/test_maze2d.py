"""Maze2D: controller, data generation, OOC split, inverse dynamics, planner and the waypoint metric."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from algorithms.base import DataSpec, Frozen
from envs.maze2d import (
    GOAL_RADIUS,
    WaypointController,
    cell_to_xy,
    free_cells,
    make_maze_env,
    parse_cell,
    shortest_path,
    xy_to_cell,
)
from envs.maze2d_plots import crosses_wall, passes_waypoints, waypoint_success_rate

STEPS, CHUNKS = 4000, 2


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: more threads only contend
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def store(ray_session, tmp_path_factory):  # the suite's one local Ray (tests/conftest.py): no second ray.init
    from rayexp.families.maze2d.data import make_maze_dataset

    out = tmp_path_factory.mktemp("maze") / "umaze"
    return make_maze_dataset("umaze", steps=STEPS, out=out, num_chunks=CHUNKS, seed=3, action_noise=0.3, ref_episodes=3)


def _spec(arrays: dict, horizon: int = 1) -> DataSpec:
    obs, act = arrays["obs"], arrays["action"]
    stats = {"obs_mean": obs.mean(0).tolist(), "obs_std": obs.std(0).tolist(), "act_mean": act.mean(0).tolist(),
             "act_std": act.std(0).tolist(), "act_min": act.min(0).tolist(), "act_max": act.max(0).tolist()}
    return DataSpec(obs_dim=obs.shape[1], act_dim=act.shape[1], action_horizon=horizon, stats=stats)


def test_unknown_maze_lists_valid_names():
    with pytest.raises(ValueError, match="valid: \\['large', 'medium', 'umaze'\\]"):
        shortest_path("tiny", (1, 1), (1, 2))


def test_shortest_path_is_connected_and_free():
    path = shortest_path("large", (1, 1), (7, 10))
    assert path[0] == (1, 1) and path[-1] == (7, 10)
    assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in zip(path, path[1:]))
    assert set(path) <= set(free_cells("large"))


def test_controller_reaches_random_goals_on_umaze():
    env, rng = make_maze_env("umaze", seed=0, max_episode_steps=10_000), np.random.default_rng(0)
    obs, _ = env.reset(seed=1)
    ctrl = WaypointController("umaze", rng=rng)
    cells = free_cells("umaze")
    for _ in range(5):
        here = tuple(xy_to_cell("umaze", obs[:2]))
        goal = cell_to_xy("umaze", [c for c in cells if c != here][rng.integers(len(cells) - 1)]) + rng.uniform(-0.2, 0.2, 2)
        env.set_goal(goal)
        ctrl.set_target(obs[:2], goal)
        for t in range(250):
            action, reached = ctrl.act(obs)
            obs, reward, *_ = env.step(action)
            if reached:
                break
        assert reached and np.linalg.norm(obs[:2] - goal) < GOAL_RADIUS and reward == 1.0


def test_dataset_store_is_valid(store):
    assert store.num_steps == STEPS
    arrays = store.arrays()
    assert arrays["obs"].shape == (STEPS, 4) and arrays["action"].shape == (STEPS, 2)
    assert np.abs(arrays["action"]).max() <= 1.0
    assert not crosses_wall("umaze", arrays["obs"][:300, :2], step=0.05)  # the ball stays in the corridors
    meta = store.meta
    assert meta.source == "pd-controller" and meta.extra["steps"] == STEPS
    assert meta.ref_max_score > meta.ref_min_score >= 0
    eps = store.episodes().to_pandas()
    assert set(eps["policy"]) == {"pd-controller"} and eps["seed"].nunique() == CHUNKS
    first = next(store.iter_episodes())
    assert len(first.condition["goals"]) >= 2 and first.timeouts[-1] and first.success


def _path_window(maze: str, a: str, b: str, horizon: int = 32) -> np.ndarray:
    """1, H, 2: the shortest path between two named cells, resampled to H points."""
    path = cell_to_xy(maze, np.array(shortest_path(maze, parse_cell(a), parse_cell(b)), float))
    s = np.linspace(0, len(path) - 1, horizon)
    return np.stack([np.interp(s, np.arange(len(path)), path[:, i]) for i in range(2)], -1)[None]


def test_ooc_split_is_disjoint_and_filters_windows():
    from envs.maze2d_split import maze_splits, train_window_mask, window_combinations
    from envs.splits import canonical

    sg, wp = maze_splits("medium", test_fraction=0.2, seed=0)
    assert sg.is_disjoint() and wp.is_disjoint() and sg.test and wp.test
    assert not {canonical(c) for c in sg.train} & {canonical(c) for c in sg.test}
    assert not {canonical(c) for c in wp.train} & {canonical(c) for c in wp.test}
    held_out = _path_window("medium", *sg.test[0])
    reversed_ = held_out[:, ::-1]  # B -> A is held out with A -> B
    stay = np.repeat(cell_to_xy("medium", parse_cell(sg.train[0][0]))[None, None], 32, axis=1)  # never a test combination
    windows = np.concatenate([held_out, reversed_, stay])
    assert window_combinations("medium", held_out)[0][0] == canonical(sg.test[0])
    assert train_window_mask("medium", windows, sg, wp).tolist() == [False, False, True]


def test_inverse_dynamics_recovers_actions(store):
    from algorithms.configs import InverseDynamicsConfig
    from algorithms.inverse_dynamics import InverseDynamics

    a = store.arrays()
    same = a["episode_id"][1:] == a["episode_id"][:-1]
    obs, nxt, act = (torch.as_tensor(x) for x in (a["obs"][:-1][same], a["obs"][1:][same], a["action"][:-1][same]))
    n_train = int(0.8 * len(obs))
    method = InverseDynamics(InverseDynamicsConfig(hidden=[64, 64]))
    model = method.build_model(_spec(a))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(400):
        i = torch.randint(n_train, (256,), generator=gen)
        loss, _ = method.loss(model, {"obs": obs[i], "next_obs": nxt[i], "action": act[i]}, Frozen())
        opt.zero_grad()
        loss.backward()
        opt.step()
    pred = model.predict(obs[n_train:], nxt[n_train:])
    r2 = 1 - (pred - act[n_train:]).pow(2).sum(0) / (act[n_train:] - act[n_train:].mean(0)).pow(2).sum(0)
    assert (r2 > 0.9).all(), f"held-out R^2 {r2.tolist()}"


def _windows(store, horizon: int, n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    a = store.arrays()
    starts = [s for s in rng.integers(0, len(a["obs"]) - horizon, 4 * n)
              if a["episode_id"][s] == a["episode_id"][s + horizon - 1]][:n]
    return {"future_obs": torch.as_tensor(np.stack([a["obs"][s:s + horizon] for s in starts])),
            "actions": torch.as_tensor(np.stack([a["action"][s:s + horizon] for s in starts]))}


@pytest.mark.parametrize("cond_mode", ["cross_attention", "concat"])
def test_planner_trains_and_condition_changes_plan(store, cond_mode):
    from algorithms.configs import PlannerConfig
    from algorithms.planner import Planner

    H = 32
    cfg = PlannerConfig(horizon=H, n_diffusion_steps=10, cond_mode=cond_mode, down_dims=[16, 32], step_embed_dim=16,
                        cond_embed_dim=16)
    method = Planner(cfg)
    model = method.build_model(_spec(store.arrays(), H))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = _windows(store, H, 16, np.random.default_rng(0))
    for _ in range(3):
        loss, metrics = method.loss(model, batch, Frozen())
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
        opt.step()
    assert np.isfinite(metrics["loss"])
    policy = method.make_policy(model, None)
    start, goal = batch["future_obs"][:2, 0], batch["future_obs"][:2, -1, :2]
    wp1 = batch["future_obs"][:2, [8, 16, 24], :2]

    def plan(wp, w):
        return policy.plan(start, goal, wp, guidance=w, generator=torch.Generator().manual_seed(0))

    p1, p2 = plan(wp1, 1.3), plan(wp1 + 0.5, 1.3)
    assert p1.shape == (2, H, 4) and torch.isfinite(p1).all()
    assert (p1 - p2).abs().max() > 1e-4, "the waypoint condition had no effect on the plan"
    assert torch.equal(plan(wp1, 1.3), p1), "same noise and condition must give the same plan"
    assert torch.equal(plan(wp1, 0.0), plan(wp1 + 0.5, 0.0)), "guidance 0 must ignore the condition"
    assert torch.allclose(p1[:, 0], start, atol=1e-4) and torch.allclose(p1[:, -1, :2], goal, atol=1e-4)


def test_waypoint_metric_on_hand_made_trajectories():
    path = cell_to_xy("umaze", np.array(shortest_path("umaze", (1, 1), (3, 1)), float))  # around the U
    along = np.concatenate([np.linspace(p, q, 10, endpoint=False) for p, q in zip(path[:-1], path[1:])] + [path[-1:]])
    straight = np.linspace(path[0], path[-1], len(along))  # through the middle wall
    wps = path[[1, 3, 5]]
    assert not crosses_wall("umaze", along) and crosses_wall("umaze", straight)
    assert crosses_wall("umaze", np.array([[-0.5, 0.5], [-0.5, -0.5]]))  # both ends free, wall in between
    assert passes_waypoints(straight, path[[0, -1]], 0.1) and not passes_waypoints(straight, wps, 0.3)
    assert waypoint_success_rate("umaze", np.stack([along, straight]), wps, radius=0.3) == 0.5
    assert waypoint_success_rate("umaze", along[None], wps + np.array([0.0, 0.6]), radius=0.3) == 0.0
    teleport = np.concatenate([along[:1]] * 15 + [along[15:]])  # waits, then jumps 1.5 cells along the free corridor
    assert not crosses_wall("umaze", teleport) and passes_waypoints(teleport, path[[0, -1]], 0.1)
    assert waypoint_success_rate("umaze", np.stack([along, teleport]), path[[0, -1]], radius=0.3) == 0.5


def test_maze_panels_png(tmp_path):
    from envs.maze2d_plots import plot_maze_panels

    traj = cell_to_xy("umaze", np.array(shortest_path("umaze", (1, 1), (3, 1)), float))[None]
    out = plot_maze_panels("umaze", [(traj, None), (traj, traj[0, [1, 3, 5]])], tmp_path / "fig.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob(".fig.*"))


def test_open_loop_executor_follows_plan_and_replans():
    from algorithms.planner import OpenLoopPlanExecutor

    calls = []

    def plan_fn(obs):
        calls.append(obs.copy())
        return np.stack([obs + k for k in range(5)])  # H = 5 states, one unit apart

    def inverse_dynamics(obs, nxt):  # B, D x B, D -> B, 2: the wanted position step
        return (nxt - obs)[:, :2]

    ex = OpenLoopPlanExecutor(plan_fn, inverse_dynamics)
    obs = np.zeros(4, dtype=np.float32)
    actions = [ex.act(obs) for _ in range(6)]  # the state never moves: targets are plan[1..4], then plan[4]
    assert len(calls) == 1 and [a[0] for a in actions] == [1, 2, 3, 4, 4, 4]
    ex = OpenLoopPlanExecutor(plan_fn, inverse_dynamics, replan_every=2)
    [ex.act(obs) for _ in range(5)]
    assert len(calls) == 1 + 3
