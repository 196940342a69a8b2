"""envs.smax_connectors: the batched runner's connectors give the module and the episodes exactly what RLlib's
default connector pipelines give them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("jaxmarl")
from ray.rllib.core.columns import Columns  # noqa: E402

ENV = "smax-2v2-simple"
GAMES = 4


def _runner(max_steps: int = 4):
    from algorithms.mappo_rllib import mappo_config
    from algorithms.mappo_settings import MAPPOSettings
    from envs.smax_rllib import SMAXEnvRunner, with_batched_games

    settings = MAPPOSettings(num_env_runners=0, num_envs_per_env_runner=GAMES, hidden=[8], critic_hidden=[8])
    config = mappo_config(settings, "unused-name", {"name": ENV, "seed": 0, "max_steps": max_steps}, seed=0)
    return SMAXEnvRunner(config=with_batched_games(config))


def _default_pipelines(runner):
    config = runner.config.copy(copy_frozen=False).env_runners(
        env_to_module_connector=None, module_to_env_connector=None,
        add_default_connectors_to_env_to_module_pipeline=True, add_default_connectors_to_module_to_env_pipeline=True)
    return (config.build_env_to_module_connector(env=runner.env, spaces=runner.get_spaces()),
            config.build_module_to_env_connector(env=runner.env, spaces=runner.get_spaces()))


def _record_observations(runner) -> list:
    """The observations of the env's latest reset or step (what RLlib passes its env-to-module pipeline)."""
    last, step, reset = [], runner.env.step, runner.env.reset

    def recorded(fn):
        def call(*args, **kwargs):
            out = fn(*args, **kwargs)
            last[:] = [out[0]]
            return out
        return call

    runner.env.step, runner.env.reset = recorded(step), recorded(reset)
    return last


def _rows_by_key(episodes, rows: dict) -> dict:
    return {module: [(episodes[i].id_, agent) for i, agent in r] for module, r in rows.items()}


def _same_tree(a, b) -> None:
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            _same_tree(a[k], b[k])
    else:
        assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape, (type(a), type(b))
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_batched_connectors_match_rllib_defaults_through_restarts():
    from envs.smax_connectors import ROWS, GamesToModuleBatch, ModuleOutputsToGames

    runner = _runner()
    default_to_module, default_to_env = _default_pipelines(runner)
    last = _record_observations(runner)
    skipped = 0
    try:
        for _ in range(12):  # max_steps=4: games end and restart (next-step autoreset) along the way
            runner.sample(num_timesteps=GAMES)
            episodes = runner._ongoing_episodes
            skipped += sum(not ep.is_reset for ep in episodes)
            ours_shared, theirs_shared = {}, {}
            ours = GamesToModuleBatch()(rl_module=runner.module, batch={}, episodes=episodes, explore=True,
                                        shared_data=ours_shared, **{Columns.OBS: last[0]})
            theirs = default_to_module(rl_module=runner.module, batch={}, episodes=episodes, explore=True,
                                       shared_data=theirs_shared)
            ours_rows = _rows_by_key(episodes, ours_shared[ROWS])
            theirs_rows = theirs_shared["memorized_map_structure"]
            assert set(ours) == set(theirs) == set(ours_rows)
            for module, rows in ours_rows.items():
                assert sorted(rows) == sorted(theirs_rows[module])
                order = torch.tensor([theirs_rows[module].index(key) for key in rows])
                _same_tree({k: v.numpy() for k, v in ours[module][Columns.OBS].items()},
                           {k: v[order].numpy() for k, v in theirs[module][Columns.OBS].items()})
                # The same module output (actions sampled once) through both module-to-env paths.
                out = runner.module[module].forward_exploration(theirs[module])
                dist = runner.module[module].get_exploration_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
                out[Columns.ACTIONS] = dist.sample()
                out[Columns.ACTION_LOGP] = dist.logp(out[Columns.ACTIONS])
                theirs_env = default_to_env(rl_module=runner.module, batch={module: dict(out)}, episodes=episodes,
                                            explore=True, shared_data=theirs_shared)
                ours_env = ModuleOutputsToGames()(rl_module=runner.module, episodes=episodes, shared_data=ours_shared,
                                                  batch={module: {k: v[order] for k, v in out.items()}})
                assert set(theirs_env) == set(ours_env) | {Columns.ACTIONS_FOR_ENV}
                _same_tree(dict(enumerate(theirs_env[Columns.ACTIONS_FOR_ENV])), dict(enumerate(ours_env[Columns.ACTIONS])))
                for column, games in ours_env.items():
                    assert len(games) == GAMES
                    _same_tree(dict(enumerate(theirs_env[column])), dict(enumerate(games)))
    finally:
        runner.stop()
    assert skipped > 0  # some checks saw a finished game waiting for its restart (no rows for it)


def test_batched_runner_episodes_keep_actions_logps_and_masks():
    """Episodes sampled through the batched connectors hold what PPO's learner reads, consistent with the env."""
    runner = _runner(max_steps=6)
    try:
        episodes = runner.sample(num_timesteps=40)
        assert sum(len(e) for e in episodes) >= 40 and any(e.is_done for e in episodes)
        assert all(e.is_numpy for e in episodes)  # numpy-ized once, at the end of the chunk
        for episode in episodes:
            for agent, sa in episode.agent_episodes.items():
                obs, actions = sa.get_observations(slice(0, len(sa))), sa.get_actions()
                logits = sa.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS)
                logp = sa.get_extra_model_outputs(Columns.ACTION_LOGP)
                assert len(actions) == len(sa) and logits.shape == (len(sa), obs["action_mask"].shape[1])
                assert np.all(obs["action_mask"][np.arange(len(sa)), actions] == 1)  # only available actions
                expected = torch.log_softmax(torch.from_numpy(logits), -1)[torch.arange(len(sa)), torch.from_numpy(actions).long()]
                assert np.allclose(logp, expected.numpy(), atol=1e-5)
    finally:
        runner.stop()
