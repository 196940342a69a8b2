"""Smoke tests of every `rayexp` command, found by walking the click tree (a new command is covered by the --help
test at once, and the bad-input test fails until BAD names a case for it). In-process through click's CliRunner:
a unit test, so no case may reach a Ray start (tests/conftest.py)."""
from __future__ import annotations

import os

import click
import pytest
from click.testing import CliRunner

from rayexp.cli import main


def walk(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from walk(command.commands[name], (*path, name))


TREE = dict(walk(main))
LEAVES = sorted(path for path, command in TREE.items() if not isinstance(command, click.Group))
MISSING = "/nonexistent/rayexp-test"

# command -> (bad arguments, what its one error line says); checked before Ray starts or anything is written
BAD = {
    ("bench",): (["no_such_bench"], "no benchmark no_such_bench; choose from"),
    ("collect",): (["no_such_key=1"], "no_such_key: unknown key"),
    ("train",): (["no_such_key=1"], "no_such_key: unknown key"),
    ("evaluate",): (["no_such_key=1"], "no_such_key: unknown key"),
    ("quickstart",): (["no_such_key=1"], "no_such_key: unknown key"),
    ("report",): ([MISSING], f"run {MISSING} does not exist"),
    ("sweep",): ([f"{MISSING}.yaml"], f"sweep file {MISSING}.yaml does not exist"),
    ("rllib-offline",): ([MISSING, "--out", MISSING], f"dataset {MISSING} does not exist"),
    ("data", "inspect"): ([MISSING], f"dataset {MISSING} does not exist"),
    ("data", "import-d4rl"): ([f"{MISSING}.hdf5", MISSING, "--env-id", "Hopper-v5"], f"D4RL file {MISSING}.hdf5 does not exist"),
    ("data", "export-d4rl"): ([MISSING, f"{MISSING}.hdf5"], f"dataset {MISSING} does not exist"),
    ("data", "export-minari"): ([MISSING, "--id", "a/b-v0", "--path", MISSING], f"dataset {MISSING} does not exist"),
    ("data", "import-minari"): ([MISSING, "--out", MISSING], "bad Minari dataset id"),
    ("data", "make-d4rl"): (["--env", "NoSuchEnv-v0", "--out", MISSING], "unknown environment 'NoSuchEnv-v0'"),
    ("maze", "figure"): (["no_such_key=1"], "no_such_key: unknown key"),
    ("smax", "all"): (["no_such_key=1"], "no_such_key: unknown key"),
    ("smax", "mappo"): (["no_such_key=1"], "no_such_key: unknown key"),
    ("smax", "collect"): (["no_such_key=1"], "no_such_key: unknown key"),
    ("smax", "train"): (["no_such_key=1"], "no_such_key: unknown key"),
    ("smax", "evaluate"): (["no_such_key=1"], "no_such_key: unknown key"),
    ("smax", "futures"): ([MISSING, "--stage", "planner"], f"Directory '{MISSING}' does not exist"),  # click's check
    ("smax", "report"): ([MISSING], f"{MISSING} has no evaluation rounds (eval.parquet)"),
}


@pytest.fixture
def invoke():
    """Run `rayexp ARGS` in-process; the environment variables the commands set (TQDM_DISABLE, ...) are undone after."""
    saved = dict(os.environ)
    yield lambda *args: CliRunner().invoke(main, list(args), prog_name="rayexp")
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize("path", list(TREE), ids=lambda p: " ".join(p) or "rayexp")
def test_help(invoke, path):
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: {' '.join(('rayexp', *path))} "), result.stdout
    if isinstance(TREE[path], click.Group):
        assert all(f"  {name} " in result.stdout for name in TREE[path].commands), result.stdout


def test_every_command_has_a_bad_input_case():
    assert sorted(BAD) == LEAVES


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_bad_input_fails_in_one_line(invoke, path):
    args, says = BAD[path]
    result = invoke(*path, *args)
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    errors = [line for line in result.stderr.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1 and says in errors[0], result.stderr
    assert "Traceback" not in result.stderr
