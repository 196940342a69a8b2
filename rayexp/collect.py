"""Data collection with RLlib: train a PPO expert, record its rollouts with parallel env runners.

The expert is an ordinary RLlib PPO (new API stack); its env runners, ``num_env_runners`` of them,
sample whole episodes in parallel, which become ``Episode`` rows of the episode store.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rayexp.config import ExperimentConfig
from rayexp.errors import RayexpError
from rayexp.store import DatasetMeta, Episode, EpisodeStore, write_dataset

log = logging.getLogger("rayexp")


def _env_creator(env_cfg: dict):
    def create(_ctx=None):
        from envs.registry import make_env

        return make_env(env_cfg["id"], split=env_cfg["split"], max_episode_steps=env_cfg["max_episode_steps"],
                        **env_cfg["kwargs"])

    return create


def ppo_config(cfg: ExperimentConfig, num_env_runners: int):
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.tune.registry import register_env

    env_name = f"rayexp:{cfg.env.id}"
    register_env(env_name, _env_creator(cfg.env.model_dump()))
    e = cfg.expert
    return (
        PPOConfig()
        .environment(env_name)
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=1, num_cpus_per_env_runner=1)
        .training(lr=e.lr, gamma=e.gamma, train_batch_size_per_learner=e.train_batch_size,
                  minibatch_size=e.minibatch_size, num_epochs=e.num_epochs)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=e.hidden, fcnet_activation="tanh", vf_share_layers=False))
        .debugging(seed=cfg.seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=20)
    )


def _mean_return(result: dict) -> float:
    return float(result.get("env_runners", {}).get("episode_return_mean", np.nan))


def to_store_episode(ep, action_space, seed: int | None, policy: str) -> Episode:
    from envs.registry import episode_success

    obs = np.asarray(ep.get_observations(), dtype=np.float32)
    actions = np.asarray(ep.get_actions(), dtype=np.float32).reshape(len(ep), -1)
    if hasattr(action_space, "low"):
        # RLlib records the module's actions in [-1, 1] (normalize_actions); store what the env received.
        low, high = action_space.low, action_space.high
        actions = np.clip(low + (actions + 1.0) * (high - low) / 2.0, low, high)
    elif hasattr(action_space, "n"):  # discrete actions are stored one-hot
        actions = np.eye(action_space.n, dtype=np.float32)[actions[:, 0].astype(int) - action_space.start]
    T = len(ep)
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


def collect(cfg: ExperimentConfig, out: Path, expert_dir: Path, overwrite: bool = False) -> EpisodeStore:
    """Train the PPO expert (resuming from ``expert_dir``) and record ``collect.episodes`` episodes."""
    from envs.registry import make_env

    c, e = cfg.collect, cfg.expert
    action_space = make_env(cfg.env.id, split=cfg.env.split, **cfg.env.kwargs).action_space
    algo = ppo_config(cfg, max(e.num_env_runners, c.num_env_runners)).build_algo()
    marks = sorted({max(1, round(f * e.iterations)) for f in c.snapshots})
    per_mark = int(np.ceil(c.episodes / len(marks)))
    episodes: list[Episode] = []
    try:
        start = 0
        if (expert_dir / "iteration.txt").exists():
            algo.restore_from_path(str((expert_dir / "checkpoint").resolve()))
            start = int((expert_dir / "iteration.txt").read_text())
        bar = tqdm(total=marks[-1], initial=min(start, marks[-1]), desc="expert (PPO)", leave=False)
        for it in range(1, marks[-1] + 1):
            reached = False
            if it > start:
                ret = _mean_return(algo.train())
                _save_expert(algo, expert_dir, it)
                bar.update(1)
                bar.set_postfix(ret=f"{ret:.1f}")
                log.info("ppo iteration %d: return %.2f", it, ret)
                reached = e.target_return is not None and ret >= e.target_return
            if it in marks or reached:
                episodes += _record_until(algo, per_mark, c, f"ppo-iter{it}", cfg.seed + 1000 * it, action_space)
            if reached:
                break
        bar.close()
    finally:
        algo.stop()
    return write_dataset(out, episodes[: c.episodes], _dataset_meta(cfg, episodes, action_space), overwrite=overwrite)


def _record_until(algo, n: int, c, policy: str, seed: int, action_space) -> list[Episode]:
    kept: list[Episode] = []
    tries = 0
    with tqdm(total=n, desc=f"collect {policy}", leave=False) as bar:
        while len(kept) < n:
            batch = record_episodes(algo, n - len(kept), c.explore, policy, seed + 100 * tries, action_space)
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


def _save_expert(algo, expert_dir: Path, iteration: int) -> None:
    expert_dir.mkdir(parents=True, exist_ok=True)
    algo.save_to_path(str((expert_dir / "checkpoint").resolve()))
    (expert_dir / "iteration.txt").write_text(str(iteration))


def _dataset_meta(cfg: ExperimentConfig, episodes: list[Episode], action_space) -> DatasetMeta:
    from rayexp.d4rl import d4rl_ref_scores

    ref = d4rl_ref_scores(cfg.env.id)
    return DatasetMeta(env_id=cfg.env.id, obs_dim=episodes[0].observations.shape[1], act_dim=episodes[0].actions.shape[1],
                       discrete_actions=not hasattr(action_space, "low"),
                       ref_min_score=ref[0] if ref else None, ref_max_score=ref[1] if ref else None,
                       source="rllib-ppo", description=f"PPO expert rollouts ({len(episodes)} episodes)",
                       extra={"split": cfg.env.split, "expert_iterations": cfg.expert.iterations})
