"""MAPPO's settings (the ``mappo:`` section of a SMAX config), apart from RLlib so a config validates without it."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class MAPPOSettings(BaseModel):
    """Table A.7 defaults (SMACv2's MAPPO); sizes for 2 CPU cores."""

    model_config = ConfigDict(extra="forbid")
    critic: Literal["central", "local"] = "central"
    """central: the critic reads the global state (MAPPO); local: the agent's own observation (IPPO)."""
    actor_lr: float = Field(5e-4, gt=0)
    critic_lr: float = Field(1e-3, gt=0)
    lr_decay: bool = True
    """Linear decay of both learning rates to zero over ``total_env_steps``."""
    total_env_steps: int = Field(200_000, gt=0)
    """Training budget in env steps (one step moves every agent)."""
    num_epochs: int = Field(5, gt=0)
    train_batch_size: int = Field(1600, gt=0)
    """Env steps per iteration (each one gives n_agents samples)."""
    minibatch_size: int = Field(1600, gt=0)
    """Agent steps per SGD minibatch."""
    gamma: float = Field(0.99, gt=0, le=1)
    lambda_: float = Field(0.95, ge=0, le=1)
    clip_param: float = Field(0.2, gt=0)
    entropy_coeff: float = Field(0.01, ge=0)
    grad_clip: float = Field(10.0, gt=0)
    hidden: list[int] = [64, 64]
    critic_hidden: list[int] = [64, 64]
    num_env_runners: int = Field(1, ge=0)
    num_envs_per_env_runner: int = Field(1, gt=0)
    """Games per env runner."""
    batched_envs: bool = True
    """Step all games of an env runner in one compiled call (``envs.smax_rllib.SMAXEnvRunner``); False: RLlib's
    Python loop over one compiled env per game."""
    checkpoint_every: int = Field(5, gt=0)
    """Iterations between checkpoints."""
