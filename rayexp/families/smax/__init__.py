"""SMAX multi-agent OOC (thesis 2.4.2): MAPPO on RLlib over batched JAX games, per-agent data from its won rounds,
planner / BC egos beside MAPPO teammates, Table A.10 and Figs. 2.4 / 2.5 / 2.11 / A.16 (``rayexp smax ...``)."""
from rayexp.families import Family

FAMILY = Family(
    "smax", env_prefixes=("smax-",),
    commands="rayexp.families.smax.cli:smax",
)
