"""Maze2D's ``family:`` section of an experiment config (``tune_configs/maze2d_*.yaml``)."""
from __future__ import annotations

from pydantic import Field

from rayexp.config import Section


class Maze2DSettings(Section):
    steps: int | None = Field(None, gt=0)
    """collect.source maze2d-controller: total dataset steps (None: ``rayexp.families.maze2d.data.DEFAULT_STEPS``;
    D4RL used 1M / 2M / 4M for U-Maze / Medium / Large)."""
