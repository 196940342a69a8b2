"""D4RL-style tiers from a tiny RLlib SAC run, and the RLlib CQL baseline on a tiny store.

The SAC run uses InvertedPendulum-v5 capped at 100 steps: SAC balances it within a few hundred updates,
so the tiers separate on a CPU-small budget. (The normalized-score arithmetic against D4RL's constants
and the hdf5 importer's error cases are tested in tests/test_store.py.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rayexp.data.store import DatasetMeta, Episode, EpisodeStore, write_dataset


def test_sac_tiers_have_d4rl_return_ordering(tmp_path, ray_session):
    from rayexp.families.mujoco.make_d4rl import make_d4rl

    out = tmp_path / "ip"
    tiers = make_d4rl("InvertedPendulum-v5", out, steps=1200, target_return=15.0, tier_steps=300, num_env_runners=1,
                      max_episode_steps=100, learning_starts=200, steps_per_iteration=100, batch_size=64,
                      training_intensity=64, lr=1e-3, hidden=(32, 32))
    assert set(tiers) == {"medium-replay", "medium", "expert", "medium-expert"}
    ret = {t: s["return_mean"] for t, s in tiers.items()}
    # medium-replay holds the random warm-up episodes, so it sits clearly below both trained policies. SAC's
    # return is not monotone on a run this short, so the expert is checked by what it is: the last policy.
    assert ret["medium-replay"] < ret["medium"]
    assert ret["medium-replay"] < ret["expert"]
    medium_at = EpisodeStore(out / "medium").meta.extra["env_steps"]
    expert_at = EpisodeStore(out / "expert").meta.extra["env_steps"]
    assert medium_at < expert_at and expert_at >= 1200
    assert tiers["medium-expert"]["episodes"] == tiers["medium"]["episodes"] + tiers["expert"]["episodes"]
    store = EpisodeStore(out / "medium")
    assert store.meta.source == "rllib-sac-d4rl" and store.meta.extra["tier"] == "medium"
    assert tiers["medium"]["steps"] >= 300
    acts = store.arrays()["action"]
    assert np.abs(acts).max() <= 3.0 and np.abs(acts).max() > 1.0  # env actions in [-3, 3], not RLlib's [-1, 1]
    assert (out / "sac" / "progress.json").exists() and (out / "policies" / "expert").is_dir()
    assert "elapsed_s" in store.meta.extra and store.meta.extra["commit"] != ""  # recorded; its value is no test

    from tests.conftest import rayexp_cli

    rayexp_cli("report", str(out), "--out", str(tmp_path / "results"))
    rows = pd.read_csv(tmp_path / "results" / "tiers.csv").set_index("tier")
    assert list(rows.index) == ["medium-replay", "medium", "expert", "medium-expert"]
    assert rows.loc["medium", "episodes"] == tiers["medium"]["episodes"]
    assert rows.loc["medium", "return_mean"] == pytest.approx(ret["medium"])
    assert rows.loc[["medium-replay", "medium", "expert"], "elapsed_min"].notna().all()  # recorded (values go to the report)
    assert "tiers.png" in (tmp_path / "results" / "report.md").read_text()
    assert (tmp_path / "results" / "tiers.png").stat().st_size > 0


def test_sac_resume_keeps_its_replay_buffer_and_update_count(tmp_path, ray_session):
    """The checkpoint holds rayexp's transition buffer: a second call continues from it instead of refilling."""
    from rayexp.families.mujoco.make_d4rl import make_d4rl, sac_config

    out = tmp_path / "ip"
    kwargs = dict(target_return=1e9, tier_steps=100, num_env_runners=1, max_episode_steps=50, learning_starts=100,
                  steps_per_iteration=100, batch_size=32, training_intensity=32, hidden=(16, 16))
    make_d4rl("InvertedPendulum-v5", out, steps=200, **kwargs)
    algo = sac_config("InvertedPendulum-v5", 0, 0, 50, buffer_capacity=20_000, hidden=(16, 16), batch_size=32,
                      training_intensity=32, learning_starts=100).build_algo()
    try:
        algo.restore_from_path(str((out / "sac" / "algorithm").resolve()))
        first = algo.transitions.size
        assert first >= 200 and algo._updates == first - 100  # one update per step past learning_starts
    finally:
        algo.stop()
    make_d4rl("InvertedPendulum-v5", out, steps=400, **kwargs)
    assert not (out / "medium").exists()  # the unreachable threshold: no tiers, but training went on
    algo = sac_config("InvertedPendulum-v5", 0, 0, 50, buffer_capacity=20_000, hidden=(16, 16), batch_size=32,
                      training_intensity=32, learning_starts=100).build_algo()
    try:
        algo.restore_from_path(str((out / "sac" / "algorithm").resolve()))
        assert algo.transitions.size >= 400 > first
        assert algo._updates == algo.transitions.size - 100
    finally:
        algo.stop()


def _random_store(path, n_episodes=6, seed=0):
    from envs.registry import make_env

    env = make_env("InvertedPendulum-v5", max_episode_steps=50)
    rng = np.random.default_rng(seed)
    eps = []
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        o, a, r, term, trunc = [], [], [], [], []
        done = False
        while not done:
            act = rng.uniform(-3, 3, size=1).astype(np.float32)
            nxt, rew, te, tr, _ = env.step(act)
            o.append(obs), a.append(act), r.append(rew), term.append(te), trunc.append(tr)
            obs, done = nxt, te or tr
        eps.append(Episode(np.array(o, np.float32), np.array(a), np.array(r, np.float32), np.array(term), np.array(trunc),
                           final_observation=obs, policy="random"))
    meta = DatasetMeta(env_id="InvertedPendulum-v5", obs_dim=4, act_dim=1)
    return write_dataset(path, eps, meta)


@pytest.mark.parametrize("algo", ["cql", "iql"])
def test_rllib_offline_trains_and_evaluates_like_our_models(tmp_path, ray_session, algo):
    from rayexp.rllib.offline import evaluate_rllib, train_cql

    store = _random_store(tmp_path / "data")
    info = train_cql(store.path, tmp_path / algo, iterations=1, algo=algo, batch_size=32, iters_per_train=2, hidden=(16, 16))
    assert info["updates"] == 2
    df = evaluate_rllib(info["module"], {"id": "InvertedPendulum-v5", "max_episode_steps": 20}, episodes=3, seed=1000,
                        num_actors=1, model=algo, ref_scores=(0.0, 20.0))
    assert list(df["model"]) == [algo] * 3 and list(df["seed"]) == [1000, 1001, 1002]
    assert {"return", "length", "normalized_score", "ms_per_action", "nfe"} <= set(df.columns)
    assert (df["length"] <= 20).all() and (df["return"] > 0).all()


def test_table_3_1_puts_thesis_reference_beside_ours():
    import pandas as pd

    from rayexp.reports.tables import dataset_key, table_3_1

    assert dataset_key("Hopper-v5", "medium-replay") == "hopper-mr"
    assert dataset_key("HalfCheetah-v5", "medium-expert") == "halfcheetah-me"
    scores = [100.0, 110.0, 90, 90, 50, 60]
    df = pd.DataFrame({"model": ["ractd"] * 2 + ["cql"] * 2 + ["teacher"] * 2, "task": "Hopper-v5", "seed_index": 0,
                       "episode": [0, 1] * 3, "seed": [1000, 1001] * 3, "return": scores, "length": 100, "success": None,
                       "normalized_score": scores})
    t = table_3_1(df, "hopper-mr").set_index("model")
    assert t.loc["ractd", "normalized score (ours)"] == "105.0 ± 5.0"
    assert t.loc["ractd", "thesis (reference)"] == "104.9" and t.loc["cql", "thesis (reference)"] == "95.0"
    assert t.loc["teacher", "thesis (reference)"] == ""


def test_table_3_4_cells_come_from_the_shipped_ablation_config(tmp_path):
    """The ablation's four students are placed by their own and their teacher's reward weight, read from the
    resolved config a run records, and `rayexp report RUN --out DIR` writes both tables with their provenance."""
    import json

    import pandas as pd
    import yaml

    from rayexp.config import dump_config, load_config
    from rayexp.reports.tables import ablation_cells, table_3_4
    from tests.conftest import rayexp_cli

    cfg = load_config("tune_configs/hopper_mr_ractd.yaml")
    resolved = yaml.safe_load(dump_config(cfg))
    assert ablation_cells(resolved) == {"ctd": (False, False), "ractd": (False, True), "ctd_rwt": (True, False),
                                        "ractd_rwt": (True, True)}
    scores = {"ctd": 40.0, "ractd": 90.0, "ctd_rwt": 70.0, "ractd_rwt": 80.0, "teacher": 50.0, "cql": 60.0}
    df = pd.DataFrame([{"model": m, "normalized_score": s + d, "return": 10 * (s + d), "length": 100, "nfe": 1.0,
                        "ms_per_action": 2.0, "ms_per_plan": 2.0, "success": None, "task": "Hopper-v5",
                        "seed_index": 0, "episode": i, "seed": 1000 + i} for m, s in scores.items() for i, d in enumerate((-1, 1))])
    t = table_3_4(df, resolved).set_index("student")
    assert t.loc["reward-aware student", "plain teacher"].startswith("90.0 ± 1.0 (ractd; thesis 104.9)")
    assert t.loc["plain student", "reward-aware teacher"].startswith("70.0 ± 1.0 (ctd_rwt; thesis 96.2)")
    assert table_3_4(df[df["model"] != "ctd_rwt"], resolved) is None  # a missing cell: no half table

    run, data = tmp_path / "run", tmp_path / "data"
    run.mkdir(), data.mkdir()
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"path": str(data)})})
    (run / "config.yaml").write_text(dump_config(cfg))
    (run / "commit.txt").write_text("abc123\n")
    df.to_parquet(run / "eval.parquet")
    meta = {"env_id": "Hopper-v5", "description": "medium-replay: SAC replay buffer", "source": "rllib-sac-d4rl",
            "extra": {"tier": "medium-replay", "wall_s": 600.0}}
    (data / "meta.json").write_text(json.dumps(meta))
    rayexp_cli("report", str(run), "--out", str(tmp_path / "results"))
    text = (tmp_path / "results" / "report.md").read_text()
    assert "## Table 3.1" in text and "hopper-mr" in text and "## Table 3.4" in text
    assert "commit abc123" in text and '"wall_s": 600.0' in text and "reward_weight: 1.0" in text
    assert (tmp_path / "results" / "eval.png").stat().st_size > 0 and "](eval.png)" not in text


def test_tier_recording_stops_near_the_requested_steps():
    """Recording asks for episodes by the policy's own mean length: 100k steps of 362-step episodes come to at
    most one round's spread above 100k (the hopper medium tier once held 362k)."""
    from rayexp.families.mujoco.make_d4rl import episodes_to_request

    lengths: list[int] = []
    while sum(lengths) < 100_000:
        lengths += [362] * episodes_to_request(lengths, 100_000)
    assert 100_000 <= sum(lengths) < 100_000 + 362
    assert episodes_to_request([], 300) == 10 and episodes_to_request([50] * 10, 300) == 1
