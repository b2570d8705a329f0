"""Custom ops of the fused layer: elu_triton::batch_norm_elu_forward and _backward.

The autograd Function calls them for subclass tensors and under dispatch
modes (a FlopCounterMode, make_fx); their bodies are ``passes.py``'s, and
their fake implementations give shapes and dtypes without touching data.
The forward mutates the running statistics (as aten's native_batch_norm
does); the Function owns the autograd formula, so neither op registers one.
"""

import torch

from ..precision import compute_dtype
from .checks import check_batch_norm_inputs
from .passes import run_backward, run_forward


@torch.library.custom_op(
    "elu_triton::batch_norm_elu_forward", mutates_args=("running_mean", "running_var")
)
def batch_norm_elu_forward(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    alpha: torch.Tensor,
    training: bool,
    momentum: float,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, mean, invstd): y in x's dtype and memory format, (C,) statistics in the compute dtype."""
    y, mean, invstd = run_forward(
        x, running_mean, running_var, weight, bias, alpha, training, momentum, eps
    )
    return y, mean, invstd


@batch_norm_elu_forward.register_fake
def _forward_fake(x, running_mean, running_var, weight, bias, alpha, training, momentum, eps):
    check_batch_norm_inputs(x, running_mean, running_var, weight, bias, alpha, training)
    statistics = x.new_empty((x.shape[1],), dtype=compute_dtype(x.dtype))
    return torch.empty_like(x), statistics, torch.empty_like(statistics)


@torch.library.custom_op("elu_triton::batch_norm_elu_backward", mutates_args=())
def batch_norm_elu_backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    invstd: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    alpha: torch.Tensor,
    training: bool,
    needs: list[bool],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, dweight, dbias, dalpha); each an empty (0,) tensor where needs says no."""
    grads = run_backward(dy, x, mean, invstd, weight, bias, alpha, training, tuple(needs))
    return tuple(g if g is not None else x.new_empty(0) for g in grads)


@batch_norm_elu_backward.register_fake
def _backward_fake(dy, x, mean, invstd, weight, bias, alpha, training, needs):
    likes = (x, weight, bias, alpha)
    return tuple(
        torch.empty_like(t) if need and t is not None else x.new_empty(0)
        for t, need in zip(likes, needs)
    )
