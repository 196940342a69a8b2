"""Fig. 2.2-style check (thesis §2.4): what value-based methods expect on OOC states versus what they get.

Each RLlib method (discrete CQL: Q(s, a) of the action it takes, the smaller twin; a PPO expert: V(s)) drives its
own greedy rollouts on the test mixtures (OOC) and on the training compositions (ID); at every step its predicted
value sits beside the actual discounted return-to-go of the rest of the episode. Rows go to
RUN/roundabout_values.parquet; ``plot_fig_2_2`` draws them (OOC episodes, failed red / successful green, the mean
ID prediction per step grey dashed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def discounted_rtg(rewards: np.ndarray, gamma: float) -> np.ndarray:
    out, acc = np.zeros(len(rewards)), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        acc = rewards[t] + gamma * acc
        out[t] = acc
    return out


def predicted_value(module, obs):
    """Q(s, a_greedy) (min over twins) for a SAC/CQL module, V(s) for a PPO module; and the greedy action."""
    import torch

    with torch.no_grad():
        out = module.forward_inference({"obs": obs})
        action = int(out["action_dist_inputs"].argmax(-1)[0])
        if hasattr(module, "compute_q_values"):
            return float(module.compute_q_values({"obs": obs}, squeeze=False)[0, action]), action
        return float(module.compute_values({"obs": obs})[0]), action


def value_rollouts(m, env_id: str, seeds: list[int], gamma: float) -> list[dict]:
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModule

    from envs.registry import make_env

    module, env = RLModule.from_checkpoint(m.path), make_env(env_id)
    rows = []
    for ep, seed in enumerate(seeds):
        obs, _ = env.reset(seed=seed)
        values, rewards, done, info = [], [], False, {}
        while not done:
            v, a = predicted_value(module, torch.as_tensor(obs, dtype=torch.float32)[None])
            obs, r, term, trunc, info = env.step(a)
            values.append(v)
            rewards.append(r)
            done = term or trunc
        rtg = discounted_rtg(np.asarray(rewards), gamma)
        rows += [{"model": m.name, "episode": ep, "step": t, "predicted": values[t], "rtg": rtg[t],
                  "success": bool(info.get("is_success"))} for t in range(len(values))]
    return rows


def values_vs_rtg(cfg, run, rllib_methods: list, traffic: dict[str, str], episodes: int = 8) -> pd.DataFrame:
    """Rollouts of every RLlib method (``rayexp.families.roundabout.evaluate.Method``: offline_rl stages and PPO experts) on each
    traffic ({"ooc": env id, "id": env id})."""
    from rayexp.engine import episode_seed

    rows = []
    for m in rllib_methods:
        gamma = cfg.offline_rl[m.name].gamma if m.name in cfg.offline_rl else cfg.expert.gamma
        for kind, env_id in traffic.items():
            seeds = [episode_seed(cfg.evaluate.seed, 0, i) for i in range(episodes)]
            rows += [{**r, "traffic": kind} for r in value_rollouts(m, env_id, seeds, gamma)]
    df = pd.DataFrame(rows)
    df.to_parquet(Path(run.path) / "roundabout_values.parquet", index=False)
    return df


def plot_fig_2_2(df: pd.DataFrame, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rayexp.artifacts import save_figure

    models = list(dict.fromkeys(df["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 3.8), squeeze=False)
    for ax, model in zip(axes[0], models):
        d = df[df["model"] == model]
        for (_, ep), g in d[d["traffic"] == "ooc"].groupby(["traffic", "episode"]):
            color = "tab:green" if g["success"].iloc[0] else "tab:red"
            ax.plot(g["step"], g["predicted"], color=color, lw=1.5)
            ax.plot(g["step"], g["rtg"], color=color, lw=1, ls=":")
        ax.plot(*d[d["traffic"] == "id"].groupby("step")["predicted"].mean().reset_index().to_numpy().T, color="grey",
                ls="--", label="mean prediction, ID states")
        ax.set_title(f"{model}: predicted (solid) vs actual RTG (dotted)", fontsize=9)
        ax.set_xlabel("step (OOC episodes; red failed, green succeeded)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("value")
    return save_figure(fig, out)
