"""Routes the eager test cannot see: autograd's batched gradients and torch.jit.trace."""

import pytest
import torch

from elu_triton import LearnableELU, learnable_elu, reference


def _case(device, dtype=torch.float64, shape=(2, 3, 5), channels=3):
    torch.manual_seed(0)
    x = torch.randn(shape, device=device, dtype=dtype) * 3
    x.view(-1)[:3] = torch.tensor([0.0, -1e-7, -30.0])
    alpha = torch.rand(channels, device=device, dtype=dtype) + 0.5
    return x.requires_grad_(), alpha.requires_grad_()


@pytest.mark.parametrize("channels", [3, 1])
def test_is_grads_batched_matches_the_reference(channels, device):
    x, alpha = _case(device, channels=channels)
    dys = torch.randn(4, *x.shape, device=device, dtype=x.dtype)
    got = torch.autograd.grad(learnable_elu(x, alpha), (x, alpha), dys, is_grads_batched=True)
    want = torch.autograd.grad(
        reference.learnable_elu(x, alpha), (x, alpha), dys, is_grads_batched=True
    )
    assert got[0].shape == (4, *x.shape) and got[1].shape == (4, channels)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    # ... and each row is the gradient for its own dy.
    single = torch.autograd.grad(learnable_elu(x, alpha), (x, alpha), dys[2])
    torch.testing.assert_close(got[0][2], single[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got[1][2], single[1], rtol=1e-12, atol=1e-12)


def test_only_x_or_only_alpha_batched(device):
    x, alpha = _case(device)
    dys = torch.randn(3, *x.shape, device=device, dtype=x.dtype)
    (dx,) = torch.autograd.grad(learnable_elu(x, alpha), x, dys, is_grads_batched=True)
    (da,) = torch.autograd.grad(learnable_elu(x, alpha), alpha, dys, is_grads_batched=True)
    want = torch.autograd.grad(
        reference.learnable_elu(x, alpha), (x, alpha), dys, is_grads_batched=True
    )
    torch.testing.assert_close(dx, want[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(da, want[1], rtol=1e-12, atol=1e-12)


def test_vectorized_jacobian_matches_the_reference(device):
    x, alpha = _case(device, shape=(2, 3, 2))
    got = torch.autograd.functional.jacobian(learnable_elu, (x, alpha), vectorize=True)
    want = torch.autograd.functional.jacobian(reference.learnable_elu, (x, alpha))
    for g_row, w_row in zip(got, want):
        for g, w in zip(g_row, w_row):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


def test_batched_gradients_of_a_16_bit_input(device):
    x, alpha = _case(device, dtype=torch.float32)
    x16 = x.detach().bfloat16().requires_grad_()
    dys = torch.randn(2, *x.shape, device=device).bfloat16()
    got = torch.autograd.grad(learnable_elu(x16, alpha), (x16, alpha), dys, is_grads_batched=True)
    want = torch.autograd.grad(
        reference.learnable_elu(x16, alpha), (x16, alpha), dys, is_grads_batched=True
    )
    assert got[0].dtype == torch.bfloat16 and got[1].dtype == torch.float32
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:.*torch.jit.trace. is deprecated:DeprecationWarning")
@pytest.mark.parametrize("channel_dim", [1, -1])
def test_jit_trace_replays_the_composite(channel_dim, device, recwarn):
    """The trace holds aten ops (no launch it cannot see), and replays on other inputs."""
    torch.manual_seed(0)
    layer = LearnableELU(3, init=0.6, channel_dim=channel_dim, device=device)
    shape = (2, 3, 4) if channel_dim == 1 else (2, 4, 3)
    traced = torch.jit.trace(layer, torch.randn(shape, device=device))
    kinds = {node.kind() for node in traced.graph.nodes()}
    assert "aten::expm1" in kinds and "prim::PythonOp" not in kinds
    assert all(k.startswith(("aten::", "prim::")) for k in kinds)
    assert not [w for w in recwarn if issubclass(w.category, torch.jit.TracerWarning)]
    other = (5, 3, 7) if channel_dim == 1 else (5, 7, 3)
    x = torch.randn(other, device=device, requires_grad=True)
    y = traced(x)
    torch.testing.assert_close(y, layer(x))
    y.sum().backward()  # and the trace is differentiable
    (want,) = torch.autograd.grad(layer(x).sum(), x)
    torch.testing.assert_close(x.grad, want)
