"""Roundabout OOC traffic (thesis 2.4.1): experts per composition, OOC and ID traffic over seeds (Tables A.5 / A.6,
Figs. 2.2 / 2.3)."""
from rayexp.families import Family

FAMILY = Family(
    "roundabout", env_prefixes=("roundabout-",),
    settings="rayexp.families.roundabout.config:RoundaboutSettings",
    check_config="rayexp.families.roundabout.config:check_config",
    evaluate="rayexp.families.roundabout.evaluate:run_roundabout_evaluate",
    report="rayexp.families.roundabout.report:roundabout_report",
    gpu_evaluation=False,
)
