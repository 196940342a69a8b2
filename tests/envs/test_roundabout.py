"""The Roundabout OOC env: split sampling, disjointness, the type feature, refusals, numpy == pandas observation."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from envs.registry import UnknownEnvError, make_env
from envs.roundabout import FEATURES, TYPE_CODES, VEHICLE_CLASSES, FlatKinematicObservation, condition_vector, make_registered_env
from envs.roundabout_split import UnknownVehicleTypeError, roundabout_split
from envs.splits import OOCSplit, canonical

SLOWER, IDLE = 4, 1
ALL_CARS, ALL_BIKES = ("car",) * 4, ("bicycle",) * 4


@pytest.fixture(scope="module")
def env():
    e = make_env("roundabout-ooc", seed=0)
    yield e
    e.close()


def test_split_is_the_thesis_split_and_disjoint(tmp_path):
    ooc, iid = roundabout_split("ooc"), roundabout_split("id")
    assert set(ooc.train) == {ALL_CARS, ALL_BIKES} and ooc.train_weights == (0.5, 0.5)
    assert len(ooc.test) == 2**4 - 2 and all(len(set(c)) == 2 for c in ooc.test)
    assert ooc.is_disjoint() and not ({canonical(c) for c in ooc.train} & {canonical(c) for c in ooc.test})
    assert iid.kind == "id" and iid.test == iid.train
    assert OOCSplit.load(ooc.save(tmp_path / "split.json")) == ooc


def test_reset_draws_compositions_as_the_split_asks(env):
    train = Counter(tuple(env.reset(seed=s)[1]["composition"]) for s in range(100))
    assert set(train) == {ALL_CARS, ALL_BIKES} and 0.35 < train[ALL_BIKES] / 100 < 0.65  # 3 standard errors
    test_env = make_env("roundabout-ooc-test")
    n_bikes = Counter(test_env.reset(seed=s)[1]["composition"].count("bicycle") for s in range(140))
    assert set(n_bikes) == {1, 2, 3}  # mixtures only: at least one of each type
    for k, p in {1: 4 / 14, 2: 6 / 14, 3: 4 / 14}.items():  # each ordered mixture equally likely
        assert abs(n_bikes[k] / 140 - p) < 0.13, n_bikes


def test_type_feature_matches_the_vehicles_on_the_road(env):
    composition = ("car", "bicycle", "bicycle", "car")
    obs, info = env.reset(seed=3, options={"composition": composition})
    assert info["composition"] == list(composition)
    road = env.unwrapped.road
    assert [type(v) for v in road.vehicles[1:]] == [VEHICLE_CLASSES[t] for t in composition]
    for _ in range(3):
        rows = obs.reshape(5, len(FEATURES))
        for row in rows[rows[:, 0] == 1]:  # match each visible row to the vehicle at its (normalised) position
            def gap(v):
                return np.linalg.norm(np.clip(v.position / 100, -1, 1) - row[1:3])
            v = min(road.vehicles, key=gap)
            assert gap(v) < 1e-5
            assert row[FEATURES.index("type")] == TYPE_CODES[v.VEHICLE_TYPE]
        assert np.all(rows[rows[:, 0] == 0] == 0)  # not visible: type 0
        obs, *_ = env.step(SLOWER)
    cond = condition_vector(obs)
    assert cond.shape == (12,) and np.all(cond.reshape(4, 3).sum(-1) == 1)
    assert condition_vector(np.stack([obs, obs])).shape == (2, 12)


@pytest.mark.parametrize("absolute", [True, False])
def test_numpy_observation_equals_pandas(absolute):
    e = make_env("roundabout-ooc-test", observation={
        "type": "Kinematics", "features": list(FEATURES), "vehicles_count": 5, "absolute": absolute,
        "features_range": {"x": [-100, 100], "y": [-100, 100], "vx": [-15, 15], "vy": [-15, 15]}})
    u = e.unwrapped
    for seed in range(2):
        obs, _ = e.reset(seed=seed)
        reference = FlatKinematicObservation(u, **u.config["observation"])
        for t in range(6):
            assert obs.dtype == np.float32 and np.array_equal(obs, reference.observe()), (seed, t)
            obs, _, term, trunc, _ = e.step([IDLE, SLOWER, 3][t % 3])
            if term or trunc:
                break


def test_bad_split_or_vehicle_type_is_refused(env, tmp_path):
    with pytest.raises(ValueError, match="unknown split 'bogus'"):
        roundabout_split("bogus")
    with pytest.raises(UnknownEnvError, match="valid: roundabout-ooc"):
        make_env("roundabout-bogus")
    with pytest.raises(UnknownVehicleTypeError, match=r"unknown vehicle type\(s\) \['truck'\]"):
        env.reset(options={"composition": ("car", "truck", "car", "car")})
    with pytest.raises(UnknownVehicleTypeError, match="names 4 vehicles"):
        env.reset(options={"composition": ("car",)})
    with pytest.raises(UnknownEnvError, match="no config entries"):
        make_env("roundabout-ooc", numpy_obs=True)
    trucks = OOCSplit(name="trucks", elements=("car", "truck"), train=(("truck",) * 4,), test=())
    with pytest.raises(UnknownVehicleTypeError, match="truck"):
        make_registered_env("roundabout-ooc", split=str(trucks.save(tmp_path / "trucks.json")))


def test_make_env_steps_real_highway_env_and_reports_success():
    e = make_env("roundabout-ooc", seed=1, composition=list(ALL_BIKES))
    obs, info = e.reset(seed=1)
    assert obs.shape == e.observation_space.shape == (5 * len(FEATURES),) and not info["is_success"]
    steps, done = 0, False
    while not done:  # stopping at the entry is safe: the bicycles are never ahead of the ego in its lane
        obs, reward, term, trunc, info = e.step(SLOWER)
        steps, done = steps + 1, term or trunc
        assert info["composition"] == list(ALL_BIKES)
    assert steps == 12 and trunc and not term
    assert info["is_success"] is True and not info["crashed"]


@pytest.mark.parametrize("cond_mode", ["cross_attention", "concat"])
def test_type_conditioned_planner_replans_from_the_observation(env, cond_mode):
    import torch

    from algorithms.base import DataSpec, Frozen
    from algorithms.configs import PlannerConfig
    from algorithms.planner import Planner

    obs = []
    for seed, comp in enumerate([ALL_CARS, ALL_BIKES, ("car", "bicycle", "car", "bicycle")]):
        o, _ = env.reset(seed=seed, options={"composition": comp})
        for _ in range(8):
            obs.append(o)
            o, *_ = env.step(IDLE)
    obs = torch.as_tensor(np.stack(obs), dtype=torch.float32)  # 24, obs_dim
    H, B, n_actions = 8, 12, 5
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(obs) - H, B)
    batch = {"future_obs": torch.stack([obs[s:s + H] for s in starts]),
             "actions": torch.nn.functional.one_hot(torch.as_tensor(rng.integers(0, n_actions, (B, H))), n_actions).float()}
    cfg = PlannerConfig(condition="roundabout_types", horizon=H, n_diffusion_steps=10, cond_mode=cond_mode,
                        inpaint_goal=False, action_weight=10.0, guidance=1.0, down_dims=[16, 32], step_embed_dim=16,
                        cond_embed_dim=20)
    method = Planner(cfg)
    model = method.build_model(DataSpec(obs_dim=obs.shape[1], act_dim=n_actions, action_horizon=H, discrete_actions=True))
    loss, metrics = method.loss(model, batch, Frozen())
    loss.backward()
    assert np.isfinite(metrics["loss"])
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    policy = method.make_policy(model, None)
    start = batch["future_obs"][:1, 0]
    rows = start.clone().view(1, 5, len(FEATURES))
    rows[:, 1:, 0] = 1.0  # all four others visible: the condition differs with their types
    as_cars, as_bikes = rows.clone(), rows.clone()
    as_cars[:, 1:, FEATURES.index("type")], as_bikes[:, 1:, FEATURES.index("type")] = TYPE_CODES["car"], TYPE_CODES["bicycle"]
    as_cars, as_bikes = as_cars.view(1, -1), as_bikes.view(1, -1)

    def plan(cond_obs, w):
        torch.manual_seed(0)
        return policy.sample(start, guidance=w, condition_obs=cond_obs)

    states, actions = plan(start, 1.0)
    assert actions.shape == (1, H, n_actions) and torch.allclose(states[:, 0], start, atol=1e-4)
    torch.manual_seed(0)
    assert torch.equal(policy(start[:, None]), actions), "the closed-loop call plans conditioned on its own observation"
    assert (plan(as_cars, 1.0)[1] - plan(as_bikes, 1.0)[1]).abs().max() > 1e-5, "the type condition had no effect"
    assert torch.equal(plan(as_cars, 0.0)[1], plan(as_bikes, 0.0)[1]), "guidance 0 must ignore the condition"
