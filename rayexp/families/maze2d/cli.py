"""``rayexp maze ...``: Maze2D's own commands (its Table B.6 evaluation is plain `rayexp evaluate`)."""
from __future__ import annotations

import click

from rayexp.commands import experiment_options, setup_experiment
from rayexp.console import fail_cleanly
from rayexp.errors import RayexpError


@click.group()
def maze():
    """Maze2D extras (the Table B.6 evaluation itself is `rayexp evaluate --config tune_configs/maze2d_umaze.yaml`)."""


@maze.command("figure")
@experiment_options
@click.option("--n", default=8, show_default=True, help="Trajectories per panel.")
@fail_cleanly
def maze_figure_cmd(config_path, overrides, run_dir, address, overwrite, n):
    """Fig. 2.10-style panels from the run's trained planner: RUN/fig_2_10.png and the waypoint-success numbers."""
    from rayexp.families.maze2d.figure import maze_figure

    cfg, run = setup_experiment(config_path, overrides, run_dir, address, overwrite)
    if not run.model_path("planner").exists():
        raise RayexpError(f"no trained planner in {run.path / 'models'}; run `rayexp train --stage planner` first")
    for title, rate in maze_figure(cfg, run, n=n).items():
        click.echo(f"{title}: waypoint success {rate:.2f}")
    click.echo(f"wrote {run.path / 'fig_2_10.png'}")
