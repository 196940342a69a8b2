"""SMAX battles: team generators, splits, the PettingZoo wrapper, the won flag, masks, the Colossus."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from envs.smacv2_backend import smacv2_missing_reason
from envs.smax_teams import (
    COLOSSUS,
    PROTOSS,
    STALKER,
    WEIGHTS,
    ZEALOT,
    FixedTeams,
    WeightedTeams,
    all_splits,
    smax_split,
    split_teams,
)
from envs.splits import OOCSplit, canonical


@pytest.mark.parametrize("n_units", [2, 3, 5])
def test_weighted_teams_hit_type_frequencies(n_units):
    gen, rng = WeightedTeams(n_units), np.random.default_rng(0)
    teams = [gen.sample(rng) for _ in range(6000)]
    assert all(set(t) != {COLOSSUS} for t in teams)  # all-Colossus teams are redrawn
    units = Counter(u for t in teams for u in t)
    freq = np.array([units[u] for u in PROTOSS]) / sum(units.values())
    redraw = WEIGHTS[2] ** n_units  # removing all-Colossus teams shifts the Colossus share a little
    assert np.allclose(freq, WEIGHTS, atol=0.015 + redraw), freq
    counts = Counter(teams)
    for team, p in ((t, gen.probability(t)) for t in gen.support()):
        assert abs(counts[team] / len(teams) - p) < 0.02, (team, counts[team] / len(teams), p)
    assert abs(sum(gen.probability(t) for t in gen.support()) - 1.0) < 1e-9


def test_fixed_teams_follow_weights():
    gen = FixedTeams(((STALKER,) * 3, (ZEALOT,) * 3), (0.8, 0.2))
    rng = np.random.default_rng(1)
    share = np.mean([gen.sample(rng) == (STALKER,) * 3 for _ in range(4000)])
    assert abs(share - 0.8) < 0.03


def test_splits_disjoint_and_saved(tmp_path):
    splits = all_splits()
    assert len(splits) == 12
    for name, s in splits.items():
        train, test = {canonical(c) for c in s.train}, {canonical(c) for c in s.test}
        if s.kind == "ooc":
            assert s.is_disjoint() and not train & test, name
        else:
            assert train == test, name
        assert OOCSplit.load(s.save(tmp_path / f"{name}.json")) == s
    simple = smax_split(3, "simple")
    assert set(simple.test) == {(STALKER,) * 3, (ZEALOT,) * 3}
    assert all(len(set(c)) > 1 for c in simple.train)
    assert set(smax_split(3, "hard").train) == set(simple.test)
    assert set(split_teams(simple, "test").compositions) == set(simple.test)


# --- the env: one 2v2 env shared by the tests below (compiling costs seconds) ----------------------------

@pytest.fixture(scope="module")
def env():
    from envs.smax import SMAXParallelEnv

    e = SMAXParallelEnv(n_units=2, teams=split_teams(smax_split(2, "simple"), "train"), seed=0)
    yield e
    e.close()


def _masked_random(infos, agents, rng):
    return {a: int(rng.choice(np.flatnonzero(infos[a]["action_mask"]))) for a in agents}


def test_parallel_api(env):
    from pettingzoo.test import parallel_api_test

    parallel_api_test(env, num_cycles=60)
    obs, infos = env.reset(seed=3)
    assert env.state().shape == env.state_space.shape
    assert all(env.observation_space(a).contains(o) for a, o in obs.items())


def _force_health(env, allies: float, enemies: float):
    """Scale the allies' and enemies' health in the env's JAX state (0 kills them on the next step)."""
    import jax.numpy as jnp

    inner = env._state.state
    scale = jnp.asarray([allies] * env.n_units + [enemies] * env.n_units, dtype=inner.unit_health.dtype)
    env._state = env._state.replace(state=inner.replace(unit_health=inner.unit_health * scale))


@pytest.mark.parametrize("allies, enemies, result", [(1.0, 0.0, "won"), (0.0, 1.0, "lost"), (0.0, 0.0, "draw")])
def test_won_flag_on_scripted_endings(env, allies, enemies, result):
    from envs.smax import STOP

    env.reset(seed=4)
    _force_health(env, allies, enemies)
    _, rewards, terms, truncs, infos = env.step({a: STOP for a in env.agents})
    assert all(terms.values()) and not any(truncs.values())
    assert infos["ally_0"]["result"] == result
    assert infos["ally_0"]["won"] == (result == "won")
    assert (rewards["ally_0"] >= 1.0) == (result == "won")  # SMAX's win bonus only on a real win
    assert env.agents == []


def test_masks_respected_in_random_play(env):
    from envs.smax import N_MOVE_ACTIONS, STOP

    rng = np.random.default_rng(5)
    for seed in (6, 7):
        obs, infos = env.reset(seed=seed)
        while env.agents:
            alive = env._view[3]
            for i, a in enumerate(env.possible_agents):
                mask = infos[a]["action_mask"]
                assert mask[STOP] == 1
                attackable = mask[N_MOVE_ACTIONS:].astype(bool)
                assert not np.any(attackable & ~alive[env.n_units:]), "attack offered on a dead enemy"
                if not alive[i]:
                    assert mask.sum() == 1, "a dead unit may only stop"
            obs, rewards, terms, truncs, infos = env.step(_masked_random(infos, env.agents, rng))
        assert infos["ally_0"]["result"] in ("won", "lost", "draw", "timeout")
        assert infos["ally_0"]["won"] == (infos["ally_0"]["result"] == "won")


def test_colossus_parameters_and_types_visible(env):
    from envs.smax import COLOSSUS as FIGS
    from envs.smax import UNIT_TYPES, unit_type_kwargs

    kw, c = unit_type_kwargs(), UNIT_TYPES.index("colossus")
    assert kw["unit_type_names"][c] == "colossus"
    assert float(kw["unit_type_attack_ranges"][c]) == 7.0 and float(kw["unit_type_sight_ranges"][c]) == 10.0
    assert float(kw["unit_type_health"][c]) == FIGS["health"] == 350.0
    assert float(kw["unit_type_health"][UNIT_TYPES.index("stalker")]) == 160.0  # shipped types untouched
    assert float(env._env.unit_type_attack_ranges[c]) == 7.0

    obs, _ = env.reset(seed=8, options={"team": ("colossus", "stalker")})
    health = np.asarray(env._state.state.unit_health)
    assert health[0] == health[2] == 350.0 and health[1] == health[3] == 160.0  # enemies mirror the allies
    n_types = len(UNIT_TYPES)
    assert np.argmax(obs["ally_0"][-n_types:]) == c  # own type
    assert np.argmax(obs["ally_1"][-n_types:]) == UNIT_TYPES.index("stalker")
    unit_feats = len(env._env.unit_features)
    teammate = obs["ally_1"][:unit_feats]  # first block of ally_1's observation: ally_0
    assert np.argmax(teammate[-n_types:]) == c
    state_types = env.state()[-2 * env.n_units:]
    assert list(state_types) == [c, 2, c, 2]


# --- the optional SMACv2 backend ----------------------------------------------------------------------

def test_smacv2_capability_config_and_clear_error():
    from envs.smacv2_backend import SMACv2ParallelEnv, SMACv2Unavailable, capability_config, smacv2_missing_reason

    cfg = capability_config(5)
    assert cfg["team_gen"]["unit_types"] == list(PROTOSS) and cfg["team_gen"]["weights"] == list(WEIGHTS)
    assert cfg["team_gen"]["exception_unit_types"] == [COLOSSUS] and cfg["n_enemies"] == 5
    fixed = capability_config(3, [(STALKER,) * 3], [1.0])
    assert fixed["team_gen"]["compositions"] == [[STALKER] * 3]
    reason = smacv2_missing_reason()
    if reason is not None:
        with pytest.raises(SMACv2Unavailable) as e:
            SMACv2ParallelEnv(3)
        assert "\n" not in str(e.value) and reason in str(e.value)


@pytest.mark.skipif(smacv2_missing_reason() is not None, reason=f"smacv2 backend: {smacv2_missing_reason()}")
def test_smacv2_backend_parallel_api():
    from pettingzoo.test import parallel_api_test

    from envs.smacv2_backend import SMACv2ParallelEnv

    env = SMACv2ParallelEnv(3, teams=split_teams(smax_split(3, "simple"), "train"))
    parallel_api_test(env, num_cycles=50)
    env.close()
