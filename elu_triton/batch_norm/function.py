"""The autograd Function and the functional forms of the fused layers.

``batch_norm_learnable_elu`` takes ``F.batch_norm``'s arguments in its order,
plus alpha; ``batch_norm_activation`` is the same for any row of
``activations.py``, which each functional form names. Eagerly it applies
``BatchNormLearnableELUFunction`` (for every activation), which
saves x, the per-channel (mean, var) and the parameters (bias as a copy, so
that bias may change in place before the backward), never z or y,
and runs the passes (``eager.py``) directly for plain tensors, or through
the custom ops (``ops.py``) for subclass tensors and under dispatch modes;
then it updates the running statistics in place, as F.batch_norm does.

Under torch.compile, torch.export, torch.jit.trace and torch.func
transforms, and for forward-AD dual inputs, it returns the composite, ``F.batch_norm`` then the
activation's reference, as ``learnable_elu`` does: the compiler fuses it with
its neighbours, and the transforms compose with plain PyTorch ops (and
refuse what they refuse for BatchNorm: vmap over training-mode running
statistics). Only this thread's state and the call's own tensors decide.

A backward under create_graph=True recomputes the composite and
differentiates it, so that second-order gradients are recorded; so does a
backward of autograd's batched gradients (``is_grads_batched=True``,
``jacobian(vectorize=True)``), whose dy the passes cannot read. The route
tests are the activation's (``elu_triton.routes``).
"""

import torch
import torch.nn.functional as F

from ..routes import (
    dual,
    export_tracing,
    is_plain,
    jit_tracing,
    jit_warnings_off,
    traced,
    transformed,
)
from . import ops as _ops  # noqa: F401  (registers torch.ops.elu_triton.batch_norm_elu_*)
from .activations import LEARNABLE_ELU, PRELU, FusedActivation
from .checks import check_eps
from .eager import grads_for_inputs, passes_for, run_forward, save_for_backward
from .statistics import elements_per_channel, update_running


def all_plain(*tensors: torch.Tensor | None) -> bool:
    """``routes.is_plain`` for each tensor given (None, an absent one, passes)."""
    return all(t is None or is_plain(t) for t in tensors)


def composite(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    param: torch.Tensor,
    training: bool,
    momentum: float,
    eps: float,
    activation: FusedActivation = LEARNABLE_ELU,
) -> torch.Tensor:
    """F.batch_norm then the activation's reference: what traced code runs."""
    check_eps(eps, training)  # one rule on every torch: F.batch_norm's has changed
    z = F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    return activation.reference(z, param)


class BatchNormLearnableELUFunction(torch.autograd.Function):
    """activation(batch_norm(x)); see ``batch_norm_activation``.

    activation: an ``activations`` row, the learnable ELU unless given (its
    parameter is then alpha).
    """

    @staticmethod
    def forward(
        ctx, x, running_mean, running_var, weight, bias, param, training, momentum, eps,
        _plain=None, activation=LEARNABLE_ELU,
    ):  # fmt: skip
        # _plain: what batch_norm_activation found (routes.is_plain); None when not asked.
        args = (x, running_mean, running_var, weight, bias, param, training, eps)
        if _plain is None:
            _plain = all_plain(x, running_mean, running_var, weight, bias, param)
        if _plain:
            # The backward runs on the forward's passes (this thread's choice,
            # use_backend included), whichever thread runs it and when.
            ctx.passes = passes_for(x)
            y, mean, var = run_forward(*args, activation, ctx.passes)
        else:
            y, mean, var = torch.ops.elu_triton.batch_norm_elu_forward(*args, activation.name)
            ctx.passes = None
        if training and x.numel() > 0:  # (BatchNorm leaves them for an empty batch)
            update_running(running_mean, running_var, mean, var, momentum, elements_per_channel(x))
        save_for_backward(ctx, x, mean, var, weight, bias, param, activation)  # bias: a copy
        ctx.training, ctx.eps = training, eps
        return y

    @staticmethod
    def backward(ctx, dy):
        dx, dweight, dbias, dparam = grads_for_inputs(ctx, dy)
        return dx, None, None, dweight, dbias, dparam, None, None, None, None, None


def batch_norm_learnable_elu(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    alpha: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """learnable_elu(F.batch_norm(x, ...), alpha), fused; F.batch_norm's argument order.

    Args:
        x: (N, C, *) float tensor with 2 to 5 dims, any memory format.
        running_mean, running_var: (C,) running statistics, or both None.
            In training they are updated in place, as F.batch_norm does:
            running = (1 - momentum) * running + momentum * batch (the
            unbiased variance); in eval they normalize x.
        weight, bias: (C,) affine parameters, or None.
        alpha: (C,), (1,) or 0-D: the activation's alpha (required).
        training: normalize with the batch's statistics (else the running ones).
        momentum: the running statistics' update factor.
        eps: added to the variance.

    Returns:
        y, x's shape, dtype and memory format.

    Raises:
        TypeError, ValueError: as ``checks.check_batch_norm_inputs``.
    """
    if alpha is None:
        raise TypeError("batch_norm_learnable_elu needs alpha, the activation's parameter")
    return batch_norm_activation(
        x, running_mean, running_var, weight, bias, alpha, training, momentum, eps, LEARNABLE_ELU
    )


def batch_norm_prelu(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    prelu_weight: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """F.prelu(F.batch_norm(x, ...), prelu_weight), fused; F.batch_norm's argument order.

    Args and Returns as ``batch_norm_learnable_elu``'s, with prelu_weight
    (1,), (C,) or 0-D, ``F.prelu``'s weight (required), in alpha's place.

    Raises:
        TypeError, ValueError: as ``checks.check_batch_norm_inputs``.
    """
    if prelu_weight is None:
        raise TypeError("batch_norm_prelu needs prelu_weight, the activation's parameter")
    return batch_norm_activation(
        x, running_mean, running_var, weight, bias, prelu_weight, training, momentum, eps, PRELU
    )


def batch_norm_activation(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    param: torch.Tensor,
    training: bool,
    momentum: float,
    eps: float,
    activation: FusedActivation,
) -> torch.Tensor:
    """activation.reference(F.batch_norm(x, ...), param), fused: every functional form's body.

    Args and Returns as ``batch_norm_learnable_elu``'s, with param the
    activation's parameter and activation its ``activations`` row.
    """
    args = (x, running_mean, running_var, weight, bias, param, training, momentum, eps, activation)
    tensors = (x, running_mean, running_var, weight, bias, param)
    # The route table above, in the activation's order (``elu_triton.routes``).
    if traced() or transformed() or dual(*tensors):
        return composite(*args)
    if jit_tracing():  # (asked after dynamo, which cannot trace this question)
        with jit_warnings_off():
            return composite(*args)
    plain = all_plain(*tensors)
    if not plain and export_tracing():
        return composite(*args)
    y = BatchNormLearnableELUFunction.apply(*args[:-1], plain, activation)
    return _autocast_output(y) if activation.autocast_output else y


def _autocast_output(y: torch.Tensor) -> torch.Tensor:
    """y in autocast's dtype where autocast is on for its device, as the pair's activation gives.

    (A cast of fp32 y under bf16 autocast: one more pass, which the pair's
    activation op makes too, as it casts its input.)
    """
    device_type = y.device.type
    if torch.is_autocast_enabled(device_type):
        return y.to(torch.get_autocast_dtype(device_type))
    return y
