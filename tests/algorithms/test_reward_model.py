import numpy as np
import torch

from algorithms.base import DataSpec, Frozen
from algorithms.configs import RewardModelConfig
from algorithms.reward_model import RewardModel, discounted_return_to_go


def test_rtg_timeout_has_no_penalty():
    rtg = discounted_return_to_go(np.array([1.0, 2.0, 3.0]), np.array([False, False, False]), gamma=0.5)
    np.testing.assert_allclose(rtg, [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3])


def test_rtg_termination_penalty():
    rtg = discounted_return_to_go(np.array([1.0, 2.0, 3.0]), np.array([False, False, True]), gamma=0.5)
    np.testing.assert_allclose(rtg, [1 + 0.5 * 2 + 0.25 * -97, 2 + 0.5 * -97, -97])
    rtg0 = discounted_return_to_go(np.array([1.0]), np.array([True]), gamma=0.9, termination_penalty=0.0)
    np.testing.assert_allclose(rtg0, [1.0])


def test_reward_model_learns_linear_rtg():
    torch.manual_seed(0)
    spec = DataSpec(obs_dim=3, act_dim=2, stats={"rtg_mean": [0.0], "rtg_std": [2.0]})
    method = RewardModel(RewardModelConfig())
    model = method.build_model(spec)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        obs, act = torch.randn(128, 3), torch.randn(128, 2)
        loss, _ = method.loss(model, {"obs": obs, "action": act, "rtg": obs[:, 0] + 2 * act[:, 1]}, Frozen())
        opt.zero_grad()
        loss.backward()
        opt.step()
    obs, act = torch.randn(256, 3), torch.randn(256, 2)
    err = (model.predict_rtg(obs, act) - (obs[:, 0] + 2 * act[:, 1])).abs().mean()
    assert err < 0.3
