"""The Roundabout OOC splits (thesis §2.6.2, Appendix A.4.8): which traffic compositions are trained and tested.

A composition names the type of each of the 4 other vehicles, slot by slot (the ego is always a car).
Training traffic is all cars or all bicycles (50/50); test traffic is every mixture with at least one
of each type, each ordered assignment equally likely (1, 2 or 3 bicycles with probability 4/14, 6/14, 4/14).
"""
from __future__ import annotations

from itertools import product

from envs.splits import OOCSplit

VEHICLE_TYPES = ("car", "bicycle")
N_OTHERS = 4  # vehicles besides the ego
SPLIT_NAMES = ("ooc", "id")


class UnknownVehicleTypeError(ValueError):
    """A composition names a vehicle type other than car or bicycle."""


def check_composition(combo) -> tuple[str, ...]:
    """``combo`` as a tuple of 4 known vehicle types, or a one-line error naming what is wrong."""
    combo = tuple(combo)
    bad = sorted({t for t in combo if t not in VEHICLE_TYPES})
    if bad:
        raise UnknownVehicleTypeError(f"roundabout: unknown vehicle type(s) {bad} in {combo}; known: {', '.join(VEHICLE_TYPES)}")
    if len(combo) != N_OTHERS:
        raise UnknownVehicleTypeError(f"roundabout: a composition names {N_OTHERS} vehicles, got {len(combo)}: {combo}")
    return combo


def check_split(split: OOCSplit) -> OOCSplit:
    """Refuse a split whose combinations are not roundabout compositions."""
    for combo in split.train + split.test:
        check_composition(combo)
    return split


def roundabout_split(name: str = "ooc") -> OOCSplit:
    """``"ooc"``: train {all cars, all bicycles}, test mixtures; ``"id"``: its in-distribution counterpart."""
    if name not in SPLIT_NAMES:
        raise ValueError(f"roundabout: unknown split {name!r}; valid: {', '.join(SPLIT_NAMES)}")
    train = tuple((t,) * N_OTHERS for t in VEHICLE_TYPES)
    mixtures = tuple(c for c in product(VEHICLE_TYPES, repeat=N_OTHERS) if len(set(c)) > 1)
    test = mixtures if name == "ooc" else train
    return OOCSplit(name=f"roundabout-{name}", elements=VEHICLE_TYPES, train=train, test=test,
                    train_weights=(0.5, 0.5), kind=name)
