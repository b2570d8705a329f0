"""LearnableELUFunction and learnable_elu: the same values and gradients as the ops."""

import pytest
import torch

from elu_triton import LearnableELUFunction, learnable_elu


@pytest.mark.parametrize(
    "shape,channels", [((2, 3, 4), 3), ((2, 3, 4), 1), ((6,), 1), ((2, 2, 2, 3), 2)], ids=str
)
def test_gradcheck_float64(shape, channels, device):
    # Keep x away from 0, where the derivative in x jumps from alpha to 1.
    x = torch.randn(shape, dtype=torch.float64, device=device)
    x = torch.where(x.abs() < 0.05, x.sign() * 0.05 + x, x).requires_grad_()
    alpha = (torch.rand(channels, dtype=torch.float64, device=device) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(LearnableELUFunction.apply, (x, alpha))
    assert torch.autograd.gradcheck(learnable_elu, (x, alpha))


def test_all_entry_points_agree(device):
    x = torch.randn(4, 6, 5, 3, device=device).to(memory_format=torch.channels_last)
    alpha = torch.rand(6, device=device)
    dy = torch.randn_like(x)
    results = []
    for forward in (learnable_elu, LearnableELUFunction.apply, torch.ops.elu_triton.forward):
        xi, ai = x.clone().requires_grad_(), alpha.clone().requires_grad_()
        y = forward(xi, ai)
        y.backward(dy)
        results.append((y, xi.grad, ai.grad))
    dx, dalpha = torch.ops.elu_triton.backward(dy, x, alpha, True)
    for y, gx, ga in results:
        assert torch.equal(y, results[0][0]) and torch.equal(gx, dx) and torch.equal(ga, dalpha)


def test_gradient_only_for_x(device):
    x = torch.randn(3, 4, device=device, requires_grad=True)
    alpha = torch.rand(4, device=device)
    learnable_elu(x, alpha).sum().backward()
    assert x.grad is not None and alpha.grad is None


def test_gradient_only_for_alpha(device):
    x = torch.randn(3, 4, device=device)
    alpha = torch.rand(4, device=device, requires_grad=True)
    learnable_elu(x, alpha).sum().backward()
    assert alpha.grad is not None and alpha.grad.shape == (4,)


def test_output_can_be_modified_in_place(device):
    # A Function must not return a view (autograd then forbids in-place ops).
    x = torch.randn(2, 3, 4, 5, device=device).to(memory_format=torch.channels_last)
    x.requires_grad_()
    alpha = torch.rand(3, device=device, requires_grad=True)
    y = learnable_elu(x, alpha)
    y.mul_(2).sum().backward()
    expected_x, expected_alpha = x.detach().clone().requires_grad_(), alpha.detach().clone().requires_grad_()
    (learnable_elu(expected_x, expected_alpha) * 2).sum().backward()
    assert torch.equal(x.grad, expected_x.grad) and torch.equal(alpha.grad, expected_alpha.grad)
