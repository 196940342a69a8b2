"""The one NFE counter (evaluation, Maze2D's table, the bench) and the one [-1, 1] -> Box mapping."""
import numpy as np
import torch

from algorithms.base import DataSpec
from algorithms.configs import BCConfig, DDPMConfig, UnetConfig
from algorithms.nfe import NetworkCalls
from algorithms.registry import make_method
from envs.actions import unit_to_box

SPEC = DataSpec(obs_dim=3, act_dim=2, obs_history=1, action_horizon=4)


def policy_calls(cfg) -> int:
    method = make_method(cfg)
    model = method.build_model(SPEC)
    calls = NetworkCalls(model)
    method.make_policy(model, SPEC)(torch.zeros(1, 1, 3))
    calls.remove()
    method.make_policy(model, SPEC)(torch.zeros(1, 1, 3))  # the hooks are off again
    return calls.count


def test_a_diffusion_policy_counts_its_sampler_steps_and_bc_one_call():
    unet = UnetConfig(step_embed_dim=8, down_dims=[8, 16])
    assert policy_calls(DDPMConfig(sampler="ddim", sample_steps=7, unet=unet)) == 7
    assert policy_calls(DDPMConfig(sampler="ddpm", sample_steps=5, unet=unet)) == 5
    assert policy_calls(BCConfig(hidden=[8])) == 1


def test_unit_actions_map_onto_the_box_for_numpy_and_torch():
    low, high = np.array([-2.0, 0.0]), np.array([2.0, 10.0])
    np.testing.assert_allclose(unit_to_box(np.array([[-1.0, 1.0], [0.0, 0.0], [3.0, -3.0]]), low, high),
                               [[-2.0, 10.0], [0.0, 5.0], [2.0, 0.0]])
    out = unit_to_box(torch.tensor([0.5, -0.5]), torch.as_tensor(low), torch.as_tensor(high))
    torch.testing.assert_close(out, torch.tensor([1.0, 2.5], dtype=torch.float64))
