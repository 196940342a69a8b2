"""Out-of-combination (OOC) splits: which element combinations are trained on and which are tested.

A split is data, not code: a name, the base elements, and two disjoint lists of combinations, saved
as JSON with every run. Environments draw an episode's combination with ``sample_combination``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

Combination = tuple[str, ...]


class OOCSplit(BaseModel):
    """Train and test element combinations for one environment family (checked disjoint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    elements: tuple[str, ...]
    train: tuple[Combination, ...]
    test: tuple[Combination, ...]
    train_weights: tuple[float, ...] | None = None
    """Sampling weights of the training combinations (uniform when omitted)."""
    kind: Literal["ooc", "id"] = "ooc"
    """'ooc' splits must be disjoint; 'id' is the in-distribution counterpart (test on train combinations)."""
    version: int = 1

    @model_validator(mode="after")
    def _check(self) -> "OOCSplit":
        known = set(self.elements)
        for part in ("train", "test"):
            for combo in getattr(self, part):
                bad = [e for e in combo if e not in known]
                if bad:
                    raise ValueError(f"split {self.name!r}: {part} combination {combo} uses unknown element(s) {bad}; known: {sorted(known)}")
        if not self.train:
            raise ValueError(f"split {self.name!r}: train is empty; give at least one combination")
        overlap = {canonical(c) for c in self.train} & {canonical(c) for c in self.test}
        if overlap and self.kind == "ooc":
            raise ValueError(f"split {self.name!r}: train and test share {sorted(overlap)}; an OOC split must be disjoint")
        if self.train_weights is not None and len(self.train_weights) != len(self.train):
            raise ValueError(f"split {self.name!r}: train_weights has {len(self.train_weights)} entries for {len(self.train)} train combinations")
        return self

    def combinations(self, part: Literal["train", "test"]) -> tuple[Combination, ...]:
        return self.train if part == "train" else self.test

    def sample_combination(self, part: Literal["train", "test"], rng: np.random.Generator) -> Combination:
        combos = self.combinations(part)
        if not combos:
            raise ValueError(f"split {self.name!r} has no {part} combinations")
        p = None
        if part == "train" and self.train_weights is not None:
            p = np.asarray(self.train_weights, dtype=float) / sum(self.train_weights)
        return combos[int(rng.choice(len(combos), p=p))]

    def is_disjoint(self) -> bool:
        return not ({canonical(c) for c in self.train} & {canonical(c) for c in self.test})

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "OOCSplit":
        try:
            return cls.model_validate(json.loads(Path(path).read_text()))
        except ValidationError as e:  # one line: the first problem, e.g. the overlapping combinations
            err = e.errors()[0]
            raise ValueError(f"split file {path}: {err['msg'].removeprefix('Value error, ')}") from None
        except (OSError, ValueError) as e:
            raise ValueError(f"split file {path}: {e}") from None


def canonical(combo: Sequence[str]) -> Combination:
    """Order does not matter within a combination: (car, bicycle) == (bicycle, car)."""
    return tuple(sorted(combo))
