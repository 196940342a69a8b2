"""The stages a user runs, as plain functions the CLI (and tests) call: collect, train, evaluate."""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rayexp import console
from rayexp.config import ExperimentConfig
from rayexp.data.store import EpisodeStore
from rayexp.errors import ConfigError, RayexpError
from rayexp.families import Family, family_for, hook, load_ref
from rayexp.runs import Run, append_metrics, dataset_path

log = logging.getLogger("rayexp")


def check_stage_checkpoint(cfg, stage: str, path: str | Path) -> None:
    """Refuse a checkpoint whose method is not the one ``models.<stage>`` configures, then build its network once
    (shape or key mismatches show here, in the driver, not in an actor)."""
    from rayexp.checkpoints import checkpoint_method
    from rayexp.train import load_model

    got, want = checkpoint_method(path), cfg.models[stage].method.name
    if got != want:
        raise RayexpError(f"{path} holds a {got!r} model, but models.{stage} is a {want!r} stage; retrain it "
                          f"(`rayexp train --stage {stage} --retrain`) or put the right file there")
    load_model(path)


def check_collect(cfg: ExperimentConfig, run: Run, overwrite: bool = False) -> None:
    """Before Ray starts: ``--overwrite`` must not leave trained models behind on a dataset it replaces, and an
    interrupted collection must still be able to record every snapshot with its own policy."""
    from rayexp.collect import check_snapshots

    if overwrite:
        trained = sorted(p.stem for p in (run.path / "models").glob("*.pt")) + \
            sorted(p.name for p in (run.path / "offline_rl").glob("*"))
        if trained and cfg.data.path is None:
            raise RayexpError(f"collect --overwrite would replace the dataset that {', '.join(trained)} in {run.path} were "
                              "trained on; choose another name=... for new data (or delete those models first)")
        return
    if not dataset_path(cfg, run).exists() and not family_of(cfg).collect:
        check_snapshots(cfg, run.path / "expert")


def check_train(cfg: ExperimentConfig, run: Run, stages: list[str] | None = None, retrain: bool = False) -> None:
    """Before Ray starts: a readable, finite dataset; known stage names; frozen checkpoints this command does not
    train hold the method their stage configures."""

    EpisodeStore(dataset_path(cfg, run)).validate_values()
    order = dependency_order(cfg, [s for s in stages or list(cfg.models) if s not in cfg.offline_rl])
    trains = {s for s in order if retrain or not run.model_path(s).exists()}
    for stage in order:
        for dep in frozen_stages(cfg, stage):
            if dep not in trains and run.model_path(dep).exists():
                check_stage_checkpoint(cfg, dep, run.model_path(dep))


def check_resources(cfg: ExperimentConfig, stages: list[str] | None = None) -> None:
    """Once Ray is up: every stage's Ray Train workers fit the cluster (otherwise ``fit()`` waits for them forever)."""
    import ray

    total = ray.cluster_resources()
    cpus, gpus = int(total.get("CPU", 0)), int(total.get("GPU", 0))
    for stage in [s for s in stages or list(cfg.models) if s in cfg.models]:
        tc = cfg.stage_train(stage)
        threads = max(1, cpus // tc.num_workers)  # as train_stage sizes its workers
        if tc.num_workers * threads > cpus:
            raise RayexpError(f"models.{stage}: train.num_workers={tc.num_workers} asks for {tc.num_workers * threads} CPUs "
                              f"({threads} per worker), but the Ray cluster has {cpus}; lower train.num_workers")
        if tc.use_gpu and tc.num_workers > gpus:
            raise RayexpError(f"models.{stage}: train.use_gpu with {tc.num_workers} worker(s) asks for {tc.num_workers} GPUs, "
                              f"but the Ray cluster has {gpus}; set train.use_gpu=false or lower train.num_workers")


def family_of(cfg: ExperimentConfig) -> Family:
    return family_for(cfg.env.id, cfg.env.family)


def check_evaluate(cfg: ExperimentConfig, run: Run, models: list[str] | None = None) -> None:
    """Before Ray starts: every stage to evaluate has a checkpoint of its configured method (checked in the driver,
    not in an actor); for the generic evaluation also that it is a policy whose shapes fit the env's spaces."""

    names = models or cfg.evaluation_stages()
    unknown = [m for m in names if m not in cfg.models and m not in cfg.offline_rl]
    if unknown:
        raise RayexpError(f"no model stage {unknown}; defined: {sorted(cfg.models) + sorted(cfg.offline_rl)}")
    stages = [m for m in names if m in cfg.models]
    for stage in stages:
        if run.model_path(stage).exists():
            check_stage_checkpoint(cfg, stage, run.model_path(stage))
    if family_of(cfg).evaluate:  # a family with its own evaluation checks its own models
        return
    missing = [m for m in stages if not run.model_path(m).exists()]
    missing += [m for m in names if m in cfg.offline_rl and not run.offline_module(m).exists()]
    if missing:
        raise RayexpError(f"no trained model for {missing} in {run.path}; run `rayexp train` first")
    check_policies_fit_env(cfg, {m: run.model_path(m) for m in stages})


def check_policies_fit_env(cfg: ExperimentConfig, paths: dict[str, Path]) -> None:
    """Each checkpoint makes a policy, and its observation / action sizes are the evaluation env's."""
    import gymnasium as gym

    from envs.registry import make_env
    from rayexp.train import load_model

    env = make_env(cfg.env.id, split=cfg.env.split, max_episode_steps=cfg.env.max_episode_steps, **cfg.env.kwargs)
    obs_dim, act_dim = gym.spaces.flatdim(env.observation_space), gym.spaces.flatdim(env.action_space)
    env.close()
    for stage, path in paths.items():
        method, model, spec = load_model(path)
        try:
            method.make_policy(model, spec)
        except TypeError as e:
            raise RayexpError(f"models.{stage} ({method.name}) is no policy ({e}); leave it out of evaluate.models") from None
        if (spec.obs_dim, spec.act_dim) != (obs_dim, act_dim):
            raise RayexpError(f"{path} was trained on obs {spec.obs_dim} / action {spec.act_dim}, but env {cfg.env.id} has "
                              f"obs {obs_dim} / action {act_dim}; evaluate it on the env its dataset came from")


def frozen_stages(cfg: ExperimentConfig, stage: str) -> list[str]:
    """The stages ``stage`` loads as frozen nets (its method's roles, mapped through ``models.<stage>.frozen``)."""
    from algorithms.registry import make_method

    st = cfg.models[stage]
    return [st.frozen.get(role, role) for role in make_method(st.method).needs]


def run_collect(cfg: ExperimentConfig, run: Run, overwrite: bool = False) -> EpisodeStore:
    from rayexp.collect import collect

    out = dataset_path(cfg, run)
    if out.exists() and not overwrite:
        log.info("dataset %s exists; reusing it", out)
        return EpisodeStore(out)
    t0 = time.perf_counter()
    family = family_of(cfg)
    if family.collect:  # the family's own expert and recording (e.g. SMAX: MAPPO, then its won rounds)
        store = hook(family, "collect")(cfg, run, overwrite)
    elif cfg.collect.source in family.collect_sources:
        store = load_ref(family.collect_sources[cfg.collect.source], f"collect.source {cfg.collect.source}")(cfg, out, overwrite)
    elif cfg.collect.source == "pendulum-two-mode":
        store = _collect_two_mode(cfg, out, overwrite)
    else:
        store = collect(cfg, out, run.path / "expert", overwrite=overwrite)
    log.info("collected %d episodes in %.1f s", len(store), time.perf_counter() - t0)
    console.stage_done(f"collect: {len(store)} episodes", time.perf_counter() - t0, out)
    return store


def _collect_two_mode(cfg: ExperimentConfig, out: Path, overwrite: bool) -> EpisodeStore:
    from envs.pendulum_modes import ENV_ID, two_mode_episodes
    from rayexp.data.store import DatasetMeta, Episode, write_dataset

    if cfg.env.id != ENV_ID or cfg.env.max_episode_steps is None:
        raise RayexpError(f"collect.source=pendulum-two-mode needs env.id {ENV_ID} and env.max_episode_steps (e.g. 20)")
    raw = two_mode_episodes(cfg.collect.episodes, cfg.env.max_episode_steps, cfg.seed, cfg.collect.bad_fraction)
    episodes = [Episode(e["observations"], e["actions"], e["rewards"], e["terminals"], e["timeouts"],
                        final_observation=e["final_observation"], seed=e["seed"], policy=e["mode"]) for e in raw]
    meta = DatasetMeta(env_id=ENV_ID, obs_dim=4, act_dim=1, source="pendulum-two-mode",
                       extra={"bad_fraction": cfg.collect.bad_fraction, "max_episode_steps": cfg.env.max_episode_steps})
    return write_dataset(out, episodes, meta, overwrite=overwrite)


def run_train(cfg: ExperimentConfig, run: Run, stages: list[str] | None = None, retrain: bool = False,
              cpu_share: int = 1) -> pd.DataFrame:
    """Train the named stages (default: all), teachers before the students that need them; finished stages
    are kept unless ``retrain``. ``cpu_share``: how many runs share the cluster's CPUs (parallel seeds)."""
    from rayexp.train import train_stage

    data = dataset_path(cfg, run)
    EpisodeStore(data).validate_values()  # before starting any trainer
    stages = stages or list(cfg.models) + list(cfg.offline_rl)
    offline = [s for s in stages if s in cfg.offline_rl]
    stages = [s for s in stages if s not in cfg.offline_rl]
    rows = []
    for stage in dependency_order(cfg, stages):
        if run.model_path(stage).exists() and not retrain:
            log.info("stage %s already trained (%s); skipping", stage, run.model_path(stage))
            continue
        if retrain and (run.train_storage() / stage).exists():  # else it would resume from its last checkpoint
            shutil.rmtree(run.train_storage() / stage)
        t0 = time.perf_counter()
        history = train_stage(cfg, run, stage, data, cpu_share)
        rows += [{"kind": "train", **r, "wall_s": time.perf_counter() - t0} for r in history]
        last = history[-1] if history else {}
        loss = f", loss {last['loss']:.3g}" if isinstance(last.get("loss"), float) else ""
        console.stage_done(f"train {stage}: {last.get('step', 0)} steps{loss}", time.perf_counter() - t0, run.model_path(stage))
    rows += [r for stage in offline for r in run_offline_rl(cfg, run, stage, data, retrain)]
    return append_metrics(run, rows) if rows else pd.DataFrame()


def run_offline_rl(cfg: ExperimentConfig, run: Run, stage: str, data: Path, retrain: bool = False) -> list[dict]:
    """Train one ``offline_rl`` stage (RLlib CQL / IQL) into RUN/offline_rl/<stage>/; metric rows per iteration."""
    from rayexp.rllib.offline import train_cql

    out = run.path / "offline_rl" / stage
    if (out / "module").exists() and not retrain:
        log.info("offline stage %s already trained (%s); skipping", stage, out / "module")
        return []
    o = cfg.offline_rl[stage]
    info = train_cql(data, out, o.iterations, algo=o.algo, batch_size=o.batch_size, iters_per_train=o.updates,
                     seed=cfg.seed, hidden=tuple(o.hidden), lr=o.lr, gamma=o.gamma)
    return [{"kind": "train", "stage": stage, "step": (i + 1) * o.updates, "wall_s": info["wall_s"],
             "loss": losses.get("qf_loss", np.nan), **losses} for i, losses in enumerate(info["losses"])]


def dependency_order(cfg: ExperimentConfig, stages: list[str]) -> list[str]:
    """``stages`` reordered so every stage comes after the stages it loads as frozen nets (teacher, reward)."""

    def deps(stage: str) -> list[str]:
        return frozen_stages(cfg, stage)

    order: list[str] = []
    visiting: set[str] = set()

    def visit(stage: str) -> None:
        if stage in order:
            return
        if stage in visiting:
            raise RayexpError(f"models.{stage}: frozen dependencies form a cycle")
        visiting.add(stage)
        for dep in deps(stage):
            if dep in cfg.models and dep in stages:
                visit(dep)
        order.append(stage)

    for stage in stages:
        if stage not in cfg.models:
            raise RayexpError(f"no model stage {stage!r}; defined: {sorted(cfg.models)}")
        visit(stage)
    return order


def run_evaluate(cfg: ExperimentConfig, run: Run, models: list[str] | None = None) -> pd.DataFrame:
    """Evaluate (``_evaluate``), log the summary to the configured trackers, print the stage's one line."""
    from rayexp.tracking import open_tracker, tracking_context

    t0, started = time.perf_counter(), time.time()
    summary = _evaluate(cfg, run, models)
    tracker = open_tracker(tracking_context(cfg, run.path, dataset_path(cfg, run)), "evaluate")
    keys = [c for c in ("model", "method") if c in summary]
    if "task" in summary and summary["task"].nunique() > 1:  # e.g. the roundabout's ooc / id traffic
        keys.append("task")
    tracker.log_table(summary.to_dict("records"), keys)
    tracker.close()
    written = sorted(p.name for p in run.path.glob("*eval*.parquet") if p.stat().st_mtime >= started - 1)
    where = run.path / written[0] if len(written) == 1 else run.path
    console.stage_done(f"evaluate: {_methods(summary)} methods",
                       time.perf_counter() - t0, where)
    return summary


def _evaluate(cfg: ExperimentConfig, run: Run, models: list[str] | None = None) -> pd.DataFrame:
    from rayexp.evaluate import evaluate
    from rayexp.reports.run import write_eval_tables
    from rayexp.rows import summarize, write_run_rows

    family = family_of(cfg)
    if cfg.evaluate.gpus_per_actor > 0 and not family.gpu_evaluation:
        raise ConfigError(f"evaluate.gpus_per_actor: the {family.name} evaluator runs its policies on CPUs; "
                          "set evaluate.gpus_per_actor=0 (GPU evaluation covers the gym environments)")
    own = hook(family, "evaluate")
    if own is not None:  # the family's rows, tables and figures (e.g. Maze2D's Table B.6, the roundabout's traffic)
        return own(cfg, run, models)
    explicit = bool(models)
    models = models or cfg.evaluation_stages()
    paths = {m: str(run.model_path(m) if m in cfg.models else run.offline_module(m)) for m in models}
    missing = [m for m, p in paths.items() if not Path(p).exists()]
    if missing:
        raise RayexpError(f"no trained model for {missing} in {run.path}; run `rayexp train` first")
    store_path = dataset_path(cfg, run)
    meta = EpisodeStore(store_path).meta if store_path.exists() else None
    ref = (meta.ref_min_score, meta.ref_max_score) if meta and meta.ref_min_score is not None else None
    df = evaluate(cfg.env.model_dump(), paths, cfg.evaluate.model_dump(), cfg.evaluate.num_actors, ref)
    # --model X replaces X's rows only; the other models' rows stay, and the tables are rewritten from all of them
    summary = write_eval_tables(run.path, write_run_rows(run.path, df, replace_models_only=explicit))
    append_metrics(run, [{"kind": "eval", "stage": r.pop("model"), **r} for r in summarize(df).to_dict("records")])
    return summary


def _methods(summary: pd.DataFrame) -> int:
    key = next((c for c in ("model", "method") if c in summary), None)
    return summary[key].nunique() if key else len(summary)
