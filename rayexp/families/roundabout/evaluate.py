"""Roundabout OOC evaluation (thesis §2.6.2, Fig. 2.3, Tables A.5-A.6): every method on the test mixtures (OOC)
and on the training compositions (ID); crashes per 100 episodes and mean reward, mean ± s.e. over seeds.

Methods: the run's trained stages (BC, Large BC, planner, ...), its RLlib offline baselines (``offline_rl``, e.g.
discrete CQL), its PPO expert(s) (``family.experts``) and planners with a random type condition
(``family.random_condition``, Table A.6). Episode i of seed k runs on env seed ``evaluate.seed + 100000 k + i``,
whichever Ray actor gets it. Each (method, traffic, seed k) is one job of ``rayexp.engine`` running its episodes in lockstep with one
batched policy call per step (``run_lockstep``; replanning every step, Algorithm 1), torch seeded by the seed's first
episode: the batches never depend on ``evaluate.num_actors``, which only caps the tasks in flight, so 1 actor and N
give the same rows.
Rows (``rayexp.rows``; task ``ooc`` / ``id``, plus ``crashed`` and ``params``) go to RUN/eval.parquet;
``rayexp.families.roundabout.report`` turns them into the tables and figure.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rayexp.config import ExperimentConfig
from rayexp.errors import RayexpError
from rayexp.rows import summarize, write_run_rows
from rayexp.runs import Run

RANDOM_SUFFIX = "-random-cond"


@dataclass(frozen=True)
class Method:
    """One evaluated row: a trained stage (``models/<stage>.pt``) or an RLlib RLModule folder."""

    name: str
    kind: str  # "stage" | "rllib"
    path: str
    random_condition: bool = False


def traffic_envs(env_id: str) -> dict[str, str]:
    """{"ooc": test-mixture env id, "id": training-composition env id} for a roundabout env id."""
    base = env_id.removesuffix("-test")
    return {"ooc": f"{base}-test", "id": base}


def methods(cfg: ExperimentConfig, run: Run) -> list[Method]:
    from rayexp.collect import expert_module_dir

    names = cfg.evaluate.models or list(cfg.models) + list(cfg.offline_rl)
    out = [Method(m, "stage", str(run.model_path(m))) if m in cfg.models else
           Method(m, "rllib", str(run.offline_module(m))) for m in names]
    out += [Method(m + RANDOM_SUFFIX, "stage", str(run.model_path(m)), True) for m in cfg.family.random_condition]
    if cfg.family.experts:
        out += [Method(f"ppo-{e}" if e else "ppo", "rllib", str(expert_module_dir(run.path / "expert" / e)))
                for e in (cfg.collect.experts or {"": {}})]
    missing = [m.name for m in out if not Path(m.path).exists()]
    if missing:
        raise RayexpError(f"no trained {', '.join(missing)} in {run.path}; run `rayexp collect` / `rayexp train` first")
    return out


def randomize_types(obs, vehicles_count: int = 5):
    """B, V*F torch observations with each visible other vehicle's type replaced by a random car / bicycle code
    (torch's generator, so the episode seed fixes the draw)."""
    import torch

    from envs.roundabout import FEATURES, TYPE_CODES

    rows = obs.clone().view(len(obs), vehicles_count, len(FEATURES))
    visible = rows[:, 1:, FEATURES.index("presence")] > 0
    draw = torch.where(torch.rand(visible.shape) < 0.5, TYPE_CODES["car"], TYPE_CODES["bicycle"])
    t = FEATURES.index("type")
    rows[:, 1:, t] = torch.where(visible, draw, rows[:, 1:, t])
    return rows.view(len(obs), -1)


def random_condition_policy(planner_policy):
    """The planner, inpainting the true observation but conditioned on random vehicle types."""
    def policy(obs_hist):
        import torch

        obs = torch.as_tensor(obs_hist, dtype=torch.float32)[:, -1]
        return planner_policy.sample(obs, condition_obs=randomize_types(obs))[1]

    return policy


def load_policy(m: Method, action_space):
    """(policy, obs_history, parameter count) for one method."""
    if m.kind == "rllib":
        from ray.rllib.core.rl_module.rl_module import RLModule

        from rayexp.evaluate import rllib_policy

        module = RLModule.from_checkpoint(m.path)
        return rllib_policy(module, action_space), 1, sum(p.numel() for p in module.parameters())
    from rayexp.train import load_model

    method, model, spec = load_model(m.path)
    policy = method.make_policy(model, spec)
    if m.random_condition:
        policy = random_condition_policy(policy)
    return policy, spec.obs_history, sum(p.numel() for p in model.parameters())


def act(action_scores: np.ndarray, space):
    """One policy output row -> the env action (argmax of one-hot scores for Discrete, clipped for Box)."""
    if hasattr(space, "n"):
        return int(np.argmax(action_scores)) + int(space.start)
    return np.clip(action_scores, space.low, space.high)


def run_lockstep(envs: list, policy, seeds: list[int], obs_history: int) -> list[dict]:
    """Roll out one episode per env in lockstep, replanning every step with ONE batched policy call for all
    running episodes (Algorithm 1, first action executed). Batching amortises the per-call cost of a diffusion
    planner (80 network evaluations per action) over the episodes; torch is seeded with ``seeds[0]``, so sampler
    noise depends on the batch: callers keep the batches fixed. ms_per_action: batched planning time / actions taken."""
    import torch

    torch.manual_seed(seeds[0])
    hist = [deque([env.reset(seed=s)[0]] * obs_history, maxlen=obs_history) for env, s in zip(envs, seeds)]
    ret, length, done = np.zeros(len(envs)), np.zeros(len(envs), int), np.zeros(len(envs), bool)
    success, plan_time = [None] * len(envs), 0.0
    while not done.all():
        live = np.flatnonzero(~done)
        t0 = time.perf_counter()
        scores = policy(torch.as_tensor(np.stack([np.stack(hist[i]) for i in live]), dtype=torch.float32))
        plan_time += time.perf_counter() - t0
        for row, i in zip(scores[:, 0].cpu().numpy(), live):
            obs, r, term, trunc, info = envs[i].step(act(row, envs[i].action_space))
            hist[i].append(obs)
            ret[i], length[i], done[i] = ret[i] + r, length[i] + 1, term or trunc
            success[i] = bool(info.get("is_success")) if done[i] else None
    ms = 1000 * plan_time / length.sum()
    return [{"return": float(ret[i]), "length": int(length[i]), "success": success[i],
             "crashed": bool(env.unwrapped.vehicle.crashed), "ms_per_action": ms} for i, env in enumerate(envs)]


def run_chunk(m: Method, traffic: str, env_cfg: dict, jobs: list[tuple[int, int, int]]) -> list[dict]:
    """Episodes (seed_index, episode, env_seed) of one method on one traffic, all in lockstep (one env each);
    a crash is the ego's crashed flag at the end of the episode."""
    import torch

    from envs.registry import make_env

    torch.set_num_threads(1)
    envs = [make_env(env_cfg["id"], split=env_cfg.get("split"), **env_cfg.get("kwargs", {})) for _ in jobs]
    policy, h, params = load_policy(m, envs[0].action_space)
    outs = run_lockstep(envs, policy, [seed for *_, seed in jobs], h)
    return [{"model": m.name, "task": traffic, "seed_index": k, "episode": i, "seed": seed, "params": params, **out}
            for (k, i, seed), out in zip(jobs, outs)]


class ChunkWorker:
    """An evaluation actor: ``run(method, traffic, env_cfg, jobs)`` plays ``run_chunk``."""

    def run(self, m: Method, traffic: str, env_cfg: dict, jobs: list[tuple[int, int, int]]) -> list[dict]:
        return run_chunk(m, traffic, env_cfg, jobs)


def evaluate_roundabout(cfg: ExperimentConfig, run: Run, keep_others: bool = False) -> pd.DataFrame:
    """Every method x traffic x seed x episode over ``evaluate.num_actors`` actors, one seed's episodes in lockstep
    per job; writes RUN/eval.parquet (``keep_others``: with the earlier rows of the methods not evaluated now)."""
    from rayexp.engine import episode_seed, run_on_actors

    e = cfg.evaluate
    if e.execute != "first":
        raise RayexpError("evaluate.execute: the roundabout evaluation replans every step (Algorithm 1); set evaluate.execute=first")
    batches = [[(k, i, episode_seed(e.seed, k, i)) for i in range(e.episodes)] for k in range(e.seeds)]
    calls = [(m, traffic, {"id": env_id, "split": cfg.env.split, "kwargs": cfg.env.kwargs}, batch)
             for m in methods(cfg, run) for traffic, env_id in traffic_envs(cfg.env.id).items() for batch in batches]
    df = pd.DataFrame(run_on_actors(ChunkWorker, (), calls, e.num_actors, "roundabout evaluate"))
    df = df.sort_values(["model", "task", "seed_index", "episode"]).reset_index(drop=True)
    return write_run_rows(run.path, df, replace_models_only=keep_others)


def summarize_roundabout(df: pd.DataFrame) -> pd.DataFrame:
    """The thesis' view of ``rayexp.rows.summarize`` per (model, traffic): crashes per 100 episodes and reward,
    mean ± s.e. over seeds."""
    s = summarize(df, scores=("crashed",))
    return pd.DataFrame({
        "model": s["model"], "traffic": s["task"], "crashes_mean": 100 * s["crashed_mean"],
        "crashes_sem": 100 * s["crashed_sem"], "reward_mean": s["return_mean"], "reward_sem": s["return_sem"],
        "seeds": s["seeds"], "episodes_per_seed": s["episodes"] // s["seeds"], "params": s["params"],
        "ms_per_action": s["ms_per_action"]})


def run_roundabout_evaluate(cfg: ExperimentConfig, run: Run, models: list[str] | None = None) -> pd.DataFrame:
    if models:  # only these stages (and their random-condition rows); the other methods' rows are kept
        fam = cfg.family.model_copy(update={"experts": False,
                                            "random_condition": [m for m in cfg.family.random_condition if m in models]})
        cfg = cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update={"models": list(models)}), "family": fam})
    df = evaluate_roundabout(cfg, run, keep_others=bool(models))
    summary = summarize_roundabout(df)
    rllib = [m for m in methods(cfg, run) if m.kind == "rllib"]
    if rllib:  # Fig. 2.2 data, when an RLlib method was evaluated now
        from rayexp.families.roundabout.values import values_vs_rtg

        values_vs_rtg(cfg, run, rllib, traffic_envs(cfg.env.id), episodes=min(cfg.evaluate.episodes, 10))
    return summary
