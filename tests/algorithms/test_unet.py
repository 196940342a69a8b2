"""Shapes of the temporal U-Net for every condition mode, the two-times variant and odd horizons."""
import pytest
import torch

from algorithms.nets.unet1d import ConditionalUnet1D, drop_condition


@pytest.mark.parametrize("cond_mode", ["none", "concat", "cross_attention"])
@pytest.mark.parametrize("two_times", [False, True])
@pytest.mark.parametrize("horizon", [4, 7, 16])
def test_shapes(cond_mode, two_times, horizon):
    torch.manual_seed(0)
    net = ConditionalUnet1D(3, global_cond_dim=5, step_embed_dim=16, down_dims=[16, 32, 64], kernel_size=3,
                            two_times=two_times, cond_dim=6, cond_embed_dim=8, cond_mode=cond_mode)
    x, t = torch.randn(2, horizon, 3), torch.rand(2)
    s = torch.rand(2) if two_times else None
    for cond in (torch.randn(2, 6), torch.randn(2, 3, 6)):  # one vector or three condition tokens
        out = net(x, t, torch.randn(2, 5), s=s, cond=cond)
        assert out.shape == x.shape and torch.isfinite(out).all()
    if cond_mode != "none":
        out2 = net(x, t, torch.randn(2, 5), s=s, cond=torch.randn(2, 6))
        assert not torch.allclose(out, out2)  # the condition changes the output


def test_cross_attention_only_outside_bottleneck():
    net = ConditionalUnet1D(3, down_dims=[16, 32, 64], n_groups=4, cond_dim=4, cond_mode="cross_attention")
    names = [n for n, _ in net.named_modules() if n.endswith(".q")]
    assert names and not any(n.startswith("mid") for n in names)
    assert len(names) == 2 * 3 + 2 * 2  # two per down level, two per up level


def test_two_times_requires_s():
    net = ConditionalUnet1D(2, step_embed_dim=16, down_dims=[16], two_times=True)
    with pytest.raises(ValueError):
        net(torch.randn(1, 4, 2), torch.rand(1))


def test_drop_condition():
    g = torch.Generator().manual_seed(0)
    cond = torch.ones(1000, 4)
    null = torch.full((4,), -1.0)
    out = drop_condition(cond, 0.1, null, generator=g)
    dropped = (out == -1).all(1)
    assert ((out == 1).all(1) | dropped).all() and 0.05 < dropped.float().mean() < 0.15
    assert torch.equal(drop_condition(cond, 0.0), cond)
    assert (drop_condition(cond, 1.0) == 0).all()
