"""Minari datasets in and out: round trips, Minari's own reader and collector, corrupt data, ids."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rayexp.data.d4rl import d4rl_ref_scores, normalized_score
from rayexp.data.minari import export_minari, import_minari, resolve_dataset
from rayexp.data.store import DatasetMeta, Episode, EpisodeStore, write_dataset
from rayexp.errors import DataError

minari = pytest.importorskip("minari")
gym = pytest.importorskip("gymnasium")

FORMATS = ["hdf5", "arrow"]


@pytest.fixture(autouse=True)
def minari_root(tmp_path, monkeypatch):
    root = tmp_path / "minari_root"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))

    def no_download(*args, **kwargs):
        raise AssertionError("a remote download was attempted")

    monkeypatch.setattr(minari.storage.hosting, "download_dataset", no_download)
    monkeypatch.setattr(minari, "download_dataset", no_download)
    return root


def make_store(path: Path, env_id: str = "Hopper-v5", obs_dim: int = 11, act_dim: int = 3, refs=True) -> EpisodeStore:
    rng = np.random.default_rng(0)
    episodes = []
    for i, T in enumerate([3, 7, 1, 10, 5]):
        terminals = np.zeros(T, bool)
        timeouts = np.zeros(T, bool)
        if i % 3 == 0:
            terminals[-1] = True
        elif i % 3 == 1:
            timeouts[-1] = True  # i % 3 == 2: neither flag (an unfinished piece)
        episodes.append(Episode(
            rng.standard_normal((T, obs_dim)).astype(np.float32), rng.uniform(-1, 1, (T, act_dim)).astype(np.float32),
            rng.standard_normal(T).astype(np.float32) * 100, terminals, timeouts,
            final_observation=rng.standard_normal(obs_dim).astype(np.float32),
            success=[True, False, None, True, False][i], seed=[10, None, 12, 13, 14][i],
            policy=f"policy-{i % 2}", condition={"elements": [i, i + 1], "name": "x"} if i != 2 else None))
    lo, hi = d4rl_ref_scores("hopper") if refs else (None, None)
    meta = DatasetMeta(env_id, obs_dim, act_dim, ref_min_score=lo, ref_max_score=hi, description="test data",
                       source="unit-test", extra={"note": [1, 2]})
    return write_dataset(path, episodes, meta)


def assert_same_store(a: EpisodeStore, b: EpisodeStore) -> None:
    xa, xb = a.arrays(), b.arrays()
    for k in xa:
        np.testing.assert_array_equal(xa[k], xb[k], err_msg=k)
    assert a.episodes().to_pylist() == b.episodes().to_pylist()
    assert a.meta == b.meta


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("env_id", ["Hopper-v5", "rayexp/NotRegistered-v0"])
def test_round_trip_is_identical(tmp_path, fmt, env_id):
    store = make_store(tmp_path / "store", env_id=env_id)
    out = export_minari(store, "rayexp/hopper/test-v0", tmp_path / "m", data_format=fmt)
    assert (out / "data" / "metadata.json").is_file()
    assert [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".")] == []  # temp folder gone
    back = import_minari(str(out), tmp_path / "back")
    assert_same_store(store, back)


@pytest.mark.parametrize("fmt", FORMATS)
def test_minari_reads_our_export(tmp_path, fmt):
    store = make_store(tmp_path / "store")
    export_minari(store, "mujoco/hopper/rayexp-v0", None, author="me", algorithm_name="bc", data_format=fmt)
    ds = minari.load_dataset("mujoco/hopper/rayexp-v0")
    assert ds.total_episodes == len(store) and ds.total_steps == store.num_steps
    assert ds.env_spec.id == "Hopper-v5" and ds.recover_environment(eval_env=True).spec.id == "Hopper-v5"
    md = ds.storage.metadata
    assert md["author"] == {"me"} and md["algorithm_name"] == "bc" and md["description"] == "test data"
    table = store.episodes().to_pylist()
    ep_md = list(ds.storage.get_episode_metadata(range(len(store))))
    arrays = store.arrays()
    for ep, row, m in zip(ds.iterate_episodes(), table, ep_md):
        assert len(ep.observations) == row["length"] + 1 and len(ep) == row["length"]
        np.testing.assert_allclose(ep.observations[-1], row["final_obs"])
        np.testing.assert_allclose(ep.actions, arrays["action"][arrays["episode_id"] == row["episode_id"]])
        assert m.get("seed") == row["seed"] and m["policy"] == row["policy"]
        assert json.loads(m["condition"]) == json.loads(row["condition"])
        assert (bool(m["success"]) if "success" in m else None) == row["success"]
    returns = np.array([r["return"] for r in table])
    lo, hi = store.meta.ref_min_score, store.meta.ref_max_score
    # Minari normalizes to 0..1, D4RL (and rayexp) to 0..100
    np.testing.assert_allclose(100 * minari.get_normalized_score(ds, returns), normalized_score(returns, lo, hi), rtol=1e-12)


def test_unregistered_env_keeps_ref_scores(tmp_path):
    store = make_store(tmp_path / "store", env_id="rayexp/NotRegistered-v0")
    export_minari(store, "test/noenv-v0", None)
    ds = minari.load_dataset("test/noenv-v0")
    assert ds.env_spec is None
    assert minari.get_normalized_score(ds, np.array([3234.3])) == pytest.approx(1.0)


def collect_cartpole(dataset_id: str, fmt: str, episodes: int = 6):
    env = minari.DataCollector(gym.make("CartPole-v1", max_episode_steps=15), data_format=fmt)
    env.action_space.seed(0)
    for i in range(episodes):
        env.reset(seed=100 + i)
        while True:
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                break
    return env.create_dataset(dataset_id=dataset_id, algorithm_name="random", author="test", description="cartpole",
                              author_email="a@b.c", code_permalink="none")


@pytest.mark.filterwarnings("ignore:`eval_env` is set to None")
@pytest.mark.parametrize("fmt", FORMATS)
def test_import_minari_collector_dataset(tmp_path, fmt):
    ds = collect_cartpole("test/cartpole/random-v0", fmt)
    store = import_minari("test/cartpole/random-v0", tmp_path / "cp")
    meta = store.meta
    assert (meta.env_id, meta.obs_dim, meta.act_dim, meta.discrete_actions) == ("CartPole-v1", 4, 2, True)
    assert meta.source == "minari:test/cartpole/random-v0" and meta.extra["minari"]["algorithm_name"] == "random"
    eps = list(store.iter_episodes())
    assert len(eps) == ds.total_episodes == 6 and store.num_steps == ds.total_steps
    saw_term = saw_trunc = False
    for i, (ours, theirs) in enumerate(zip(eps, ds.iterate_episodes())):
        np.testing.assert_allclose(ours.observations, theirs.observations[:-1])
        np.testing.assert_allclose(ours.final_observation, theirs.observations[-1])
        np.testing.assert_array_equal(ours.actions.argmax(1), theirs.actions)  # one-hot
        assert np.all(ours.actions.sum(1) == 1)
        np.testing.assert_array_equal(ours.rewards, theirs.rewards)
        np.testing.assert_array_equal(ours.terminals, theirs.terminations)
        np.testing.assert_array_equal(ours.timeouts, theirs.truncations)
        assert ours.seed == 100 + i and ours.success is None
        saw_term |= bool(ours.terminals[-1])
        saw_trunc |= bool(ours.timeouts[-1])
    assert saw_trunc  # 15-step limit; random CartPole also terminates sometimes
    # and back out: Minari sees the same integer actions in a Discrete(2) space
    export_minari(store, "test/cartpole/again-v0", None, data_format=fmt)
    again = minari.load_dataset("test/cartpole/again-v0")
    assert again.action_space == gym.spaces.Discrete(2)
    for a, b in zip(again.iterate_episodes(), ds.iterate_episodes()):
        np.testing.assert_array_equal(a.actions, b.actions)


def _data(root: Path, dataset_id: str) -> Path:
    return root / dataset_id / "data"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("damage", ["delete", "garble", "obs_space", "total_steps", "total_episodes", "metadata_json"])
def test_corrupt_dataset_is_a_data_error(tmp_path, minari_root, fmt, damage):
    store = make_store(tmp_path / "store")
    export_minari(store, "test/broken-v0", None, data_format=fmt)
    data = _data(minari_root, "test/broken-v0")
    files = sorted(p for p in data.rglob("*") if p.is_file() and p.suffix in (".hdf5", ".arrow"))
    assert files, list(data.rglob("*"))
    meta_file = data / "metadata.json"
    md = json.loads(meta_file.read_text())
    if damage == "delete":
        files[-1].unlink()
    elif damage == "garble":
        files[0].write_bytes(b"not data at all" * 10)
    elif damage == "obs_space":
        md["observation_space"] = md["observation_space"].replace("[11]", "[7]")
        assert "[7]" in md["observation_space"]
    elif damage == "total_steps":
        md["total_steps"] += 3
    elif damage == "total_episodes":
        md["total_episodes"] += 2
    if damage in ("obs_space", "total_steps", "total_episodes"):
        meta_file.write_text(json.dumps(md))
    if damage == "metadata_json":
        meta_file.write_text("{not json")
    with pytest.raises(DataError, match="test/broken-v0") as err:
        import_minari("test/broken-v0", tmp_path / "back")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "back").exists()


def test_bad_and_missing_ids(tmp_path, minari_root):
    store = make_store(tmp_path / "store")
    for bad in ["hopper medium", "mujoco/hopper/medium", "../escape-v0", "mujoco//hopper-v0", "b/x-v0", ""]:
        with pytest.raises(DataError, match="bad Minari dataset id"):
            export_minari(store, bad, None)
        with pytest.raises(DataError, match="bad Minari dataset id"):
            import_minari(bad, tmp_path / "x")
    with pytest.raises(DataError, match=r"not found under .*never downloads.*minari download D4RL/pointmaze/umaze-v2"):
        import_minari("D4RL/pointmaze/umaze-v2", tmp_path / "x")
    with pytest.raises(DataError, match="not a Minari dataset folder"):
        import_minari(str(store.path), tmp_path / "x")


def test_export_refuses_to_overwrite(tmp_path, minari_root):
    store = make_store(tmp_path / "store")
    export_minari(store, "test/ow-v0", None)
    with pytest.raises(DataError, match="already exists"):
        export_minari(store, "test/ow-v0", None)
    other = make_store(tmp_path / "other", env_id="rayexp/NotRegistered-v0")
    export_minari(other, "test/ow-v0", None, overwrite=True)
    assert minari.load_dataset("test/ow-v0").env_spec is None
    assert not any(p.name.startswith(".") for p in minari_root.iterdir())  # no temp folders left


def test_resolve_dataset_imports_once(tmp_path, minari_root):
    store = make_store(tmp_path / "store")
    assert resolve_dataset(str(store.path), tmp_path / "cache").path == store.path
    export_minari(store, "test/res-v1", None)
    first = resolve_dataset("minari:test/res-v1", tmp_path / "cache")
    assert first.path == tmp_path / "cache" / "minari" / "test/res-v1"
    assert_same_store(store, first)
    stamp = (first.path / "steps.parquet").stat().st_mtime_ns
    minari.delete_dataset("test/res-v1")  # the cached copy is reused, the source no longer read
    again = resolve_dataset("minari:test/res-v1", tmp_path / "cache")
    assert (again.path / "steps.parquet").stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match="bad Minari dataset id"):
        resolve_dataset("minari:nope", tmp_path / "cache")
    with pytest.raises(DataError, match="does not exist"):
        resolve_dataset(str(tmp_path / "nowhere"), tmp_path / "cache")


def test_import_is_light():
    code = "import sys, rayexp.data.minari; bad = {'minari', 'gymnasium', 'torch', 'ray'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_final_observation_is_a_data_error(tmp_path, minari_root):
    import h5py

    export_minari(make_store(tmp_path / "store"), "test/short-v0", None, data_format="hdf5")
    with h5py.File(_data(minari_root, "test/short-v0") / "main_data.hdf5", "a") as f:
        obs = f["episode_1/observations"][()]
        del f["episode_1/observations"]
        f["episode_1/observations"] = obs[:-1]  # N observations for N steps, as in a D4RL file
    with pytest.raises(DataError, match=r"episode 1: 7 observations.*T\+1 observations"):
        import_minari("test/short-v0", tmp_path / "back")
