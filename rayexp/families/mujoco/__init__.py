"""MuJoCo locomotion (thesis 3.4.1): D4RL-style tiers made here with rayexp's SAC (``rayexp data make-d4rl``), their
tiers report, and the core's episode evaluation with D4RL-normalized scores."""
from rayexp.families import Family

FAMILY = Family("mujoco", env_prefixes=("Hopper-", "Walker2d-", "HalfCheetah-", "Ant-"))
