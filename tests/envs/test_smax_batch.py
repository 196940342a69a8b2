"""Batched SMAX: game i of a batch plays the single env's episodes, and RLlib's vector env over it keeps the
single env's per-agent contract (Dict observations, masks, won flag, per-game restarts)."""
from __future__ import annotations

import numpy as np
import pytest

ENV = "smax-2v2-simple"


def _random_available(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.argmax(masks * rng.random(masks.shape), axis=-1)


def test_batch_game_i_plays_the_single_env_seeded_s_plus_i():
    from envs.smax import make_smax_env
    from envs.smax_batch import make_smax_batch

    games, seed, max_steps = 2, 5, 12
    batch = make_smax_batch(ENV, games, seed=seed, max_steps=max_steps)
    singles = [make_smax_env(ENV, max_steps=max_steps) for _ in range(games)]
    view = batch.reset(seed=seed)
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    rng, ends, restarts = np.random.default_rng(0), 0, 0
    for _ in range(40):
        for i, env in enumerate(singles):
            assert batch.team[i] == env.team
            np.testing.assert_allclose(view.obs[i], np.stack([obs[i][a] for a in env.possible_agents]), atol=1e-5)
            np.testing.assert_array_equal(view.action_mask[i], np.stack(list(env.action_masks().values())))
        actions = _random_available(view.action_mask, rng)
        out = batch.step(actions)
        view = out.view
        for i, env in enumerate(singles):
            if out.restarted[i]:
                restarts += 1
                obs[i], _ = env.reset()
                continue
            obs[i], rewards, _, _, infos = env.step({a: int(actions[i, j]) for j, a in enumerate(env.possible_agents)})
            assert rewards["ally_0"] == pytest.approx(float(out.reward[i]), abs=1e-5)
            assert bool(out.done[i]) == (not env.agents)
            if out.done[i]:
                ends += 1
                assert out.result[i] == infos["ally_0"]["result"]
    assert ends >= games and restarts >= games  # every game finished and restarted at least once


def test_vector_env_restarts_a_finished_game_with_zero_reward_and_keeps_the_contract():
    from envs.smax_rllib import SMAXMultiAgentEnv, SMAXVectorEnv

    vec = SMAXVectorEnv(3, name=ENV, seed=0, max_steps=6)
    single = SMAXMultiAgentEnv({"name": ENV, "seed": 0, "max_steps": 6})
    assert vec.single_observation_spaces == single.observation_spaces
    assert vec.single_action_spaces == single.action_spaces
    obs, infos = vec.reset(seed=0)
    assert len(obs) == 3 and all(set(o) == set(single.possible_agents) for o in obs)
    rng, ended, restarts = np.random.default_rng(1), np.zeros(3, bool), 0
    for _ in range(9):
        actions = [{a: int(_random_available(obs[i][a]["action_mask"], rng)) for a in obs[i]} for i in range(3)]
        obs, rewards, terms, truncs, infos = vec.step(actions)
        for i in range(3):
            assert vec.single_observation_space.contains(obs[i])
            assert obs[i]["ally_1"]["state"][-2:].tolist() == [0.0, 1.0]  # global state + the agent's one-hot
            done = terms[i]["__all__"] or truncs[i]["__all__"]
            if ended[i]:  # the step after an ending restarts the game: first obs, zero reward, no flags
                restarts += 1
                assert rewards[i] == {a: 0.0 for a in single.possible_agents} and not done
                assert "result" not in infos[i]["ally_0"]
            if done:
                assert infos[i]["ally_0"]["result"] in ("won", "lost", "draw", "timeout")
                assert infos[i]["ally_0"]["won"] == (infos[i]["ally_0"]["result"] == "won")
                assert truncs[i]["__all__"] == (infos[i]["ally_0"]["result"] == "timeout")
            ended[i] = done
    assert restarts >= 3  # max_steps=6: every game ended and restarted within 9 steps


def test_runner_logs_the_step_counts_of_what_it_sampled(ray_session):
    from ray.rllib.utils.metrics import NUM_AGENT_STEPS_SAMPLED, NUM_ENV_STEPS_SAMPLED, NUM_EPISODES

    from algorithms.mappo_rllib import mappo_config
    from algorithms.mappo_settings import MAPPOSettings
    from envs.smax_rllib import SMAXEnvRunner

    settings = MAPPOSettings(num_env_runners=0, num_envs_per_env_runner=3, hidden=[8], critic_hidden=[8])
    config = mappo_config(settings, "unused-name", {"name": ENV, "seed": 0, "max_steps": 5}, seed=0)
    runner = SMAXEnvRunner(config=config)
    episodes = runner.sample(num_timesteps=30)
    metrics = runner.get_metrics()
    env_steps = sum(len(e) for e in episodes)  # every chunk's env steps, finished and ongoing
    assert metrics[NUM_ENV_STEPS_SAMPLED] == env_steps >= 30
    assert metrics[NUM_AGENT_STEPS_SAMPLED] == {a: env_steps for a in ("ally_0", "ally_1")}
    assert metrics[NUM_EPISODES] == sum(e.is_done for e in episodes) >= 3  # max_steps=5: every game ended
    runner.stop()


def test_vector_env_dicts_equal_the_per_game_conversion_of_the_batch():
    """The vector env slices one whole-batch conversion; each game's dicts equal converting that game alone."""
    from envs.smax_batch import make_smax_batch
    from envs.smax_rllib import SMAXVectorEnv, dict_observations

    vec, twin = SMAXVectorEnv(3, name=ENV, seed=0, max_steps=5), make_smax_batch(ENV, 3, seed=0, max_steps=5)
    obs, infos = vec.reset(seed=0)
    view, results, rng, ends = twin.reset(seed=0), [None] * 3, np.random.default_rng(2), 0
    for _ in range(8):
        for i in range(3):
            expected = dict_observations(vec.possible_agents, view.obs[i], view.state[i], view.action_mask[i])
            assert obs[i].keys() == expected.keys()
            for a in expected:
                for k, x in expected[a].items():
                    assert obs[i][a][k].dtype == x.dtype and np.array_equal(obs[i][a][k], x)
                mask = infos[i][a]["action_mask"]
                assert mask.dtype == np.uint8 and np.array_equal(mask, view.action_mask[i][vec.possible_agents.index(a)])
                assert infos[i][a]["won"] == (results[i] == "won") and infos[i][a].get("result") == results[i]
        actions = np.stack([_random_available(view.action_mask[i], rng) for i in range(3)])
        obs, _, _, _, infos = vec.step([{a: actions[i, j] for j, a in enumerate(vec.possible_agents)} for i in range(3)])
        out = twin.step(actions)
        view, results = out.view, out.result
        ends += sum(r is not None for r in results)
    assert ends >= 3  # max_steps=5: the checks covered final steps (result infos) and restarts
