"""The demo network (elu_triton/demo/model.py)."""

import pytest
import torch
from torch import nn

from elu_triton import LearnableELU
from elu_triton.demo.model import ZeroCenter, digit_net, learned_alphas


def test_layers_and_shapes():
    torch.manual_seed(0)
    mean = torch.rand(1, 28, 28)
    net = digit_net(mean)
    assert [type(m) for m in net] == [
        ZeroCenter,
        nn.Conv2d,
        nn.BatchNorm2d,
        LearnableELU,
        nn.Flatten,
        nn.Linear,
    ]
    assert net.conv.weight.shape == (20, 1, 5, 5) and net.fc.weight.shape == (10, 20 * 24 * 24)
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert torch.equal(net.input.mean, mean)


def test_alpha_drawn_uniform_in_unit_interval_from_the_seed():
    torch.manual_seed(1)
    alphas = learned_alphas(digit_net())
    assert len(alphas) == 20 and all(0.0 <= a < 1.0 for a in alphas)
    assert len(set(alphas)) == 20
    torch.manual_seed(1)
    assert learned_alphas(digit_net()) == alphas


def test_zero_center_subtracts_the_mean_image():
    mean = torch.rand(1, 28, 28)
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(ZeroCenter(mean)(x), x - mean)


def test_state_dict_round_trip_holds_the_mean_image():
    torch.manual_seed(2)
    net = digit_net(torch.rand(1, 28, 28)).eval()
    copy = digit_net().eval()
    copy.load_state_dict(net.state_dict())
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(copy(x), net(x))


def test_elu_variant_and_unknown_activation():
    net = digit_net(activation="elu")
    assert isinstance(net.elu, nn.ELU) and learned_alphas(net) == [1.0]
    with pytest.raises(ValueError, match="activation must be one of"):
        digit_net(activation="relu")
