"""Every method's settings (the ``method:`` section of a model stage) as pydantic models, apart from the models: a
config validates without importing torch. ``algorithms.registry`` pairs each with its method."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CondMode = Literal["cross_attention", "concat", "none"]
"""How a chapter-2 condition enters the U-Net."""


def unet_size_problem(down_dims: list[int], kernel_size: int, n_groups: int = 8) -> str | None:
    """Why these sizes cannot build a ``ConditionalUnet1D`` (None when they can): every width must split into
    ``min(n_groups, width)`` group-norm groups, and an odd kernel keeps the horizon (padding kernel // 2)."""
    if not down_dims or any(d <= 0 for d in down_dims):
        return f"down_dims {down_dims} must be a non-empty list of positive widths"
    bad = [d for d in down_dims if d % min(n_groups, d)]
    if bad:
        return f"down_dims {bad} not divisible by the {n_groups} group-norm groups (n_groups); use multiples of {n_groups}"
    if kernel_size <= 0 or kernel_size % 2 == 0:
        return f"kernel_size {kernel_size} must be odd and positive (it pads kernel_size // 2 to keep the horizon)"
    return None


class UnetConfig(BaseModel):
    """Backbone sizes (small CPU defaults; thesis MuJoCo: 128 / [512, 1024, 2048] / 5)."""

    model_config = ConfigDict(extra="forbid")
    step_embed_dim: int = 64
    """Width of the sinusoidal diffusion-time embedding."""
    down_dims: list[int] = [32, 64, 128]
    """Channels per U-Net level; the horizon is padded to a multiple of 2**(len-1)."""
    kernel_size: int = 5
    n_groups: int = 8
    cond_mode: CondMode = "none"
    """Chapter 2 condition input (uses batch["cond"]): cross_attention, concat or none."""
    cond_embed_dim: int = 32


class BCConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["bc"] = "bc"
    hidden: list[int] = [256, 256]
    """Hidden layer widths of the MLP."""


class InverseDynamicsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["inverse_dynamics"] = "inverse_dynamics"
    hidden: list[int] = [256, 256]
    """Hidden layer widths of the MLP."""
    clip_actions: bool = True
    """Clip predicted actions to the dataset's [act_min, act_max] when the stats carry them."""


class EDMTeacherConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["edm_teacher"] = "edm_teacher"
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    bins: int = 80
    """Karras discretisation bins used by the Heun sampler (and for training sigmas when train_sigma='bins')."""
    rho: float = 7.0
    train_sigma: Literal["lognormal", "bins"] = "lognormal"
    """Training noise levels: EDM log-normal(-1.2, 1.2) or uniform over the Karras bins."""
    huber_c: float | None = None
    """Pseudo-Huber c; None = 0.00054 * sqrt(c * act_dim)."""
    reward_weight: float = 0.0
    """Reward-aware teacher ablation (Table 3.4): adds w * -R(s_n, first action of D(x_t, sigma)); needs 'reward'."""
    unet: UnetConfig = UnetConfig()


class DDPMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["ddpm"] = "ddpm"
    train_steps: int = 100
    beta_schedule: Literal["cosine", "linear"] = "cosine"
    sampler: Literal["ddpm", "ddim"] = "ddpm"
    """Policy sampler: ancestral DDPM or deterministic DDIM."""
    sample_steps: int = 100
    """NFE of the policy: DDPM(n) strided ancestral or DDIM(k)."""
    clip_x0: float | None = None
    """Clamp the predicted normalised x0 at every step (None = no clipping)."""
    unet: UnetConfig = UnetConfig()


class CTMStudentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["ctm_student"] = "ctm_student"
    alpha: float = 1.0
    """Weight of L_CTM."""
    beta: float = 1.0
    """Weight of L_DSM."""
    reward_weight: float = 0.0
    """The thesis's sigma: weight of L_Reward = -R(s_n, a_hat_n); 0 = plain CTD (no reward model needed)."""
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    bins: int = 80
    """CTM discretisation: Karras grid of `bins` sigmas plus 0; t, u, k are drawn from it."""
    rho: float = 7.0
    solver_steps_max: int = 4
    """Teacher Heun steps between t and u: u is 1..solver_steps_max bins below t (CTM's ode_steps_max)."""
    huber_c: float | None = None
    """Pseudo-Huber c; None = 0.00054 * sqrt(c * act_dim)."""
    sample_steps: int = 1
    """Policy NFE: 1 = one jump T -> 0; n > 1 re-noises n - 1 times (Table 3.5)."""
    execute: Literal["first", "chunk"] = "first"
    """Execute the first action and replan, or the whole chunk (used by the rollout loop, not here)."""
    unet: UnetConfig = UnetConfig()
    """Must equal the teacher's for a warm start."""


class RewardModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["reward_model"] = "reward_model"
    hidden: list[int] = [32, 64, 128, 256]
    """Hidden layer widths (Mish), thesis Table B.3."""
    off_data_weight: float = Field(0.5, ge=0)
    """Pessimism off the data (not in the thesis; 0 = its plain regression): actions drawn uniformly over the data's
    action range are also regressed, with this weight, onto the batch's worst return-to-go. A plain regressor
    extrapolates between the actions the data took at a state, and a student maximising it leaves the data for
    that made-up optimum; a pessimistic R peaks on the data, so the student picks among the data's modes."""


class PlannerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["planner"] = "planner"
    condition: str = "waypoints"
    """"waypoints" (Maze2D) or a condition read from the observation, named in ``envs.conditions.CONDITIONS``."""
    horizon: int = 128
    """H: 128 / 256 / 384 for U-Maze / Medium / Large (thesis)."""
    n_diffusion_steps: int = 100
    """DDPM training steps (thesis Table A.1: 256)."""
    beta_schedule: Literal["cosine", "linear"] = "cosine"
    predict_epsilon: bool = False
    """Predict the noise instead of the clean trajectory (Diffuser's maze2d predicts x0)."""
    action_weight: float = 1.0
    """Loss weight of the first action (Diffuser's convention; thesis: 1)."""
    cond_mode: CondMode = "cross_attention"
    cond_drop: float = 0.1
    """Probability of replacing the condition by the null (zero) condition during training."""
    guidance: float = Field(1.3, ge=0.0, le=10.0)
    """Classifier-free guidance weight w: D_u + w (D_c - D_u); 0 is unconditional, 1 conditional, above 1 extrapolates
    past the conditional model (a stronger pull to the condition, less diversity; thesis 1.2-1.3). Below 0 would push
    away from the condition, so it is refused; above 10 samples leave the data (refused too)."""
    pos_freqs: int = 10
    """Positional-encoding frequencies per waypoint dimension: 1 + 2 * pos_freqs numbers (21)."""
    inpaint_goal: bool = True
    """Inpaint the last state (the goal) as well as the first."""
    sample_steps: int | None = None
    """None: ancestral DDPM over all training steps; an int: deterministic DDIM with that many steps."""
    hold_out_maze: Literal["umaze", "medium", "large"] | None = None
    """Drop training windows whose start/goal pair or waypoint triple is in the test part of this maze's OOC split
    (``envs.maze2d_split.maze_splits``), so the 'unseen' panels of Fig. 2.10 really are unseen."""
    step_embed_dim: int = 64
    down_dims: list[int] = [32, 64, 128]
    kernel_size: int = 5
    cond_embed_dim: int = 64

    @field_validator("condition")
    @classmethod
    def _known_condition(cls, v: str) -> str:
        from envs.conditions import condition_names

        if v != "waypoints" and v not in condition_names():
            raise ValueError(f"unknown condition {v!r}; valid: waypoints, {', '.join(condition_names())}")
        return v


class PlannerCTDConfig(PlannerConfig):
    """The planner's fields (which must equal the teacher stage's: architecture, horizon, schedule, condition,
    inpainting, guidance) plus the CTM ones."""

    name: Literal["planner_ctd"] = "planner_ctd"
    alpha: float = 1.0
    """Weight of L_CTM."""
    beta: float = 1.0
    """Weight of L_DSM."""
    solver_steps_max: int = 4
    """Teacher Heun steps between t and u on the DDPM grid (CTM's ode_steps_max)."""
    huber_c: float | None = None
    """Pseudo-Huber c; None = 0.00054 * sqrt(H * D)."""
    sample_steps: int = 1
    """Student NFE per plan: 1 = one jump T -> 0; n > 1 re-noises n - 1 times at evenly spaced DDPM steps."""


class StateEDMTeacherConfig(EDMTeacherConfig):
    name: Literal["state_edm_teacher"] = "state_edm_teacher"
    reward_weight: float = Field(0.0, le=0.0)
    """Not supported over states (the action-chunk reward term reads a first action)."""


class StateDDPMConfig(DDPMConfig):
    name: Literal["state_ddpm"] = "state_ddpm"


class StateCTMStudentConfig(CTMStudentConfig):
    name: Literal["state_ctm_student"] = "state_ctm_student"
    """reward_weight 0: CTD; > 0: RACTD with the frozen ``maze_reward`` model (stage ``reward``)."""


class MazeRewardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["maze_reward"] = "maze_reward"
    hidden: list[int] = [32, 64, 128, 256]
    """Hidden widths (Mish), as the MuJoCo reward model (Table B.3)."""
    radius: float = 0.45
    """Goal radius of the sparse reward (envs.maze2d.GOAL_RADIUS)."""
    near: float = 0.7
    """Half-width of the box around each state where extra goals are drawn, so positives are common."""
