"""Data collection with RLlib: train a PPO expert, record its rollouts with parallel env runners.

The expert is an ordinary RLlib PPO (new API stack); its env runners, ``num_env_runners`` of them,
sample whole episodes in parallel, which become ``Episode`` rows of the episode store.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rayexp.config import ExperimentConfig
from rayexp.data.store import DatasetMeta, Episode, EpisodeStore, write_dataset
from rayexp.errors import RayexpError

log = logging.getLogger("rayexp")


def _env_creator(env_cfg: dict):
    def create(_ctx=None):
        from envs.registry import make_env

        return make_env(env_cfg["id"], split=env_cfg["split"], max_episode_steps=env_cfg["max_episode_steps"],
                        **env_cfg["kwargs"])

    return create


def ppo_config(cfg: ExperimentConfig, num_env_runners: int, expert: str = ""):
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.tune.registry import register_env

    env_name = f"rayexp:{cfg.env.id}" + (f":{expert}" if expert else "")  # one registered env per expert's kwargs
    register_env(env_name, _env_creator(cfg.env.model_dump()))
    e = cfg.expert
    return (
        PPOConfig()
        .environment(env_name)
        # sample_timeout_s=None: wait for every runner's share of the batch. RLlib's default (60 s) drops a runner
        # whose share takes longer (highway-env steps at ~20 ms, far slower on a loaded machine), and an iteration
        # whose runners all timed out has no episodes: its logged return was NaN (and it trained on nothing).
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=1, num_cpus_per_env_runner=1,
                     sample_timeout_s=None)
        .training(lr=e.lr, gamma=e.gamma, train_batch_size_per_learner=e.train_batch_size,
                  minibatch_size=e.minibatch_size, num_epochs=e.num_epochs)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=e.hidden, fcnet_activation="tanh", vf_share_layers=False))
        .debugging(seed=cfg.seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=20)
    )


def _mean_return(result: dict) -> float:
    """Mean return of the last ``metrics_num_episodes_for_smoothing`` episodes; NaN (with a warning) when the
    iteration sampled no episode at all."""
    ret = result.get("env_runners", {}).get("episode_return_mean")
    if ret is None:
        log.warning("PPO iteration %s reported no finished episode (no env runner returned samples)",
                    result.get("training_iteration"))
        return float("nan")
    return float(ret)


def to_store_episode(ep, action_space, seed: int | None, policy: str) -> Episode:
    from envs.registry import episode_success

    obs = np.asarray(ep.get_observations(), dtype=np.float32)
    actions = np.asarray(ep.get_actions(), dtype=np.float32).reshape(len(ep), -1)
    if hasattr(action_space, "low"):
        # RLlib records the module's actions in [-1, 1] (normalize_actions); store what the env received.
        from envs.actions import unit_to_box

        actions = unit_to_box(actions, action_space.low, action_space.high)
    elif hasattr(action_space, "n"):  # discrete actions are stored one-hot
        actions = np.eye(action_space.n, dtype=np.float32)[actions[:, 0].astype(int) - action_space.start]
    T = len(ep)
    bad = ~np.isfinite(obs).all(axis=1)
    if bad.any():  # recorded as data, a NaN observation would only show up as a NaN loss in training
        raise RayexpError(f"collect {policy}: the env returned a non-finite observation (NaN or inf) at step "
                          f"{int(np.argmax(bad))} of an episode (seed {seed}); fix the env or its wrappers")
    terminals = np.zeros(T, bool)
    timeouts = np.zeros(T, bool)
    terminals[-1] = bool(ep.is_terminated)
    timeouts[-1] = bool(ep.is_truncated)
    info = ep.get_infos(-1) or {}
    return Episode(obs[:T], actions, np.asarray(ep.get_rewards(), dtype=np.float32), terminals, timeouts,
                   final_observation=obs[T], success=episode_success(info, ep.is_terminated, ep.is_truncated),
                   seed=seed, policy=policy, condition=info.get("composition"))


def record_episodes(algo, n: int, explore: bool, policy: str, seed: int, action_space) -> list[Episode]:
    """Sample about ``n`` complete episodes spread over the algorithm's env runners."""
    group = algo.env_runner_group
    remote = group.num_remote_env_runners()
    per_worker = int(np.ceil(n / max(1, remote)))

    def sample(runner):
        return runner.sample(num_episodes=per_worker, explore=explore, random_actions=False)

    batches = group.foreach_env_runner(sample, local_env_runner=remote == 0)
    return [to_store_episode(ep, action_space, seed + w, policy) for w, eps in enumerate(batches) for ep in eps if ep.is_done]


def expert_env_configs(cfg: ExperimentConfig) -> dict[str, ExperimentConfig]:
    """One config per expert: ``collect.experts`` entries update ``env.kwargs`` (name "" when there are none).
    Each env is made and reset once here, so a bad entry fails before any training, naming the entry."""
    from envs.registry import make_env

    if not cfg.collect.experts:
        return {"": cfg}
    out = {}
    for name, kwargs in cfg.collect.experts.items():
        env = cfg.env.model_copy(update={"kwargs": {**cfg.env.kwargs, **kwargs}})
        try:
            make_env(env.id, split=env.split, **env.kwargs).reset(seed=0)
        except (ValueError, TypeError) as e:
            raise RayexpError(f"collect.experts.{name}: {str(e).splitlines()[0]}") from None
        out[name] = cfg.model_copy(update={"env": env})
    return out


def collect(cfg: ExperimentConfig, out: Path, expert_dir: Path, overwrite: bool = False) -> EpisodeStore:
    """Train the PPO expert(s) (resuming from ``expert_dir``) and record ``collect.episodes`` episodes in all."""
    from envs.registry import make_env

    action_space = make_env(cfg.env.id, split=cfg.env.split, **cfg.env.kwargs).action_space
    experts = expert_env_configs(cfg)
    per_expert = int(np.ceil(cfg.collect.episodes / len(experts)))
    episodes: list[Episode] = []
    rates = {}
    for name, sub in experts.items():
        d = expert_dir / name if name else expert_dir
        episodes += train_and_record(sub, d, per_expert, action_space, name)
        if (d / "success.json").exists():
            rates[name or "ppo"] = json.loads((d / "success.json").read_text())
    meta = _dataset_meta(cfg, episodes, action_space)
    meta.extra["expert_success"] = rates
    return write_dataset(out, episodes[: cfg.collect.episodes], meta, overwrite=overwrite)


def train_and_record(cfg: ExperimentConfig, expert_dir: Path, n: int, action_space, name: str = "") -> list[Episode]:
    """Train one PPO expert (resuming from ``expert_dir``) and record ``n`` episodes at the snapshot marks."""
    c, e = cfg.collect, cfg.expert
    check_expert_snapshots(cfg, expert_dir, name)
    algo = ppo_config(cfg, max(e.num_env_runners, c.num_env_runners), name).build_algo()
    marks = snapshot_marks(cfg)
    per_mark = int(np.ceil(n / len(marks)))
    tag = f"ppo-{name}-" if name else "ppo-"
    episodes: list[Episode] = []
    outcomes: list[bool | None] = []
    try:
        start = 0
        if (expert_dir / "iteration.txt").exists():
            algo.restore_from_path(str((expert_dir / "checkpoint").resolve()))
            start = int((expert_dir / "iteration.txt").read_text())
        bar = tqdm(total=marks[-1], initial=min(start, marks[-1]), desc=f"expert {name or 'PPO'}", leave=False)
        for it in range(1, marks[-1] + 1):
            reached = False
            if it > start:
                result = algo.train()
                ret = _mean_return(result)
                _save_expert(algo, expert_dir, it, result)
                bar.update(1)
                bar.set_postfix(ret=f"{ret:.2f}")
                log.info("ppo %s iteration %d: return %.2f", name, it, ret)
                reached = e.target_return is not None and ret >= e.target_return
            cached = snapshot_path(expert_dir, f"{tag}iter{it}")
            if cached.exists():  # recorded before an interruption, with this iteration's policy: reuse, never re-record
                batch = list(EpisodeStore(cached).iter_episodes())
                outcomes += [ep.success for ep in batch]
                reached = reached or it not in marks  # only a reached target_return records off the marks
            elif it in marks or reached:
                batch = _record_until(algo, per_mark, c, f"{tag}iter{it}", cfg.seed + 1000 * it, action_space, outcomes)
                _save_snapshot(cached, batch, cfg.env.id)  # before training continues past this policy
            else:
                batch = []
            episodes += batch
            if reached:
                break
        bar.close()
    finally:
        algo.stop()
    known = [o for o in outcomes if o is not None]
    if known:  # the expert's own success rate while recording (greedy unless collect.explore), kept beside it
        rate = {"episodes": len(known), "success_rate": float(np.mean(known)), "iteration": marks[-1]}
        (expert_dir / "success.json").write_text(json.dumps(rate))
        log.info("expert %s: %d of %d recorded episodes successful (%.0f%%)", name, sum(known), len(known), 100 * rate["success_rate"])
    return episodes[:n]


def snapshot_marks(cfg: ExperimentConfig) -> list[int]:
    """The PPO iterations after which episodes are recorded (``collect.snapshots`` as fractions of the iterations)."""
    return sorted({max(1, round(f * cfg.expert.iterations)) for f in cfg.collect.snapshots})


def snapshot_path(expert_dir: Path, policy: str) -> Path:
    """Where the episodes recorded at one snapshot are kept (an episode store), so a rerun reuses them."""
    return expert_dir / "snapshots" / policy


def _save_snapshot(path: Path, episodes: list[Episode], env_id: str) -> None:
    if episodes:
        meta = DatasetMeta(env_id=env_id, obs_dim=episodes[0].observations.shape[1], act_dim=episodes[0].actions.shape[1],
                           source="rllib-ppo snapshot")
        write_dataset(path, episodes, meta, overwrite=True)


def check_snapshots(cfg: ExperimentConfig, expert_dir: Path) -> None:
    """``check_expert_snapshots`` for every expert of the config (folders RUN/expert or RUN/expert/<name>)."""
    for name in list(cfg.collect.experts) or [""]:
        check_expert_snapshots(cfg, expert_dir / name if name else expert_dir, name)


def check_expert_snapshots(cfg: ExperimentConfig, d: Path, name: str = "") -> None:
    """Refuse to resume a collection whose expert trained past a snapshot mark that was not recorded (an
    interruption between training and recording, or a run from before snapshots were kept): the policy of that
    iteration is gone, and a later one would be recorded under its name."""
    if not (d / "iteration.txt").is_file():
        return
    start = int((d / "iteration.txt").read_text().strip() or 0)
    tag = f"ppo-{name}-" if name else "ppo-"
    lost = [m for m in snapshot_marks(cfg) if m < start and not snapshot_path(d, f"{tag}iter{m}").exists()]
    if lost:
        raise RayexpError(f"collect: expert {name or 'PPO'} in {d} is at iteration {start}, but its snapshot(s) at "
                          f"iteration {', '.join(map(str, lost))} were never recorded and those policies are gone; "
                          "rerun with --overwrite to train the expert again from scratch")


def _record_until(algo, n: int, c, policy: str, seed: int, action_space, outcomes: list | None = None) -> list[Episode]:
    """Record until ``n`` episodes are kept (only successful ones with ``collect.only_success``); every recorded
    episode's success flag is appended to ``outcomes``."""
    kept: list[Episode] = []
    tries = 0
    with tqdm(total=n, desc=f"collect {policy}", leave=False) as bar:
        while len(kept) < n:
            batch = record_episodes(algo, n - len(kept), c.explore, policy, seed + 100 * tries, action_space)
            if outcomes is not None:
                outcomes += [ep.success for ep in batch]
            if c.only_success:
                if batch and all(ep.success is None for ep in batch):
                    raise RayexpError("collect.only_success: this env defines no success flag; set collect.only_success=false")
                batch = [ep for ep in batch if ep.success]
            kept += batch
            bar.update(len(batch))
            tries += 1
            if tries > 20 and not kept:
                raise RayexpError(f"no successful episode in {tries} rounds of collection; train the expert longer (expert.iterations)")
    return kept[:n]


def _save_expert(algo, expert_dir: Path, iteration: int, result: dict | None = None) -> None:
    expert_dir.mkdir(parents=True, exist_ok=True)
    algo.save_to_path(str((expert_dir / "checkpoint").resolve()))
    (expert_dir / "iteration.txt").write_text(str(iteration))
    if result is not None:  # the training curve, one row per iteration (rerun-safe: an iteration is written once)
        runners = result.get("env_runners", {})
        row = {"iteration": iteration, "return_mean": _mean_return(result),
               "episodes": runners.get("num_episodes", np.nan), "env_steps": runners.get("num_env_steps_sampled_lifetime", np.nan)}
        with open(expert_dir / "progress.jsonl", "a") as f:
            f.write(json.dumps({k: (None if np.isnan(float(v)) else float(v)) for k, v in row.items()}) + "\n")


def expert_module_dir(expert_dir: Path) -> Path:
    """The trained PPO RLModule inside an expert checkpoint (loadable with ``RLModule.from_checkpoint``)."""
    return expert_dir / "checkpoint" / "learner_group" / "learner" / "rl_module" / "default_policy"


def _dataset_meta(cfg: ExperimentConfig, episodes: list[Episode], action_space) -> DatasetMeta:
    from rayexp.data.d4rl import d4rl_ref_scores

    ref = d4rl_ref_scores(cfg.env.id)
    return DatasetMeta(env_id=cfg.env.id, obs_dim=episodes[0].observations.shape[1], act_dim=episodes[0].actions.shape[1],
                       discrete_actions=not hasattr(action_space, "low"),
                       ref_min_score=ref[0] if ref else None, ref_max_score=ref[1] if ref else None,
                       source="rllib-ppo", description=f"PPO expert rollouts ({len(episodes)} episodes)",
                       extra={"split": cfg.env.split, "expert_iterations": cfg.expert.iterations,
                              "experts": cfg.collect.experts})
