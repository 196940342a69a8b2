"""Roundabout pipeline pieces: discrete CQL's regulariser and data, per-composition experts, the random condition,
crash / reward aggregation over seeds, and (slow) a tiny run of tune_configs/roundabout.yaml through the CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from envs.roundabout import FEATURES, TYPE_CODES
from rayexp.config import load_config
from rayexp.errors import ConfigError, RayexpError
from tests.conftest import REPO, rayexp_cli

CONFIG = REPO / "tune_configs" / "roundabout.yaml"


def test_discrete_cql_regulariser_penalises_q_off_the_data():
    from rayexp.rllib.cql_discrete import cql_regularizer

    q = torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.5, 0.5]], requires_grad=True)
    actions = torch.tensor([1, 0])
    reg = cql_regularizer(q, actions)
    want = ((torch.logsumexp(q[0], 0) - 2.0) + (torch.logsumexp(q[1], 0) - 0.5)) / 2
    assert torch.allclose(reg, want)
    reg.backward()
    assert q.grad[0, 1] < 0 and q.grad[0, 0] > 0 and q.grad[0, 2] > 0  # push the data action up, the others down
    assert cql_regularizer(torch.tensor([[0.0, 50.0]]), torch.tensor([1])) < 1e-6  # data action dominates: ~0


def test_discrete_store_becomes_integer_rllib_actions(tmp_path):
    import gymnasium as gym

    from rayexp.data.store import DatasetMeta, Episode, write_dataset
    from rayexp.rllib.offline import store_to_rllib_parquet

    rng = np.random.default_rng(0)
    idx = rng.integers(0, 5, 6)
    ep = Episode(rng.normal(size=(6, 30)).astype(np.float32), np.eye(5, dtype=np.float32)[idx], np.ones(6, np.float32),
                 np.zeros(6, bool), np.eye(6, dtype=bool)[-1], final_observation=np.zeros(30, np.float32), success=True)
    store = write_dataset(tmp_path / "d", [ep], DatasetMeta(env_id="roundabout-ooc", obs_dim=30, act_dim=5, discrete_actions=True))
    table = pq.read_table(store_to_rllib_parquet(store, tmp_path / "rl", gym.spaces.Discrete(5)))
    assert table.column("actions").to_pylist() == idx.tolist()


def test_random_condition_changes_only_visible_types():
    from rayexp.families.roundabout.evaluate import randomize_types

    torch.manual_seed(0)
    obs = torch.zeros(64, 5, len(FEATURES))
    obs[:, :, 1:5] = torch.randn(64, 5, 4)
    obs[:, :3, 0] = 1.0  # ego + 2 others visible
    obs[:, :3, FEATURES.index("type")] = TYPE_CODES["car"]
    out = randomize_types(obs.view(64, -1)).view(64, 5, len(FEATURES))
    t = FEATURES.index("type")
    assert torch.equal(out[..., :t], obs[..., :t]) and torch.equal(out[:, 0], obs[:, 0])
    assert torch.all(out[:, 3:, t] == 0)  # invisible rows stay "no vehicle"
    seen = out[:, 1:3, t]
    assert set(seen.unique().tolist()) == {TYPE_CODES["car"], TYPE_CODES["bicycle"]}


def test_lockstep_rollouts_equal_one_episode_at_a_time():
    """Batched evaluation gives each episode exactly what the plain closed loop gives it (deterministic policy)."""
    from envs.registry import make_env
    from rayexp.evaluate import run_episode
    from rayexp.families.roundabout.evaluate import run_lockstep

    def policy(x):  # IDLE when the first other vehicle is far, else SLOWER: depends on each row's own observation
        far = (x[:, -1, 7:9] - x[:, -1, 1:3]).norm(dim=-1) > 0.2
        return torch.nn.functional.one_hot(torch.where(far, 1, 4), 5).float()[:, None]

    seeds = [3, 4, 5]
    envs = [make_env("roundabout-ooc-test") for _ in seeds]
    batched = run_lockstep(envs, policy, seeds, 1)
    env = make_env("roundabout-ooc-test")
    for s, b in zip(seeds, batched):
        one = run_episode(env, policy, s, 1, "first", None)
        assert (one["return"], one["length"], one["success"]) == (b["return"], b["length"], b["success"])
        assert b["crashed"] == (not b["success"])


def test_discounted_return_to_go():
    from rayexp.families.roundabout.values import discounted_rtg

    assert np.allclose(discounted_rtg(np.array([1.0, 2.0, 4.0]), 0.5), [1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4, 4])


def test_crashes_and_reward_are_averaged_per_seed_then_over_seeds():
    from rayexp.families.roundabout.evaluate import summarize_roundabout

    rows = []
    for k, crash_rate in enumerate([0.1, 0.2, 0.3]):
        for i in range(10):
            rows.append({"model": "bc", "task": "ooc", "seed_index": k, "episode": i, "seed": i, "crashed": i < 10 * crash_rate,
                         "return": float(k), "length": 5, "success": None, "params": 7, "ms_per_action": 1.0})
    s = summarize_roundabout(pd.DataFrame(rows)).iloc[0]
    assert s["crashes_mean"] == pytest.approx(20.0) and s["crashes_sem"] == pytest.approx(10 / np.sqrt(3))
    assert s["reward_mean"] == pytest.approx(1.0) and s["seeds"] == 3 and s["episodes_per_seed"] == 10


def test_bad_roundabout_config_entries_are_refused_in_one_line():
    from rayexp.collect import expert_env_configs

    cfg = load_config(CONFIG, ["collect.experts={trucks: {composition: [truck, car, car, car]}}"])
    with pytest.raises(RayexpError, match=r"collect.experts.trucks: .*unknown vehicle type\(s\) \['truck'\]"):
        expert_env_configs(cfg)
    cfg = load_config(CONFIG, ["collect.experts={cars: {compositon: [car, car, car, car]}}"])
    with pytest.raises(RayexpError, match="collect.experts.cars: .*no config entries"):
        expert_env_configs(cfg)
    with pytest.raises(ConfigError, match=r"family.random_condition names \['bc'\]"):
        load_config(CONFIG, ["family.random_condition=[bc]"])
    with pytest.raises(ConfigError, match=r"evaluate.random_condition moved to family.random_condition"):
        load_config(CONFIG, ["evaluate.random_condition=[planner]"])
    with pytest.raises(ConfigError, match=r"offline_rl names \['bc'\] are also in models"):
        load_config(CONFIG, ["offline_rl={bc: {algo: cql}}"])
    subs = expert_env_configs(load_config(CONFIG))
    assert {n: s.env.kwargs["composition"][0] for n, s in subs.items()} == {"cars": "car", "bicycles": "bicycle"}


def test_ppo_waits_for_slow_env_runners_and_reports_a_missing_return_as_nan(caplog):
    """The NaN return: RLlib drops a runner whose sample exceeds sample_timeout_s (60 s by default; highway-env is
    slow), and an iteration without samples has no env_runners results. The expert waits instead."""
    from rayexp.collect import _mean_return, ppo_config

    assert ppo_config(load_config(CONFIG), 2, "cars").sample_timeout_s is None
    assert _mean_return({"env_runners": {"episode_return_mean": 7.5}}) == 7.5
    assert np.isnan(_mean_return({"training_iteration": 3})) and "no finished episode" in caplog.text


TINY = ["name=rb", "expert.iterations=1", "expert.train_batch_size=96", "expert.minibatch_size=48", "expert.num_epochs=1",
        "collect.episodes=4", "collect.only_success=false", "train.steps=20", "train.batch_size=16",
        "train.checkpoint_every=20", "train.log_every=10",
        "models.bc.train={steps: 20}", "models.bc_large.method.hidden=[32]", "models.bc_large.train={steps: 20}",
        "models.planner.method.n_diffusion_steps=5", "models.planner.method.down_dims=[8,16]",
        "models.planner_ctd.method.n_diffusion_steps=5", "models.planner_ctd.method.down_dims=[8,16]",
        "models.planner_ctd.train={steps: 10}",
        "models.teacher.method.bins=5", "models.teacher.method.unet.down_dims=[8,16]",
        "models.ctd.method.bins=5", "models.ctd.method.unet.down_dims=[8,16]", "models.ctd.train={steps: 10}",
        "offline_rl.cql.iterations=1", "offline_rl.cql.updates=5", "offline_rl.cql.batch_size=16",
        "evaluate.episodes=2", "evaluate.seeds=2"]


@pytest.mark.slow
def test_tiny_roundabout_run_through_the_cli(tmp_path):
    runs = str(tmp_path)
    rayexp_cli("collect", "--config", str(CONFIG), "--run-dir", runs, *TINY)
    run = tmp_path / "rb"
    episodes = pd.read_parquet(run / "data" / "episodes.parquet")
    assert {tuple(c) for c in episodes["condition"].map(json.loads)} <= {("car",) * 4, ("bicycle",) * 4}
    assert (run / "expert" / "cars" / "progress.jsonl").exists() and (run / "expert" / "bicycles" / "iteration.txt").exists()
    rayexp_cli("train", "--config", str(CONFIG), "--run-dir", runs, *TINY)
    assert (run / "offline_rl" / "cql" / "module").is_dir()
    out = rayexp_cli("evaluate", "--config", str(CONFIG), "--run-dir", runs, *TINY).stdout
    df = pd.read_parquet(run / "eval.parquet")
    want = {"bc", "bc_large", "planner", "planner_ctd", "ctd", "cql", "planner-random-cond", "planner_ctd-random-cond",
            "ppo-cars", "ppo-bicycles"}
    assert set(df["model"]) == want and set(df["task"]) == {"ooc", "id"} and len(df) == len(want) * 2 * 2 * 2
    assert df.groupby(["model", "task"]).size().eq(4).all() and "crashes_mean" in out
    # one stage re-evaluated: its rows are replaced, every other method's rows are kept
    rayexp_cli("evaluate", "--config", str(CONFIG), "--run-dir", runs, *TINY, "evaluate.seed=7", "--model", "planner_ctd")
    again = pd.read_parquet(run / "eval.parquet")
    assert set(again["model"]) == want and len(again) == len(df)
    assert again[again["model"] == "bc"].reset_index(drop=True).equals(df[df["model"] == "bc"].reset_index(drop=True))
    rep = rayexp_cli("report", str(run)).stdout
    assert "Table A.5" in rep and (run / "fig_2_3.png").stat().st_size > 0 and (run / "table_a6.csv").exists()
    values = pd.read_parquet(run / "roundabout_values.parquet")
    assert set(values["model"]) == {"cql", "ppo-cars", "ppo-bicycles"} and (run / "fig_2_2.png").exists()
    assert np.isfinite(values[["predicted", "rtg"]].to_numpy()).all()


@pytest.mark.slow
def test_roundabout_rows_do_not_depend_on_the_actor_count(ray_session, tmp_path):
    """The batched lockstep rollouts seed torch per batch: batches are per (method, traffic, seed), never per actor."""
    from algorithms.base import DataSpec
    from algorithms.registry import make_method
    from envs.registry import make_env
    from rayexp.families.roundabout.evaluate import evaluate_roundabout
    from rayexp.rows import check_rows
    from rayexp.runs import Run
    from rayexp.train import save_model

    cfg = load_config(CONFIG, ["evaluate.models=[ctd]", "family.random_condition=[]", "family.experts=false",
                               "evaluate.episodes=3", "evaluate.seeds=2", "models.ctd.method.bins=5",
                               "models.ctd.method.unet={step_embed_dim: 8, down_dims: [8, 16]}"])
    env = make_env("roundabout-ooc")
    spec = DataSpec(obs_dim=int(np.prod(env.observation_space.shape)), act_dim=int(env.action_space.n), action_horizon=8,
                    discrete_actions=True)
    method = make_method(cfg.models["ctd"].method)  # untrained: its actions are its sampler's noise, seeded or not
    run = Run(tmp_path / "rb")
    torch.manual_seed(0)
    save_model(run.model_path("ctd"), method.cfg, spec, method.build_model(spec), 0)
    rows = {}
    for actors in (1, 2):
        cfg.evaluate.num_actors = actors
        rows[actors] = evaluate_roundabout(cfg, run).drop(columns="ms_per_action")
    assert len(rows[1]) == 2 * 2 * 3 and rows[1].equals(rows[2])
    assert check_rows(rows[1]) is rows[1] and set(rows[1]["task"]) == {"ooc", "id"}
