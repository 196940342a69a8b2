"""The episode store: one on-disk format for every rayexp dataset.

A dataset is a folder with three files, written atomically (temp folder, then rename):

    steps.parquet     one row per step: episode_id, t, obs, action, reward, terminal, timeout
    episodes.parquet  one row per episode: episode_id, length, return, success, seed, policy,
                      condition (JSON), final_obs (the observation after the last step)
    meta.json         env id, shapes, reference scores, provenance

Columns are named once, here. Observations and actions are fixed-size float32 lists, so the
steps file is read straight into (N, D) numpy arrays (or streamed by Ray Data).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rayexp.errors import DataError

FORMAT_VERSION = 1
STEP_COLUMNS = ("episode_id", "t", "obs", "action", "reward", "terminal", "timeout")
EPISODE_COLUMNS = ("episode_id", "length", "return", "success", "seed", "policy", "condition", "final_obs")


@dataclass
class Episode:
    """One episode. observations/actions are T, D; rewards/terminals/timeouts are T."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    final_observation: np.ndarray | None = None
    success: bool | None = None
    seed: int | None = None
    policy: str = ""
    condition: Any = None  # JSON-serialisable: the element combination, waypoints, ...

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def total_return(self) -> float:
        return float(np.sum(self.rewards))


@dataclass
class DatasetMeta:
    env_id: str
    obs_dim: int
    act_dim: int
    discrete_actions: bool = False
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    description: str = ""
    source: str = ""  # how it was made: "rllib-ppo", "d4rl-hdf5:<file>", "pd-controller", ...
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


def _fixed_list(arr: np.ndarray) -> pa.FixedSizeListArray:
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), arr.shape[1])


def _check_episode(i: int, ep: Episode, meta: DatasetMeta) -> None:
    T = len(ep.rewards)
    shapes = {"observations": (T, meta.obs_dim), "actions": (T, meta.act_dim), "terminals": (T,), "timeouts": (T,)}
    for name, want in shapes.items():
        got = np.shape(getattr(ep, name))
        if got != want:
            raise DataError(f"episode {i}: {name} has shape {got}, expected {want} (obs_dim={meta.obs_dim}, act_dim={meta.act_dim})")
    if T == 0:
        raise DataError(f"episode {i} is empty; drop it before writing")
    values = {"observations": ep.observations, "actions": ep.actions, "rewards": ep.rewards}
    if ep.final_observation is not None:
        values["final_observation"] = np.reshape(ep.final_observation, (1, -1))
    for name, arr in values.items():
        bad = ~np.isfinite(np.asarray(arr, dtype=np.float64))
        if bad.any():
            step = int(np.argwhere(bad)[0][0])
            where = "" if name == "final_observation" else f", first at step {step}"
            raise DataError(f"episode {i}: {name} has {int(bad.sum())} non-finite value(s) (NaN or inf){where}; "
                            "fix or drop that episode")


def write_dataset(path: str | Path, episodes: Iterable[Episode], meta: DatasetMeta, overwrite: bool = False) -> "EpisodeStore":
    """Write episodes to ``path`` atomically. Refuses to replace an existing dataset unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataError(f"dataset {path} already exists; pass --overwrite or choose another path")
    episodes = list(episodes)
    if not episodes:
        raise DataError(f"no episodes to write to {path}")
    for i, ep in enumerate(episodes):
        try:
            _check_episode(i, ep, meta)
        except DataError as e:
            raise DataError(f"refusing to write dataset {path}: {e}") from None
    lengths = np.array([len(ep) for ep in episodes])
    steps = pa.table({
        "episode_id": pa.array(np.repeat(np.arange(len(episodes)), lengths).astype(np.int64)),
        "t": pa.array(np.concatenate([np.arange(n) for n in lengths]).astype(np.int32)),
        "obs": _fixed_list(np.concatenate([ep.observations for ep in episodes])),
        "action": _fixed_list(np.concatenate([ep.actions for ep in episodes])),
        "reward": pa.array(np.concatenate([ep.rewards for ep in episodes]).astype(np.float32)),
        "terminal": pa.array(np.concatenate([ep.terminals for ep in episodes]).astype(bool)),
        "timeout": pa.array(np.concatenate([ep.timeouts for ep in episodes]).astype(bool)),
    })
    final = [ep.final_observation if ep.final_observation is not None else ep.observations[-1] for ep in episodes]
    table = pa.table({
        "episode_id": pa.array(np.arange(len(episodes), dtype=np.int64)),
        "length": pa.array(lengths.astype(np.int64)),
        "return": pa.array([ep.total_return for ep in episodes], pa.float64()),
        "success": pa.array([ep.success for ep in episodes], pa.bool_()),
        "seed": pa.array([ep.seed for ep in episodes], pa.int64()),
        "policy": pa.array([ep.policy for ep in episodes], pa.string()),
        "condition": pa.array([json.dumps(ep.condition) for ep in episodes], pa.string()),
        "final_obs": _fixed_list(np.stack(final)),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        pq.write_table(steps, tmp / "steps.parquet")
        pq.write_table(table, tmp / "episodes.parquet")
        (tmp / "meta.json").write_text(json.dumps(meta.__dict__, indent=2))
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return EpisodeStore(path)


class EpisodeStore:
    """Reads and validates a dataset folder written by ``write_dataset``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(f"dataset {self.path} does not exist; create it with `rayexp collect` or import one")
        for name in ("meta.json", "steps.parquet", "episodes.parquet"):
            if not (self.path / name).is_file():
                raise DataError(f"dataset {self.path} is missing {name}; it is incomplete, re-create it")
        try:
            raw = json.loads((self.path / "meta.json").read_text())
            self.meta = DatasetMeta(**raw)
        except (ValueError, TypeError) as e:
            raise DataError(f"{self.path / 'meta.json'} is not a valid rayexp dataset meta file ({e}); re-create the dataset") from None
        if self.meta.format_version != FORMAT_VERSION:
            raise DataError(f"{self.path} has format version {self.meta.format_version}, this rayexp reads {FORMAT_VERSION}")
        self._check_schema("steps.parquet", STEP_COLUMNS, {"obs": self.meta.obs_dim, "action": self.meta.act_dim})
        self._check_schema("episodes.parquet", EPISODE_COLUMNS, {"final_obs": self.meta.obs_dim})

    def _check_schema(self, name: str, columns: tuple[str, ...], widths: dict[str, int]) -> None:
        file = self.path / name
        try:
            schema = pq.read_schema(file)
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"{file} is corrupt or not Parquet ({e}); re-create the dataset") from None
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise DataError(f"{file} lacks column(s) {missing}; expected {list(columns)}")
        for col, width in widths.items():
            typ = schema.field(col).type
            if not pa.types.is_fixed_size_list(typ) or typ.list_size != width:
                raise DataError(f"{file}: column {col!r} has type {typ}, but meta.json says width {width}")

    def _read(self, name: str) -> pa.Table:
        try:
            return pq.read_table(self.path / name)
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"{self.path / name} is corrupt ({e}); re-create the dataset") from None

    def episodes(self) -> "pa.Table":
        """The per-episode table (use ``.to_pandas()`` for a DataFrame)."""
        return self._read("episodes.parquet")

    def arrays(self) -> dict[str, np.ndarray]:
        """All steps as flat numpy arrays: obs N,obs_dim; action N,act_dim; reward, terminal, timeout, episode_id, t."""
        steps = self._read("steps.parquet")
        out = {}
        for col in STEP_COLUMNS:
            column = steps.column(col).combine_chunks()
            if pa.types.is_fixed_size_list(column.type):
                out[col] = column.flatten().to_numpy().reshape(len(column), column.type.list_size)
            else:
                out[col] = column.to_numpy(zero_copy_only=False)
        self._check_finite(out)
        lengths = self.episodes().column("length").to_numpy()
        if lengths.sum() != len(out["reward"]) or not np.array_equal(np.bincount(out["episode_id"], minlength=len(lengths)), lengths):
            raise DataError(f"{self.path}: steps.parquet and episodes.parquet disagree on episode lengths; re-create the dataset")
        return out

    def _check_finite(self, a: dict[str, np.ndarray]) -> None:
        """Refuse NaN / inf in obs, action or reward, naming the column, the count and the first episode and step."""
        for col in ("obs", "action", "reward"):
            bad = ~np.isfinite(a[col])
            if bad.ndim > 1:
                bad = bad.any(axis=1)
            if bad.any():
                row = int(np.argmax(bad))
                raise DataError(f"dataset {self.path}: column {col!r} has non-finite values (NaN or inf) in {int(bad.sum())} "
                                f"step(s), first at episode {int(a['episode_id'][row])} step {int(a['t'][row])}; "
                                "clean or re-create the dataset")

    def validate_values(self) -> "EpisodeStore":
        """Read every step once and refuse non-finite values or mismatched tables (``arrays`` does the checks)."""
        self.arrays()
        return self

    def iter_episodes(self) -> Iterator[Episode]:
        a = self.arrays()
        ep = self.episodes().to_pylist()
        bounds = np.concatenate([[0], np.cumsum([e["length"] for e in ep])])
        for e, lo, hi in zip(ep, bounds[:-1], bounds[1:]):
            yield Episode(
                observations=a["obs"][lo:hi], actions=a["action"][lo:hi], rewards=a["reward"][lo:hi],
                terminals=a["terminal"][lo:hi], timeouts=a["timeout"][lo:hi],
                final_observation=np.asarray(e["final_obs"], dtype=np.float32), success=e["success"],
                seed=e["seed"], policy=e["policy"], condition=json.loads(e["condition"]),
            )

    def __len__(self) -> int:
        return pq.read_metadata(self.path / "episodes.parquet").num_rows

    @property
    def num_steps(self) -> int:
        return pq.read_metadata(self.path / "steps.parquet").num_rows

    def to_ray_dataset(self):
        """Stream the steps table with Ray Data (one large file, so reads are fast)."""
        import ray.data

        return ray.data.read_parquet(str(self.path / "steps.parquet"))

    def summary(self) -> dict[str, Any]:
        self.validate_values()  # a NaN step would otherwise show as return_mean nan/inf, its episode unnamed
        ep = self.episodes().to_pandas()
        rets = ep["return"]
        return {
            "path": str(self.path), "env_id": self.meta.env_id, "episodes": len(ep), "steps": int(ep["length"].sum()),
            "obs_dim": self.meta.obs_dim, "act_dim": self.meta.act_dim,
            "return_mean": float(rets.mean()), "return_min": float(rets.min()), "return_max": float(rets.max()),
            "success_rate": float(ep["success"].astype(float).mean()) if ep["success"].notna().any() else None,
            "policies": sorted(set(ep["policy"])), "source": self.meta.source,
        }
