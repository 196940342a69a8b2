from pathlib import Path

import pytest

from rayexp.config import load_config
from rayexp.errors import ConfigError
from tests.conftest import rayexp_cli


@pytest.mark.parametrize("override, message", [
    ("train.stepz=5", "train.stepz: unknown key (allowed: batch_size"),
    ("train.steps=abc", "train.steps: Input should be a valid integer"),
    ("train.steps=-3", "train.steps: Input should be greater than 0"),
    ("models.x.method.name=nope", "models.x.method: Input tag 'nope'"),
    ("evaluate.execute=sometimes", "evaluate.execute: Input should be 'first' or 'chunk'"),
    ("notakey", "is not key=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, [override])


def test_duplicate_yaml_keys_are_refused(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  steps: 1\ntrain:\n  steps: 2\n")
    with pytest.raises(ConfigError, match="duplicate key 'train'"):
        load_config(p)


def test_yaml_merge_keys_repeat_a_stage_with_overrides(tmp_path):
    """The one-step planner student repeats its teacher planner's fields through `<<: *anchor`."""
    p = tmp_path / "c.yaml"
    p.write_text("models:\n  planner:\n    method: &p {name: planner, horizon: 8, down_dims: [8, 16]}\n"
                 "  planner_ctd:\n    method: {<<: *p, name: planner_ctd}\n    frozen: {teacher: planner}\n")
    student = load_config(p).models["planner_ctd"].method
    assert (student.name, student.horizon, student.down_dims) == ("planner_ctd", 8, [8, 16])


def test_stage_train_overrides_merge_with_top_level():
    cfg = load_config(None, ["train.lr=0.01", "models.bc.method.name=bc", "models.bc.train.steps=7"])
    tc = cfg.stage_train("bc")
    assert (tc.steps, tc.lr) == (7, 0.01)
    with pytest.raises(ConfigError, match="models.bc.train.stepz: unknown key"):
        load_config(None, ["models.bc.method.name=bc", "models.bc.train.stepz=7"])


def test_cli_rejects_bad_input_before_any_work(tmp_path):
    for args, message in [
        (["train.stepz=1"], "error: config: train.stepz: unknown key"),
        (["env.id=Hopperr-v5"], "error: env.id: unknown environment 'Hopperr-v5'; did you mean"),
        (["--config", str(tmp_path / "missing.yaml")], "does not exist"),
    ]:
        proc = rayexp_cli("collect", "--run-dir", str(tmp_path / "runs"), *args, check=False, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "runs").exists(), "nothing is written when the config is bad"


def test_students_train_after_the_teachers_they_load():
    from rayexp.pipeline import dependency_order

    cfg = load_config(None, ["models={s: {method: {name: ctm_student, reward_weight: 1.0}, frozen: {teacher: t2, reward: r}},"
                             " r: {method: {name: reward_model}}, t2: {method: {name: edm_teacher}}}"])
    order = dependency_order(cfg, ["s", "r", "t2"])
    assert order.index("t2") < order.index("s") and order.index("r") < order.index("s")


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).parents[1] / "tune_configs").glob("*.yaml")))
def test_every_shipped_config_validates(name):
    """What the README tells users to run must at least load: experiment (SMAX's included) and sweep configs."""
    from rayexp.sweeps.config import read_sweep

    path = Path(__file__).parents[1] / "tune_configs" / name
    if name.startswith("sweep_"):
        try:
            read_sweep(path)
        except ConfigError as e:  # valid, but its from_run has not been trained in this checkout
            assert "from_run: run folder" in str(e), e
    else:
        load_config(path)


def _heavy_modules_after(statement: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``statement``."""
    import subprocess
    import sys

    code = f"import sys; {statement}; print(*[m for m in {modules!r} if m in sys.modules])"
    return subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], capture_output=True, text=True,
                          check=True).stdout.split()


def test_validating_a_smax_config_imports_neither_rllib_nor_jax():
    """`rayexp smax ... --config` refuses a bad key in one line before the heavy imports (issue #16)."""
    loaded = _heavy_modules_after("from rayexp.config import load_config; c = load_config('tune_configs/smax_3v3.yaml'); "
                                  "assert c.family.mappo.num_envs_per_env_runner == 32", ("ray.rllib", "jax", "torch"))
    assert loaded == []


def test_validating_an_experiment_config_imports_no_torch():
    """Method settings live in ``algorithms.configs``, apart from the models (issue #16)."""
    loaded = _heavy_modules_after("from rayexp.config import load_config; "
                                  "load_config('tune_configs/hopper_mr_ractd.yaml')", ("torch", "ray.rllib"))
    assert loaded == []


def test_evaluate_by_default_skips_the_stages_that_only_score():
    """`rayexp evaluate --config tune_configs/hopper_mr_ractd.yaml` (no evaluate.models) evaluates every policy; the
    reward model a student trains against is no policy, so it is left out instead of stopping the command."""
    cfg = load_config(Path(__file__).parents[1] / "tune_configs" / "hopper_mr_ractd.yaml")
    assert cfg.evaluation_stages() == ["bc", "teacher", "ctd", "ractd", "teacher_rw", "ctd_rwt", "ractd_rwt"]
    assert load_config(None, ["models={bc: {method: {name: bc}}, r: {method: {name: reward_model}}}", "evaluate.models=[bc, r]"]).evaluation_stages() == ["bc", "r"]


def test_evaluate_by_default_also_plays_the_offline_rl_baselines():
    cfg = load_config(None, ["models={bc: {method: {name: bc}}, r: {method: {name: reward_model}}}",
                             "offline_rl={cql: {algo: cql}}"])
    assert cfg.evaluation_stages() == ["bc", "cql"]
