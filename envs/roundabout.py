"""highway-env's roundabout with car and bicycle traffic drawn from an OOC split (thesis §2.6.2, A.4.7).

Built on highway-env's own extension points: ``IDMVehicle`` subclasses for the two traffic types (Table A.2),
a ``RoundaboutEnv`` subclass that places the 4 other vehicles itself (slot ``i`` gets the type
``composition[i]``), ``to_dict`` carrying a ``type`` feature (car 1, bicycle -1, not visible 0) so the
stock Kinematics observation can read it, and ``define_spaces`` swapping in a flat (1-D, for RLlib)
observation computed with numpy, equal element for element to the pandas one it replaces.
"""
from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
from highway_env import utils
from highway_env.envs.common.observation import KinematicObservation
from highway_env.envs.roundabout_env import RoundaboutEnv
from highway_env.vehicle.behavior import IDMVehicle
from highway_env.vehicle.controller import MDPVehicle

from envs.roundabout_split import SPLIT_NAMES, check_composition, check_split, roundabout_split
from envs.splits import OOCSplit

ENV_ID = "rayexp/RoundaboutOOC-v0"
ENV_NAMES = tuple(f"roundabout-{s}{part}" for s in SPLIT_NAMES for part in ("", "-test"))
TYPE_CODES = {"car": 1.0, "bicycle": -1.0}  # 0: no vehicle in that observation row
FEATURES = ("presence", "x", "y", "vx", "vy", "type")
DESTINATIONS = ("exr", "sxr", "nxr")

# Start slots, one per other vehicle: (lane, longitudinal position [m]). Cars use highway-env's own slots.
# Bicycles (4-6 m/s) start near the ego's path so they meet it within 12 s, but never ahead of it in the
# lane it enters (an earlier placement there was rear-ended in every all-bicycle episode): 0 reaches the
# ego's entry about when the ego does (go first or wait), 1-2 ride the inner lane ahead (and may cut
# across the ego's lane to exit), 3 enters from the east. scripts/roundabout_check.py measures it.
SLOTS = {
    "car": ((("we", "sx", 1), 5.0), (("we", "sx", 0), 20.0), (("we", "sx", 0), -20.0), (("eer", "ees", 0), 50.0)),
    "bicycle": ((("sx", "se", 1), 0.0), (("se", "ex", 0), 0.0), (("ex", "ee", 0), 5.0), (("ees", "ee", 0), 5.0)),
}


class TypedVehicle:
    """Mixin: a traffic type name, reported as the ``type`` observation feature."""

    VEHICLE_TYPE = "car"

    def to_dict(self, origin_vehicle=None, observe_intentions: bool = True) -> dict:
        d = super().to_dict(origin_vehicle, observe_intentions)
        d["type"] = TYPE_CODES[self.VEHICLE_TYPE]
        return d


class Car(TypedVehicle, IDMVehicle):
    """Table A.2 car: 5 x 2 m, 23-25 m/s, max / comfort acceleration 6 / 3 m/s^2 (IDMVehicle's defaults)."""

    VEHICLE_TYPE = "car"
    LENGTH, WIDTH = 5.0, 2.0
    DEFAULT_INITIAL_SPEEDS = [23.0, 25.0]
    MAX_SPEED = 25.0
    ACC_MAX, COMFORT_ACC_MAX = 6.0, 3.0
    DISTANCE_WANTED = 5.0 + LENGTH


class Bicycle(TypedVehicle, IDMVehicle):
    """Table A.2 bicycle: 2 x 1 m, 4-6 m/s, max / comfort acceleration 2 / 1 m/s^2, a bicycle-sized jam gap."""

    VEHICLE_TYPE = "bicycle"
    LENGTH, WIDTH = 2.0, 1.0
    DEFAULT_INITIAL_SPEEDS = [4.0, 6.0]
    MAX_SPEED = 6.0
    ACC_MAX, COMFORT_ACC_MAX = 2.0, 1.0
    DISTANCE_WANTED = 2.0 + LENGTH


class EgoCar(TypedVehicle, MDPVehicle):
    """The controlled vehicle: highway-env's MDPVehicle, reporting the car type."""

    VEHICLE_TYPE = "car"


VEHICLE_CLASSES = {"car": Car, "bicycle": Bicycle}


class FlatKinematicObservation(KinematicObservation):
    """highway-env's (pandas) Kinematics observation, flattened to V * F (RLlib's default models need 1-D)."""

    def space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-np.inf, np.inf, (self.vehicles_count * len(self.features),), np.float32)

    def observe(self) -> np.ndarray:
        return super().observe().reshape(-1)


class NumpyKinematicObservation(FlatKinematicObservation):
    """The same observation built with numpy (~25% of the env step saved); a test checks it equals the pandas one."""

    def observe(self) -> np.ndarray:
        if not self.env.road:
            return np.zeros(self.space().shape, np.float32)
        ego = self.observer_vehicle
        others = self.env.road.close_objects_to(ego, self.env.PERCEPTION_DISTANCE, count=self.vehicles_count - 1,
                                                see_behind=self.see_behind, sort=self.order == "sorted",
                                                vehicles_only=not self.include_obstacles)
        origin = ego if not self.absolute else None
        rows = [ego.to_dict()] + [v.to_dict(origin, observe_intentions=self.observe_intentions)
                                  for v in others[-self.vehicles_count + 1:]]
        obs = np.zeros((self.vehicles_count, len(self.features)))
        values = np.array([[row[f] for f in self.features] for row in rows], dtype=np.float64)
        if self.normalize:
            for j, f in enumerate(self.features):
                if f in self.features_range:
                    values[:, j] = utils.lmap(values[:, j], self.features_range[f], [-1, 1])
                    if self.clip:
                        values[:, j] = np.clip(values[:, j], -1, 1)
        obs[: len(rows)] = values
        if self.order == "shuffled":
            self.env.np_random.shuffle(obs[1:])
        return obs.astype(np.float32).reshape(-1)


class RoundaboutOOCEnv(RoundaboutEnv):
    """``roundabout-v0`` whose 4 other vehicles follow a composition drawn per episode from ``split.<part>``.

    ``reset(options={"composition": (...)})`` fixes the composition of one episode. ``info`` carries
    ``composition`` and ``is_success`` (no crash and all ``duration`` steps done).
    """

    def __init__(self, config: dict | None = None, render_mode: str | None = None, split: OOCSplit | str = "ooc",
                 part: str = "train") -> None:
        self.split = check_split(roundabout_split(split) if isinstance(split, str) else split)
        if part not in ("train", "test"):
            raise ValueError(f"roundabout: part must be 'train' or 'test', got {part!r}")
        self.part = part
        self.composition: tuple[str, ...] = ()
        self._forced: tuple[str, ...] | None = None
        super().__init__(config, render_mode)

    @classmethod
    def default_config(cls) -> dict:
        config = super().default_config()
        config.update({
            "duration": 12,
            "numpy_observation": True,
            "composition": None,  # a fixed composition for every episode (e.g. one expert per training traffic)
            "slots": None,  # None: SLOTS; else {"car": [[lane, s], ...], "bicycle": [...]} (4 slots each)
            "observation": {"type": "Kinematics", "features": list(FEATURES), "vehicles_count": 5, "absolute": True,
                            "features_range": {"x": [-100, 100], "y": [-100, 100], "vx": [-15, 15], "vy": [-15, 15]}},
        })
        return config

    def define_spaces(self) -> None:
        super().define_spaces()
        obs_class = NumpyKinematicObservation if self.config["numpy_observation"] else FlatKinematicObservation
        self.observation_type = obs_class(self, **self.config["observation"])
        self.observation_space = self.observation_type.space()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        forced = options["composition"] if options and "composition" in options else self.config["composition"]
        self._forced = check_composition(forced) if forced is not None else None
        return super().reset(seed=seed, options=options)

    def _make_vehicles(self) -> None:
        self.composition = self._forced or self.split.sample_combination(self.part, self.np_random)
        check_composition(self.composition)
        lane = self.road.network.get_lane(("ser", "ses", 0))
        self.vehicle = EgoCar(self.road, lane.position(125.0, 0.0), speed=8.0, heading=lane.heading_at(140.0),
                              target_speeds=self.action_type.target_speeds)
        self.vehicle.plan_route_to("nxs")
        self.road.vehicles.append(self.vehicle)
        slots = self.config["slots"] or SLOTS
        for slot, vtype in enumerate(self.composition):
            cls = VEHICLE_CLASSES[vtype]
            lane_index, longitudinal = slots[vtype][slot]
            v = cls.make_on_lane(self.road, tuple(lane_index), longitudinal=longitudinal + 2.0 * self.np_random.normal(),
                                 speed=self.np_random.uniform(*cls.DEFAULT_INITIAL_SPEEDS))
            v.plan_route_to(self.np_random.choice(DESTINATIONS))
            v.randomize_behavior()
            self.road.vehicles.append(v)

    def _info(self, obs, action=None) -> dict:
        info = super()._info(obs, action)
        info["composition"] = list(self.composition)
        info["is_success"] = bool(not self.vehicle.crashed and self._is_truncated())
        return info


def condition_vector(obs: np.ndarray, vehicles_count: int = 5) -> np.ndarray:
    """The planner's condition, read from observations (..., V * F): one-hot (car, bicycle, not visible) of the
    V - 1 other vehicles' type feature -> (..., (V - 1) * 3)."""
    obs = np.asarray(obs)
    types = obs.reshape(*obs.shape[:-1], vehicles_count, len(FEATURES))[..., 1:, FEATURES.index("type")]
    onehot = np.stack([types == TYPE_CODES["car"], types == TYPE_CODES["bicycle"], types == 0.0], axis=-1)
    return onehot.astype(np.float32).reshape(*obs.shape[:-1], -1)


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="envs.roundabout:RoundaboutOOCEnv")


def make_registered_env(name: str, split: str | None = None, seed: int | None = None,
                        max_episode_steps: int | None = None, **kwargs) -> gym.Env:
    """``make_env("roundabout-ooc")``: training traffic of the OOC split; ``roundabout-ooc-test``: its mixtures;
    ``roundabout-id[-test]``: the in-distribution counterpart. ``split``: a saved OOCSplit JSON replacing the
    built-in one; ``kwargs``: highway-env config entries (e.g. ``numpy_observation``, ``duration``)."""
    from envs.registry import UnknownEnvError

    if name not in ENV_NAMES:
        raise UnknownEnvError(f"env.id: unknown roundabout {name!r}; valid: {', '.join(ENV_NAMES)}")
    unknown = sorted(set(kwargs) - set(RoundaboutOOCEnv.default_config()))
    if unknown:
        raise UnknownEnvError(f"env.kwargs: {name} has no config entries {unknown}; see RoundaboutOOCEnv.default_config()")
    if split is not None and not Path(split).is_file():
        raise UnknownEnvError(f"env.split: {split!r} is no split file; the built-in split is chosen by env.id "
                              f"({', '.join(ENV_NAMES)})")
    split_name, _, part = name.removeprefix("roundabout-").partition("-")
    split_obj = OOCSplit.load(split) if split is not None else roundabout_split(split_name)
    register()
    extra = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
    return gym.make(ENV_ID, config=kwargs, split=split_obj, part=part or "train", **extra)
