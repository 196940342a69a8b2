"""SMAX multi-agent OOC (thesis 2.4.2): MAPPO on RLlib over batched JAX games, per-agent data from its won rounds,
planner / BC egos beside MAPPO teammates, Table A.10 and Figs. 2.4 / 2.5 / 2.11 / A.16 (``rayexp smax ...``)."""
from rayexp.families import Family

FAMILY = Family(
    "smax", env_prefixes=("smax-",),
    settings="rayexp.families.smax.config:SMAXSettings",
    check_config="rayexp.families.smax.config:check_config",
    collect="rayexp.families.smax.pipeline:collect_hook",
    evaluate="rayexp.families.smax.pipeline:evaluate_hook",
    report="rayexp.families.smax.pipeline:report_hook",
    commands="rayexp.families.smax.cli:smax",
    gpu_evaluation=False,
)
