"""Parallel evaluation: episodes spread over Ray actors (``rayexp.engine``), each holding its env and a policy copy.

Episode i of evaluation seed k always runs on env seed ``episode_seed(evaluate.seed, k, i)`` whichever actor gets
it, and rows are sorted, so 1 actor and N actors give the same numbers. A policy is a trained stage (a
``models/<stage>.pt`` file) or an RLlib RLModule folder (an ``offline_rl`` stage). Rows: ``rayexp.rows``.
"""
from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd

from rayexp.engine import episode_seed, run_on_actors


def run_episode(env, policy, seed: int, obs_history: int, execute: str, chunk: int | None, max_steps: int | None = None) -> dict:
    """Roll out one episode closed loop: plan an action chunk from the last h observations, execute."""
    import torch

    obs, _ = env.reset(seed=seed)
    check_finite_obs(obs, env, seed, 0)
    torch.manual_seed(seed)  # samplers draw noise: the episode's seed fixes it, whichever actor runs the episode
    hist = deque([obs] * obs_history, maxlen=obs_history)
    total, steps, plans, plan_time, success = 0.0, 0, 0, 0.0, None
    done = False
    while not done:
        t0 = time.perf_counter()
        x = torch.as_tensor(np.stack(hist), dtype=torch.float32)[None]
        actions = policy(x)[0].cpu().numpy()  # .cpu() waits for a GPU's kernels: the time below is the real latency
        plan_time += time.perf_counter() - t0
        plans += 1
        n_exec = 1 if execute == "first" else min(chunk or len(actions), len(actions))
        for a in actions[:n_exec]:
            if hasattr(env.action_space, "low"):
                a = np.clip(a, env.action_space.low, env.action_space.high)
            elif hasattr(env.action_space, "n"):  # one-hot scores -> the best-scoring action
                a = int(np.argmax(a)) + int(env.action_space.start)
            obs, r, terminated, truncated, info = env.step(a)
            check_finite_obs(obs, env, seed, steps + 1)
            hist.append(obs)
            total += float(r)
            steps += 1
            done = terminated or truncated or (max_steps is not None and steps >= max_steps)
            if done:
                from envs.registry import episode_success

                success = episode_success(info, terminated, truncated)
                break
    return {"return": total, "length": steps, "success": success, "plans": plans,
            "ms_per_plan": 1000 * plan_time / plans, "ms_per_action": 1000 * plan_time / steps}


def check_finite_obs(obs, env, seed: int, step: int) -> None:
    """Refuse a NaN / inf observation: a policy fed one returns garbage that would be reported as a normal score."""
    if not np.isfinite(np.asarray(obs, dtype=np.float64)).all():
        from rayexp.errors import RayexpError

        name = env.spec.id if env.spec is not None else type(env).__name__
        raise RayexpError(f"env {name} returned a non-finite observation (NaN or inf) at step {step} of the episode "
                          f"with seed {seed}; fix the env or its wrappers (nothing was recorded)")


class EvalWorker:
    """Holds one env and one policy per model (a model file, or an RLlib module folder); runs whole episodes."""

    def __init__(self, env_cfg: dict, model_paths: dict[str, str], eval_cfg: dict, threads: int = 1):
        import ray
        import torch

        from algorithms.nfe import NetworkCalls
        from envs.registry import make_env
        from rayexp.train import load_model

        torch.set_num_threads(threads)
        self.env = make_env(env_cfg["id"], split=env_cfg.get("split"), max_episode_steps=env_cfg.get("max_episode_steps"),
                            **env_cfg.get("kwargs", {}))
        self.eval_cfg, self.env_id = eval_cfg, env_cfg["id"]
        self.policies = {}
        self.calls: dict[str, NetworkCalls | None] = {}  # None: an RLlib module, one forward pass per action
        # an actor given a (fractional) GPU by evaluate.gpus_per_actor runs its policies there
        self.device = torch.device("cuda" if ray.is_initialized() and ray.get_gpu_ids() else "cpu")
        for name, path in model_paths.items():
            if Path(path).is_dir():  # an RLlib module: one forward pass per action
                from ray.rllib.core.rl_module.rl_module import RLModule

                module = RLModule.from_checkpoint(path)
                self.policies[name] = (rllib_policy(module, self.env.action_space), 1)
                self.calls[name] = None
                continue
            method, model, spec = load_model(path)
            model.to(self.device)
            self.calls[name] = NetworkCalls(model)
            self.policies[name] = (method.make_policy(model, spec), spec.obs_history)

    def run(self, model: str, seed_index: int, episode: int, seed: int) -> dict:
        policy, obs_history = self.policies[model]
        calls = self.calls[model]
        if calls is not None:
            calls.count = 0
        out = run_episode(self.env, policy, seed, obs_history, self.eval_cfg["execute"], self.eval_cfg.get("chunk"))
        nfe = 1.0 if calls is None else calls.count / out["plans"]
        return {"model": model, "task": self.env_id, "seed_index": seed_index, "episode": episode, "seed": seed,
                "nfe": nfe, **out}


def rllib_policy(module, action_space):
    """Wrap an RLlib RLModule as a rayexp policy: x (B, h, obs_dim) -> deterministic actions (B, 1, act_dim);
    discrete actions come back one-hot (as the store holds them; ``run_episode`` takes the argmax)."""
    import torch

    from envs.actions import unit_to_box

    dist_cls = module.get_inference_action_dist_cls()

    def policy(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = module.forward_inference({"obs": x[:, -1]})
            a = dist_cls.from_logits(out["action_dist_inputs"]).to_deterministic().sample()
        if hasattr(action_space, "n"):
            return torch.nn.functional.one_hot(a.long() - int(action_space.start), int(action_space.n)).float()[:, None]
        return unit_to_box(a, torch.as_tensor(action_space.low), torch.as_tensor(action_space.high))[:, None]

    return policy


def evaluate(env_cfg: dict, model_paths: dict[str, str], eval_cfg: dict, num_actors: int,
             ref_scores: tuple[float, float] | None = None) -> pd.DataFrame:
    """Every model on ``seeds`` x ``episodes`` seeded episodes over ``num_actors`` actors; one row per episode."""
    from rayexp.cluster import require_gpus

    gpus = eval_cfg.get("gpus_per_actor", 0.0)
    require_gpus("evaluate.gpus_per_actor", gpus)  # a fraction: several actors share one GPU
    jobs = [(m, k, i, episode_seed(eval_cfg["seed"], k, i)) for m in model_paths
            for k in range(eval_cfg.get("seeds", 1)) for i in range(eval_cfg["episodes"])]
    rows = run_on_actors(EvalWorker, (env_cfg, model_paths, eval_cfg), jobs, num_actors, "evaluate", num_gpus=gpus)
    df = pd.DataFrame(rows).sort_values(["model", "seed_index", "episode"]).reset_index(drop=True)
    if ref_scores is not None:
        from rayexp.data.d4rl import normalized_score

        df["normalized_score"] = normalized_score(df["return"].to_numpy(), *ref_scores)
    return df
