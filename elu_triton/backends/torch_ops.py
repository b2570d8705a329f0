"""The PyTorch backend: the kernels' math in eager PyTorch ops, for every device.

It serves the CPU (unless TRITON_INTERPRET=1 sends the CPU to the kernels)
and every device the Triton backend does not. Like the kernels: arithmetic in
fp32 for 16- and 32-bit inputs (fp64 for fp64), NaN propagated to y, dx and
dalpha, only x needed by the backward, and no data-dependent branch (no host
synchronization; the meta device works). Every select is an op that selects
on the sign of its input (elu, prelu, threshold), not ``torch.where``, which
is not vectorized on the CPU: ``forward`` and ``backward`` say how.
"""

import contextlib

import torch
import torch.nn.functional as F

from ..layout import dense, memory_view, with_layout_of
from ..precision import compute_dtype
from .base import Backend, device_kind

_THRESHOLD_BACKWARD = torch.ops.aten.threshold_backward.grad_input
# -x <= -(this) exactly when x > 0, in each compute dtype.
_SMALLEST_SUBNORMAL = {torch.float32: 2.0**-149, torch.float64: 2.0**-1074}


_NO_CONTEXT = contextlib.nullcontext()


def _autocast_off(x: torch.Tensor) -> contextlib.AbstractContextManager:
    """Autocast off for x's device, if it is on: the math states its dtypes.

    (F.prelu is on CPU autocast's lower-precision list. Devices without
    autocast, such as meta, can't even be asked.)
    """
    kind = device_kind(x)
    if kind in ("cpu", "cuda") or torch.amp.is_autocast_available(kind):
        if torch.is_autocast_enabled(kind):
            return torch.autocast(kind, enabled=False)
    return _NO_CONTEXT


def _prelu_weight(alpha: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """alpha as F.prelu's weight: (C,) or (1,) in the compute dtype."""
    return alpha.reshape(-1).to(dtype)


def forward(x: torch.Tensor, alpha: torch.Tensor, launch: None = None) -> torch.Tensor:
    """y in x's dtype and memory format (launch: unused, this backend works nothing out ahead).

    y = prelu(elu(x), alpha): elu(x) > 0 exactly when x > 0. Nothing is
    compiled, so the first call costs what the hundredth does. CPU autocast is
    off inside: it would run F.prelu in bf16.
    """
    with _autocast_off(x):
        xc = x.to(compute_dtype(x.dtype))
        # elu with alpha 1 is x for x > 0 (NaN and +inf included) and expm1(x)
        # otherwise, so prelu then scales exactly the x <= 0 elements by alpha.
        # 16-bit x was copied by .to(): overwrite the copy, never x itself.
        negative_scaled = F.elu(xc, inplace=xc is not x)
        y = F.prelu(negative_scaled, _prelu_weight(alpha, xc.dtype))
        return y.to(x.dtype)


def sum_per_channel(terms: torch.Tensor, num_alpha: int) -> torch.Tensor:
    """Per-channel sums of dense terms, in fp64, as (num_alpha,).

    aten sums one dim accurately (a cascade of partial sums) but several dims
    at once as a long chain (8.5e-4 off for (2^17, 4, 16) equal fp32 terms),
    and a sum with dtype=float64 first casts the whole tensor (a third of the
    backward's time). So: one dim at a time over the memory view, in the
    terms' dtype, and the small (outer, C) rest in fp64.
    """
    view = memory_view(terms, num_alpha)
    matrix = terms.as_strided((view.rows, view.cols), (view.cols, 1))
    if view.channel_is_column:  # (outer, C): one dim, the column sums
        return matrix.sum(dim=0).to(torch.float64)
    row_sums = matrix.sum(dim=1)  # row r holds channel r % C
    return row_sums.view(-1, view.channels).sum(dim=0, dtype=torch.float64)


def backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    alpha: torch.Tensor,
    compute_dalpha: bool,
    launch: None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(dx, dalpha): dx in x's dtype and memory format, dalpha in alpha's dtype or None.

    With S = 1 if x > 0 else -exp(x), and D = 0 if x > 0 else dy::

        dx        = dy * prelu(S, -alpha)
        dalpha[c] = sum expm1(min(x, 0)) * D

    prelu(S, -alpha) is 1 for x > 0, whatever alpha (an infinite alpha too),
    and (-alpha) * (-exp(x)) = alpha * exp(x) otherwise. D is dy zeroed by
    threshold_backward where -x <= -(smallest subnormal), which is exactly
    x > 0: multiplying by a zero instead would turn an infinite dy at x > 0
    into inf * 0 = NaN, where the kernels give 0. (With
    torch.set_flush_denormal(True) that threshold flushes to -0, so x = +0
    counts as positive there: an infinite or NaN dy at x = +0 then gives 0,
    not NaN, in its channel's dalpha.) dalpha is summed one dim at a time in
    the compute dtype and finished in fp64 (``sum_per_channel``).
    """
    with _autocast_off(x):
        x = dense(x)
        dy = with_layout_of(dy, x)  # dy in x's dtype, as the kernels read it
        dtype = compute_dtype(x.dtype)
        dalpha_channels = alpha.numel() if compute_dalpha else None
        dxc, dalpha = activation_grads(
            x.to(dtype), dy.to(dtype), _prelu_weight(alpha, dtype), dalpha_channels
        )
        return dxc.to(x.dtype), dalpha.to(alpha.dtype) if compute_dalpha else None


def activation_grads(
    xc: torch.Tensor, dyc: torch.Tensor, prelu_weight: torch.Tensor, dalpha_channels: int | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(dy * slope, dalpha as fp64 (dalpha_channels,) or None) at dense xc, in xc's dtype.

    ``backward``'s math (see there) on dense xc and dyc in the compute dtype,
    with prelu_weight alpha as F.prelu's weight; the fused batch norm's
    backward calls it at z. xc is read, never written. dalpha_channels:
    alpha's size, or None for no dalpha.
    """
    # Three full-size scratch buffers and dy * slope: on the CPU a fresh one
    # costs about as much as a pass over it (page faults), so the steps reuse
    # them. min(x, 0) keeps NaN and maps x > 0 (+inf too) to 0: exp 1, expm1 0.
    negative = xc.clamp(max=0)
    exp_negative = torch.exp(negative)
    dalpha = None
    if dalpha_channels is not None:
        scratch = torch.neg(xc)
        dy_negative = _THRESHOLD_BACKWARD(
            dyc, scratch, -_SMALLEST_SUBNORMAL[xc.dtype], grad_input=scratch
        )
        terms = torch.expm1(negative, out=negative).mul_(dy_negative)
        dalpha = sum_per_channel(terms, dalpha_channels)
    # S = copysign(exp(min(x, 0)), x > 0 ? x : -1): 1 for x > 0, -exp(x)
    # otherwise (x = +0 included, which a copysign from x itself would miss).
    sign_source = torch.threshold(xc, 0.0, -1.0, out=negative)
    slope = exp_negative.copysign_(sign_source)
    return F.prelu(slope, prelu_weight.neg()).mul_(dyc), dalpha


BACKEND = Backend(
    name="torch",
    description="eager PyTorch ops",
    serves=lambda device_type: True,
    forward=forward,
    backward=backward,
    batch_norm="elu_triton.batch_norm.torch_ops",
)
