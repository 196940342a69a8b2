"""SMAX rounds: play one battle with a team of per-agent controllers, record MAPPO data, evaluate teams in parallel.

A *team* is named ``mappo`` (every agent MAPPO) or ``mappo+<ego>``: agent ``seed % n`` is the ego, played by
``random`` or by a trained stage (``bc``, a planner stage ...), the rest MAPPO. Round ``i`` of seed ``s`` always
uses the round seed ``evaluate.seed + 100_000 s + i`` (env reset, agent RNGs and torch noise), whichever actor
plays it, and rows are sorted, so 1 actor and many give the same table.
"""
from __future__ import annotations

import numpy as np

from rayexp.data.store import DatasetMeta, Episode, write_dataset


def play_round(env, agents: list, seed: int, record: bool = False) -> dict:
    """One battle; ``agents[i]`` controls ``env.possible_agents[i]``. ``record``: also the per-agent
    observations n, T, obs_dim, actions n, T (ints), rewards T and final observations n, obs_dim."""
    obs, infos = env.reset(seed=seed)
    names = env.possible_agents
    traj_obs, traj_act, rewards, masked_ok = [], [], [], True
    while env.agents:
        acts = {a: agents[i].act(obs[a], infos[a]["action_mask"]) for i, a in enumerate(names)}
        masked_ok &= all(infos[a]["action_mask"][acts[a]] == 1 for a in names)
        if record:
            traj_obs.append(np.stack([obs[a] for a in names]))
            traj_act.append([acts[a] for a in names])
        obs, rew, terms, truncs, infos = env.step(acts)
        rewards.append(rew[names[0]])
    info = infos[names[0]]
    out = {"won": bool(info["won"]), "result": info["result"], "return": float(np.sum(rewards)),
           "length": len(rewards), "team": "-".join(env.team), "masks_respected": bool(masked_ok)}
    if record:
        out.update(obs=np.stack(traj_obs, 1), actions=np.asarray(traj_act).T, rewards=np.asarray(rewards, np.float32),
                   final_obs=np.stack([obs[a] for a in names]))
    return out


def round_episodes(rec: dict, n_actions: int, seed: int, policy: str = "mappo") -> list[Episode]:
    """A recorded round -> one Episode per agent (its local trajectory, one-hot actions, the team reward);
    the unit types ride along as the episode's condition metadata."""
    team, T = rec["team"].split("-"), rec["length"]
    episodes = []
    for i in range(len(team)):
        terminals, timeouts = np.zeros(T, bool), np.zeros(T, bool)
        (timeouts if rec["result"] == "timeout" else terminals)[-1] = True
        episodes.append(Episode(
            observations=rec["obs"][i].astype(np.float32), actions=np.eye(n_actions, dtype=np.float32)[rec["actions"][i]],
            rewards=rec["rewards"], terminals=terminals, timeouts=timeouts, final_observation=rec["final_obs"][i],
            success=rec["won"], seed=seed, policy=policy,
            condition={"team": team, "agent": i, "unit_type": team[i], "result": rec["result"]}))
    return episodes


def collect_chunk(env_name: str, actor_path: str, seeds: list[int], only_success: bool = True) -> dict:
    """Play MAPPO rounds (sampled actions) on ``seeds``; keep the successful ones as per-agent episodes."""
    import torch

    from algorithms.smax_agents import MAPPOAgent, load_actor
    from envs.smax import make_smax_env

    torch.set_num_threads(1)
    env, actor = make_smax_env(env_name), load_actor(actor_path)
    episodes, wins = [], 0
    for seed in seeds:
        rng = np.random.default_rng(seed)
        rec = play_round(env, [MAPPOAgent(actor, rng) for _ in env.possible_agents], seed, record=True)
        wins += int(rec["won"])
        if rec["won"] or not only_success:
            episodes += round_episodes(rec, int(env.action_space(env.possible_agents[0]).n), seed)
    return {"episodes": episodes, "rounds": len(seeds), "wins": wins}


def collect_mappo_data(env_name: str, actor_path: str, out, rounds: int, seed: int, num_tasks: int,
                       only_success: bool = True, overwrite: bool = False):
    """``rounds`` MAPPO rounds over ``num_tasks`` Ray tasks -> an episode store of successful per-agent episodes."""
    from envs.smax import make_smax_env
    from rayexp.errors import DataError
    from rayexp.parallel import ray_map

    seeds = [seed + i for i in range(rounds)]
    chunks = [seeds[k::num_tasks] for k in range(num_tasks) if seeds[k::num_tasks]]
    parts = ray_map(collect_chunk, [dict(env_name=env_name, actor_path=str(actor_path), seeds=c, only_success=only_success)
                                    for c in chunks], desc="smax collect")
    episodes = [ep for p in parts for ep in p["episodes"]]
    wins = int(sum(p["wins"] for p in parts))
    if not episodes:
        raise DataError(f"smax collect: MAPPO won none of {rounds} rounds on {env_name}; train it longer (mappo.total_env_steps)")
    env = make_smax_env(env_name)
    meta = DatasetMeta(env_id=env_name, obs_dim=int(env.observation_space("ally_0").shape[0]),
                       act_dim=int(env.action_space("ally_0").n), discrete_actions=True, source="rllib-mappo",
                       description="successful MAPPO rounds; one episode per agent (local obs, one-hot actions)",
                       extra={"rounds": rounds, "wins": wins, "win_rate": wins / rounds, "n_units": int(env.n_units),
                             "actor": str(actor_path), "seed": seed})
    return write_dataset(out, episodes, meta, overwrite=overwrite)
