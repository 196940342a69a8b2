"""SAC speed: env steps/s while training (one update of batch 256 per env step) through rayexp's tier-making SAC
(RLlib env runners, ``rayexp.families.mujoco.sac.RayexpSAC``) against a minimal plain PyTorch loop on the same env, batch,
networks and update, and against RLlib's stock SAC, all measured in one run."""
from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import numpy as np

from envs.actions import unit_to_box
from rayexp.bench.common import repeat_rate, spread, summary_row

TARGET_RATIO = 0.7  # issue #18: the tier-making SAC at >= 0.7x the plain loop


def _sizes(quick: bool) -> dict:
    if quick:
        return {"env": "Hopper-v5", "hidden": (32, 32), "batch": 32, "learning_starts": 100, "steps": 100,
                "repeats": 1, "stock_steps": 50, "runners": 1}
    return {"env": "Hopper-v5", "hidden": (256, 256), "batch": 256, "learning_starts": 1000, "steps": 500,
            "repeats": 3, "stock_steps": 100, "runners": min(2, os.cpu_count() or 1)}


def plain_loop_rate(env_id: str, hidden: tuple[int, ...], batch: int, learning_starts: int, steps: int,
                    repeats: int, seed: int = 0) -> list[float]:
    """Env steps/s of a single-process SAC loop: act, step the env, store, one ``sac_update`` per step."""
    import torch
    from torch import nn

    from algorithms.sac import SACNets, SACOptimizers, TransitionBuffer, sac_update, tanh_gaussian_rsample
    from envs.registry import make_env

    torch.manual_seed(seed)
    env = make_env(env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    low, high = env.action_space.low, env.action_space.high

    def mlp(i: int, o: int) -> nn.Sequential:
        layers, d = [], i
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        return nn.Sequential(*layers, nn.Linear(d, o))

    actor, q1, q2 = mlp(obs_dim, 2 * act_dim), mlp(obs_dim + act_dim, 1), mlp(obs_dim + act_dim, 1)
    t1, t2 = copy.deepcopy(q1), copy.deepcopy(q2)

    def twin(a, b):
        return lambda o, u: (a(torch.cat([o, u], -1)).squeeze(-1), b(torch.cat([o, u], -1)).squeeze(-1))

    nets = SACNets(actor, twin(q1, q2), twin(t1, t2), [(q1, t1), (q2, t2)])
    log_alpha = torch.zeros(1, requires_grad=True)
    optim = SACOptimizers([torch.optim.Adam([*q1.parameters(), *q2.parameters()], 3e-4)],
                          torch.optim.Adam(actor.parameters(), 3e-4), torch.optim.Adam([log_alpha], 3e-4))
    buffer = TransitionBuffer(learning_starts + steps * repeats + 10, obs_dim, act_dim)
    rng, state = np.random.default_rng(seed), {"obs": env.reset(seed=seed)[0], "episode": 0}

    def run(n: int, learn: bool) -> int:
        for _ in range(n):
            with torch.no_grad():
                act = tanh_gaussian_rsample(actor(torch.as_tensor(state["obs"], dtype=torch.float32)[None]))[0][0].numpy()
            nxt, rew, term, trunc, _ = env.step(unit_to_box(act, low, high))
            buffer.add(state["obs"][None], act[None], np.float32([rew]), nxt[None], term, term or trunc, state["episode"])
            state["obs"] = nxt
            if term or trunc:
                state["obs"], state["episode"] = env.reset()[0], state["episode"] + 1
            if learn:
                sac_update(buffer.sample(batch, rng), nets, optim, log_alpha, gamma=0.99, tau=0.005,
                           target_entropy=-float(act_dim))
        return n

    run(learning_starts, learn=False)
    return repeat_rate(lambda: run(steps, learn=True), repeats)


def rllib_rate(env_id: str, hidden: tuple[int, ...], batch: int, learning_starts: int, steps: int, repeats: int,
               runners: int, stock: bool) -> list[float]:
    """Env steps/s of ``train()`` calls of ``steps`` env steps each, once learning has started."""
    from rayexp.families.mujoco.make_d4rl import sac_config

    algo = sac_config(env_id, runners, 0, hidden=hidden, batch_size=batch, learning_starts=learning_starts,
                      buffer_capacity=learning_starts + (repeats + 2) * steps + 1000, steps_per_iteration=steps,
                      training_intensity=float(batch), stock=stock).build_algo()
    try:
        sampled = 0
        while sampled <= learning_starts:
            sampled = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            now = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
            rates.append((now - sampled) / (time.perf_counter() - t0))
            sampled = now
        return rates
    finally:
        algo.stop()


def bench_sac(quick: bool, workdir: Path) -> list[dict]:
    import torch

    from rayexp.cluster import init_ray
    from rayexp.config import RayConfig

    s = _sizes(quick)
    init_ray(RayConfig())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # both sides learn on one thread, as make_d4rl does
    try:
        plain = plain_loop_rate(s["env"], s["hidden"], s["batch"], s["learning_starts"], s["steps"], s["repeats"])
        ours = rllib_rate(s["env"], s["hidden"], s["batch"], s["learning_starts"], s["steps"], s["repeats"],
                          s["runners"], stock=False)
        stock = rllib_rate(s["env"], s["hidden"], s["batch"], s["learning_starts"], s["stock_steps"], 1,
                           s["runners"], stock=True)
    finally:
        torch.set_num_threads(threads)

    def side(rates: list[float]) -> tuple[float, float, int]:
        return float(np.median(rates)), spread(rates), len(rates)

    where = (f"{s['env']}, {'x'.join(map(str, s['hidden']))} actor and twin critics, batch {s['batch']}, one update "
             f"per env step, {s['runners']} env runners")
    note = "quick: tiny nets, not a measurement" if quick else ""
    return [
        summary_row("sac", f"SAC training (make-d4rl: RLlib runners + rayexp update) vs a plain PyTorch loop; {where}",
                    side(ours), side(plain), "env steps/s", None if quick else f">= {TARGET_RATIO}", note=note),
        summary_row("sac", "SAC training: make-d4rl's SAC vs RLlib 2.60's stock SAC (its learner, episode replay "
                    "buffer and multi-stream critic)", side(ours), side(stock), "env steps/s", note=note),
    ]
