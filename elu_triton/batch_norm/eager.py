"""The fused layer's eager forward and backward: the bodies of its custom ops.

Forward (training): a statistics pass, then one normalize+affine+activation
pass; (eval): that one pass with the running statistics. It returns y and
the per-channel (mean, biased var) it normalized with: with x, eps and the
parameters, all the backward needs. It mutates nothing (so that its custom
op is functional and can carry an autograd formula): the caller updates the
running statistics (``statistics.update_running``).

Backward: a reduction pass for the per-channel sums (dbias = sum dz,
dweight = sum dz*xhat, dparam, and dx's mean terms in training), then a dx
pass. Each pass recomputes z and the activation's slope from x (the PyTorch
backend recomputes once for both).

The activation is a row of ``activations.py`` (the learnable ELU unless
given), carried to the passes on ``PerChannel``; its parameter is called
param here (alpha for the learnable ELU), and its gradient dparam.

Which passes run them is the activation's backend for x's device
(``elu_triton.backends.backend_for``, ``use_backend`` included): its
``Backend.batch_norm`` module (``triton_kernels.py``, ``torch_ops.py``). As for
the activation, the autograd Function's backward runs on the forward's
choice; the custom ops (and create_graph=True) select again where they run.

``grads_for_inputs`` is the one backward seam: the autograd Function's
backward and the forward op's autograd formula both call it.
"""

import importlib
from types import ModuleType

import torch

from ..backends import backend_for
from ..backends.base import dalpha_shape
from ..backends.torch_ops import _autocast_off  # (the passes state their dtypes)
from ..precision import compute_dtype
from ..routes import is_batched_gradient, is_plain
from .activations import LEARNABLE_ELU, FusedActivation
from .checks import check_backward_inputs, check_batch_norm_inputs
from .second_order import composite_grads
from .statistics import PerChannel, invstd_of

Grads = tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]


def passes_for(x: torch.Tensor) -> ModuleType:
    """The module of passes that runs x: the ``batch_norm`` module of x's backend.

    Imported on first use: machines without triton never import its passes.

    Raises:
        ValueError: the backend in force runs the activation only.
    """
    backend = backend_for(x.device)
    if backend.batch_norm is None:
        raise ValueError(
            f"backend {backend.name!r} runs the activation only: the fused batch norm needs "
            "Backend.batch_norm, a module of its passes (as elu_triton.batch_norm.torch_ops)"
        )
    return importlib.import_module(backend.batch_norm)


def run_forward(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    param: torch.Tensor,
    training: bool,
    eps: float,
    activation: FusedActivation = LEARNABLE_ELU,
    passes: ModuleType | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, mean, var): mean and biased var (C,) in the compute dtype.

    The batch's statistics in training, the running ones in eval (copies:
    the backward must see what was used, whatever happens to the buffers).
    passes: ``passes_for(x)``, when the caller has it already; None to select.
    """
    check_batch_norm_inputs(
        x, running_mean, running_var, weight, bias, param, training, eps, activation.parameter
    )
    dtype = compute_dtype(x.dtype)
    if x.numel() == 0:  # nothing to normalize, and no statistics to update
        nan = x.new_full((x.shape[1],), float("nan"), dtype=dtype)
        return torch.empty_like(x), nan, nan.clone()
    passes = passes_for(x) if passes is None else passes
    with _autocast_off(x):
        per_channel = PerChannel(x, weight, bias, param, activation)
        if training:
            mean, var = passes.statistics(x)
        else:
            mean, var = running_mean.to(dtype, copy=True), running_var.to(dtype, copy=True)
        y = passes.normalize_activate(x, mean, invstd_of(var, eps), per_channel)
        return y, mean, var


def run_backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    param: torch.Tensor,
    training: bool,
    eps: float,
    needs: tuple[bool, bool, bool, bool],
    passes: ModuleType | None = None,
    activation: FusedActivation = LEARNABLE_ELU,
) -> Grads:
    """(dx, dweight, dbias, dparam), None where needs (same order) is False.

    dparam is ``dalpha_shape(param)``, as the activation's backward returns dalpha.

    mean, var: the forward's (``run_forward``). passes: the module of passes
    that ran the forward (``passes_for``), so that a backward run after a
    ``use_backend`` block, or on autograd's threads, runs where the forward
    ran; None to select now (the custom op's body).

    Raises:
        TypeError, ValueError: as ``checks.check_backward_inputs``.
    """
    check_backward_inputs(dy, x, weight, bias, param, activation.parameter)
    needs_dx, needs_dweight, needs_dbias, needs_dparam = needs
    needs_dweight, needs_dbias = (
        needs_dweight and weight is not None,
        needs_dbias and bias is not None,
    )
    if x.numel() == 0:
        return _empty_grads(x, weight, bias, param, needs)
    passes = passes_for(x) if passes is None else passes
    with _autocast_off(x):
        per_channel = PerChannel(x, weight, bias, param, activation)
        invstd = invstd_of(var, eps)  # bitwise the forward's
        # dx's mean terms need the sums in training; the parameters always.
        compute_sums = (training and needs_dx) or needs_dweight or needs_dbias or needs_dparam
        sums, dx = passes.backward(
            dy, x, mean, invstd, per_channel, training, compute_sums, needs_dparam, needs_dx
        )
    return (
        dx,
        sums[1].to(weight.dtype) if needs_dweight else None,
        sums[0].to(bias.dtype) if needs_dbias else None,
        _dparam(sums[2], param) if needs_dparam else None,
    )


def grads_for_inputs(ctx, dy: torch.Tensor) -> Grads:
    """The autograd backward of the fused forward: (dx, dweight, dbias, dparam), None where unneeded.

    For the Function and the forward op's formula alike. ctx holds what
    ``save_for_backward`` saved, training, eps and the activation, and
    ``passes``: the passes that ran a plain forward (the Function's), or None
    to go through the backward op (subclass tensors, dispatch modes, the
    op's own formula).
    """
    x, mean, var, weight, bias, param = saved_for_backward(ctx, dy)
    needs_dx, _, _, needs_dweight, needs_dbias, needs_dparam = ctx.needs_input_grad[:6]
    needs = (needs_dx, needs_dweight, needs_dbias, needs_dparam)
    args = (dy, x, mean, var, weight, bias, param, ctx.training, ctx.eps)
    activation = ctx.activation
    # create_graph=True (grad mode on), or autograd's batched gradients
    # (is_grads_batched=True, jacobian(vectorize=True): a dy the passes
    # cannot read): differentiate the composite, in plain ops.
    if torch.is_grad_enabled() or is_batched_gradient(dy):
        with torch.enable_grad():
            return composite_grads(*args, needs, activation, bias_input=ctx.bias)
    if ctx.passes is not None and is_plain(dy):
        return run_backward(*args, needs, ctx.passes, activation)
    grads = torch.ops.elu_triton.batch_norm_elu_backward(*args, list(needs), activation.name)
    return tuple(g if need else None for g, need in zip(grads, needs))


def save_for_backward(ctx, x, mean, var, weight, bias, param, activation) -> None:
    """Save what the backward reads (never z or y): x and (C,) vectors; and the activation.

    bias is saved as a copy of its values, which the backward needs to
    recompute z: BatchNorm's backward never reads bias, so the pair
    (BatchNorm, then the activation) lets bias change in place between the
    forward and the backward, and so does this layer. A copy (not a view)
    has a version counter of its own; weight and param are saved as they
    are, and changing them in place still raises autograd's error, as in
    the pair. ctx.bias keeps the bias the forward took, for the shape check
    and for the second-order graph, never for its values.
    """
    snapshot = None if bias is None else bias.detach().clone()
    ctx.save_for_backward(x, mean, var, weight, snapshot, param)
    ctx.bias, ctx.activation = bias, activation


def saved_for_backward(ctx, dy: torch.Tensor) -> tuple:
    """(x, mean, var, weight, bias, param) as ``save_for_backward`` saved them.

    Raises:
        ValueError: bias.data was resized since the forward (as a resized
            weight or param does, in ``checks.check_backward_inputs``).
    """
    x, mean, var, weight, bias, param = ctx.saved_tensors
    if bias is not None and ctx.bias.shape != bias.shape:
        check_backward_inputs(dy, x, weight, ctx.bias, param, ctx.activation.parameter)
    return x, mean, var, weight, bias, param


def _dparam(per_channel_sums: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """The parameter's gradient as ``dalpha_shape(param)``: the channel sums, or their total."""
    if param.numel() == 1:
        per_channel_sums = per_channel_sums.sum().reshape(dalpha_shape(param))
    return per_channel_sums.to(param.dtype)


def _empty_grads(x, weight, bias, param, needs) -> Grads:
    zeros = [torch.zeros_like(t) if t is not None else None for t in (weight, bias)]
    grads = (torch.empty_like(x), *zeros, param.new_zeros(dalpha_shape(param)))
    return tuple(g if need else None for g, need in zip(grads, needs))
