"""The reference itself: the same function as F.elu at each alpha, and sane edges."""

import pytest
import torch
import torch.nn.functional as F

from elu_triton import reference


@pytest.mark.parametrize("alpha", [0.1, 1.0, 2.5])
def test_equals_elu_with_constant_alpha(alpha):
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    xe = x.detach().clone().requires_grad_()
    y = reference.learnable_elu(x, torch.full((3,), alpha, dtype=torch.float64))
    ye = F.elu(xe, alpha)
    torch.testing.assert_close(y, ye, rtol=1e-15, atol=0)
    dy = torch.randn_like(y)
    y.backward(dy)
    ye.backward(dy)
    torch.testing.assert_close(x.grad, xe.grad, rtol=1e-14, atol=1e-300)


def test_channel_dim_is_dim_1():
    x = -torch.ones(2, 3, 4, dtype=torch.float64)
    y = reference.learnable_elu(x, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert torch.allclose(
        y[:, 1], torch.full((2, 4), 2 * torch.expm1(torch.tensor(-1.0)).item(), dtype=torch.float64)
    )


def test_edges_give_no_spurious_nan():
    x = torch.tensor([float("inf"), -float("inf"), 0.0, float("nan")], requires_grad=True)
    alpha = torch.tensor([2.0], requires_grad=True)
    y = reference.learnable_elu(x, alpha)
    y.sum().backward()
    assert y[0] == float("inf") and y[1] == -2.0 and y[2] == 0 and y[3].isnan()
    assert x.grad[0] == 1 and x.grad[1] == 0 and x.grad[2] == 2 and x.grad[3].isnan()
    assert alpha.grad.isnan().all()
