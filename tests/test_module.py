"""LearnableELU follows nn.PReLU's conventions (its compile contract: test_contract_compile.py)."""

import pytest
import torch
from torch import nn

from elu_triton import LearnableELU, reference


def test_parameter_and_conventions():
    act = LearnableELU(20, init=0.25)
    assert isinstance(act.alpha, nn.Parameter) and act.alpha.shape == (20,)
    assert torch.all(act.alpha == 0.25)
    assert list(act.state_dict()) == ["alpha"]
    assert repr(act) == "LearnableELU(num_channels=20, init=0.25)"
    with torch.no_grad():
        act.alpha.fill_(3.0)
    act.reset_parameters()
    assert torch.all(act.alpha == 0.25)


def test_defaults_match_prelu():
    act, prelu = LearnableELU(), nn.PReLU()
    assert act.alpha.shape == prelu.weight.shape == (1,)
    assert act.alpha.dtype == prelu.weight.dtype


def test_device_and_dtype(device):
    act = LearnableELU(3, device=device, dtype=torch.float64)
    assert act.alpha.device.type == device and act.alpha.dtype == torch.float64


def test_shared_alpha_applies_to_every_channel(device):
    x = torch.randn(2, 5, 3, device=device)
    act = LearnableELU(1, init=0.5).to(device)
    torch.testing.assert_close(
        act(x), reference.learnable_elu(x, torch.full((5,), 0.5, device=device))
    )


def test_learns_alpha(device):
    torch.manual_seed(0)
    act = LearnableELU(4, init=1.0).to(device)
    x = -torch.rand(64, 4, 8, device=device) * 3
    target = reference.learnable_elu(x, torch.tensor([0.2, 0.5, 1.5, 2.0], device=device))
    opt = torch.optim.SGD(act.parameters(), lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.mse_loss(act(x), target).backward()
        opt.step()
    torch.testing.assert_close(
        act.alpha.detach().cpu(), torch.tensor([0.2, 0.5, 1.5, 2.0]), atol=1e-3, rtol=0
    )


@pytest.mark.parametrize("inplace", [False, True])
def test_inplace_is_accepted_and_ignored(device, inplace):
    # Factories call act_layer(inplace=True); the backward needs x, so x stays.
    act = LearnableELU(3, init=0.5, inplace=inplace).to(device)
    x = torch.randn(4, 3, 5, device=device)
    x_before = x.clone()
    y = act(x)
    assert torch.equal(x, x_before) and y.data_ptr() != x.data_ptr()
    torch.testing.assert_close(y, LearnableELU(3, init=0.5).to(device)(x), rtol=0, atol=0)
    assert repr(act) == "LearnableELU(num_channels=3, init=0.5)"


def test_inplace_is_keyword_only():
    with pytest.raises(TypeError):
        LearnableELU(3, 0.5, True)


@pytest.mark.parametrize("channel_dim", [1, -1])
def test_fx_symbolic_trace_records_one_call(channel_dim, device):
    """As for nn.PReLU: FX tools (feature extractors, FX quantization) trace converted models."""
    torch.manual_seed(0)
    if channel_dim == 1:
        model = nn.Sequential(nn.Conv2d(3, 4, 3), LearnableELU(4, init=0.3)).to(device)
        x = torch.randn(2, 3, 8, 8, device=device)
    else:
        model = nn.Sequential(nn.Linear(5, 6), LearnableELU(6, init=0.3, channel_dim=-1))
        model = model.to(device)
        x = torch.randn(2, 7, 5, device=device)
    traced = torch.fx.symbolic_trace(model)
    calls = [n for n in traced.graph.nodes if n.op == "call_function"]
    assert [n.target.__name__ for n in calls] == ["learnable_elu"]
    assert calls[0].kwargs == {"channel_dim": channel_dim}
    torch.testing.assert_close(traced(x), model(x))
    traced(x).sum().backward()  # the traced module trains as the model does
    assert model[1].alpha.grad is not None
