"""Issue 20: bad input, faults and interrupted work, through the CLI as a user meets them. Each test checks the exit
code, the one ``error:`` line naming the thing, and the run folder afterwards (nothing lost, nothing half-written).

Runs are built from real files (a synthetic InvertedPendulum-shaped dataset, randomly initialised checkpoints written
by ``save_model``), so most refusals take seconds; the ones that need Ray start a real local one in the subprocess."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rayexp.data.store import DatasetMeta, Episode, write_dataset
from tests.conftest import REPO, rayexp_cli

STAGES = ("models={bc: {method: {name: bc, hidden: [16]}}, bc2: {method: {name: bc, hidden: [8]}},"
          " teacher: {method: {name: edm_teacher, bins: 4, unet: {step_embed_dim: 8, down_dims: [8, 16]}}},"
          " ctd: {method: {name: ctm_student, bins: 4, unet: {step_embed_dim: 8, down_dims: [8, 16]}}},"
          " reward: {method: {name: reward_model, hidden: [8]}}}")
BASE = ["name=h", "data.action_horizon=4", STAGES, "train.steps=4", "train.batch_size=8", "train.checkpoint_every=2",
        "train.log_every=2", "evaluate.episodes=2", "evaluate.num_actors=1", "evaluate.models=[bc, bc2]",
        "env.max_episode_steps=20", "ray.num_cpus=2"]


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]


def refused(*args: str, timeout: int = 120) -> str:
    """Run the CLI, expect exit 2 with exactly one ``error:`` line and no traceback; return that line."""
    proc = rayexp_cli(*args, check=False, timeout=timeout)
    lines = errors(proc)
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


def tiny_dataset(path: Path, episodes: int = 4, length: int = 20, obs_dim: int = 4) -> Path:
    rng = np.random.default_rng(0)
    eps = [Episode(rng.normal(0, 0.1, (length, obs_dim)).astype(np.float32), rng.uniform(-1, 1, (length, 1)).astype(np.float32),
                   np.ones(length, np.float32), np.zeros(length, bool), np.eye(1, length, length - 1, dtype=bool)[0],
                   seed=i, policy="synthetic") for i in range(episodes)]
    write_dataset(path, eps, DatasetMeta(env_id="InvertedPendulum-v5", obs_dim=obs_dim, act_dim=1, source="synthetic"))
    return path


def save_stage(path: Path, method_cfg: dict, obs_dim: int = 4, act_dim: int = 1) -> Path:
    """A randomly initialised checkpoint of a method, written exactly as training writes one."""
    import torch

    from algorithms.base import DataSpec
    from algorithms.registry import make_method
    from rayexp.train import _METHOD_ADAPTER, save_model

    torch.manual_seed(0)
    method = make_method(_METHOD_ADAPTER.validate_python(method_cfg))
    spec = DataSpec(obs_dim=obs_dim, act_dim=act_dim, action_horizon=4)
    save_model(path, method.cfg, spec, method.build_model(spec), step=4)
    return path


def tiny_run(root: Path, stages=("bc", "bc2")) -> Path:
    """root/h with data/ and trained-looking models/ for ``stages`` (no config.yaml: the first command records it)."""
    from rayexp.config import load_config

    cfg = load_config(None, BASE)
    run = root / "h"
    tiny_dataset(run / "data")
    for s in stages:
        save_stage(run / "models" / f"{s}.pt", cfg.models[s].method.model_dump(mode="json"))
    return run


def snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def poison(store: Path, column: str, row: int, value: float) -> None:
    """Write ``value`` into one step of a dataset's steps.parquet behind the store's back (an external tool's bug)."""
    table = pq.read_table(store / "steps.parquet")
    col = table.column(column).combine_chunks()
    if pa.types.is_fixed_size_list(col.type):
        flat = col.flatten().to_numpy().copy()
        flat[row * col.type.list_size] = value
        new = pa.FixedSizeListArray.from_arrays(pa.array(flat), col.type.list_size)
    else:
        arr = col.to_numpy().copy()
        arr[row] = value
        new = pa.array(arr)
    pq.write_table(table.set_column(table.schema.get_field_index(column), column, new), store / "steps.parquet")


# 1. NaN / inf in a dataset
def test_non_finite_data_is_refused_on_import_read_and_train(tmp_path):
    import h5py

    obs = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    obs[17, 1] = np.nan
    with h5py.File(tmp_path / "bad.hdf5", "w") as f:
        for k, v in {"observations": obs, "actions": np.zeros((30, 1), np.float32), "rewards": np.ones(30, np.float32),
                     "terminals": np.zeros(30, bool), "timeouts": np.arange(30) % 10 == 9}.items():
            f[k] = v
    line = refused("data", "import-d4rl", str(tmp_path / "bad.hdf5"), str(tmp_path / "imported"), "--env-id", "Hopper-v5")
    assert "episode 1: observations has 1 non-finite value(s)" in line and "first at step 7" in line, line
    assert not (tmp_path / "imported").exists() and not list(tmp_path.glob(".imported*")), "nothing half-written"

    store = tiny_dataset(tmp_path / "ds")
    poison(store, "reward", 2 * 20 + 5, np.inf)
    line = refused("data", "inspect", str(store))
    assert "column 'reward' has non-finite values (NaN or inf) in 1 step(s), first at episode 2 step 5" in line, line
    line = refused("train", "--run-dir", str(tmp_path / "runs"), *BASE, f"data.path={store}")
    assert "'reward'" in line and "episode 2 step 5" in line
    assert not (tmp_path / "runs").exists(), "checked before the run folder is created"


@pytest.mark.slow
def test_a_loss_that_turns_non_finite_stops_training_without_saving_a_model(tmp_path):
    store = tiny_dataset(tmp_path / "ds")
    proc = rayexp_cli("train", "--run-dir", str(tmp_path / "runs"), *BASE, f"data.path={store}", "--stage", "bc",
                      "train.lr=1e30", "train.steps=20", check=False, timeout=400)
    assert proc.returncode == 2 and "training loss became" in errors(proc)[-1], proc.stderr[-2000:]
    assert not (tmp_path / "runs" / "h" / "models" / "bc.pt").exists()


# 2. a checkpoint of the wrong method, a truncated one, an unsafe pickle
def test_wrong_truncated_or_unsafe_checkpoints_are_refused_in_the_driver(tmp_path):
    run = tiny_run(tmp_path, stages=("bc", "teacher", "reward"))
    models = run / "models"
    shutil.copy(models / "teacher.pt", models / "ctd.pt")  # the teacher's file in the student's place
    files = sorted(snapshot(run))
    line = refused("evaluate", "--run-dir", str(tmp_path), *BASE, "--model", "ctd")
    assert f"{models / 'ctd.pt'} holds a 'edm_teacher' model, but models.ctd is a 'ctm_student' stage" in line, line

    shutil.copy(models / "reward.pt", models / "bc.pt")  # a reward model in place of a policy
    line = refused("evaluate", "--run-dir", str(tmp_path), *BASE, "--model", "bc")
    assert "holds a 'reward_model' model, but models.bc is a 'bc' stage" in line, line
    shutil.copy(models / "reward.pt", models / "teacher.pt")  # and in place of the teacher a student distils
    line = refused("train", "--run-dir", str(tmp_path), *BASE, "--stage", "ctd", "--retrain")
    assert "holds a 'reward_model' model, but models.teacher is a 'edm_teacher' stage" in line, line

    (models / "bc.pt").write_bytes((models / "teacher.pt").read_bytes()[:300])  # cut short
    assert "is truncated or corrupt" in refused("evaluate", "--run-dir", str(tmp_path), *BASE, "--model", "bc")
    (models / "bc.pt").write_bytes(b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
                                   b"\x8c\x04true\x94\x85\x94R\x94.")  # pickle of os.system("true")
    line = refused("evaluate", "--run-dir", str(tmp_path), *BASE, "--model", "bc")
    assert "refused unread" in line and "weights_only" not in line, line
    assert sorted(snapshot(run)) == files
    assert not (run / "config.yaml").exists() and not (run / "eval.parquet").exists(), "checked before anything is written"


# 3 and 5. `evaluate --model X` keeps the other rows; `evaluate --overwrite` deletes nothing
@pytest.mark.ray  # the subprocess starts a local Ray
def test_evaluate_one_model_with_overwrite_keeps_the_run_and_the_other_rows(tmp_path):
    run = tiny_run(tmp_path)
    (run / "expert").mkdir()
    (run / "expert" / "iteration.txt").write_text("2")
    old = pd.DataFrame({"model": ["bc", "bc2", "bc2"], "task": ["InvertedPendulum-v5"] * 3, "seed_index": [0] * 3,
                        "episode": [0, 0, 1], "seed": [1000, 1000, 1001],
                        "return": [1.0, 5.0, 7.0], "length": [3, 5, 7], "success": [None] * 3, "plans": [1, 2, 2],
                        "ms_per_plan": [1.0] * 3, "ms_per_action": [1.0] * 3, "nfe": [1.0] * 3})
    old.to_parquet(run / "eval.parquet", index=False)
    (run / "eval.md").write_text("stale\n")
    (run / "DONE").write_text("finished\n")
    keep = {k: v for k, v in snapshot(run).items() if k.startswith(("data/", "models/", "expert/"))}

    line = refused("evaluate", "--run-dir", str(tmp_path), *BASE, "--model", "bc")
    assert "is finished; pass --overwrite" in line
    rayexp_cli("evaluate", "--run-dir", str(tmp_path), *BASE, "--model", "bc", "--overwrite", timeout=300)
    after = snapshot(run)
    assert all(after.get(k) == v for k, v in keep.items()), "data, models and expert are untouched"
    df = pd.read_parquet(run / "eval.parquet")
    assert sorted(df["model"]) == ["bc", "bc", "bc2", "bc2"], df
    pd.testing.assert_frame_equal(df[df.model == "bc2"].reset_index(drop=True)[old.columns],
                                  old[old.model == "bc2"].reset_index(drop=True), check_dtype=False)
    md = (run / "eval.md").read_text()
    assert "| bc |" in md and "| bc2 |" in md and "stale" not in md
    assert set(pd.read_csv(run / "eval.csv")["model"]) == {"bc", "bc2"}


# 4. a changed config for an existing run
def test_changed_config_that_invalidates_trained_models_is_refused(tmp_path):
    from rayexp.config import dump_config, load_config
    from rayexp.runs import Run, check_run

    run = tiny_run(tmp_path)
    (run / "config.yaml").write_text(dump_config(load_config(None, BASE)))
    before = snapshot(run)
    line = refused("train", "--run-dir", str(tmp_path), *BASE, "data.action_horizon=8")
    assert "outputs made with another config: models/bc (data.action_horizon 4 -> 8); models/bc2" in line, line
    assert "pass --retrain" in line
    line = refused("train", "--run-dir", str(tmp_path), *BASE, "models.bc.method.hidden=[32]")
    assert "config: models/bc (models.bc.method.hidden [16] -> [32]);" in line and "bc2" not in line, line
    line = refused("collect", "--run-dir", str(tmp_path), *BASE, "--overwrite")
    assert "would replace the dataset that bc, bc2" in line, line
    assert snapshot(run) == before, "config.yaml, data and models untouched"
    # evaluation settings and Ray settings never invalidate anything; a retrain of the changed stage is allowed
    check_run(Run(run), load_config(None, [*BASE, "evaluate.episodes=5", "ray.num_cpus=1"]))
    check_run(Run(run), load_config(None, [*BASE, "models.bc.method.hidden=[32]"]), redo=["models/bc"])


# 6. an address where nothing listens
@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_unreachable_ray_address_fails_fast_naming_it(tmp_path, address):
    t0 = time.perf_counter()
    line = refused("collect", "--run-dir", str(tmp_path / "runs"), *BASE, "--address", address, timeout=60)
    assert time.perf_counter() - t0 < 30 and f"ray.address={address!r}" in line, line
    assert not (tmp_path / "runs").exists()


# 7. more Ray Train workers than the cluster has CPUs
@pytest.mark.ray  # the subprocess starts a local Ray
def test_too_many_train_workers_for_the_cluster_is_refused_before_fit(tmp_path):
    store = tiny_dataset(tmp_path / "ds")
    line = refused("train", "--run-dir", str(tmp_path / "runs"), *BASE, f"data.path={store}", "train.num_workers=8",
                   "--stage", "bc", timeout=180)
    assert "models.bc: train.num_workers=8 asks for 8 CPUs (1 per worker), but the Ray cluster has 2" in line, line
    assert not (tmp_path / "runs" / "h").exists(), "refused before the run folder is written"


# 8. an interrupted collection whose snapshot policy is gone
def test_resumed_collection_refuses_a_snapshot_it_can_no_longer_record(tmp_path):
    run = tmp_path / "h"
    (run / "expert").mkdir(parents=True)
    (run / "expert" / "iteration.txt").write_text("4")  # trained past the 50% mark (iteration 2), nothing recorded
    (run / "expert" / "snapshots" / "ppo-iter4").mkdir(parents=True)
    before = snapshot(run)
    line = refused("collect", "--run-dir", str(tmp_path), *BASE, "expert.iterations=4", "collect.snapshots=[0.5,1.0]")
    assert "is at iteration 4, but its snapshot(s) at iteration 2 were never recorded" in line and "--overwrite" in line, line
    assert snapshot(run) == before and not (run / "data").exists()


@pytest.mark.slow
def test_rerun_of_an_interrupted_collection_reuses_each_snapshots_own_episodes(tmp_path):
    from tests.conftest import TINY

    runs = tmp_path / "runs"
    rayexp_cli("collect", "--run-dir", str(runs), *TINY)
    run = runs / "tiny"
    first = pd.read_parquet(run / "data" / "episodes.parquet")
    assert (run / "expert" / "snapshots" / "ppo-iter1" / "steps.parquet").is_file()
    shutil.rmtree(run / "data")  # as if interrupted after training, before the dataset was written
    rayexp_cli("collect", "--run-dir", str(runs), *TINY)
    again = pd.read_parquet(run / "data" / "episodes.parquet")
    early = lambda df: df[df.policy == "ppo-iter1"][["return", "length", "seed"]].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(early(first), early(again))  # iteration 1's episodes, not iteration 2's policy


# 9. a full disk, and the truncated checkpoints it leaves
def _tmpfs(path: Path, size: str, ro: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if ro else "")
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    return path


@pytest.fixture
def small_disk(tmp_path):
    mounts = []

    def mount(name: str, size: str = "1m", ro: bool = False) -> Path:
        mounts.append(_tmpfs(tmp_path / name, size, ro))
        return mounts[-1]

    yield mount
    for m in mounts:
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


@pytest.mark.ray  # the subprocess starts a local Ray
def test_full_disk_and_read_only_run_dir_give_one_line(tmp_path, small_disk):
    disk = small_disk("disk", "1m")
    run = tiny_run(disk)
    shutil.rmtree(run / "models")
    (run / "config.yaml").write_text("name: h\n")
    with open(disk / "filler", "wb", buffering=0) as f:  # fill the disk to the last block
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError:
            pass
    ds = tiny_dataset(tmp_path / "ds")
    line = refused("train", "--run-dir", str(disk), *BASE, f"data.path={ds}", timeout=180)
    assert "no space left on the device" in line, line
    assert (run / "config.yaml").read_text() == "name: h\n" and not list(run.glob(".*.tmp")), "nothing half-written"

    ro = small_disk("ro", "1m", ro=True)
    line = refused("collect", "--run-dir", str(ro / "runs"), *BASE)
    assert f"cannot write in {ro}" in line and "Read-only file system" in line, line


@pytest.mark.slow
def test_training_on_a_full_disk_stops_in_one_line_and_the_rerun_resumes(tmp_path, small_disk):
    """Ray Train persists checkpoints itself: on a 3 MB disk the second one is cut short (Ray's workers log their
    traceback; the command's own error is one line), and the rerun on a larger disk skips the truncated files."""
    disk = small_disk("disk", "3m")
    ds = tiny_dataset(tmp_path / "ds")
    args = ["train", "--run-dir", str(disk), *BASE, f"data.path={ds}", "--stage", "bc", "models.bc.method.hidden=[512,512]",
            "train.steps=6"]
    proc = rayexp_cli(*args, check=False, timeout=400)
    assert proc.returncode == 2 and errors(proc) and "no space left on device" in errors(proc)[-1], proc.stderr[-2000:]
    assert not (disk / "h" / "models" / "bc.pt").exists()
    subprocess.run(["mount", "-o", "remount,size=40m", str(disk)], check=True)
    proc = rayexp_cli(*args, timeout=400)
    assert "skipping unreadable training checkpoint" in proc.stderr
    assert (disk / "h" / "models" / "bc.pt").is_file()


def test_unreadable_training_checkpoints_are_skipped_with_a_warning(tmp_path):
    from rayexp.train import latest_checkpoint

    storage = tmp_path / "ray_train" / "bc"
    good, empty, cut = (storage / f"checkpoint_{i}" for i in range(3))
    for d in (good, empty, cut):
        d.mkdir(parents=True)
    import torch

    torch.save({"step": 2, "model": {}, "optimizer": {}}, good / "state.pt")
    (good / "step.txt").write_text("2")
    (empty / "step.txt").write_text("")  # the full disk's int('') case
    torch.save({"step": 4, "model": {}, "optimizer": {}}, empty / "state.pt")
    (cut / "step.txt").write_text("6")
    (cut / "state.pt").write_bytes((good / "state.pt").read_bytes()[:40])
    assert latest_checkpoint(storage) == str(good)


# 10. negative weights and out-of-range guidance (and other config values that used to fail in a worker)
@pytest.mark.parametrize("override, message", [
    ("models.bc.method={name: ctm_student, reward_weight: -1}", "models.bc: method.reward_weight: -1.0 is negative"),
    ("models.bc.method={name: edm_teacher, reward_weight: -0.5}", "method.reward_weight: -0.5 is negative"),
    ("models.bc.method={name: planner, condition: roundabout_types, guidance: -2}", "guidance: Input should be greater than or equal to 0"),
    ("models.bc.method={name: planner, condition: roundabout_types, guidance: 50}", "guidance: Input should be less than or equal to 10"),
    ("models.bc.method={name: edm_teacher, unet: {down_dims: [12, 64]}}", "down_dims [12] not divisible by the 8 group-norm groups"),
    ("models.bc.method={name: edm_teacher, unet: {kernel_size: 4}}", "kernel_size 4 must be odd"),
    ("models.teachr.train.steps=5", "models.teachr: unknown stage 'teachr' (it has no method); defined: bc, bc2, ctd, reward, teacher"),
])
def test_bad_method_values_are_refused_before_any_work(tmp_path, override, message):
    line = refused("train", "--run-dir", str(tmp_path / "runs"), *BASE, override)
    assert message in line, line
    assert not (tmp_path / "runs").exists()


def test_yaml_errors_keep_line_and_column_and_bad_split_files_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrain:\n  steps: [1, 2\nmodels: {}\n")
    assert "line 4, column 7: expected ',' or ']'" in refused("train", "--config", str(bad), "--run-dir", str(tmp_path / "r"))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"name": "s", "elements": ["car", "bicycle"], "train": [["car", "car"]],
                                 "test": [["car", "car"], ["bicycle", "car"]]}))
    line = refused("collect", "--run-dir", str(tmp_path / "r"), "env.id=roundabout-ooc", f"env.split={split}")
    assert "env.split: split file" in line and "train and test share [('car', 'car')]" in line, line
    (tmp_path / "afile").write_text("")
    line = refused("collect", "--run-dir", str(tmp_path / "afile" / "runs"), *BASE)
    assert "is a file; choose another --run-dir" in line
    assert not (tmp_path / "r").exists()


# 11. an env that returns non-finite observations, or other shapes than the model's
@pytest.mark.ray  # the subprocess starts a local Ray
def test_non_finite_or_mismatched_env_observations_are_refused(tmp_path):
    run = tiny_run(tmp_path, stages=("bc",))
    line = refused("evaluate", "--run-dir", str(tmp_path), *BASE, "--model", "bc", "env.id=Hopper-v5")
    assert "was trained on obs 4 / action 1, but env Hopper-v5 has obs 11 / action 3" in line, line
    line = refused("evaluate", "--run-dir", str(tmp_path), *BASE, "--model", "bc", "env.id=tests.hardening_envs:NaNPendulum-v0",
                   timeout=300)
    assert "returned a non-finite observation (NaN or inf) at step 3 of the episode with seed 1000" in line, line
    assert not (run / "eval.parquet").exists(), "nothing recorded"


def test_collection_refuses_non_finite_observations():
    from rayexp.collect import to_store_episode
    from rayexp.errors import RayexpError

    class FakeEpisode:  # the few SingleAgentEpisode methods to_store_episode reads
        is_terminated, is_truncated = True, False

        def __len__(self):
            return 3

        def get_observations(self):
            return np.array([[0.0, 1.0], [np.nan, 1.0], [0.0, 1.0], [0.0, 1.0]])

        def get_actions(self):
            return np.zeros((3, 1))

        def get_rewards(self):
            return np.ones(3)

        def get_infos(self, i):
            return {}

    import gymnasium as gym

    with pytest.raises(RayexpError, match="collect ppo-iter2: the env returned a non-finite observation .* at step 1"):
        to_store_episode(FakeEpisode(), gym.spaces.Box(-1, 1, (1,)), seed=5, policy="ppo-iter2")


# 12. a relative data.path (and the rerun of a train whose checkpoints a full disk cut short)
@pytest.mark.ray  # the subprocess starts a local Ray
def test_relative_data_path_is_resolved_in_the_driver(tmp_path):
    store = tiny_dataset(tmp_path / "ds")
    rel = os.path.relpath(store, REPO)
    assert not Path(rel).is_absolute()
    cut = tmp_path / "runs" / "h" / "ray_train" / "bc" / "checkpoint_000009"
    cut.mkdir(parents=True)
    (cut / "step.txt").write_text("")
    (cut / "state.pt").write_bytes(b"PK\x03\x04")
    proc = rayexp_cli("train", "--run-dir", str(tmp_path / "runs"), *BASE, f"data.path={rel}", "--stage", "bc", timeout=400)
    assert "skipping unreadable training checkpoint" in proc.stderr
    run = tmp_path / "runs" / "h"
    assert (run / "models" / "bc.pt").is_file()
    import yaml

    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["path"] == str(store)


def test_commit_of_a_dirty_checkout_says_so(tmp_path):
    """A run's commit.txt (and every report quoting it) must not name a commit the results' code differs from."""
    from rayexp.runs import git_commit

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == f"{head} (dirty)"
    (tmp_path / "notes.txt").write_text("")  # untracked files (run folders, notes) do not count
    subprocess.run([*git, "checkout", "-q", "a.py"], check=True)
    assert git_commit(tmp_path) == head
