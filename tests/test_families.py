"""The family plugin contract: built-in families own their env ids and their hooks load; a user's family is found
by entry point or named in a config; a family's data sources are the only extra ``collect.source`` values."""
from __future__ import annotations

import sys
from dataclasses import fields

import pytest

from rayexp.config import load_config
from rayexp.errors import ConfigError
from rayexp.families import ENTRY_POINT_GROUP, GYM, family_for, hook, load_ref, registered

HOOKS = [f.name for f in fields(GYM) if f.name in ("settings", "check_config", "collect", "evaluate", "report", "sweep_metrics", "sweep_score", "commands")]


@pytest.mark.parametrize("env_id, name", [("maze2d-umaze", "maze2d"), ("roundabout-v0", "roundabout"),
                                          ("smax-3v3-hard", "smax"), ("Hopper-v5", "mujoco"),
                                          ("InvertedPendulum-v5", "gym"), ("tests.user_envs:Reach1D-v0", "gym")])
def test_each_env_id_has_one_family(env_id, name):
    assert family_for(env_id).name == name


def test_every_builtin_hook_and_data_source_loads():
    for family in registered():
        for name in HOOKS:
            ref = getattr(family, name)
            assert ref is None or callable(hook(family, name)), (family.name, name)
        for source, ref in family.collect_sources.items():
            assert callable(load_ref(ref)), (family.name, source)


def test_a_family_named_in_the_config_is_used(tmp_path):
    cfg = load_config(None, ["env.id=tests.user_envs:Reach1D-v0", "env.family=tests.user_envs:FAMILY",
                             "collect.source=scripted"])
    assert family_for(cfg.env.id, cfg.env.family).name == "reach"


def test_bad_family_and_foreign_data_source_fail_in_one_line():
    with pytest.raises(ConfigError, match="env.family 'nope.mod:FAMILY' cannot be loaded"):
        load_config(None, ["env.family=nope.mod:FAMILY"])
    with pytest.raises(ConfigError, match="env.family .tests.user_envs:Reach1D. is a type, not a rayexp.families.Family"):
        load_config(None, ["env.family=tests.user_envs:Reach1D"])
    with pytest.raises(ConfigError, match="collect.source 'maze2d-controller' is not available for env.id 'Hopper-v5'"):
        load_config(None, ["env.id=Hopper-v5", "collect.source=maze2d-controller"])
    assert load_config("tune_configs/maze2d_umaze.yaml").collect.source == "maze2d-controller"


def test_an_installed_packages_entry_point_registers_its_family(tmp_path, monkeypatch):
    dist = tmp_path / "reachfam-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: reachfam\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nreach = tests.user_envs:FAMILY\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    registered.cache_clear()
    try:
        assert family_for("tests.user_envs:Reach1D-v0").name == "reach"
        cfg = load_config(None, ["env.id=tests.user_envs:Reach1D-v0", "collect.source=scripted"])
        assert cfg.collect.source == "scripted"
    finally:
        registered.cache_clear()


def test_family_keys_moved_out_of_core_sections_say_where_they_went():
    with pytest.raises(ConfigError, match=r"collect.steps moved to family.steps \(Maze2D's section\); rename the key"):
        load_config("tune_configs/maze2d_umaze.yaml", ["collect.steps=1000"])
    cfg = load_config("tune_configs/maze2d_umaze.yaml", ["family.steps=1000"])
    assert cfg.family.steps == 1000 and "steps" not in cfg.collect.model_dump()
    cfg = load_config("tune_configs/roundabout.yaml")
    assert cfg.family.experts and cfg.family.random_condition == ["planner", "planner_ctd"]
    with pytest.raises(ConfigError, match=r"evaluate.experts moved to family.experts"):
        load_config("tune_configs/roundabout.yaml", ["evaluate.experts=true"])
