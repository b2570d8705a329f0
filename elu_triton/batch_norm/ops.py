"""Custom ops of the fused layer: elu_triton::batch_norm_elu_forward and _backward.

The autograd Function calls them for subclass tensors and under dispatch
modes (a FlopCounterMode, make_fx); their bodies are ``eager.py``'s, and
their fake implementations give shapes and dtypes without touching data.
Every activation goes through the same two ops: their last argument names
its row of ``activations.ACTIVATIONS`` (the learnable ELU by default, so
the ops' names and their ELU calls stay as they were), and nothing in a
fake depends on it: the activation's parameter is (C,), (1,) or 0-D and
its gradient ``dalpha_shape`` of it, whichever the activation.
Both are functional: the caller updates the running statistics from the
forward's (mean, var). The forward's autograd formula (for callers of the op itself; the Function has
its own) saves x, the statistics and the parameters (bias as a copy, as the
Function does) and calls the backward
op, or differentiates the composite under create_graph=True.
"""

import torch

from ..backends.base import dalpha_shape
from ..precision import compute_dtype
from .activations import activation_named
from .checks import check_backward_inputs, check_batch_norm_inputs
from .eager import grads_for_inputs, run_backward, run_forward, save_for_backward


@torch.library.custom_op("elu_triton::batch_norm_elu_forward", mutates_args=())
def batch_norm_elu_forward(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    alpha: torch.Tensor,
    training: bool,
    eps: float,
    activation: str = "learnable_elu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, mean, var): y in x's dtype and memory format, (C,) statistics in the compute dtype.

    alpha: the activation's parameter. Reads the running statistics in
    eval, and never writes them.
    """
    args = (x, running_mean, running_var, weight, bias, alpha, training, eps)
    y, mean, var = run_forward(*args, activation_named(activation))
    return y, mean, var  # (copies in eval: an op's outputs must not alias its inputs)


@batch_norm_elu_forward.register_fake
def _forward_fake(
    x, running_mean, running_var, weight, bias, alpha, training, eps, activation="learnable_elu"
):
    parameter = activation_named(activation).parameter
    check_batch_norm_inputs(
        x, running_mean, running_var, weight, bias, alpha, training, eps, parameter
    )
    statistics = x.new_empty((x.shape[1],), dtype=compute_dtype(x.dtype))
    return torch.empty_like(x), statistics, torch.empty_like(statistics)


@torch.library.custom_op("elu_triton::batch_norm_elu_backward", mutates_args=())
def batch_norm_elu_backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    alpha: torch.Tensor,
    training: bool,
    eps: float,
    needs: list[bool],
    activation: str = "learnable_elu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, dweight, dbias, dalpha); each an empty (0,) tensor where needs says no.

    dalpha, the activation parameter's gradient, is ``dalpha_shape(alpha)``,
    as the activation's backward op returns it.
    """
    args = (dy, x, mean, var, weight, bias, alpha, training, eps, tuple(needs))
    grads = run_backward(*args, activation=activation_named(activation))
    return tuple(g if g is not None else x.new_empty(0) for g in grads)


@batch_norm_elu_backward.register_fake
def _backward_fake(
    dy, x, mean, var, weight, bias, alpha, training, eps, needs, activation="learnable_elu"
):
    check_backward_inputs(dy, x, weight, bias, alpha, activation_named(activation).parameter)
    likes = (x, weight, bias, alpha.reshape(dalpha_shape(alpha)))
    return tuple(
        torch.empty_like(t) if need and t is not None else x.new_empty(0)
        for t, need in zip(likes, needs)
    )


def _save(ctx, inputs, output) -> None:
    x, _, _, weight, bias, alpha, training, eps, activation = inputs
    _, mean, var = output
    ctx.mark_non_differentiable(mean, var)
    # bias: a copy
    save_for_backward(ctx, x, mean, var, weight, bias, alpha, activation_named(activation))
    ctx.training, ctx.eps, ctx.passes = training, eps, None  # (the backward op selects again)


def _backward_formula(ctx, dy, _dmean, _dvar):
    dx, dweight, dbias, dalpha = grads_for_inputs(ctx, dy)
    return dx, None, None, dweight, dbias, dalpha, None, None, None


batch_norm_elu_forward.register_autograd(_backward_formula, setup_context=_save)
