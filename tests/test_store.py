import json

import h5py
import numpy as np
import pytest

from rayexp.data.d4rl import export_d4rl_hdf5, import_d4rl_hdf5, normalized_score
from rayexp.data.store import DatasetMeta, Episode, EpisodeStore, write_dataset
from rayexp.errors import DataError


def make_episodes(rng, lengths=(5, 9, 3), obs_dim=3, act_dim=2):
    eps = []
    for i, n in enumerate(lengths):
        term = np.zeros(n, bool)
        tout = np.zeros(n, bool)
        (term if i % 2 else tout)[-1] = True
        eps.append(Episode(rng.normal(size=(n, obs_dim)).astype(np.float32), rng.normal(size=(n, act_dim)).astype(np.float32),
                           rng.normal(size=n).astype(np.float32), term, tout, rng.normal(size=obs_dim).astype(np.float32),
                           success=bool(i % 2), seed=100 + i, policy=f"p{i}", condition=["car", "bicycle"][: i + 1]))
    return eps


def test_round_trip_keeps_every_field(tmp_path):
    rng = np.random.default_rng(0)
    eps = make_episodes(rng)
    store = write_dataset(tmp_path / "d", eps, DatasetMeta("Hopper-v5", 3, 2, ref_min_score=-1.0, ref_max_score=2.0))
    back = list(EpisodeStore(tmp_path / "d").iter_episodes())
    assert len(back) == len(eps) and store.num_steps == sum(len(e) for e in eps)
    for a, b in zip(eps, back):
        for f in ("observations", "actions", "rewards", "terminals", "timeouts", "final_observation"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        assert (a.success, a.seed, a.policy, a.condition) == (b.success, b.seed, b.policy, b.condition)
    assert store.meta.ref_max_score == 2.0


def test_existing_dataset_is_not_overwritten(tmp_path):
    eps = make_episodes(np.random.default_rng(1))
    write_dataset(tmp_path / "d", eps, DatasetMeta("x", 3, 2))
    with pytest.raises(DataError, match="already exists"):
        write_dataset(tmp_path / "d", eps, DatasetMeta("x", 3, 2))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp folder left behind"


def test_shape_mismatch_is_refused_and_nothing_written(tmp_path):
    eps = make_episodes(np.random.default_rng(2))
    with pytest.raises(DataError, match="episode 0: observations has shape"):
        write_dataset(tmp_path / "d", eps, DatasetMeta("x", 4, 2))
    assert not (tmp_path / "d").exists()


def test_corrupt_and_mismatched_files_give_clear_errors(tmp_path):
    write_dataset(tmp_path / "d", make_episodes(np.random.default_rng(3)), DatasetMeta("x", 3, 2))
    (tmp_path / "d" / "steps.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="steps.parquet is corrupt"):
        EpisodeStore(tmp_path / "d")
    write_dataset(tmp_path / "e", make_episodes(np.random.default_rng(3)), DatasetMeta("x", 3, 2))
    meta = json.loads((tmp_path / "e" / "meta.json").read_text())
    meta["obs_dim"] = 7
    (tmp_path / "e" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="meta.json says width 7"):
        EpisodeStore(tmp_path / "e")
    with pytest.raises(DataError, match="does not exist"):
        EpisodeStore(tmp_path / "nope")


def test_d4rl_hdf5_export_import_round_trip(tmp_path):
    eps = make_episodes(np.random.default_rng(4))
    store = write_dataset(tmp_path / "d", eps, DatasetMeta("Hopper-v5", 3, 2))
    h5 = export_d4rl_hdf5(store, tmp_path / "hopper-medium-v2.hdf5")
    back = import_d4rl_hdf5(h5, tmp_path / "back", "Hopper-v5")
    a, b = store.arrays(), back.arrays()
    for k in ("obs", "action", "reward", "terminal", "timeout", "episode_id"):
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal([e.final_observation for e in back.iter_episodes()], [e.final_observation for e in eps])
    assert back.meta.ref_min_score == pytest.approx(-20.272305)


def test_d4rl_hdf5_with_wrong_keys_or_shapes(tmp_path):
    with h5py.File(tmp_path / "bad.hdf5", "w") as f:
        f["observations"] = np.zeros((5, 3))
        f["actions"] = np.zeros((5, 2))
    with pytest.raises(DataError, match=r"lacks D4RL key\(s\) \['rewards', 'terminals', 'timeouts'\]"):
        import_d4rl_hdf5(tmp_path / "bad.hdf5", tmp_path / "o", "Hopper-v5")
    with h5py.File(tmp_path / "short.hdf5", "w") as f:
        for k, v in {"observations": np.zeros((5, 3)), "actions": np.zeros((5, 2)), "rewards": np.zeros(4),
                     "terminals": np.zeros(5, bool), "timeouts": np.zeros(5, bool)}.items():
            f[k] = v
    with pytest.raises(DataError, match="mismatched"):
        import_d4rl_hdf5(tmp_path / "short.hdf5", tmp_path / "o", "Hopper-v5")
    assert not (tmp_path / "o").exists()


def test_normalized_score_matches_d4rl_constants():
    assert normalized_score(3234.3, -20.272305, 3234.3) == pytest.approx(100.0)
    assert normalized_score(-20.272305, -20.272305, 3234.3) == pytest.approx(0.0)
    assert normalized_score(1607.01, -20.272305, 3234.3) == pytest.approx(50.0, abs=0.01)
