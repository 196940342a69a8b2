"""``rayexp smax ...``: the multi-agent OOC stages on SMAX (MAPPO -> data -> planner/BC -> parallel evaluation -> table)."""
from __future__ import annotations

from pathlib import Path

import click

from rayexp.console import fail_cleanly
from rayexp.errors import RayexpError


def smax_options(fn):
    fn = click.argument("overrides", nargs=-1)(fn)
    fn = click.option("--address", default=None, help="Ray address ('auto', 'ray://host:port'); default: a local Ray.")(fn)
    fn = click.option("--run-dir", default="runs", show_default=True, type=click.Path(file_okay=False))(fn)
    fn = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                      help="SMAX experiment YAML (tune_configs/smax_*.yaml).")(fn)
    return fn


def _setup(config_path, overrides, run_dir, address):
    from rayexp.cluster import init_ray
    from rayexp.families.smax.config import load_smax_config
    from rayexp.families.smax.pipeline import open_smax_run

    cfg = load_smax_config(config_path, list(overrides))
    if address:
        cfg.ray.address = address
    path = open_smax_run(cfg, run_dir)
    init_ray(cfg.ray)
    return cfg, path


@click.group()
def smax():
    """SMAX (JaxMARL) multi-agent OOC: `rayexp smax all --config tune_configs/smax_3v3.yaml` runs every stage."""


@smax.command("mappo")
@smax_options
@fail_cleanly
def mappo_cmd(config_path, overrides, run_dir, address):
    """Train MAPPO (mappo.critic=local: IPPO) on the split's training teams; rerun to resume."""
    from rayexp.families.smax.pipeline import run_mappo

    cfg, path = _setup(config_path, overrides, run_dir, address)
    run_mappo(cfg, path, echo=click.echo)


@smax.command("collect")
@smax_options
@click.option("--overwrite", is_flag=True)
@fail_cleanly
def collect_cmd(config_path, overrides, run_dir, address, overwrite):
    """Record successful MAPPO rounds as per-agent episodes into RUN/data."""
    from rayexp.families.smax.pipeline import run_collect

    cfg, path = _setup(config_path, overrides, run_dir, address)
    s = run_collect(cfg, path, overwrite=overwrite)
    click.echo(f"{len(s)} agent episodes, {s.num_steps} steps; MAPPO won {s.meta.extra.get('wins')} of {s.meta.extra.get('rounds')} rounds")


@smax.command("train")
@smax_options
@click.option("--stage", "stages", multiple=True)
@click.option("--retrain", is_flag=True)
@fail_cleanly
def train_cmd(config_path, overrides, run_dir, address, stages, retrain):
    """Train the planner / BC stages of `models` on the run's data (Ray Train)."""
    from rayexp.families.smax.pipeline import run_train

    cfg, path = _setup(config_path, overrides, run_dir, address)
    run_train(cfg, path, list(stages) or None, retrain=retrain)


@smax.command("evaluate")
@smax_options
@fail_cleanly
def evaluate_cmd(config_path, overrides, run_dir, address):
    """Play evaluate.teams on the ID and OOC test teams over parallel Ray actors; print the table."""
    from rayexp.families.smax.pipeline import run_evaluate
    from rayexp.families.smax.report import smax_report

    cfg, path = _setup(config_path, overrides, run_dir, address)
    run_evaluate(cfg, path)
    click.echo(smax_report([path]))


@smax.command("all")
@smax_options
@fail_cleanly
def all_cmd(config_path, overrides, run_dir, address):
    """mappo -> collect -> train -> evaluate -> table, each stage resumed or reused when already done."""
    from rayexp.families.smax import pipeline as p
    from rayexp.families.smax.report import smax_report
    from rayexp.runs import Run

    cfg, path = _setup(config_path, overrides, run_dir, address)
    p.run_mappo(cfg, path, echo=click.echo)
    p.run_collect(cfg, path)
    p.run_train(cfg, path)
    p.run_evaluate(cfg, path)
    text = smax_report([path])
    Run(path).mark_finished()
    click.echo(text)


@smax.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Where table.md/csv and the figures go (default: the first run).")
@fail_cleanly
def report_cmd(runs, out):
    """Table A.10-style success table (rows from every run given: e.g. a simple and a hard run) and Figs. 2.4, 2.11
    (condition modes, when several were evaluated) and A.16 (k agents replaced, teams mappo+k*<stage>)."""
    from rayexp.families.smax.report import smax_report

    if not runs:
        raise RayexpError("give at least one SMAX run folder")
    click.echo(smax_report(list(runs), out))


@smax.command("futures")
@click.argument("run", type=click.Path(file_okay=False, exists=True))
@click.option("--stage", required=True, help="A planner stage of the run, e.g. planner_attn.")
@click.option("--samples", default=8, show_default=True, help="Plans per condition (the same noise for each condition).")
@click.option("--seed", default=0, show_default=True)
@fail_cleanly
def futures_cmd(run, stage, samples, seed):
    """Fig. 2.5: the futures a planner stage predicts from one start under different enemy unit types (RUN/fig_2_5.png)."""
    from rayexp.families.smax.futures import futures_figure

    run = Path(run)
    click.echo(futures_figure(run / "models" / f"{stage}.pt", run / "data", run / "fig_2_5.png", samples, seed))
