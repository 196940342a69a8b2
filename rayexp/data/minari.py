"""Minari datasets in and out of the episode store.

Minari keeps N+1 observations per episode (the last is the observation after the last step); the
store keeps N plus ``final_obs``. ``terminations``/``truncations`` map to ``terminal``/``timeout``.

Per-episode metadata written on export (read back on import when present): ``seed``, ``policy``,
``success`` and ``condition`` (a JSON string). A Minari episode with reset ``options`` but no
``condition`` gets the options as its condition. The store's whole ``DatasetMeta`` travels in the
dataset metadata under ``rayexp_meta``, so store -> Minari -> store is lossless.

Discrete actions are kept in the store as one-hot float vectors (act_dim = number of actions,
``discrete_actions=True``): every network sees a fixed-width float action and argmax decodes it.
Minari gets the integer index (a ``Discrete(act_dim)`` action space).

Nothing here downloads: ids are looked up under MINARI_DATASETS_PATH (default ~/.minari/datasets).
``minari`` and ``gymnasium`` are imported inside the functions, so importing this module is cheap.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rayexp.data.store import DatasetMeta, Episode, EpisodeStore, write_dataset
from rayexp.errors import DataError

# namespace segments, then the dataset name with a version: mujoco/hopper/medium-v0, cartpole-v1
MINARI_ID_RE = re.compile(r"^(?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+-v\d+$")
EPISODE_KEYS = ("seed", "policy", "success", "condition")


def check_minari_id(dataset_id: str) -> str:
    namespace = (dataset_id or "").rpartition("/")[0]
    if not MINARI_ID_RE.fullmatch(dataset_id or "") or len(namespace) == 1:  # Minari wants a namespace of 2+ chars
        raise DataError(f"bad Minari dataset id {dataset_id!r}: expected (namespace/)name-vN, "
                        "e.g. mujoco/hopper/medium-v0 or D4RL/pointmaze/umaze-v2")
    return dataset_id


def minari_root(path: str | Path | None = None) -> Path:
    """Where Minari datasets live: ``path``, else MINARI_DATASETS_PATH, else ~/.minari/datasets.

    Minari's own ``get_dataset_path`` creates the folder as a side effect; this does not.
    """
    if path is not None:
        return Path(path)
    return Path(os.environ.get("MINARI_DATASETS_PATH") or Path.home() / ".minari" / "datasets")


# ---------------------------------------------------------------------------------------- export

def _spaces(meta: DatasetMeta, env: Any):
    """Observation and action spaces: the env's when they fit the store's shapes, else plain Boxes."""
    from gymnasium import spaces

    obs = spaces.Box(-np.inf, np.inf, (meta.obs_dim,), np.float32)
    start = int(meta.extra.get("discrete_start", 0))  # set by import_minari for Discrete(n, start)
    act = spaces.Discrete(meta.act_dim, start=start) if meta.discrete_actions else spaces.Box(-np.inf, np.inf, (meta.act_dim,), np.float32)
    if env is not None:
        eo, ea = env.observation_space, env.action_space
        if isinstance(eo, spaces.Box) and eo.shape == (meta.obs_dim,):
            obs = eo
        if meta.discrete_actions and isinstance(ea, spaces.Discrete) and ea.n == meta.act_dim and ea.start == start:
            act = ea
        elif not meta.discrete_actions and isinstance(ea, spaces.Box) and ea.shape == (meta.act_dim,):
            act = ea
    return obs, act


def _make_env(env_id: str):
    """The gymnasium env for ``env_id``, or None when gymnasium cannot make it here."""
    import gymnasium as gym

    try:
        return gym.make(env_id)
    except Exception:  # unregistered id, missing simulator: export without an env spec
        return None


def _episode_buffers(store: EpisodeStore, meta: DatasetMeta, obs_space, act_space) -> tuple[list, list[dict]]:
    from minari.data_collector.episode_buffer import EpisodeBuffer

    a = store.arrays()
    table = store.episodes().to_pylist()
    actions = a["action"]
    if meta.discrete_actions:
        if not np.all((actions == 0) | (actions == 1)) or not np.all(actions.sum(1) == 1):
            raise DataError(f"{store.path}: discrete_actions is set but actions are not one-hot; re-create the dataset")
        actions = actions.argmax(1).astype(np.int64) + act_space.start
    else:
        actions = actions.astype(act_space.dtype)
    obs = a["obs"].astype(obs_space.dtype)
    buffers, metadatas, lo = [], [], 0
    for e in table:
        hi = lo + e["length"]
        final = np.asarray(e["final_obs"], dtype=obs_space.dtype)[None]
        buffers.append(EpisodeBuffer(
            seed=e["seed"], observations=np.concatenate([obs[lo:hi], final]), actions=actions[lo:hi],
            rewards=a["reward"][lo:hi], terminations=a["terminal"][lo:hi], truncations=a["timeout"][lo:hi]))
        md = {"policy": e["policy"], "condition": e["condition"]}
        if e["success"] is not None:
            md["success"] = bool(e["success"])
        metadatas.append(md)
        lo = hi
    return buffers, metadatas


def _move_into_place(tmp_root: Path, root: Path, dataset_id: str, overwrite: bool) -> None:
    target = root / dataset_id
    if target.exists() and not overwrite:
        raise DataError(f"Minari dataset {dataset_id} already exists at {target}; pass overwrite=True or bump the -vN version")
    target.parent.mkdir(parents=True, exist_ok=True)
    # namespace metadata files let `minari list local` show the namespaces
    for parent in Path(dataset_id).parents:
        src = tmp_root / parent / "namespace_metadata.json"
        if str(parent) != "." and src.is_file() and not (root / parent / src.name).exists():
            shutil.copyfile(src, root / parent / src.name)
    if target.exists():  # overwrite: move the old one aside; the caller deletes tmp_root
        target.rename(tmp_root / ".old")
    (tmp_root / dataset_id).rename(target)


def export_minari(store: EpisodeStore, dataset_id: str, path: str | Path | None = None, author: str = "rayexp",
                  description: str | None = None, algorithm_name: str | None = None, overwrite: bool = False,
                  data_format: str = "hdf5") -> Path:
    """Write ``store`` as the local Minari dataset ``dataset_id`` under ``path`` (default: Minari's root).

    Returns the dataset folder (``<root>/<dataset_id>``; Minari's files are in its ``data/``). Written
    into a hidden temp folder under the root, then renamed, so a failed export leaves nothing behind.
    ``data_format`` is Minari's backend, "hdf5" or "arrow".
    """
    import minari
    from minari.dataset.minari_dataset import MinariDataset

    check_minari_id(dataset_id)
    if data_format not in ("hdf5", "arrow"):
        raise DataError(f"data_format must be 'hdf5' or 'arrow', got {data_format!r}")
    root = minari_root(path)
    if (root / dataset_id).exists() and not overwrite:
        raise DataError(f"Minari dataset {dataset_id} already exists at {root / dataset_id}; pass overwrite=True or bump the -vN version")
    meta = store.meta
    env = _make_env(meta.env_id)
    obs_space, act_space = _spaces(meta, env)
    buffers, metadatas = _episode_buffers(store, meta, obs_space, act_space)
    root.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix=".rayexp-export-", dir=root))  # hidden: Minari's listing skips it
    saved_env = os.environ.get("MINARI_DATASETS_PATH")
    try:
        os.environ["MINARI_DATASETS_PATH"] = str(tmp_root)  # Minari writes to <MINARI_DATASETS_PATH>/<id>
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # author_email / code_permalink not given
            ds = minari.create_dataset_from_buffers(
                dataset_id, buffers, env=env, eval_env=env, observation_space=obs_space, action_space=act_space,
                algorithm_name=algorithm_name or meta.source or "unknown", author=author,
                description=description or meta.description or f"exported by rayexp from {store.path.name}",
                data_format=data_format)
        storage = ds.storage
        # set after creation: Minari drops ref scores without an env, and computes a missing
        # ref_min_score by 100 random rollouts when given one
        storage.update_metadata({"ref_min_score": meta.ref_min_score, "ref_max_score": meta.ref_max_score,
                                 "rayexp_meta": meta.__dict__})
        storage.update_episode_metadata(metadatas, range(len(metadatas)))
        MinariDataset(storage.data_path)  # reads back: fails here, not for the user, if anything is off
        _move_into_place(tmp_root, root, dataset_id, overwrite)
    finally:
        if saved_env is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = saved_env
        if env is not None:
            env.close()
        shutil.rmtree(tmp_root, ignore_errors=True)
    return root / dataset_id


# ---------------------------------------------------------------------------------------- import

def _data_path(id_or_path: str) -> Path:
    """The ``data`` folder of a local Minari dataset given its id or its folder."""
    p = Path(id_or_path)
    if id_or_path and p.is_dir():
        for cand in (p / "data", p):
            if (cand / "metadata.json").is_file():
                return cand
        raise DataError(f"{p} is not a Minari dataset folder (no data/metadata.json)")
    check_minari_id(id_or_path)
    root = minari_root()
    data = root / id_or_path / "data"
    if not (data / "metadata.json").is_file():
        raise DataError(
            f"Minari dataset {id_or_path} not found under {root} and rayexp never downloads; on a machine with "
            f"internet run `minari download {id_or_path}`, then copy ~/.minari/datasets/{id_or_path} to "
            f"{root / id_or_path} (or point MINARI_DATASETS_PATH at the folder holding it), or pass the dataset folder")
    return data


def _flatten(space, values, what: str, where: str) -> np.ndarray:
    """Values of a Box (any shape), Discrete (as one-hot) or Dict of Boxes (concatenated) as T, D float32."""
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        v = np.asarray(values)
        return v.reshape(len(v), -1).astype(np.float32)
    if isinstance(space, spaces.Discrete) and what == "actions":
        idx = np.asarray(values).reshape(-1) - space.start
        if idx.min(initial=0) < 0 or idx.max(initial=0) >= space.n:
            raise DataError(f"{where}: actions outside Discrete({space.n}, start={space.start})")
        return np.eye(space.n, dtype=np.float32)[idx]
    if isinstance(space, spaces.Dict) and what == "observations" and all(isinstance(s, spaces.Box) for s in space.values()):
        parts = [np.asarray(values[k]).reshape(len(values[k]), -1) for k in space.keys()]
        return np.concatenate(parts, 1).astype(np.float32)
    raise DataError(f"{where}: {what} space {space} is not supported (Box, Dict of Boxes for observations, Discrete for actions)")


def _episode(d: dict, md: dict, ds, where: str) -> Episode:
    obs = _flatten(ds.observation_space, d["observations"], "observations", where)
    act = _flatten(ds.action_space, d["actions"], "actions", where)
    T = len(d["rewards"])
    lens = {"actions": len(act), "terminations": len(d["terminations"]), "truncations": len(d["truncations"])}
    if len(obs) != T + 1 or any(n != T for n in lens.values()):
        raise DataError(f"{where}: {len(obs)} observations, {lens} for {T} rewards; a Minari episode has T+1 "
                        "observations and T of the rest; the dataset is corrupt")
    condition = json.loads(md["condition"]) if "condition" in md else md.get("options")
    return Episode(obs[:-1], act, np.asarray(d["rewards"], np.float32), np.asarray(d["terminations"], bool),
                   np.asarray(d["truncations"], bool), final_observation=obs[-1],
                   success=bool(md["success"]) if "success" in md else None,
                   seed=int(md["seed"]) if md.get("seed") is not None else None,
                   policy=str(md.get("policy", "minari")), condition=_plain(condition))


def _plain(x: Any) -> Any:
    """hdf5 attributes come back as numpy scalars and arrays; make them JSON-serialisable."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def _meta(ds, raw: dict, episodes: list[Episode], where: str) -> DatasetMeta:
    from gymnasium import spaces

    obs_dim, act_dim = episodes[0].observations.shape[1], episodes[0].actions.shape[1]
    if "rayexp_meta" in raw:  # our own export: restore the store's meta as it was
        meta = DatasetMeta(**raw["rayexp_meta"])
        if (meta.obs_dim, meta.act_dim) != (obs_dim, act_dim):
            raise DataError(f"{where}: rayexp_meta says obs_dim={meta.obs_dim}, act_dim={meta.act_dim} but the data has "
                            f"{obs_dim}, {act_dim}; the dataset metadata is mismatched")
        return meta
    env_id = json.loads(raw["env_spec"])["id"] if raw.get("env_spec") else ""
    obs_space = ds.observation_space
    if isinstance(obs_space, spaces.Dict):  # flattened in key order
        obs_note = {"obs_keys": {k: int(np.prod(s.shape)) for k, s in obs_space.items()}}
    else:
        obs_note = {"obs_shape": list(obs_space.shape)} if len(obs_space.shape) != 1 else {}
    extra = {"minari": {k: _plain(raw[k]) for k in ("dataset_id", "algorithm_name", "author", "minari_version", "data_format")
                        if k in raw}, **obs_note}
    if isinstance(ds.action_space, spaces.Discrete) and ds.action_space.start != 0:
        extra["discrete_start"] = int(ds.action_space.start)
    return DatasetMeta(env_id=env_id, obs_dim=obs_dim, act_dim=act_dim,
                       discrete_actions=isinstance(ds.action_space, spaces.Discrete),
                       ref_min_score=raw.get("ref_min_score"), ref_max_score=raw.get("ref_max_score"),
                       description=str(raw.get("description", "")), source=f"minari:{raw.get('dataset_id', '')}", extra=extra)


def import_minari(id_or_path: str, out: str | Path, overwrite: bool = False) -> EpisodeStore:
    """Read a local Minari dataset (an id under Minari's root, or its folder; hdf5 or arrow) into a store at ``out``."""
    from minari.dataset.minari_dataset import MinariDataset
    from minari.dataset.minari_storage import MinariStorage

    data = _data_path(str(id_or_path))
    where = f"Minari dataset {data.parent}"
    if Path(out).exists() and not overwrite:
        raise DataError(f"dataset {out} already exists; pass --overwrite or choose another path")
    try:
        raw = MinariStorage.read_raw_metadata(data)
        ds = MinariDataset(data)
        n = ds.storage.total_episodes
        episodes = [_episode(d, md, ds, f"{where}, episode {i}") for i, (d, md) in enumerate(
            zip(ds.storage.get_episodes(range(n)), ds.storage.get_episode_metadata(range(n))))]
    except DataError:
        raise
    except Exception as e:  # Minari raises ValueError/KeyError/OSError/AssertionError/pyarrow errors on bad data
        raise DataError(f"{where} is corrupt or mismatched ({type(e).__name__}: {e}); re-create or re-download it") from None
    if not episodes:
        raise DataError(f"{where} has no episodes")
    steps = sum(len(e) for e in episodes)
    if steps != raw.get("total_steps"):
        raise DataError(f"{where}: metadata says {raw.get('total_steps')} steps but the episodes hold {steps}; the dataset is corrupt")
    return write_dataset(out, episodes, _meta(ds, raw, episodes, where), overwrite=overwrite)


def resolve_dataset(name: str, cache_dir: str | Path) -> EpisodeStore:
    """A dataset reference: a rayexp store folder, or ``minari:ID`` (imported into ``cache_dir`` once, then reused).

    Delete ``<cache_dir>/minari/<ID>`` to import again after the Minari dataset changed.
    """
    if not name.startswith("minari:"):
        return EpisodeStore(name)
    dataset_id = check_minari_id(name[len("minari:"):])
    cached = Path(cache_dir) / "minari" / dataset_id
    if cached.exists():
        return EpisodeStore(cached)
    try:
        return import_minari(dataset_id, cached)
    except DataError:
        if cached.exists():  # another process imported it meanwhile
            return EpisodeStore(cached)
        raise
