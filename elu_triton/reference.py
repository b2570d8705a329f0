"""Pure-PyTorch reference of the ELU with a learnable per-channel alpha.

    y = x                       if x > 0
      = alpha[c] * expm1(x)     if x <= 0

Gradients come from autograd. Tests, benchmarks and the demo import this as
the ground truth; ``learnable_elu`` also routes here under torch.compile and
torch.export (so that the compiler can fuse the activation with its
neighbours), and under torch.func transforms and forward-mode AD (which
compose with its plain ops). It computes in the kernels' arithmetic dtype,
so the routes agree to the rounding of the final result.

Written so that autograd gives the intended values at the edges: the
negative branch sees 0 for x > 0 (so exp(+inf) never makes 0 * inf = NaN in
the gradient), NaN x stays NaN in y, dx and dalpha, and x = -inf gives
y = -alpha and dx = 0.
"""

import torch

from .channels import on_channel_dim
from .checks import check_inputs
from .precision import compute_dtype


def alpha_for_broadcast(alpha: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """alpha viewed as (C,) on dim 1 of x, e.g. (1, C, 1, 1) for 4-D x.

    (C is left as -1, so that torch.jit.trace records no constant for it.)
    """
    if x.dim() < 2 or alpha.numel() == 1:
        return alpha.reshape(())
    return alpha.reshape((1, -1) + (1,) * (x.dim() - 2))


class ReferenceELU(torch.nn.Module):
    """The reference as a module around a given alpha (a twin of a network's layer).

    Args:
        alpha: the Parameter (or tensor) to share, e.g. another layer's ``alpha``.
    """

    def __init__(self, alpha: torch.Tensor):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return learnable_elu(x, self.alpha)


def learnable_elu(x: torch.Tensor, alpha: torch.Tensor, *, channel_dim: int = 1) -> torch.Tensor:
    """The reference forward; differentiable in x and alpha by autograd.

    Args:
        x: float, with its C channels on channel_dim ((N, C, *) by default),
            or any shape of fewer than 2 dims (one channel).
        alpha: (C,), (1,) or 0-D, float; may differ from x's dtype.
        channel_dim: the dim of x that holds the channels (-1: the last).

    Returns:
        y of x's shape and dtype, computed as the kernels compute it: in fp32
        for 16- and 32-bit x, in fp64 for fp64 x, whatever alpha's dtype.
    """
    if channel_dim != 1:
        return on_channel_dim(learnable_elu, x, alpha, channel_dim)
    check_inputs(x, alpha)
    dtype = compute_dtype(x.dtype)
    xc = x.to(dtype)
    a = alpha_for_broadcast(alpha, x).to(dtype)
    negative = torch.where(xc > 0, torch.zeros_like(xc), xc)
    y = torch.where(xc > 0, xc, a * torch.expm1(negative))
    return y.to(x.dtype)


def learnable_elu_backward(
    dy: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(dx, dalpha) of the reference forward at (x, alpha, channel dim 1), in plain ops.

    The backward for callers that can run neither the kernels nor aten's
    out= variants: autograd's batched gradients (``is_grads_batched=True``,
    ``jacobian(vectorize=True)``) hand over dy as a legacy batched tensor,
    which has no storage and few batching rules. Values as the reference's
    autograd gives them: selecting after the product keeps an infinite dy at
    x > 0 out of dalpha, NaN x gives NaN, x = -inf gives dx = 0.

    Returns:
        dx in x's dtype, dalpha of alpha's shape and dtype.
    """
    dtype = compute_dtype(x.dtype)
    xc, dyc = x.to(dtype), dy.to(dtype)
    a = alpha_for_broadcast(alpha, x).to(dtype)
    positive = xc > 0
    negative = torch.where(positive, 0.0, xc)
    dx = torch.where(positive, dyc, dyc * (a * torch.exp(negative)))
    terms = torch.where(positive, 0.0, dyc * torch.expm1(negative))
    dalpha = terms.sum_to_size(a.shape).reshape(alpha.shape)
    return dx.to(x.dtype), dalpha.to(alpha.dtype)
