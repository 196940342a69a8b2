"""SMAX multi-agent OOC: MAPPO on RLlib (critic on the global state), per-agent data, ego diffusion rounds
respecting action masks, and parallel evaluation that does not depend on the number of actors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from algorithms.mappo_module import SharedActor
from algorithms.smax_agents import MAPPOAgent, RandomAgent, ScoreAgent, masked_argmax

ENV = "smax-2v2-simple"


@pytest.fixture(scope="module")
def env():
    from envs.smax import make_smax_env

    torch.set_num_threads(1)  # two intra-op threads on a busy 2-core machine stall each small forward
    e = make_smax_env(ENV, seed=0, max_steps=20)  # short rounds: a CPU planner step costs tens of ms
    yield e
    e.close()


def test_masked_argmax_never_picks_unavailable():
    scores = np.array([5.0, 1.0, 9.0, -1.0])
    assert masked_argmax(scores, np.array([1, 1, 0, 1])) == 0
    assert masked_argmax(scores, np.array([0, 0, 0, 1])) == 3


def test_unit_type_condition_reads_self_teammates_enemies(env):
    from envs.smax import unit_type_condition

    obs, _ = env.reset(seed=1, options={"team": ("colossus", "stalker")})
    cond = unit_type_condition(obs["ally_0"]).reshape(4, 3)  # self, teammate, enemy 0, enemy 1 x (S, Z, C)
    assert cond[0].tolist() == [0, 0, 1] and cond[1].tolist() == [1, 0, 0]
    seen = cond[2:][cond[2:].sum(1) > 0]  # enemies mirror the allies; unseen ones are zero
    assert all(row.tolist() in ([0, 0, 1], [1, 0, 0]) for row in seen)
    assert unit_type_condition(np.stack([obs["ally_0"], obs["ally_1"]])).shape == (2, 12)


def test_round_episodes_one_sample_per_agent_with_unit_types(env):
    from rayexp.families.smax.rounds import play_round, round_episodes

    rng = np.random.default_rng(0)
    rec = play_round(env, [RandomAgent(rng), RandomAgent(rng)], seed=3, record=True)
    eps = round_episodes(rec, env.action_space("ally_0").n, seed=3)
    assert len(eps) == 2 and rec["masks_respected"]
    for i, ep in enumerate(eps):
        assert ep.observations.shape == (rec["length"], env.observation_space("ally_0").shape[0])
        assert np.all(ep.actions.sum(1) == 1) and ep.actions.shape[1] == 7  # one-hot over 5 + 2 actions
        assert np.array_equal(ep.actions.argmax(1), rec["actions"][i])
        assert ep.condition["team"] == list(env.team) and ep.condition["unit_type"] == env.team[i]
        assert ep.terminals[-1] or ep.timeouts[-1]


def _tiny_planner(obs_dim: int, act_dim: int, cond_mode: str):
    from algorithms.base import DataSpec
    from algorithms.configs import PlannerConfig
    from algorithms.planner import Planner

    cfg = PlannerConfig(condition="smax_types_2v2", cond_mode=cond_mode, horizon=8, n_diffusion_steps=10,
                        sample_steps=2, down_dims=[16, 32], step_embed_dim=16, cond_embed_dim=16, inpaint_goal=False)
    spec = DataSpec(obs_dim=obs_dim, act_dim=act_dim, action_horizon=8, discrete_actions=True)
    method = Planner(cfg)
    return method.make_policy(method.build_model(spec), spec)


class _CheckedAgent:
    """Delegates to an agent and records whether each action it returned was available."""

    def __init__(self, inner):
        self.inner, self.checked = inner, []

    def act(self, obs, mask):
        a = self.inner.act(obs, mask)
        self.checked.append(bool(mask[a] == 1))
        return a


@pytest.mark.parametrize("cond_mode", ["cross_attention", "concat"])
def test_ego_diffusion_round_respects_masks(env, cond_mode):
    from rayexp.families.smax.rounds import play_round

    obs_dim, n_act = env.observation_space("ally_0").shape[0], env.action_space("ally_0").n
    torch.manual_seed(0)
    ego = _CheckedAgent(ScoreAgent(_tiny_planner(obs_dim, n_act, cond_mode)))
    mappo = MAPPOAgent(SharedActor(obs_dim, n_act, [16]), np.random.default_rng(0))
    out = play_round(env, [ego, mappo], seed=5)
    assert len(ego.checked) == out["length"] > 0 and all(ego.checked)
    assert out["result"] in ("won", "lost", "draw", "timeout")


@pytest.mark.parametrize("batched", [True, False], ids=["batched-games", "rllib-sync-envs"])
def test_mappo_trains_on_2v2_and_critic_reads_global_state(ray_session, env, batched):
    from algorithms.mappo_rllib import SHARED_POLICY
    from algorithms.mappo_settings import MAPPOSettings
    from rayexp.families.smax.mappo import build_algo

    s = MAPPOSettings(num_env_runners=0, train_batch_size=128, minibatch_size=128, num_epochs=2, total_env_steps=256,
                      hidden=[32], critic_hidden=[32], num_envs_per_env_runner=4, batched_envs=batched)
    algo = build_algo(s, ENV, seed=0)
    try:
        module = algo.learner_group._learner.module[SHARED_POLICY]
        seen = []
        module.critic.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
        before = [p.detach().clone() for p in module.actor.parameters()]
        for _ in range(2):
            result = algo.train()
        learner = result["learners"][SHARED_POLICY]
        assert np.isfinite(learner["vf_loss"]) and np.isfinite(learner["policy_loss"])
        assert any(not torch.equal(a, b) for a, b in zip(before, module.actor.parameters())), "actor never updated"
        n, state_dim = env.n_units, env.state_space.shape[0]
        x = torch.cat(seen)
        assert x.shape[1] == state_dim + n  # the global state plus the agent's one-hot, not the local obs
        assert torch.all(x[:, state_dim:].sum(1) == 1)
        assert sorted(x[:, state_dim:].argmax(1).unique().tolist()) == list(range(n))  # both agents' samples
        assert learner["actor_learning_rate"] < s.actor_lr and learner["critic_learning_rate"] < s.critic_lr  # decay
    finally:
        algo.stop()


def test_ippo_switch_gives_a_local_critic(env):
    from algorithms.mappo_rllib import MAPPOTorchRLModule
    from envs.smax_rllib import SMAXMultiAgentEnv

    ma = SMAXMultiAgentEnv(env=env)
    space, act = ma.observation_spaces["ally_0"], ma.action_spaces["ally_0"]
    for critic_input, width in (("state", space["state"].shape[0]), ("obs", space["obs"].shape[0])):
        m = MAPPOTorchRLModule(observation_space=space, action_space=act, model_config={"critic_input": critic_input})
        assert m.critic[0].in_features == width


def test_parallel_evaluation_same_with_1_and_2_actors(ray_session, tmp_path, env):
    from rayexp.families.smax.evaluate import evaluate_teams
    from rayexp.rows import ROW_COLUMNS, summarize

    obs_dim, n_act = int(env.observation_space("ally_0").shape[0]), int(env.action_space("ally_0").n)
    torch.manual_seed(0)
    actor = SharedActor(obs_dim, n_act, [16])
    torch.save({"obs_dim": obs_dim, "n_actions": n_act, "hidden": [16], "state_dict": actor.state_dict()},
               tmp_path / "actor.pt")
    kw = dict(actor_path=str(tmp_path / "actor.pt"), ego_paths={}, env_names=[ENV], teams=["mappo+random"],
              rounds=3, seeds=2, base_seed=7, greedy=False)  # sampled MAPPO + random: every agent draws noise
    one, two = evaluate_teams(num_actors=1, **kw), evaluate_teams(num_actors=2, **kw)
    cols = [*ROW_COLUMNS, "result", "units"]  # the rows every family writes, and SMAX's own
    assert len(one) == 6
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(one[cols], two[cols])
    summary = summarize(one)
    assert set(summary["seeds"]) == {2} and set(summary["episodes"]) == {6} and set(summary["model"]) == {"mappo+random"}
    assert one["seed"].nunique() == 6 and one["masks_respected"].all()


def test_success_table_mean_and_se_over_seeds(tmp_path):
    import pandas as pd

    from rayexp.families.smax.report import plot_condition_modes, plot_improvement, plot_k_replaced, success_table

    rows = []
    for env, row, wins in (("smax-2v2-hard-id-test", "ID (AAA)", [[1, 1], [1, 0]]), ("smax-2v2-hard-test", "hard", [[0, 0], [1, 0]])):
        for team, flip in (("mappo", False), ("mappo+random", True)):
            for seed, ws in enumerate(wins):
                rows += [{"task": env, "row": row, "model": team, "seed_index": seed, "episode": r, "seed": r,
                          "success": bool(w) != flip, "return": 0.0, "length": 9, "units": "stalker-zealot"}
                         for r, w in enumerate(ws)]
    table, long = success_table(pd.DataFrame(rows))
    assert list(table["row"]) == ["ID (AAA)", "hard"] and list(table.columns[1:]) == ["2 MAPPO", "1 MAPPO + 1 random"]
    cell = long[(long["row"] == "ID (AAA)") & (long["team_name"] == "mappo")].iloc[0]
    assert cell["success_mean"] == 0.75 and abs(cell["success_sem"] - 0.25) < 1e-12  # seeds: 1.0 and 0.5
    assert table.iloc[1, 1] == "0.25 (0.25)"
    assert plot_improvement(long, tmp_path / "fig.png").stat().st_size > 0
    assert plot_k_replaced(long, tmp_path / "a16.png") is None  # no stage at two k
    assert plot_condition_modes(long, {}, tmp_path / "f211.png") is None
    more = [{**r, "model": t} for r in rows for t in ("mappo+p_none", "mappo+p_attn", "mappo+2*p_attn")]
    _, long = success_table(pd.DataFrame(rows + more))
    assert plot_k_replaced(long, tmp_path / "a16.png").stat().st_size > 0
    modes = {"p_none": "none", "p_attn": "cross_attention"}
    assert plot_condition_modes(long, modes, tmp_path / "f211.png").stat().st_size > 0


def test_score_agent_follows_plan_rows_between_replans():
    calls = []

    def policy(obs_hist):  # plan row t prefers action t % 5
        calls.append(1)
        return torch.eye(5)[torch.arange(8) % 5][None]

    agent, mask = ScoreAgent(policy, replan_every=4), np.ones(5)
    picked = [agent.act(np.zeros(3), mask) for _ in range(10)]
    assert len(calls) == 3 and picked == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert ScoreAgent(policy).act(np.zeros(3), np.array([0, 1, 1, 1, 1])) == 1  # row 0 prefers 0: unavailable


@pytest.mark.slow  # a fresh Ray task compiles the env (~15-30 s); the real run covers this path too
def test_collect_writes_per_agent_episodes_with_unit_types(ray_session, tmp_path):
    from rayexp.data.store import EpisodeStore
    from rayexp.families.smax.rounds import collect_mappo_data

    torch.manual_seed(0)
    actor = SharedActor(53, 7, [16])
    torch.save({"obs_dim": 53, "n_actions": 7, "hidden": [16], "state_dict": actor.state_dict()}, tmp_path / "actor.pt")
    store = collect_mappo_data(ENV, tmp_path / "actor.pt", tmp_path / "data", rounds=2, seed=0, num_tasks=1,
                               only_success=False)
    again = EpisodeStore(tmp_path / "data")
    assert len(again) == 4 and again.meta.discrete_actions and again.meta.extra["rounds"] == 2
    eps = list(again.iter_episodes())
    assert all(np.all(ep.actions.sum(1) == 1) for ep in eps)
    assert [ep.condition["agent"] for ep in eps] == [0, 1, 0, 1]
    assert all(ep.condition["unit_type"] == ep.condition["team"][ep.condition["agent"]] for ep in eps)
    assert store.meta.obs_dim == 53


@pytest.mark.slow  # two RLlib algorithm builds
def test_mappo_checkpoints_and_resumes(ray_session, tmp_path):
    import json

    from algorithms.mappo_settings import MAPPOSettings
    from algorithms.smax_agents import load_actor
    from rayexp.families.smax.mappo import train_mappo

    s = MAPPOSettings(num_env_runners=0, train_batch_size=100, minibatch_size=100, num_epochs=1, total_env_steps=100,
                      hidden=[16], critic_hidden=[16], checkpoint_every=1)
    train_mappo(s, ENV, tmp_path, echo=lambda _: None)
    first = json.loads((tmp_path / "progress.json").read_text())
    assert first["iterations"] == 1 and (tmp_path / "checkpoint").is_dir()
    w0 = load_actor(str(tmp_path / "actor.pt")).net[0].weight.clone()
    rows = train_mappo(s.model_copy(update={"total_env_steps": 200}), ENV, tmp_path, echo=lambda _: None)
    second = json.loads((tmp_path / "progress.json").read_text())
    assert second["iterations"] == 2 and second["env_steps"] >= 200 and list(rows["iteration"]) == [1, 2]
    assert not torch.equal(w0, load_actor(str(tmp_path / "actor.pt")).net[0].weight)  # trained on from the checkpoint


TINY_MAPPO = ["family.mappo.num_env_runners=0", "family.mappo.train_batch_size=64", "family.mappo.minibatch_size=64",
              "family.mappo.num_epochs=1", "family.mappo.total_env_steps=64", "family.mappo.hidden=[8]",
              "family.mappo.critic_hidden=[8]", "family.mappo.num_envs_per_env_runner=4"]


def test_team_grammar_replaces_k_agents(tmp_path, env):
    from rayexp.config import load_config
    from rayexp.errors import ConfigError, RayexpError
    from rayexp.families.smax.evaluate import SMAXEvalWorker, parse_team
    from rayexp.families.smax.report import team_label

    assert [parse_team(t, ["bc"]) for t in ("mappo", "mappo+bc", "mappo+2*bc", "mappo+2*random")] == \
        [(None, 0), ("bc", 1), ("bc", 2), ("random", 2)]
    for bad in ("mappo+0*bc", "mappo+x*bc", "bc", "mappo+2*nope"):
        with pytest.raises(RayexpError, match="unknown team"):
            parse_team(bad, ["bc"])
    assert [team_label(t, 3) for t in ("mappo", "mappo+bc", "mappo+2*bc")] == ["3 MAPPO", "2 MAPPO + 1 bc", "1 MAPPO + 2 bc"]
    with pytest.raises(ConfigError, match="'mappo\\+3\\*bc' replaces 3 agents of a team of 2"):
        load_config(None, ["env.id=smax-2v2-hard", "models={bc: {method: {name: bc}}}", "family.teams=[mappo+3*bc]"])
    obs_dim, n_act = int(env.observation_space("ally_0").shape[0]), int(env.action_space("ally_0").n)
    torch.save({"obs_dim": obs_dim, "n_actions": n_act, "hidden": [8],
                "state_dict": SharedActor(obs_dim, n_act, [8]).state_dict()}, tmp_path / "actor.pt")
    worker = SMAXEvalWorker(str(tmp_path / "actor.pt"), {})
    kinds = lambda team, seed: [type(a).__name__ for a in worker.agents(team, 3, seed)]  # noqa: E731
    assert kinds("mappo+random", 4) == ["MAPPOAgent", "RandomAgent", "MAPPOAgent"]  # slot = seed mod n
    assert kinds("mappo+2*random", 5) == ["RandomAgent", "MAPPOAgent", "RandomAgent"]  # slots 2, 0
    assert kinds("mappo+3*random", 0) == ["RandomAgent"] * 3


def test_with_unit_types_rewrites_only_visible_units(env):
    from envs.smax import unit_type_condition, with_unit_types

    obs, _ = env.reset(seed=1, options={"team": ("stalker", "stalker")})
    o = obs["ally_0"]
    seen = unit_type_condition(o).reshape(4, 3).sum(1) > 0
    cond = unit_type_condition(with_unit_types(o, enemies=["zealot", "colossus"])).reshape(4, 3)
    assert cond[:2].tolist() == unit_type_condition(o).reshape(4, 3)[:2].tolist()  # self and teammate unchanged
    want = np.array([[0, 1, 0], [0, 0, 1]])
    assert (cond[2:][seen[2:]] == want[seen[2:]]).all() and (cond[2:][~seen[2:]] == 0).all()
    assert with_unit_types(np.stack([o, o]), teammates=["zealot"]).shape == (2, o.shape[0])
    with pytest.raises(ValueError, match="enemies: give 2 of stalker, zealot, colossus"):
        with_unit_types(o, enemies=["marine", "zealot"])


def test_futures_figure_plans_each_condition_from_one_start(tmp_path, env):
    from rayexp.families.smax.futures import plot_futures, predict_futures

    obs_dim, n_act = env.observation_space("ally_0").shape[0], env.action_space("ally_0").n
    torch.manual_seed(0)
    policy = _tiny_planner(obs_dim, n_act, "cross_attention")
    from envs.smax import OTHER_FEATURES

    start = env.reset(seed=2)[0]["ally_0"].copy()
    start[:3 * OTHER_FEATURES:OTHER_FEATURES] = 0.5  # every other unit in sight (health > 0), so its type counts
    futures = predict_futures(policy, start, samples=3)
    assert list(futures)[0] == "true" and len(futures) == 5
    assert all(f.shape == (3, 8, obs_dim) and np.allclose(f[:, 0], start, atol=1e-5) for f in futures.values())
    assert np.abs(futures["2 x zealot"] - futures["2 x colossus"]).max() > 1e-5, "the condition must change the plan"
    assert plot_futures(futures, tmp_path / "fig.png").stat().st_size > 0


def test_report_names_commit_config_and_mappo_budget_of_each_run(ray_session, tmp_path):
    import pandas as pd

    from rayexp.config import load_config
    from rayexp.families.smax.config import eval_envs
    from rayexp.families.smax.pipeline import run_mappo
    from rayexp.families.smax.report import smax_report
    from rayexp.rows import write_run_rows
    from rayexp.runs import git_commit, open_run

    cfg = load_config(None, ["name=tiny", "env.id=smax-2v2-hard", *TINY_MAPPO, "family.teams=[mappo]"])
    run = open_run(tmp_path, cfg)
    run_mappo(cfg, run, echo=lambda _: None)
    # the same run-folder basics as every family: commit.txt and a run.log the stages write to
    assert (run.path / "commit.txt").read_text().strip() == git_commit() and (run.path / "run.log").stat().st_size > 0
    rows = [{"task": env, "row": row, "model": "mappo", "seed_index": seed, "episode": r, "seed": r, "return": 0.0,
             "length": 9, "success": (seed + r) % 2 == 0, "units": "stalker-stalker"}
            for row, env in eval_envs(cfg.env.id).items() for seed in range(2) for r in range(2)]
    write_run_rows(run.path, pd.DataFrame(rows))
    smax_report([run.path], tmp_path / "out")
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"commit {git_commit()}" in report and "id: smax-2v2-hard" in report and "total_env_steps: 64" in report
    steps = int(pd.read_csv(run.path / "mappo" / "mappo_metrics.csv")["env_steps"].iloc[-1])
    assert f"MAPPO: {steps:,} env steps" in report and "| row | 2 MAPPO |" in report
    assert (tmp_path / "out" / "mappo_training.png").stat().st_size > 0


@pytest.mark.slow
def test_smax_runs_through_the_core_commands(tmp_path):
    """One CLI and one run folder for SMAX too: `rayexp collect` trains MAPPO and records its rounds, `rayexp train`
    trains an ego, `rayexp evaluate` plays the teams, `rayexp report` gives the Table A.10 layout."""
    import pandas as pd

    from tests.conftest import rayexp_cli

    args = ["--run-dir", str(tmp_path), "name=e2e", "env.id=smax-2v2-hard", *TINY_MAPPO, "collect.episodes=4",
            "collect.num_env_runners=1", "collect.only_success=false", "data.action_horizon=4", "train.steps=20",
            "train.checkpoint_every=20", "models={bc: {method: {name: bc, hidden: [16]}}}", "evaluate.episodes=2",
            "evaluate.seeds=1", "evaluate.num_actors=1", "family.teams=[mappo, mappo+bc]"]
    rayexp_cli("collect", *args, timeout=900)
    run = tmp_path / "e2e"
    assert (run / "mappo" / "actor.pt").exists() and (run / "data" / "meta.json").exists()
    assert pd.read_parquet(run / "data" / "episodes.parquet")["length"].gt(0).all()
    rayexp_cli("train", *args, timeout=900)
    assert (run / "models" / "bc.pt").exists()
    out = rayexp_cli("evaluate", *args, timeout=900).stdout
    assert "mappo+bc" in out
    rounds = pd.read_parquet(run / "eval.parquet")
    assert len(rounds) == 2 * 2 * 2 and set(rounds["model"]) == {"mappo", "mappo+bc"}  # 2 envs x 2 teams x 2
    report = rayexp_cli("report", str(run)).stdout
    assert "| row | 2 MAPPO | 1 MAPPO + 1 bc |" in report
    assert {"config.yaml", "commit.txt", "run.log"} <= {p.name for p in run.iterdir()}
