"""Maze2D through rayexp: state-plan teacher / student / DDPM losses and plans, the config, and a tiny run of
tune_configs/maze2d_umaze.yaml end to end through the CLI (collect -> train -> evaluate -> table + Fig. 2.10 PNG)."""
from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
import yaml

from algorithms.base import DataSpec, Frozen
from algorithms.configs import MazeRewardConfig, StateCTMStudentConfig, StateDDPMConfig, StateEDMTeacherConfig, UnetConfig
from algorithms.state_diffusion import MazeReward, StateCTMStudent, StateDDPM, StateEDMTeacher
from rayexp.config import load_config
from rayexp.data.store import EpisodeStore
from rayexp.train import init_model
from tests.conftest import REPO, rayexp_cli

UNET = UnetConfig(step_embed_dim=16, down_dims=[16, 32], kernel_size=3)
H = 16
SPEC = DataSpec(obs_dim=4, act_dim=2, action_horizon=H, stats={"obs_mean": [0.0] * 4, "obs_std": [1.0, 1.0, 0.5, 0.5]})


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _batch(n: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"future_obs": torch.randn(n, H, 4, generator=g), "actions": torch.randn(n, H, 2, generator=g)}


def _finite_grads(model) -> bool:
    return all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("reward_weight", [0.0, 0.5])
def test_state_teacher_and_student_losses_give_finite_grads_to_the_trained_net_only(reward_weight):
    torch.manual_seed(0)
    teacher_m = StateEDMTeacher(StateEDMTeacherConfig(unet=UNET, bins=10))
    teacher = teacher_m.build_model(SPEC)
    loss, _ = teacher_m.loss(teacher, _batch(), Frozen())
    loss.backward()
    assert torch.isfinite(loss) and _finite_grads(teacher)
    teacher.zero_grad(set_to_none=True)
    reward = MazeReward(MazeRewardConfig(hidden=[16, 16])).build_model(SPEC)
    method = StateCTMStudent(StateCTMStudentConfig(unet=UNET, bins=10, reward_weight=reward_weight))
    student = init_model(method, SPEC, Frozen({"teacher": teacher, "reward": reward}), seed=0)
    frozen = Frozen({"ema": copy.deepcopy(student).requires_grad_(False), "teacher": teacher, "reward": reward})
    loss, metrics = method.loss(student, _batch(), frozen)
    loss.backward()
    assert torch.isfinite(loss) and ("reward_loss" in metrics) == (reward_weight > 0)
    assert all(torch.isfinite(p.grad).all() for p in student.parameters() if p.grad is not None)
    assert sum(p.grad is not None for p in student.parameters()) >= len(list(student.parameters())) - 2  # s_embed at 0
    for name, net in frozen.nets.items():
        assert all(p.grad is None for p in net.parameters()), name


def test_reward_model_and_ddpm_losses_are_finite():
    for method in (MazeReward(MazeRewardConfig(hidden=[16, 16])), StateDDPM(StateDDPMConfig(unet=UNET, train_steps=10))):
        model = method.build_model(SPEC)
        loss, _ = method.loss(model, _batch(), Frozen())
        loss.backward()
        assert torch.isfinite(loss) and _finite_grads(model), method.name


@pytest.mark.parametrize("method", [StateEDMTeacher(StateEDMTeacherConfig(unet=UNET, bins=5)),
                                    StateDDPM(StateDDPMConfig(unet=UNET, train_steps=10, sampler="ddim", sample_steps=3)),
                                    StateCTMStudent(StateCTMStudentConfig(unet=UNET))])
def test_state_plans_keep_start_and_goal_and_depend_on_them(method):
    torch.manual_seed(0)
    policy = method.make_policy(method.build_model(SPEC).eval(), SPEC)
    start, goal = torch.tensor([[1.0, 0.5, 0.2, -0.1]]), torch.tensor([[-1.0, -0.5]])

    def plan(s, g):
        torch.manual_seed(1)
        return policy.plan(s, g)

    p = plan(start, goal)
    assert p.shape == (1, H, 4) and torch.isfinite(p).all()
    assert torch.allclose(p[:, 0], start, atol=1e-5) and torch.allclose(p[:, -1, :2], goal, atol=1e-5)
    assert (plan(start, goal + 1.0)[:, 1:-1] - p[:, 1:-1]).abs().max() > 1e-5, "the goal must change the plan"


def test_maze_configs_validate_and_maze_ids_are_checked():
    from envs.registry import UnknownEnvError, check_env_id

    for maze, horizon in (("umaze", 128), ("medium", 256), ("large", 384)):
        cfg = load_config(REPO / "tune_configs" / f"maze2d_{maze}.yaml")
        assert cfg.env.id == f"maze2d-{maze}" and cfg.collect.source == "maze2d-controller"
        assert cfg.data.action_horizon == horizon == cfg.models["planner"].method.horizon
        check_env_id(cfg.env.id)
    with pytest.raises(UnknownEnvError, match="valid: maze2d-umaze"):
        check_env_id("maze2d-tiny")


def tiny_config(tmp_path) -> str:
    """tune_configs/maze2d_umaze.yaml with every budget cut to seconds."""
    data = yaml.safe_load((REPO / "tune_configs" / "maze2d_umaze.yaml").read_text())
    data.update(name="maze_tiny", env={"id": "maze2d-umaze", "max_episode_steps": 150})  # the controller scores > 0
    data["collect"].update(episodes=4)
    data["family"]["steps"] = 3000
    data["data"]["action_horizon"] = H
    data["train"].update(steps=4, batch_size=8, checkpoint_every=4, log_every=2)
    data["evaluate"].update(episodes=2, num_actors=2)
    tiny = {"step_embed_dim": 16, "down_dims": [8, 16]}
    for name, stage in data["models"].items():
        method = stage["method"]
        stage["train"] = {"steps": 4}
        if name == "planner":
            method.update(horizon=H, n_diffusion_steps=5, cond_embed_dim=16, **tiny)
        elif "unet" in method:
            method["unet"] = tiny
            method.update({"bins": 6} if name == "teacher" else {"bins": 6, "solver_steps_max": 1} if name in ("ctd", "ractd") else {})
    path = tmp_path / "maze_tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # stage order matters: teacher before students
    return str(path)


@pytest.mark.slow
def test_tiny_maze_run_end_to_end_through_the_cli(tmp_path):
    cfg, runs = tiny_config(tmp_path), str(tmp_path / "runs")
    rayexp_cli("collect", "--config", cfg, "--run-dir", runs, "ray.num_cpus=2")
    rayexp_cli("train", "--config", cfg, "--run-dir", runs, "ray.num_cpus=2")
    out = rayexp_cli("evaluate", "--config", cfg, "--run-dir", runs, "ray.num_cpus=2").stdout
    run = tmp_path / "runs" / "maze_tiny"
    assert EpisodeStore(run / "data").meta.extra["steps"] == 3000  # family.steps reached the controller
    for label in ("DDPM(100)", "DDIM(10)", "DDIM(1)", "EDM(80)", "CTD(1)", "RACTD(1)"):
        assert f"| {label} |" in out
    table = pd.read_csv(run / "maze_table.csv")
    assert table["episodes"].eq(2).all() and table["score_mean"].notna().all()
    assert dict(zip(table["method"], table["nfe"]))["DDIM(10)"] == 10
    assert dict(zip(table["method"], table["nfe"]))["RACTD(1)"] == 1
    assert "thesis_score" in (run / "maze_table.md").read_text()
    assert (run / "fig_2_10.png").read_bytes()[:4] == b"\x89PNG" and (run / "fig_2_10.json").exists()
    fig = rayexp_cli("maze", "figure", "--config", cfg, "--run-dir", runs, "--n", "2").stdout
    assert "waypoint success" in fig
