"""Team generation and OOC splits for SMACv2-style Protoss battles (thesis §2.6.3, Appendix A.4.9).

A team is a sorted tuple of unit-type names, one per unit (order within a team does not matter; the
env places units in this order). Enemies mirror the allies, as in SMACv2's ``weighted_teams``.

- ``WeightedTeams``: each unit drawn independently, Stalker / Zealot / Colossus with 0.45 / 0.45 / 0.1;
  a team made only of exception types (all Colossus) is redrawn.
- ``FixedTeams``: a fixed list of compositions with optional weights.
- ``smax_split(n, "simple" | "hard", ood=True)``: simple trains on mixed (ABC) teams and tests on
  single-type (AAA) teams; hard is the reverse; ``ood=False`` gives the in-distribution counterpart.
  The thesis' "random ABC" training teams include AAA teams now and then (overlapping support); an
  OOCSplit must be disjoint, so here the simple split's training teams are the mixed ones only.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations_with_replacement
from math import factorial, prod
from typing import Literal, Sequence

import numpy as np

from envs.splits import OOCSplit

STALKER, ZEALOT, COLOSSUS = "stalker", "zealot", "colossus"
PROTOSS = (STALKER, ZEALOT, COLOSSUS)
WEIGHTS = (0.45, 0.45, 0.1)
EXCEPTIONS = (COLOSSUS,)
TEAM_SIZES = (2, 3, 5)
SPLIT_KINDS = ("simple", "hard")

Team = tuple[str, ...]


@dataclass(frozen=True)
class WeightedTeams:
    """SMACv2's ``weighted_teams``: units i.i.d. from ``weights``; all-exception teams are redrawn."""

    n_units: int
    unit_types: tuple[str, ...] = PROTOSS
    weights: tuple[float, ...] = WEIGHTS
    exception_unit_types: tuple[str, ...] = EXCEPTIONS

    def sample(self, rng: np.random.Generator) -> Team:
        p = np.asarray(self.weights, dtype=float) / sum(self.weights)
        while True:
            team = tuple(self.unit_types[i] for i in rng.choice(len(self.unit_types), size=self.n_units, p=p))
            if set(team) - set(self.exception_unit_types):
                return tuple(sorted(team))

    def probability(self, team: Sequence[str]) -> float:
        """Probability of the composition (as a multiset) under this generator, redraws included."""
        def raw(t: Sequence[str]) -> float:
            counts = Counter(t)
            w = dict(zip(self.unit_types, np.asarray(self.weights) / sum(self.weights)))
            return factorial(len(t)) / prod(factorial(k) for k in counts.values()) * prod(w[u] ** k for u, k in counts.items())

        rejected = sum(raw(t) for t in combinations_with_replacement(self.exception_unit_types, self.n_units))
        return 0.0 if not set(team) - set(self.exception_unit_types) else raw(team) / (1.0 - rejected)

    def support(self) -> tuple[Team, ...]:
        """Every composition this generator can return, sorted."""
        return tuple(tuple(sorted(t)) for t in combinations_with_replacement(sorted(self.unit_types), self.n_units)
                     if set(t) - set(self.exception_unit_types))


@dataclass(frozen=True)
class FixedTeams:
    """A fixed list of compositions, drawn with ``weights`` (uniform when omitted)."""

    compositions: tuple[Team, ...]
    weights: tuple[float, ...] | None = None

    def __post_init__(self):
        if not self.compositions:
            raise ValueError("FixedTeams: give at least one composition")
        if len({len(c) for c in self.compositions}) != 1:
            raise ValueError(f"FixedTeams: compositions differ in size: {self.compositions}")
        if self.weights is not None and len(self.weights) != len(self.compositions):
            raise ValueError(f"FixedTeams: {len(self.weights)} weights for {len(self.compositions)} compositions")

    @property
    def n_units(self) -> int:
        return len(self.compositions[0])

    def sample(self, rng: np.random.Generator) -> Team:
        p = None if self.weights is None else np.asarray(self.weights, dtype=float) / sum(self.weights)
        return tuple(self.compositions[int(rng.choice(len(self.compositions), p=p))])


def single_type_teams(n_units: int) -> tuple[Team, ...]:
    """AAA teams: every non-exception type alone (all-Colossus teams are never drawn)."""
    return tuple((t,) * n_units for t in PROTOSS if t not in EXCEPTIONS)


def mixed_teams(n_units: int) -> tuple[Team, ...]:
    """ABC teams: compositions of the weighted generator with at least two unit types."""
    return tuple(t for t in WeightedTeams(n_units).support() if len(set(t)) > 1)


def smax_split(n_units: int, kind: Literal["simple", "hard"] = "simple", ood: bool = True) -> OOCSplit:
    """The SMACv2 OOC split for ``n_units``v``n_units``; ``ood=False``: its in-distribution counterpart."""
    if kind not in SPLIT_KINDS:
        raise ValueError(f"smax: unknown split kind {kind!r}; valid: {', '.join(SPLIT_KINDS)}")
    if n_units < 2:
        raise ValueError(f"smax: a split needs teams of at least 2 units, got {n_units}")
    abc, aaa = mixed_teams(n_units), single_type_teams(n_units)
    train, test = (abc, aaa) if kind == "simple" else (aaa, abc)
    if not ood:
        test = train
    gen = WeightedTeams(n_units)
    name = f"smax-{n_units}v{n_units}-{kind}" + ("" if ood else "-id")
    return OOCSplit(name=name, elements=PROTOSS, train=train, test=test,
                    train_weights=tuple(gen.probability(t) for t in train), kind="ooc" if ood else "id")


def split_teams(split: OOCSplit, part: Literal["train", "test"] = "train") -> FixedTeams:
    """A team generator over one part of a split: weighted_teams' probabilities restricted to that part."""
    combos = tuple(tuple(sorted(c)) for c in split.combinations(part))
    if part == "train" and split.train_weights is not None:
        return FixedTeams(combos, split.train_weights)
    gen = WeightedTeams(len(combos[0]))
    weights = tuple(gen.probability(c) for c in combos)
    return FixedTeams(combos, weights if all(w > 0 for w in weights) else None)


def all_splits() -> dict[str, OOCSplit]:
    """Every built-in split by name: 2v2 / 3v3 / 5v5 x simple / hard x OOC / ID."""
    out = {}
    for n in TEAM_SIZES:
        for kind in SPLIT_KINDS:
            for ood in (True, False):
                s = smax_split(n, kind, ood)
                out[s.name] = s
    return out
