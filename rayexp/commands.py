"""What every experiment command shares: the options (``--config``, overrides, ``--run-dir``, ``--address``,
``--overwrite``, ``-v``) and ``setup_experiment`` (config -> checks -> Ray -> run folder). The `rayexp` CLI and the
families' own commands (``rayexp maze``, ``rayexp smax``) build on it."""
from __future__ import annotations

from pathlib import Path

import click

PRESETS = Path(__file__).resolve().parent.parent / "tune_configs"


def _verbose_option(ctx, param, value):
    from rayexp.console import set_verbose

    set_verbose(value)


verbose_option = click.option("--verbose", "-v", is_flag=True, expose_value=False, is_eager=True, callback=_verbose_option,
                              help="Show Ray's own warnings and every worker's output (default: progress bars and one line per stage).")


def experiment_options(fn):
    fn = verbose_option(fn)
    fn = click.argument("overrides", nargs=-1)(fn)
    fn = click.option("--overwrite", is_flag=True, help="Redo what this command writes, even in a finished run: collect: data and "
                      "expert; train: the stages (as --retrain); evaluate: its rows; quickstart: the whole run. Nothing else is deleted.")(fn)
    fn = click.option("--address", default=None, help="Ray address: 'auto' or 'ray://host:port' for a cluster; default: a local Ray on this machine.")(fn)
    fn = click.option("--run-dir", default="runs", show_default=True, type=click.Path(file_okay=False), help="Folder that holds runs/<name>/.")(fn)
    fn = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="Experiment YAML (see tune_configs/).")(fn)
    return fn


def setup_experiment(config_path, overrides, run_dir, address, overwrite, base_preset: str | None = None, check=None, ray_check=None,
           redo=(), clear=(), hint=""):
    """Config -> checks -> Ray -> run folder. Everything that can be checked is checked before Ray starts or anything is
    written: the config, the run's recorded config (``check_run``), then ``check(cfg, run)`` (datasets, checkpoints);
    ``ray_check(cfg)`` runs once Ray is up (resources). ``redo``/``clear``/``hint``: see ``rayexp.runs.open_run``."""
    from rayexp.cluster import init_ray
    from rayexp.config import load_config, resolve_paths
    from rayexp.runs import check_run, check_writable, open_run, run_folder

    if config_path is None and base_preset is not None:
        config_path = PRESETS / base_preset
    cfg = resolve_paths(load_config(config_path, list(overrides)))
    if address:
        cfg.ray.address = address
    from envs.registry import check_env_id

    check_env_id(cfg.env.id)
    run = run_folder(run_dir, cfg)
    redo = redo(cfg) if callable(redo) else redo
    check_run(run, cfg, overwrite, redo, hint)
    check_writable(run.path)
    if check is not None:
        check(cfg, run)
    init_ray(cfg.ray)
    if ray_check is not None:
        ray_check(cfg)
    return cfg, open_run(run_dir, cfg, overwrite=overwrite, redo=redo, clear=clear, hint=hint)
