"""The activations a batch norm fuses with: one row each.

A row names everything activation-specific the fused layer needs; the rest
of ``elu_triton.batch_norm`` (checks, routes, custom ops, the passes, the
statistics, second order) is written once and takes a row. A second
activation is one pair of device helpers in ``kernels/activation.py``, one
reference, and one row here (and a module class naming it, ``module.py``).

The kernel helpers are named, not imported: this table loads where triton
does not (the PyTorch backend's machines); the Triton backend resolves the
names in ``elu_triton.kernels.activation``.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import reference
from ..backends.torch_ops import activation_grads, sum_per_channel
from ..function import learnable_elu


@dataclass(frozen=True)
class FusedActivation:
    """One activation of the fused layer.

    Attributes:
        name: the row's key, and the custom ops' ``activation`` argument.
        parameter: the fused module's name for the activation's parameter,
            registered at top level (its state_dict key).
        init: the parameter's default initial value.
        reference: y = f(z, param), pure PyTorch: the composite's activation
            (traced, compiled and exported code runs it).
        differentiable: y = f(z, param) whose backward records its own
            graph (second order, ``second_order.py``).
        torch_value: the PyTorch backend's y = f(z, param); may reuse z's
            buffer, which it owns.
        torch_grads: the PyTorch backend's (z, dy, param, channels) ->
            (dz, dparam per channel in fp64, or None when channels is None);
            z is read, never written.
        kernel_value: the name of the @triton.jit (z, param) -> y helper.
        kernel_grads: the name of the @triton.jit (z, dy, param) ->
            (dz, dparam term) helper.
        autocast_output: the activation is on autocast's lower-precision
            list (aten's prelu is, on CPU and CUDA), so under autocast the
            pair's output comes in the autocast dtype, whatever x's.
    """

    name: str
    parameter: str
    init: float
    reference: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    differentiable: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    torch_value: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    torch_grads: Callable
    kernel_value: str
    kernel_grads: str
    autocast_output: bool = False


def _learnable_elu_value(z: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    # elu(z) > 0 exactly when z > 0, so prelu scales exactly the z <= 0
    # elements by alpha (vectorized selects: torch.where is slow on the CPU).
    return F.prelu(F.elu(z, inplace=True), alpha)


LEARNABLE_ELU = FusedActivation(
    name="learnable_elu",
    parameter="alpha",
    init=1.0,
    reference=reference.learnable_elu,
    differentiable=learnable_elu,
    torch_value=_learnable_elu_value,
    torch_grads=activation_grads,
    kernel_value="learnable_elu",
    kernel_grads="learnable_elu_grads",
)


def _prelu_grads(
    z: torch.Tensor, dy: torch.Tensor, weight: torch.Tensor, channels: int | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(dz, dweight per channel in fp64 or None): aten's PReLU backward at dense z."""
    shape = (1, -1) + (1,) * (z.dim() - 2)  # weight is (C,): broadcast along dim 1
    dz, terms = torch.ops.aten._prelu_kernel_backward(dy, z, weight.reshape(shape))
    return dz, None if channels is None else sum_per_channel(terms, channels)


def _prelu(z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """F.prelu at z with the weight in z's dtype.

    F.prelu refuses to promote (bf16 z, fp32 weight: autocast's pairing,
    which the fused passes take, computing in fp32); the cast is
    differentiable, so the weight's gradient comes back in its own dtype.
    """
    return F.prelu(z, weight.to(z.dtype))


PRELU = FusedActivation(
    name="prelu",
    parameter="prelu_weight",  # (BatchNorm's weight is called weight)
    init=0.25,
    reference=_prelu,
    differentiable=_prelu,  # (aten's PReLU backward is differentiable)
    torch_value=F.prelu,
    torch_grads=_prelu_grads,
    kernel_value="prelu",
    kernel_grads="prelu_grads",
    autocast_output=True,
)

ACTIVATIONS: dict[str, FusedActivation] = {row.name: row for row in (LEARNABLE_ELU, PRELU)}


def activation_named(name: str) -> FusedActivation:
    """The row of ``ACTIVATIONS`` called name.

    Raises:
        ValueError: no such activation.
    """
    row = ACTIVATIONS.get(name)
    if row is None:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {name!r}")
    return row
