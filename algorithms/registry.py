"""Every trainable method by name, and the pydantic union the run config embeds (discriminated on ``name``)."""
from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from algorithms.bc import BC, BCConfig
from algorithms.inverse_dynamics import InverseDynamics, InverseDynamicsConfig
from algorithms.planner import Planner, PlannerConfig
from algorithms.planner_student import PlannerCTD, PlannerCTDConfig
from algorithms.reward_model import RewardModel, RewardModelConfig
from algorithms.state_diffusion import MazeReward, MazeRewardConfig, StateCTMStudent, StateCTMStudentConfig, StateDDPM, \
    StateDDPMConfig, StateEDMTeacher, StateEDMTeacherConfig
from algorithms.student import CTMStudent, CTMStudentConfig
from algorithms.teacher import DDPM, DDPMConfig, EDMTeacher, EDMTeacherConfig

METHODS = {
    "bc": (BCConfig, BC),
    "edm_teacher": (EDMTeacherConfig, EDMTeacher),
    "ddpm": (DDPMConfig, DDPM),
    "reward_model": (RewardModelConfig, RewardModel),
    "ctm_student": (CTMStudentConfig, CTMStudent),
    "planner": (PlannerConfig, Planner),
    "planner_ctd": (PlannerCTDConfig, PlannerCTD),
    "inverse_dynamics": (InverseDynamicsConfig, InverseDynamics),
    # Maze2D chapter 3: the same methods over state plans (open loop), and the sparse goal reward model
    "state_edm_teacher": (StateEDMTeacherConfig, StateEDMTeacher),
    "state_ddpm": (StateDDPMConfig, StateDDPM),
    "state_ctm_student": (StateCTMStudentConfig, StateCTMStudent),
    "maze_reward": (MazeRewardConfig, MazeReward),
}

PLANNER_METHODS = ("planner", "planner_ctd")
"""Methods that plan state-action trajectories from an observation-read condition (random-condition checks, Fig. 2.11)."""

MethodConfig = Annotated[Union[BCConfig, EDMTeacherConfig, DDPMConfig, RewardModelConfig, CTMStudentConfig,
                               PlannerConfig, PlannerCTDConfig, InverseDynamicsConfig, StateEDMTeacherConfig, StateDDPMConfig,
                               StateCTMStudentConfig, MazeRewardConfig],
                         Field(discriminator="name")]


def make_method(cfg: MethodConfig):
    """Config -> method object (build_model / loss / make_policy / check_frozen / needs)."""
    return METHODS[cfg.name][1](cfg)
