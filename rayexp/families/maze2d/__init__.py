"""Maze2D (thesis 2.4 / 3.4.2): PD-controller datasets, open-loop plans with inverse dynamics (Table B.6) and the
Fig. 2.10 waypoint panels (``rayexp maze figure``)."""
from rayexp.families import Family

FAMILY = Family(
    "maze2d", env_prefixes=("maze2d-",),
    settings="rayexp.families.maze2d.config:Maze2DSettings",
    collect_sources={"maze2d-controller": "rayexp.families.maze2d.data:collect_controller_data"},
    evaluate="rayexp.families.maze2d.evaluate:evaluate_run",
    report="rayexp.families.maze2d.evaluate:maze_report",
    sweep_metrics="rayexp.families.maze2d.sweep:trial_metrics",
    sweep_score="rayexp.families.maze2d.sweep:trial_score",
    commands="rayexp.families.maze2d.cli:maze",
    gpu_evaluation=False,
)
