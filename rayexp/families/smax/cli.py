"""``rayexp smax ...``: the multi-agent OOC stages on SMAX (MAPPO -> data -> planner/BC -> parallel evaluation -> table)."""
from __future__ import annotations

from pathlib import Path

import click

from rayexp.commands import experiment_options, setup_experiment
from rayexp.console import fail_cleanly
from rayexp.errors import RayexpError


@click.group()
def smax():
    """SMAX (JaxMARL) multi-agent OOC: `rayexp smax all --config tune_configs/smax_3v3.yaml` runs every stage."""


@smax.command("mappo")
@experiment_options
@fail_cleanly
def mappo_cmd(config_path, overrides, run_dir, address, overwrite):
    """Train MAPPO (mappo.critic=local: IPPO) on the split's training teams; rerun to resume."""
    from rayexp.families.smax.pipeline import run_mappo

    cfg, run = setup_experiment(config_path, overrides, run_dir, address, overwrite)
    run_mappo(cfg, run, echo=click.echo)


@smax.command("collect")
@experiment_options
@fail_cleanly
def collect_cmd(config_path, overrides, run_dir, address, overwrite):
    """Record successful MAPPO rounds as per-agent episodes into RUN/data."""
    from rayexp.families.smax.pipeline import run_collect

    cfg, run = setup_experiment(config_path, overrides, run_dir, address, overwrite)
    s = run_collect(cfg, run, overwrite=overwrite)
    click.echo(f"{len(s)} agent episodes, {s.num_steps} steps; MAPPO won {s.meta.extra.get('wins')} of {s.meta.extra.get('rounds')} rounds")


@smax.command("train")
@experiment_options
@click.option("--stage", "stages", multiple=True)
@click.option("--retrain", is_flag=True)
@fail_cleanly
def train_cmd(config_path, overrides, run_dir, address, overwrite, stages, retrain):
    """Train the planner / BC stages of `models` on the run's data (Ray Train; the same as `rayexp train`)."""
    from rayexp.pipeline import run_train

    cfg, run = setup_experiment(config_path, overrides, run_dir, address, overwrite)
    if not (run.path / "data").exists():
        raise RayexpError(f"no dataset in {run.path / 'data'}; run `rayexp smax collect` first")
    run_train(cfg, run, list(stages) or None, retrain=retrain or overwrite)


@smax.command("evaluate")
@experiment_options
@fail_cleanly
def evaluate_cmd(config_path, overrides, run_dir, address, overwrite):
    """Play family.teams on the ID and OOC test teams over parallel Ray actors; print the table."""
    from rayexp.families.smax.pipeline import run_evaluate
    from rayexp.families.smax.report import smax_report

    cfg, run = setup_experiment(config_path, overrides, run_dir, address, overwrite)
    run_evaluate(cfg, run)
    click.echo(smax_report([run.path]))


@smax.command("all")
@experiment_options
@fail_cleanly
def all_cmd(config_path, overrides, run_dir, address, overwrite):
    """mappo -> collect -> train -> evaluate -> table, each stage resumed or reused when already done."""
    from rayexp.families.smax import pipeline as p
    from rayexp.families.smax.report import smax_report
    from rayexp.pipeline import run_train

    cfg, run = setup_experiment(config_path, overrides, run_dir, address, overwrite)
    p.run_mappo(cfg, run, echo=click.echo)
    p.run_collect(cfg, run)
    run_train(cfg, run)
    p.run_evaluate(cfg, run)
    text = smax_report([run.path])
    run.mark_finished()
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
