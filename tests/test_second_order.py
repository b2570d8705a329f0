"""Second-order gradients: elu_triton::backward's own autograd formula (second_order.py).

gradgradcheck runs in float64 through whatever computes the first-order
gradients here: the Triton kernels (CUDA, or CPU under TRITON_INTERPRET=1)
or the PyTorch backend. x is kept away from 0, where the slope jumps from alpha to 1 and
finite differences would straddle the kink.
"""

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck, gradgradcheck

from elu_triton import BatchNormLearnableELU, LearnableELU, learnable_elu, reference


def _away_from_zero(shape, device, margin=0.1):
    x = torch.randn(shape, dtype=torch.float64, device=device)
    return x.sign() * (x.abs() + margin)


# Small: full-mode gradgradcheck costs about (2 * numel)^2 launches, and the
# interpreter spends milliseconds on each.
CASES = [  # (x shape, alpha size, channels_last)
    ((2, 3, 2), 3, False),
    ((1, 3, 2, 2), 3, True),
    ((2, 3, 2), 1, False),
    ((5,), 1, False),
    ((2, 3), 3, False),
]


@pytest.mark.parametrize("shape,channels,channels_last", CASES, ids=str)
def test_gradgradcheck_float64(shape, channels, channels_last, device):
    torch.manual_seed(0)
    x = _away_from_zero(shape, device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    alpha = torch.rand(channels, dtype=torch.float64, device=device) + 0.5
    inputs = (x.requires_grad_(), alpha.requires_grad_())
    # Perturbs x, alpha and the upstream gradient dy: every input of the backward op.
    assert gradgradcheck(learnable_elu, inputs)


def test_gradgradcheck_alpha_without_grad(device):
    """alpha frozen: the backward op runs with compute_dalpha=False (an empty dalpha)."""
    torch.manual_seed(0)
    x = _away_from_zero((2, 3, 2), device).requires_grad_()
    alpha = torch.rand(3, dtype=torch.float64, device=device) + 0.5
    assert gradgradcheck(lambda x: learnable_elu(x, alpha), (x,))


@pytest.mark.parametrize("compute_dalpha", [True, False])
def test_backward_op_gradcheck(compute_dalpha, device):
    """The formula itself, with gradients flowing into both dx and dalpha (third order too)."""
    torch.manual_seed(0)
    dy = torch.randn(2, 3, 2, dtype=torch.float64, device=device, requires_grad=True)
    x = _away_from_zero((2, 3, 2), device).requires_grad_()
    alpha = (torch.rand(3, dtype=torch.float64, device=device) + 0.5).requires_grad_()

    def backward_op(dy, x, alpha):
        dx, dalpha = torch.ops.elu_triton.backward(dy, x, alpha, compute_dalpha)
        return (dx, dalpha) if compute_dalpha else dx

    assert gradcheck(backward_op, (dy, x, alpha))
    # Third order of the layer: the formula is made of differentiable ops.
    assert gradgradcheck(backward_op, (dy, x, alpha), fast_mode=True)


def _second_order(fn, x, alpha, dy, grad_dx, grad_dalpha):
    """Gradients w.r.t. (dy, x, alpha) of <grad_dx, dx> + <grad_dalpha, dalpha>."""
    x, alpha, dy = (t.clone().requires_grad_() for t in (x, alpha, dy))
    dx, dalpha = torch.autograd.grad(fn(x, alpha), (x, alpha), dy, create_graph=True)
    return torch.autograd.grad((dx, dalpha), (dy, x, alpha), (grad_dx, grad_dalpha))


# The interpreter's numpy warns about the inf * 0 that the kernels then discard.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize(
    "dy_value,grad_dx_value", [(1.0, 1.0), (float("inf"), 1.0), (1.0, float("inf"))]
)
def test_edge_values_match_reference(dy_value, grad_dx_value, device):
    """NaN, +-inf, 0 and tiny x, and infinite upstream gradients: the reference's values."""
    inf, nan = float("inf"), float("nan")
    x = torch.tensor(
        [[[nan, -inf, -30.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, inf],
          [-1.0, -2.0, 0.5, -0.3, 1.0, 2.0, -1.0, 3.0, 0.1]]],
        dtype=torch.float64, device=device,
    )  # fmt: skip
    alpha = torch.tensor([0.7, 1.3], dtype=torch.float64, device=device)
    dy = torch.full_like(x, dy_value)
    grad_dx = torch.full_like(x, grad_dx_value)
    grad_dalpha = torch.tensor([0.5, -2.0], dtype=torch.float64, device=device)
    ours = _second_order(learnable_elu, x, alpha, dy, grad_dx, grad_dalpha)
    expected = _second_order(reference.learnable_elu, x, alpha, dy, grad_dx, grad_dalpha)
    for name, a, b in zip(("d dy", "d x", "d alpha"), ours, expected):
        torch.testing.assert_close(a, b, equal_nan=True, msg=lambda m, name=name: f"{name}: {m}")


def _critic(act: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), act, nn.Flatten(), nn.Linear(4 * 5 * 5, 1))


def _gradient_penalty_grads(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps):
    """WGAN-GP: the parameters' gradients of E[(||d critic / d x_hat|| - 1)^2]."""
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_()
    (grad_x,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    penalty = ((grad_x.flatten(1).norm(dim=1) - 1) ** 2).mean()
    # The last bias does not move d critic / d x_hat: its gradient is zero.
    return torch.autograd.grad(penalty, list(critic.parameters()), materialize_grads=True)


@pytest.mark.parametrize(
    "dtype,rtol,atol", [(torch.float64, 1e-10, 1e-12), (torch.float32, 1e-4, 1e-6)]
)
def test_gradient_penalty_matches_reference(dtype, rtol, atol, device):
    torch.manual_seed(0)
    layer = LearnableELU(4, init=0.8, device=device, dtype=dtype)
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([0.3, 0.8, 1.2, 2.0]))
    critic = _critic(layer).to(device, dtype)
    real, fake = (torch.randn(3, 2, 5, 5, device=device, dtype=dtype) for _ in range(2))
    eps = torch.rand(3, 1, 1, 1, device=device, dtype=dtype)
    ours = _gradient_penalty_grads(critic, real, fake, eps)

    critic[1] = reference.ReferenceELU(layer.alpha)  # the same parameter, the reference's math
    expected = _gradient_penalty_grads(critic, real, fake, eps)
    assert ours[2] is not None and ours[2].dtype == dtype  # alpha's gradient
    for got, want in zip(ours, expected):
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol)


def test_first_order_records_no_graph(device):
    """Without create_graph the backward op runs as before: nothing is recorded for it."""
    x = torch.randn(2, 3, 4, device=device, requires_grad=True)
    alpha = torch.rand(3, device=device, requires_grad=True)
    dx, dalpha = torch.autograd.grad(learnable_elu(x, alpha).sum(), (x, alpha))
    assert dx.grad_fn is None and dalpha.grad_fn is None
    dx, dalpha = torch.autograd.grad(learnable_elu(x, alpha).sum(), (x, alpha), create_graph=True)
    assert dx.grad_fn is not None and dalpha.grad_fn is not None


def test_mixed_dtypes(device):
    """bf16 x with fp32 alpha (autocast): second-order gradients in each input's dtype."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, device=device).to(torch.bfloat16).requires_grad_()
    alpha = (torch.rand(3, device=device) + 0.5).requires_grad_()
    dx, dalpha = torch.autograd.grad(learnable_elu(x, alpha).sum(), (x, alpha), create_graph=True)
    gx, galpha = torch.autograd.grad(dx.float().square().sum() + dalpha.sum(), (x, alpha))
    assert gx.dtype == torch.bfloat16 and galpha.dtype == torch.float32
    expected = _second_order(
        reference.learnable_elu, x.double(), alpha.double(), torch.ones_like(x, dtype=torch.float64),
        2 * dx.detach().double(), torch.ones(3, dtype=torch.float64, device=device),
    )  # fmt: skip
    torch.testing.assert_close(gx.double(), expected[1], rtol=2**-7, atol=1e-6)
    torch.testing.assert_close(galpha.double(), expected[2], rtol=1e-5, atol=1e-6)


def _graph_nodes(grad_fn) -> set[str]:
    """The names of the autograd nodes that grad_fn reaches."""
    names, seen, stack = set(), set(), [grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(node.name())
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


def test_batch_norm_records_the_activation_formula(device):
    """The fused batch norm's second order reaches the activation through the same formula."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 4, device=device, requires_grad=True)
    layer = BatchNormLearnableELU(3, device=device)
    (gx,) = torch.autograd.grad(layer(x).square().sum(), x, create_graph=True)
    names = _graph_nodes(gx.grad_fn)
    assert any("elu_triton_backward" in name for name in names), names
    assert "Expm1Backward0" not in names, names  # no reference composite differentiated
