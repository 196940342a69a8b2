"""Typed, validated experiment configs: YAML in, pydantic objects inside.

Every section forbids unknown keys, so a typo fails before any work starts, with one line that
names the key. ``load_config(path, overrides)`` applies ``key.sub=value`` overrides (values parsed
as YAML) before validation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_serializer,
    field_validator,
    model_validator,
)

from algorithms.registry import SCORING_METHODS, MethodConfig
from rayexp.errors import ConfigError, first_error
from rayexp.yaml_file import read_mapping


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EnvConfig(Section):
    id: str = "InvertedPendulum-v5"
    """A gymnasium id or a rayexp env name (see ``rayexp.envs``)."""
    max_episode_steps: int | None = Field(None, gt=0)
    kwargs: dict[str, Any] = {}
    split: str | None = None
    """OOC split name for envs that have element combinations."""
    family: str | None = None
    """A user's environment family as ``package.module:FAMILY`` (a ``rayexp.families.Family``); None: the family
    registered for the env id's prefix, else the core's gymnasium path."""


class ExpertConfig(Section):
    """The RLlib PPO expert that generates the data."""

    iterations: int = Field(15, gt=0)
    train_batch_size: int = Field(4000, gt=0)
    minibatch_size: int = Field(256, gt=0)
    num_epochs: int = Field(10, gt=0)
    lr: float = Field(3e-4, gt=0)
    gamma: float = Field(0.99, gt=0, le=1)
    hidden: list[int] = [64, 64]
    num_env_runners: int = Field(2, ge=0)
    target_return: float | None = None
    """Stop early once the mean training return reaches this."""


CORE_SOURCES = ("rllib-ppo", "pendulum-two-mode")


class CollectConfig(Section):
    source: str = "rllib-ppo"
    """Who generates the data: an RLlib PPO expert, (env.id maze2d-*) the D4RL-style PD waypoint controller, or
    (InvertedPendulum-v5) two scripted controllers, one rewarded (``envs.pendulum_modes``)."""
    episodes: int = Field(40, gt=0)
    """rllib-ppo: episodes to record; maze2d-controller: episodes per reference score (random / controller)."""
    num_env_runners: int = Field(2, ge=1)
    """Parallel rollout workers (maze2d-controller: Ray tasks, one data chunk each)."""
    only_success: bool = False
    """Keep only successful episodes (where the env defines success)."""
    bad_fraction: float = Field(0.95, ge=0, le=1)
    """pendulum-two-mode: share of episodes from the bad mode (0.95: the modes make about as many steps each near
    the upright start, since bad episodes last ~4 steps and good ones the whole cap)."""
    snapshots: list[float] = [1.0]
    """Fractions of expert training at which to record (e.g. [0.3, 1.0] for a mixed-quality dataset)."""
    explore: bool = True
    """Sample from the policy's action distribution (True) or take its mean action."""
    experts: dict[str, dict[str, Any]] = {}
    """One PPO expert per entry, trained and recorded on ``env.kwargs`` updated with the entry, e.g. the roundabout's
    {cars: {composition: [car, car, car, car]}, bicycles: {composition: [bicycle, ...]}} (thesis: one expert per
    training composition); each records ``episodes / len(experts)`` episodes into RUN/expert/<name>/. Empty: one
    expert on env.id as configured."""

    @field_validator("experts")
    @classmethod
    def _expert_names(cls, v: dict) -> dict:
        bad = [k for k in v if not k or "/" in k or k.startswith(".")]
        if bad:
            raise ValueError(f"expert names must be plain folder names, not {bad}")
        return v


class DataConfig(Section):
    path: str | None = None
    """Dataset folder or ``minari:ID``; default ``<run>/data``."""
    obs_history: int = Field(1, gt=0)
    action_horizon: int = Field(16, gt=0)
    gamma: float = Field(0.99, gt=0, le=1)
    termination_penalty: float = -100.0


class TrainConfig(Section):
    steps: int = Field(2000, gt=0)
    batch_size: int = Field(256, gt=0)
    lr: float = Field(3e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(10.0, gt=0)
    ema_decay: float = Field(0.995, ge=0, lt=1)
    checkpoint_every: int = Field(500, gt=0)
    log_every: int = Field(50, gt=0)
    num_workers: int = Field(1, gt=0)
    """Ray Train workers; more than one trains with DDP, each worker on its own batch_size windows per step."""
    use_gpu: bool = False
    """One GPU per worker (refused where the cluster has none); the worker trains on ray.train.torch.get_device()."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16: the loss forward under torch.autocast(bfloat16); weights, gradients and optimizer stay fp32."""
    compile: bool = False
    """torch.compile the training step's network call (the method's loss module); the first steps compile."""
    seed: int | None = None
    """Initialisation and batch-sampling seed; None: the experiment's ``seed``."""


StageTrain = create_model(
    "StageTrain", __base__=Section, __doc__="A stage's overrides of the top-level ``train`` section (the keys it sets).",
    **{name: (field.annotation | None, None) for name, field in TrainConfig.model_fields.items()})


class ModelStage(Section):
    """One trained network: the method and its training budget (overrides of the top-level ``train``)."""

    method: MethodConfig
    train: StageTrain = StageTrain()
    frozen: dict[str, str] = {}
    """Which stage plays each frozen role the method needs, e.g. {teacher: teacher_rw}; default: the stage named like the role."""

    @field_serializer("train")
    def _only_overrides(self, train: BaseModel) -> dict[str, Any]:
        return train.model_dump(mode="json", exclude_unset=True)

    @model_validator(mode="after")
    def _method_values(self) -> "ModelStage":
        """Checks the method configs leave to the builder: a negative reward weight (it would train as 0, silently)
        and U-Net sizes that fail to build (a long worker traceback, twice, otherwise)."""
        from algorithms.configs import unet_size_problem

        m = self.method
        if getattr(m, "reward_weight", 0.0) < 0:
            raise ValueError(f"method.reward_weight: {m.reward_weight} is negative; use 0 (no reward term) or a positive weight")
        for where, net in (("method.unet", getattr(m, "unet", None)), ("method", m)):
            if hasattr(net, "down_dims") and hasattr(net, "kernel_size"):
                problem = unet_size_problem(list(net.down_dims), net.kernel_size, getattr(net, "n_groups", 8))
                if problem:
                    raise ValueError(f"{where}: {problem}")
        return self


class EvalConfig(Section):
    episodes: int = Field(10, gt=0)
    num_actors: int = Field(2, gt=0)
    gpus_per_actor: float = Field(0.0, ge=0, le=1)
    """GPU share per evaluation actor (e.g. 0.25: four actors per GPU); > 0 runs each actor's policies on its GPU."""
    seed: int = 1000
    execute: Literal["first", "chunk"] = "chunk"
    """Execute the first predicted action then replan, or the whole action chunk."""
    chunk: int | None = Field(None, gt=0)
    """Actions executed per plan when execute='chunk' (default: the whole chunk)."""
    models: list[str] = []
    """Stage names to evaluate (default: every stage)."""
    seeds: int = Field(1, gt=0)
    """Evaluation seeds: seed k plays its ``episodes`` on env seeds ``seed + 100000 k + i`` (``rayexp.engine``);
    summaries give mean ± s.e. over seeds when there are several (``rayexp.rows``)."""


class OfflineRLStage(Section):
    """An RLlib offline baseline trained on the run's dataset (``rayexp.rllib.offline``; discrete CQL via
    ``rayexp.rllib.cql_discrete``). Trained by ``rayexp train`` after the model stages, into RUN/offline_rl/<name>/."""

    algo: Literal["cql", "iql"] = "cql"
    iterations: int = Field(20, gt=0)
    updates: int = Field(100, gt=0)
    """Gradient updates per iteration."""
    batch_size: int = Field(256, gt=0)
    hidden: list[int] = [256, 256]
    lr: float = Field(3e-4, gt=0)
    gamma: float = Field(0.99, gt=0, le=1)


class RayConfig(Section):
    address: str | None = None
    """None starts a local Ray on this machine; 'auto' or 'ray://host:port' joins a cluster."""
    num_cpus: int | None = Field(None, gt=0)
    dashboard: bool = False
    """The dashboard binds to 127.0.0.1 when enabled."""


class TrackingConfig(Section):
    """Experiment tracking through Ray's MLflow / TensorBoard / W&B integrations (none by default): every training
    stage, the evaluation results and sweeps, with the resolved config as parameters and the commit and dataset
    provenance as tags (docs/tracking.md). Needs the ``tracking`` extra (``pip install -e '.[tracking]'``)."""

    backends: list[Literal["mlflow", "tensorboard", "wandb"]] = []
    """e.g. ``tracking.backends=[mlflow]``; TensorBoard event files go to RUN/tensorboard/<stage>/."""
    mlflow_uri: str | None = None
    """An MLflow tracking URI (``http://host:5000``, ``sqlite:///path.db``, ``file:/path``); default: a local file
    store in RUN/mlruns (``mlflow ui --backend-store-uri RUN/mlruns``)."""
    experiment: str | None = None
    """MLflow experiment and W&B project name; default: the experiment's ``name``."""
    wandb_mode: Literal["offline", "online"] = "offline"
    """W&B offline mode needs no network or account; runs go to RUN/wandb/ (``wandb sync`` uploads them later)."""

    @field_validator("backends")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"names a backend twice: {v}")
        return v


class ExperimentConfig(Section):
    name: str = "experiment"
    seed: int = 0
    seeds: list[int] = []
    """Run train + evaluate once per seed (``seeds: [0, 1, 2]``) into RUN/seed_<k>/, in parallel where Ray has the
    CPUs, all on the run's one dataset (collected with ``seed``); ``rayexp report RUN`` then gives intervals over seeds.
    Seed k sets ``seed`` and ``train.seed``; evaluation episodes keep ``evaluate.seed`` (the same episodes per seed)."""
    env: EnvConfig = EnvConfig()
    expert: ExpertConfig = ExpertConfig()
    collect: CollectConfig = CollectConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    models: dict[str, ModelStage] = {}
    offline_rl: dict[str, OfflineRLStage] = {}
    """RLlib offline baselines (e.g. {cql: {algo: cql}}), named apart from ``models``."""
    evaluate: EvalConfig = EvalConfig()
    ray: RayConfig = RayConfig()
    tracking: TrackingConfig = TrackingConfig()
    family: Any = None
    """The env family's own section, typed by its ``Family.settings`` (e.g. SMAX's MAPPO and teams); None for a
    family that takes none."""

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"lists a seed twice: {v}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v or "/" in v or v.startswith("."):
            raise ValueError("must be a plain folder name (no '/', not starting with '.')")
        return v

    @model_validator(mode="after")
    def _family(self) -> "ExperimentConfig":
        from rayexp.families import check_family_section

        check_family_section(self, CORE_SOURCES)
        return self

    @model_validator(mode="after")
    def _stages(self) -> "ExperimentConfig":
        for stage, st in self.models.items():
            self.stage_train(stage)
            unknown = [s for s in st.frozen.values() if s not in self.models]
            if unknown:
                raise ValueError(f"models.{stage}.frozen names unknown stage(s) {unknown}; defined: {sorted(self.models)}")
        both = sorted(set(self.models) & set(self.offline_rl))
        if both:
            raise ValueError(f"offline_rl names {both} are also in models; give each stage its own name")
        missing = [m for m in self.evaluate.models if m not in self.models and m not in self.offline_rl]
        if missing:
            raise ValueError(f"evaluate.models names unknown model(s) {missing}; defined: {sorted(self.models) + sorted(self.offline_rl)}")
        return self

    def evaluation_stages(self) -> list[str]:
        """``evaluate.models``, or every stage that acts (a reward model only scores, so it is left out) and every
        ``offline_rl`` baseline."""
        acting = [m for m, st in self.models.items() if st.method.name not in SCORING_METHODS]
        return list(self.evaluate.models) or acting + list(self.offline_rl)

    def stage_train(self, stage: str) -> TrainConfig:
        """The top-level ``train`` section with the stage's own overrides applied."""
        try:
            tc = TrainConfig(**{**self.train.model_dump(), **self.models[stage].train.model_dump(exclude_unset=True)})
            return tc if tc.seed is not None else tc.model_copy(update={"seed": self.seed})
        except ValidationError as e:
            raise ValueError(f"models.{stage}.train: {first_error(e)}") from None


MOVED_KEYS = {
    "collect.steps": "family.steps (Maze2D's section)",
    "evaluate.experts": "family.experts (the roundabout's section)",
    "evaluate.random_condition": "family.random_condition (the roundabout's section)",
}
"""Keys that moved from a core section into a family's ``family:`` section."""


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names allowed at ``loc`` (for the 'unknown key' message)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return sorted(model.model_fields)


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        child = node.setdefault(k, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted}: '{k}' is not a section")
        node = child
    node[keys[-1]] = value


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not p for p in key.split(".")):
            raise ConfigError(f"override {item!r} is not key=value (e.g. train.steps=100)")
        try:
            parsed.append((key, yaml.safe_load(raw) if raw else ""))
        except yaml.YAMLError:
            parsed.append((key, raw))
    return parsed


def validate(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        msg = first_error(e)
        loc = err["loc"]
        if err["type"] == "missing" and len(loc) == 3 and loc[0] == "models" and loc[2] == "method":
            defined = sorted(k for k, v in (data.get("models") or {}).items() if isinstance(v, dict) and "method" in v)
            msg = (f"models.{loc[1]}: unknown stage {loc[1]!r} (it has no method); defined: {', '.join(defined) or 'none'}"
                   f" (a new stage needs models.{loc[1]}.method.name=...)")
        elif err["type"] == "extra_forbidden" and ".".join(map(str, loc)) in MOVED_KEYS:
            key = ".".join(map(str, loc))
            msg = f"{key} moved to {MOVED_KEYS[key]}; rename the key"
        elif err["type"] == "extra_forbidden":
            allowed = _allowed_keys(ExperimentConfig, err["loc"])
            if allowed:
                msg += f" (allowed: {', '.join(allowed)})"
        raise ConfigError(f"{source}: {msg}") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, base: dict | None = None) -> ExperimentConfig:
    """Read YAML (or start from ``base``), apply ``key=value`` overrides, validate."""
    data: dict[str, Any] = dict(base or {})
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        data.update(read_mapping(path))
    for key, value in parse_overrides(overrides or []):
        set_path(data, key, value)
    return validate(data, source)


def resolve_paths(cfg: ExperimentConfig) -> ExperimentConfig:
    """Make ``data.path`` and a split file in ``env.split`` absolute (from the driver's working directory, as the user
    meant them): Ray workers run in another directory. A split file is also read and checked here, once."""
    if cfg.data.path and not cfg.data.path.startswith("minari:"):
        cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
    if cfg.env.split and Path(cfg.env.split).expanduser().is_file():
        from envs.splits import OOCSplit

        cfg.env.split = str(Path(cfg.env.split).expanduser().resolve())
        try:
            OOCSplit.load(cfg.env.split)
        except ValueError as e:
            raise ConfigError(f"env.split: {str(e).splitlines()[0]}") from None
    return cfg


def dump_config(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
