"""Every trainable method by name, and the pydantic union the run config embeds (discriminated on ``name``)."""
from __future__ import annotations

import importlib
from typing import Annotated, Union

from pydantic import Field

from algorithms.configs import (
    BCConfig,
    CTMStudentConfig,
    DDPMConfig,
    EDMTeacherConfig,
    InverseDynamicsConfig,
    MazeRewardConfig,
    PlannerConfig,
    PlannerCTDConfig,
    RewardModelConfig,
    StateCTMStudentConfig,
    StateDDPMConfig,
    StateEDMTeacherConfig,
)

METHODS = {  # name -> (its settings, "module:class" of the method, imported only when a method is built)
    "bc": (BCConfig, "algorithms.bc:BC"),
    "edm_teacher": (EDMTeacherConfig, "algorithms.teacher:EDMTeacher"),
    "ddpm": (DDPMConfig, "algorithms.teacher:DDPM"),
    "reward_model": (RewardModelConfig, "algorithms.reward_model:RewardModel"),
    "ctm_student": (CTMStudentConfig, "algorithms.student:CTMStudent"),
    "planner": (PlannerConfig, "algorithms.planner:Planner"),
    "planner_ctd": (PlannerCTDConfig, "algorithms.planner_student:PlannerCTD"),
    "inverse_dynamics": (InverseDynamicsConfig, "algorithms.inverse_dynamics:InverseDynamics"),
    # Maze2D chapter 3: the same methods over state plans (open loop), and the sparse goal reward model
    "state_edm_teacher": (StateEDMTeacherConfig, "algorithms.state_diffusion:StateEDMTeacher"),
    "state_ddpm": (StateDDPMConfig, "algorithms.state_diffusion:StateDDPM"),
    "state_ctm_student": (StateCTMStudentConfig, "algorithms.state_diffusion:StateCTMStudent"),
    "maze_reward": (MazeRewardConfig, "algorithms.state_diffusion:MazeReward"),
}

PLANNER_METHODS = ("planner", "planner_ctd")
"""Methods that plan state-action trajectories from an observation-read condition (random-condition checks, Fig. 2.11)."""
SCORING_METHODS = ("reward_model", "maze_reward")
"""Methods that score actions for others (frozen in a student) and do not act: never evaluated as policies."""

MethodConfig = Annotated[Union[BCConfig, EDMTeacherConfig, DDPMConfig, RewardModelConfig, CTMStudentConfig,
                               PlannerConfig, PlannerCTDConfig, InverseDynamicsConfig, StateEDMTeacherConfig, StateDDPMConfig,
                               StateCTMStudentConfig, MazeRewardConfig],
                         Field(discriminator="name")]


def method_class(name: str) -> type:
    module, cls = METHODS[name][1].split(":")
    return getattr(importlib.import_module(module), cls)


def make_method(cfg: MethodConfig):
    """Config -> method object (build_model / loss / make_policy / check_frozen / needs)."""
    return method_class(cfg.name)(cfg)
