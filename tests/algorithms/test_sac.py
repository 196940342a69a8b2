"""algorithms.sac: the policy's log-probability matches RLlib's exploration distribution, the buffer gives back
whole episodes, and the update learns a one-step task."""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from algorithms.sac import SACNets, SACOptimizers, TransitionBuffer, sac_update, tanh_gaussian_rsample


def test_tanh_gaussian_logp_is_rllibs_squashed_gaussian():
    from ray.rllib.core.distribution.torch.torch_distribution import TorchSquashedGaussian

    g = torch.Generator().manual_seed(0)
    # log stds outside [-5, 2] too, so the clamp is exercised
    inputs = torch.cat([torch.randn(256, 3, generator=g) * 0.5, torch.randn(256, 3, generator=g) * 3 - 2], -1)
    act, logp = tanh_gaussian_rsample(inputs, generator=g)
    theirs = TorchSquashedGaussian.from_logits(inputs).logp(act)
    inside = act.abs().amax(-1) < 0.999  # RLlib's logp(action) clamps atanh's input near the bounds
    assert inside.sum() > 64
    torch.testing.assert_close(logp[inside], theirs[inside], rtol=1e-3, atol=1e-3)
    assert act.abs().max() <= 1.0


def test_buffer_returns_complete_episodes_in_the_order_they_ended():
    buf = TransitionBuffer(100, obs_dim=2, act_dim=1)

    def chunk(episode, start, n, done, terminated=False):
        obs = np.arange(start, start + n + 1, dtype=np.float32)[:, None].repeat(2, 1) + 1000 * episode
        buf.add(obs[:-1], np.zeros((n, 1)), np.ones(n), obs[1:], terminated=terminated, done=done, episode=episode)

    chunk(0, 0, 3, done=False)
    chunk(1, 0, 4, done=False)
    chunk(1, 4, 2, done=True, terminated=True)  # episode 1 ends first
    chunk(0, 3, 5, done=True)                  # episode 0 is truncated after 8 steps
    chunk(2, 0, 3, done=False)                 # still open: not an episode yet
    eps = buf.complete_episodes()
    assert [len(e) for e in eps] == [6, 8]
    assert buf.obs[eps[0], 0].tolist() == [1000.0 + t for t in range(6)]
    assert buf.obs[eps[1], 0].tolist() == list(map(float, range(8)))
    assert buf.terminateds[eps[0][-1]] == 1.0 and buf.terminateds[eps[1][-1]] == 0.0
    again = TransitionBuffer(100, 2, 1)
    again.load_state(buf.state())
    assert again.size == 17 and [len(e) for e in again.complete_episodes()] == [6, 8]


def test_sac_update_learns_a_one_step_task():
    """Reward -(a - 0.5)^2 after one step: the critic learns it and the policy's actions move to 0.5."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    def mlp(i, o):
        return nn.Sequential(nn.Linear(i, 64), nn.ReLU(), nn.Linear(64, o))

    actor, q1, q2 = mlp(1, 2), mlp(2, 1), mlp(2, 1)
    t1, t2 = copy.deepcopy(q1), copy.deepcopy(q2)

    def twin(a, b):
        return lambda o, u: (a(torch.cat([o, u], -1)).squeeze(-1), b(torch.cat([o, u], -1)).squeeze(-1))

    nets = SACNets(actor, twin(q1, q2), twin(t1, t2), [(q1, t1), (q2, t2)])
    log_alpha = torch.full((1,), -3.0, requires_grad=True)
    optim = SACOptimizers([torch.optim.Adam([*q1.parameters(), *q2.parameters()], 3e-3)],
                          torch.optim.Adam(actor.parameters(), 3e-3), torch.optim.Adam([log_alpha], 3e-3))

    def policy_error():
        with torch.no_grad():
            return float((torch.tanh(actor(torch.zeros(256, 1)).chunk(2, -1)[0]) - 0.5).abs().mean())

    before = policy_error()
    buf = TransitionBuffer(2000, 1, 1)
    acts = rng.uniform(-1, 1, (2000, 1)).astype(np.float32)
    buf.add(np.zeros((2000, 1)), acts, -(acts[:, 0] - 0.5) ** 2, np.zeros((2000, 1)), terminated=True, done=True,
            episode=0)
    buf.terminateds[:] = 1.0
    for _ in range(400):
        losses = sac_update(buf.sample(128, rng), nets, optim, log_alpha, gamma=0.99, tau=0.05, target_entropy=-1.0)
    assert policy_error() < 0.1 < before
    assert float(losses["critic_loss"]) < 0.01
