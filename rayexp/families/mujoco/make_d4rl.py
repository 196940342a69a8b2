"""D4RL-style datasets made here: train SAC (RLlib's env runners and checkpoints, rayexp's update) and save the
D4RL tiers as episode stores.

    OUT/medium/          rollouts of the first policy whose training return reaches ``target_fraction``
                         of the D4RL expert return (normalized score 100 * fraction)
    OUT/medium-replay/   every complete episode in SAC's replay buffer at that moment (D4RL's definition:
                         the agent's own exploratory experience up to the medium policy)
    OUT/expert/          rollouts of the last policy when the step budget is spent
    OUT/medium-expert/   medium + expert concatenated
    OUT/sac/             the algorithm checkpoint (replay buffer included) and progress.json: rerun to resume
    OUT/policies/{medium,expert}/  RLModule checkpoints, reusable with ``RLModule.from_checkpoint``

The buffer (``algorithms.sac.TransitionBuffer``) keeps each transition's episode number, so medium-replay is read
back from it; its capacity is set above the step budget so nothing is evicted. Unfinished episodes (a runner's open
episode, or one cut by a resume) are dropped. Each tier's metadata holds the wall time spent making it.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from envs.actions import unit_to_box
from rayexp.data.store import DatasetMeta, Episode, EpisodeStore, write_dataset
from rayexp.errors import RayexpError

log = logging.getLogger("rayexp")
TIERS = ("medium-replay", "medium", "expert", "medium-expert")


def sac_config(env_id: str, num_env_runners: int, seed: int, max_episode_steps: int | None = None,
               hidden: tuple[int, ...] = (256, 256), lr: float = 3e-4, learning_starts: int = 5000,
               buffer_capacity: int = 1_000_000, steps_per_iteration: int = 1000, rollout_fragment_length: int = 25,
               training_intensity: float | None = 256.0, batch_size: int = 256, stock: bool = False):
    """RLlib SAC (new API stack) on a gymnasium env made by ``envs.registry.make_env``, trained by
    ``rayexp.families.mujoco.sac.RayexpSAC`` (``stock=True``: RLlib's own SAC learner, replay buffer and critic, for the
    benchmark only).

    ``training_intensity`` is RLlib's replay ratio (trained / sampled steps): 256 with batch 256 is one
    gradient update per env step, as in the SAC paper; each runner samples ``rollout_fragment_length``
    steps between updates, which keeps Ray round trips few.
    """
    from ray.rllib.algorithms.sac import SAC, SACConfig
    from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env

    from rayexp.families.mujoco.sac import ConcatQSACCatalog, RayexpSAC

    def create(_ctx=None):
        from envs.registry import make_env

        return make_env(env_id, max_episode_steps=max_episode_steps)

    name = f"rayexp-sac:{env_id}:{max_episode_steps}"
    register_env(name, create)
    module = RLModuleSpec(module_class=DefaultSACTorchRLModule, catalog_class=None if stock else ConcatQSACCatalog)
    return (
        SACConfig(algo_class=SAC if stock else RayexpSAC)
        .environment(name)
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=1, num_cpus_per_env_runner=1,
                     rollout_fragment_length=rollout_fragment_length)
        .training(actor_lr=lr, critic_lr=lr, alpha_lr=lr, initial_alpha=1.0, target_entropy="auto", tau=0.005,
                  n_step=1, train_batch_size_per_learner=batch_size, num_steps_sampled_before_learning_starts=learning_starts,
                  replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": buffer_capacity},
                  store_buffer_in_checkpoints=False, training_intensity=training_intensity)
        .rl_module(rl_module_spec=module, model_config=DefaultModelConfig(fcnet_hiddens=list(hidden), fcnet_activation="relu"))
        .reporting(min_sample_timesteps_per_iteration=steps_per_iteration, metrics_num_episodes_for_smoothing=10)
        .debugging(seed=seed, log_level="ERROR")
    )


def medium_threshold(env_id: str, target_fraction: float, target_return: float | None) -> float:
    """Training return at which the policy counts as 'medium': a fraction of D4RL's expert score."""
    if target_return is not None:
        return target_return
    from rayexp.data.d4rl import d4rl_ref_scores

    ref = d4rl_ref_scores(env_id)
    if ref is None:
        raise RayexpError(f"{env_id} has no D4RL reference scores; pass --target-return for the medium tier")
    return ref[0] + target_fraction * (ref[1] - ref[0])


def make_d4rl(env_id: str, out: str | Path, steps: int = 300_000, target_fraction: float = 1 / 3,
              target_return: float | None = None, tier_steps: int = 100_000, num_env_runners: int = 2,
              seed: int = 0, max_episode_steps: int | None = None, explore: bool = True,
              checkpoint_every_s: float = 300.0, **sac_kwargs) -> dict:
    """Train SAC for ``steps`` env steps in total (resuming from ``out/sac``) and write the tiers.

    The algorithm (buffer included) is saved every ``checkpoint_every_s`` seconds of training, when the medium
    tiers are written and at the end. Returns {tier: store summary} for the tiers that exist. Rerun with a larger
    ``steps`` to extend the expert.
    """
    import torch

    torch.set_num_threads(1)  # the learner runs in this process; OpenMP threads thrash on a shared 2-core box
    out = Path(out)
    ckpt, progress_file = out / "sac", out / "sac" / "progress.json"
    progress = json.loads(progress_file.read_text()) if progress_file.exists() else {"env_steps": 0, "wall_s": 0.0, "medium": None}
    threshold = medium_threshold(env_id, target_fraction, target_return)
    capacity = max(steps, 10_000) + 10_000
    algo = sac_config(env_id, num_env_runners, seed, max_episode_steps, buffer_capacity=capacity, **sac_kwargs).build_algo()
    action_space = _action_space(env_id, max_episode_steps)
    try:
        if (ckpt / "algorithm").exists():
            algo.restore_from_path(str((ckpt / "algorithm").resolve()))
        bar = tqdm(total=steps, initial=min(progress["env_steps"], steps), desc=f"SAC {env_id}", unit="step")
        saved_at, clock = progress["wall_s"], time.perf_counter()
        while progress["env_steps"] < steps:
            t0 = time.perf_counter()
            result = algo.train()
            runners = result.get("env_runners", {})
            now = int(runners.get("num_env_steps_sampled_lifetime", progress["env_steps"]))
            ret = float(runners.get("episode_return_mean", np.nan))
            progress["wall_s"] += time.perf_counter() - t0
            bar.update(max(0, min(now, steps) - bar.n))
            bar.set_postfix(ret=f"{ret:.1f}", medium="done" if progress["medium"] else f">={threshold:.0f}")
            progress["env_steps"], progress["train_return"] = now, ret
            # wall time including checkpoints and tier writing, summed over resumed runs
            progress["elapsed_s"] = progress.get("elapsed_s", 0.0) + time.perf_counter() - clock
            clock = time.perf_counter()
            if progress["medium"] is None and ret >= threshold:
                progress["medium"] = {"env_steps": now, "train_return": ret, "train_wall_s": progress["wall_s"]}
                _write_medium(algo, out, env_id, progress, tier_steps, explore, seed, action_space)
                saved_at = -checkpoint_every_s  # save now, with the medium policy's buffer
            if progress["wall_s"] - saved_at >= checkpoint_every_s or progress["env_steps"] >= steps:
                _checkpoint(algo, ckpt, progress)
                saved_at = progress["wall_s"]
        bar.close()
        if progress["medium"] is None:
            log.warning("training return never reached %.1f in %d steps: no medium tiers; rerun with more --steps", threshold, steps)
        elif _needs_expert(out, progress["env_steps"]):
            _write_expert(algo, out, env_id, progress, tier_steps, explore, seed, action_space)
    finally:
        algo.stop()
    return {t: EpisodeStore(out / t).summary() for t in TIERS if (out / t).exists()}


def _action_space(env_id: str, max_episode_steps: int | None):
    from envs.registry import make_env

    return make_env(env_id, max_episode_steps=max_episode_steps).action_space


def _checkpoint(algo, ckpt: Path, progress: dict) -> None:
    ckpt.mkdir(parents=True, exist_ok=True)
    algo.save_to_path(str((ckpt / "algorithm").resolve()))
    tmp = ckpt / ".progress.json.tmp"
    tmp.write_text(json.dumps(progress, indent=2))
    tmp.replace(ckpt / "progress.json")


def _needs_expert(out: Path, env_steps: int) -> bool:
    if not (out / "expert").exists():
        return True
    return EpisodeStore(out / "expert").meta.extra.get("env_steps") != env_steps


def _write_medium(algo, out: Path, env_id: str, progress: dict, tier_steps: int, explore: bool, seed: int, action_space) -> None:
    t0 = time.perf_counter()
    eps = replay_episodes(algo.transitions, action_space, "sac-replay")
    info = {"env_steps": progress["env_steps"], "train_return": progress["medium"]["train_return"]}
    _write(out / "medium-replay", eps, env_id, "SAC replay buffer up to the medium policy",
           {**info, "wall_s": progress["wall_s"], "elapsed_s": progress["elapsed_s"] + time.perf_counter() - t0})
    algo.get_module().save_to_path(str((out / "policies" / "medium").resolve()))
    t1 = time.perf_counter()
    eps = record_steps(algo, tier_steps, explore, f"sac-medium@{progress['env_steps']}", seed + 10_000, action_space)
    _write(out / "medium", eps, env_id, "rollouts of the SAC policy at the medium threshold",
           {**info, "record_wall_s": time.perf_counter() - t1, "policy_train_wall_s": progress["wall_s"],
            "elapsed_s": progress["elapsed_s"] + time.perf_counter() - t0})
    log.info("medium tiers written in %.1f s", time.perf_counter() - t0)


def _write_expert(algo, out: Path, env_id: str, progress: dict, tier_steps: int, explore: bool, seed: int, action_space) -> None:
    algo.get_module().save_to_path(str((out / "policies" / "expert").resolve()))
    t1 = time.perf_counter()
    eps = record_steps(algo, tier_steps, explore, f"sac-expert@{progress['env_steps']}", seed + 20_000, action_space)
    info = {"env_steps": progress["env_steps"], "record_wall_s": time.perf_counter() - t1, "policy_train_wall_s": progress["wall_s"],
            "elapsed_s": progress.get("elapsed_s", 0.0) + time.perf_counter() - t1}
    _write(out / "expert", eps, env_id, "rollouts of the last SAC policy (step budget spent)", info)
    medium = list(EpisodeStore(out / "medium").iter_episodes())
    _write(out / "medium-expert", medium + eps, env_id, "medium + expert", {"env_steps": progress["env_steps"]})


def record_steps(algo, n_steps: int, explore: bool, policy: str, seed: int, action_space) -> list[Episode]:
    """Complete episodes from the env runners until they hold at least ``n_steps`` steps."""
    from rayexp.collect import record_episodes

    eps: list[Episode] = []
    rounds = 0
    with tqdm(total=n_steps, desc=f"record {policy}", leave=False, unit="step") as bar:
        while sum(len(e) for e in eps) < n_steps:
            need = episodes_to_request([len(e) for e in eps], n_steps)
            batch = record_episodes(algo, need, explore, policy, seed + 100 * rounds, _unit_box(action_space))
            batch = [_env_actions(e, action_space) for e in batch]
            eps += batch
            bar.update(sum(len(e) for e in batch))
            rounds += 1
    return eps


def episodes_to_request(lengths: list[int], n_steps: int, probe: int = 10) -> int:
    """How many more episodes to record for ``n_steps`` steps: a few first, to learn the policy's episode length,
    then the rest at that mean length (a fixed guess overshot 3.6x: 100 steps assumed, 362 recorded per episode)."""
    if not lengths:
        return probe
    return max(1, int(np.ceil((n_steps - sum(lengths)) / np.mean(lengths))))


def _unit_box(action_space):
    import gymnasium as gym

    return gym.spaces.Box(-1.0, 1.0, action_space.shape, np.float32)


def _env_actions(ep: Episode, action_space) -> Episode:
    """RLlib episodes hold the policy's normalized actions in [-1, 1] (its env runners rescale them to the
    env's bounds, ``normalize_actions=True``); the store keeps the actions the env received."""
    ep.actions = unit_to_box(ep.actions, action_space.low, action_space.high).astype(np.float32)
    return ep


def replay_episodes(buffer, action_space, policy: str) -> list[Episode]:
    """The buffer's complete episodes as store episodes, in env actions."""
    eps = []
    for idx in buffer.complete_episodes():
        T = len(idx)
        terminals, timeouts = np.zeros(T, bool), np.zeros(T, bool)
        terminals[-1] = bool(buffer.terminateds[idx[-1]])
        timeouts[-1] = not terminals[-1]
        ep = Episode(buffer.obs[idx], buffer.actions[idx], buffer.rewards[idx], terminals, timeouts,
                     final_observation=buffer.next_obs[idx[-1]], policy=policy)
        eps.append(_env_actions(ep, action_space))
    return eps


def _write(path: Path, episodes: list[Episode], env_id: str, description: str, extra: dict) -> EpisodeStore:
    from rayexp.data.d4rl import d4rl_ref_scores
    from rayexp.runs import git_commit

    if not episodes:
        raise RayexpError(f"no complete episodes for {path.name}; raise --steps or lower --max-episode-steps")
    ref = d4rl_ref_scores(env_id)
    meta = DatasetMeta(env_id=env_id, obs_dim=episodes[0].observations.shape[1], act_dim=episodes[0].actions.shape[1],
                       ref_min_score=ref[0] if ref else None, ref_max_score=ref[1] if ref else None,
                       source="rllib-sac-d4rl", description=f"{path.name}: {description} ({len(episodes)} episodes)",
                       extra={"tier": path.name, "commit": git_commit(), **extra})
    return write_dataset(path, episodes, meta, overwrite=True)
