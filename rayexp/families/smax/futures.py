"""Fig. 2.5-style picture: the futures an ego planner predicts from ONE start observation under different unit-type
conditions (the enemies' types rewritten in the observation the condition is read from). The same sampling noise
is used for every condition, so the differences between the panels' paths come from the condition alone."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from envs.smax import CONDITION_TYPES, OTHER_FEATURES, OWN_FEATURES, units_from_obs_dim, with_unit_types
from rayexp.artifacts import save_figure
from rayexp.errors import RayexpError


def enemy_conditions(n: int) -> dict[str, list[str]]:
    """Label -> enemy types: each single type, and a Stalker / Zealot / Colossus mixture."""
    mixed = [CONDITION_TYPES[i % len(CONDITION_TYPES)] for i in range(n)]
    return {**{f"{n} x {t}": [t] * n for t in CONDITION_TYPES}, "mixed: " + "/".join(mixed): mixed}


def predict_futures(policy, start_obs: np.ndarray, samples: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Label -> predicted observations samples, H, obs_dim, for the true condition and each ``enemy_conditions``."""
    if not hasattr(policy, "sample"):
        raise RayexpError("the futures figure needs a planner stage (planner or planner_ctd), which predicts states")
    start = np.repeat(np.asarray(start_obs, np.float32)[None], samples, axis=0)
    conds = {"true": start, **{k: with_unit_types(start, enemies=v)
                               for k, v in enemy_conditions(units_from_obs_dim(start.shape[-1])).items()}}
    out = {}
    for label, cond_obs in conds.items():
        torch.manual_seed(seed)
        states, _ = policy.sample(torch.as_tensor(start), condition_obs=torch.as_tensor(cond_obs))
        out[label] = states.numpy()
    return out


def plot_futures(futures: dict[str, np.ndarray], out: Path) -> Path:
    """Own position (x, y) paths per condition (thin: samples, thick: mean) and own health over the horizon."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    own = -OWN_FEATURES  # own block: health, x, y, weapon cooldown, type bits
    fig, (ax_xy, ax_h) = plt.subplots(1, 2, figsize=(10, 4.2))
    for k, (label, s) in enumerate(futures.items()):
        color, style = ("k", "--") if label == "true" else (f"C{k}", "-")
        for path in s:
            ax_xy.plot(path[:, own + 1], path[:, own + 2], color=color, alpha=0.2, lw=0.8)
        mean = s.mean(0)
        ax_xy.plot(mean[:, own + 1], mean[:, own + 2], color=color, ls=style, lw=2.2, label=label, zorder=4 * (label == "true"))
        ax_h.plot(mean[:, own], color=color, ls=style, lw=2, label=label, zorder=4 * (label == "true"))
    start = next(iter(futures.values()))[0, 0]
    ax_xy.scatter([start[own + 1]], [start[own + 2]], color="k", marker="*", s=120, zorder=3, label="start")
    ax_xy.set(xlabel="own x (observation units)", ylabel="own y", title="predicted own path per enemy condition")
    ax_h.set(xlabel="planned step", ylabel="own health (predicted)", title="predicted own health")
    ax_xy.legend(fontsize=7)
    return save_figure(fig, out)


def futures_figure(model_path: str | Path, dataset: str | Path, out: str | Path, samples: int = 8, seed: int = 0) -> Path:
    """Fig. 2.5 for a trained planner stage, from the first observation in ``dataset`` that sees every unit."""
    from rayexp.data.store import EpisodeStore
    from rayexp.train import load_model

    method, model, spec = load_model(model_path)
    start = next((ep.observations[0] for ep in EpisodeStore(dataset).iter_episodes() if _sees_all(ep.observations[0])), None)
    if start is None:
        raise RayexpError(f"{dataset}: no episode starts with every unit in sight; pass another dataset")
    return plot_futures(predict_futures(method.make_policy(model, spec), start, samples, seed), Path(out))


def _sees_all(obs: np.ndarray) -> bool:
    n = units_from_obs_dim(obs.shape[-1])
    return bool((obs[:(2 * n - 1) * OTHER_FEATURES].reshape(2 * n - 1, OTHER_FEATURES)[:, 0] > 0).all())
