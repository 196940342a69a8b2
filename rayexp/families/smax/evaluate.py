"""Parallel multi-agent evaluation: SMAX rounds spread over Ray actors, success rate per seed, mean ± s.e. over seeds.

Each actor holds its envs (one per env name, compiled once), the MAPPO actor and the ego models. Rows of the
result are rounds (``rayexp.rows``: model = the team, task = the test-team env, episode = the round, success = won;
plus ``result``, ``units`` and ``masks_respected``); ``rayexp.families.smax.report.success_table`` turns them into
Table A.10's layout (rows: ID / simple / hard, columns: teams).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from rayexp.engine import episode_seed, run_on_actors
from rayexp.errors import RayexpError
from rayexp.families.smax.rounds import play_round


def team_parts(team: str) -> tuple[str | None, int] | None:
    """(ego, k) of a team name: ``mappo`` -> (None, 0); ``mappo+X`` -> (X, 1); ``mappo+k*X`` -> (X, k): k agents of
    the team are X (Fig. A.16 replaces k of n agents). None when the name is malformed."""
    if team == "mappo":
        return None, 0
    head, _, rest = team.partition("+")
    count, star, ego = rest.rpartition("*")
    if head != "mappo" or not ego or (star and not count.isdigit()):
        return None
    return ego, int(count) if star else 1


def parse_team(team: str, egos: list[str]) -> tuple[str | None, int]:
    """``team_parts``, checked: k >= 1 and the ego is ``random`` or one of ``egos``."""
    parts = team_parts(team)
    if parts is None or (parts[0] is not None and (parts[1] < 1 or (parts[0] != "random" and parts[0] not in egos))):
        raise RayexpError(f"family.teams: unknown team {team!r}; use mappo, mappo+random, mappo+<stage> or "
                          f"mappo+<k>*<stage> with a stage from: {', '.join(egos) or 'none trained'}")
    return parts


class SMAXEvalWorker:
    """``run(env_name, team, seed_index, round, round_seed) -> row``; ego stages are model files (rayexp.train)."""

    def __init__(self, actor_path: str, ego_paths: dict[str, str], greedy: bool = True,
                 guidance: float | None = None, sample_steps: int | None = None, replan_every: int = 1,
                 threads: int = 1):
        import torch

        from algorithms.smax_agents import load_actor

        torch.set_num_threads(threads)
        self.actor, self.greedy, self.replan_every, self.envs = load_actor(actor_path), greedy, replan_every, {}
        self.egos = {name: self._load_ego(path, guidance, sample_steps) for name, path in ego_paths.items()}

    @staticmethod
    def _load_ego(path: str, guidance: float | None, sample_steps: int | None):
        from algorithms.smax_agents import floor_unseen_std
        from rayexp.train import load_model

        method, model, spec = load_model(path)
        floor_unseen_std(model)
        if getattr(method, "name", "") == "planner":
            update = {k: v for k, v in (("guidance", guidance), ("sample_steps", sample_steps)) if v is not None}
            method.cfg = method.cfg.model_copy(update=update)
        return method.make_policy(model, spec)

    def _env(self, name: str):
        from envs.smax import make_smax_env

        if name not in self.envs:
            self.envs[name] = make_smax_env(name)
        return self.envs[name]

    def agents(self, team: str, n: int, round_seed: int) -> list:
        from algorithms.smax_agents import MAPPOAgent, RandomAgent, ScoreAgent

        ego, k = parse_team(team, list(self.egos))
        if k > n:
            raise RayexpError(f"family.teams: {team!r} replaces {k} agents of a team of {n}")
        rngs = [np.random.default_rng([round_seed, i]) for i in range(n)]
        agents = [MAPPOAgent(self.actor, rngs[i], greedy=self.greedy) for i in range(n)]
        for slot in [(round_seed + i) % n for i in range(k)]:  # the replaced agents rotate with the round seed
            agents[slot] = RandomAgent(rngs[slot]) if ego == "random" else ScoreAgent(self.egos[ego], self.replan_every)
        return agents

    def run(self, env_name: str, team: str, seed_index: int, rnd: int, round_seed: int) -> dict:
        import torch

        env = self._env(env_name)
        torch.manual_seed(round_seed)  # the planner's sampling noise is fixed by the round, not by the actor
        out = play_round(env, self.agents(team, env.n_units, round_seed), round_seed)
        return {"model": team, "task": env_name, "seed_index": seed_index, "episode": rnd, "seed": round_seed,
                "success": out.pop("won"), "units": out.pop("team"), **out}


def evaluate_teams(actor_path: str, ego_paths: dict[str, str], env_names: list[str], teams: list[str], rounds: int,
                   seeds: int, base_seed: int, num_actors: int, **worker_kwargs) -> pd.DataFrame:
    """Every team on every env: ``seeds`` x ``rounds`` rounds over ``num_actors`` Ray actors; one row per round."""
    for t in teams:
        parse_team(t, list(ego_paths))
    jobs = [(e, t, s, r, episode_seed(base_seed, s, r)) for e in env_names for t in teams
            for s in range(seeds) for r in range(rounds)]
    rows = run_on_actors(SMAXEvalWorker, (actor_path, ego_paths), jobs, num_actors, "smax evaluate", kwargs=worker_kwargs)
    return pd.DataFrame(rows).sort_values(["task", "model", "seed_index", "episode"]).reset_index(drop=True)

