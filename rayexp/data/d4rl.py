"""D4RL hdf5 layout in and out, and D4RL normalized scores.

Layout: ``observations`` (N, obs), ``actions`` (N, act), ``rewards`` (N,), ``terminals`` (N,),
``timeouts`` (N,), optionally ``next_observations`` and ``infos/*``. Episodes end where
``terminals`` or ``timeouts`` is set; a trailing unfinished piece is kept as a timed-out episode.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rayexp.data.store import DatasetMeta, Episode, EpisodeStore, write_dataset
from rayexp.errors import DataError

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")

# (random return, expert return) from D4RL; see shared/REFERENCE.md.
D4RL_REF_SCORES = {
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "halfcheetah": (-280.178953, 12135.0),
    "maze2d-umaze": (23.85, 161.86),
    "maze2d-medium": (13.13, 277.39),
    "maze2d-large": (6.7, 273.99),
}


def normalized_score(total_return: float | np.ndarray, ref_min: float, ref_max: float) -> float | np.ndarray:
    """D4RL's normalization: 100 * (return - random) / (expert - random)."""
    return 100.0 * (np.asarray(total_return) - ref_min) / (ref_max - ref_min)


def d4rl_ref_scores(name: str) -> tuple[float, float] | None:
    """Reference (min, max) for an env or dataset name such as 'Hopper-v5' or 'hopper-medium-v2'."""
    key = name.lower()
    for env in sorted(D4RL_REF_SCORES, key=len, reverse=True):
        if key.startswith(env):
            return D4RL_REF_SCORES[env]
    return None


def import_d4rl_hdf5(h5_path: str | Path, out: str | Path, env_id: str, overwrite: bool = False) -> EpisodeStore:
    import h5py

    h5_path = Path(h5_path)
    if not h5_path.is_file():
        raise DataError(f"D4RL file {h5_path} does not exist")
    try:
        with h5py.File(h5_path, "r") as f:
            missing = [k for k in REQUIRED_KEYS if k not in f]
            if missing:
                raise DataError(f"{h5_path} lacks D4RL key(s) {missing}; a D4RL file has {list(REQUIRED_KEYS)}")
            data = {k: f[k][()] for k in REQUIRED_KEYS}
            next_obs = f["next_observations"][()] if "next_observations" in f else None
    except OSError as e:
        raise DataError(f"{h5_path} is not a readable hdf5 file ({e})") from None
    n = len(data["rewards"])
    obs, act = data["observations"], data["actions"]
    for k in REQUIRED_KEYS:
        if len(data[k]) != n:
            raise DataError(f"{h5_path}: '{k}' has {len(data[k])} rows but 'rewards' has {n}; the file is mismatched")
    if obs.ndim != 2 or act.ndim != 2:
        raise DataError(f"{h5_path}: observations and actions must be 2-D, got {obs.shape} and {act.shape}")
    ends = np.flatnonzero(data["terminals"].astype(bool) | data["timeouts"].astype(bool))
    if len(ends) == 0 or ends[-1] != n - 1:
        ends = np.append(ends, n - 1)
    episodes, start = [], 0
    for end in ends:
        sl = slice(start, end + 1)
        timeouts = data["timeouts"][sl].astype(bool).copy()
        if end == n - 1 and not (data["terminals"][end] or data["timeouts"][end]):
            timeouts[-1] = True
        final = next_obs[end] if next_obs is not None else obs[end]
        episodes.append(Episode(obs[sl], act[sl], data["rewards"][sl], data["terminals"][sl].astype(bool), timeouts,
                                final_observation=final, policy="d4rl"))
        start = end + 1
    ref = d4rl_ref_scores(h5_path.stem) or d4rl_ref_scores(env_id)
    meta = DatasetMeta(env_id=env_id, obs_dim=obs.shape[1], act_dim=act.shape[1], source=f"d4rl-hdf5:{h5_path.name}",
                       ref_min_score=ref[0] if ref else None, ref_max_score=ref[1] if ref else None)
    return write_dataset(out, episodes, meta, overwrite=overwrite)


def export_d4rl_hdf5(store: EpisodeStore, h5_path: str | Path) -> Path:
    """Write a dataset in the D4RL layout (with next_observations), atomically."""
    import h5py

    h5_path = Path(h5_path)
    a = store.arrays()
    final = np.stack(store.episodes().column("final_obs").to_numpy(zero_copy_only=False))
    next_obs = np.empty_like(a["obs"])
    next_obs[:-1] = a["obs"][1:]
    last = np.flatnonzero(np.diff(a["episode_id"], append=-1) != 0)
    next_obs[last] = final
    tmp = h5_path.with_name(h5_path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f["observations"] = a["obs"]
        f["actions"] = a["action"]
        f["rewards"] = a["reward"]
        f["terminals"] = a["terminal"]
        f["timeouts"] = a["timeout"]
        f["next_observations"] = next_obs
    tmp.replace(h5_path)
    return h5_path
