"""The PyTorch backend of the fused layer: the kernels' passes in eager ops (the CPU path).

It keeps the kernels' memory promise by recomputing: the forward hands back
y and the per-channel statistics, and the backward recomputes z and the
activation's slope from x. Arithmetic is in fp32 (fp64 for fp64 x), as in
the kernels. The statistics are aten's BatchNorm statistics
(``torch.batch_norm_update_stats``: the mean, then squared deviations from
it, accurate when the mean is large against the spread; on the CPU, on a
contiguous copy).
"""

import torch

from ..backends.torch_ops import sum_per_channel
from ..checks import channel_count
from ..layout import dense, with_layout_of
from ..precision import compute_dtype
from .statistics import (
    PerChannel,
    dx_coefficients,
    dz_xhat_sum,
    elements_per_channel,
    normalize_scale,
)


def _per_channel_view(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A (C,) vector shaped (1, C, 1, ...) to broadcast against x."""
    return v.reshape((1, -1) + (1,) * (x.dim() - 2))


def statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, biased var) of each channel of x, in the compute dtype.

    aten's own BatchNorm statistics (two passes: the mean, then the squared
    deviations from it, so a mean large against the spread costs nothing),
    on x in the compute dtype: for 16-bit x it would return 16-bit statistics.
    """
    x = dense(x).to(compute_dtype(x.dtype))  # (one layout for each set of values)
    if x.device.type == "cpu":
        # aten's channels-last CPU statistics sum naively in fp32 (torch 2.13:
        # a mean of 1e4 comes out off by ~4); its contiguous ones are accurate.
        # The copy is a temporary: autograd still saves only x.
        x = x.contiguous()
    return torch.batch_norm_update_stats(x, None, None, 0.0)


def _recompute(x, mean, scale, bias, keep_d: bool = True):
    """(d = x - mean or None, z = d * scale + bias) in the compute dtype, in x's layout.

    In place where it can be: on the CPU a fresh activation-sized buffer
    costs about as much as a pass over it (page faults), so every step that
    can reuse one does. (d * scale + bias rounds twice where the kernels'
    fma rounds once: at most an ulp apart.) Without keep_d, d's buffer
    becomes z. The same two roundings in the forward and the backward, so
    that both see the same z (and the same branch of the activation).
    """
    xc = x.to(compute_dtype(x.dtype))
    d = torch.sub(xc, _per_channel_view(mean, x))
    scale = _per_channel_view(scale, x)
    z = d.mul_(scale) if not keep_d else torch.mul(d, scale)
    return (d if keep_d else None), z.add_(_per_channel_view(bias, x))


def normalize_activate(
    x: torch.Tensor, mean: torch.Tensor, invstd: torch.Tensor, per_channel: PerChannel
) -> torch.Tensor:
    """y = the activation of batch norm of x, in x's dtype and memory format."""
    x = dense(x)
    scale = normalize_scale(per_channel, invstd)
    _, z = _recompute(x, mean, scale, per_channel.bias, keep_d=False)
    y = per_channel.activation.torch_value(z, per_channel.param)  # (z's buffer is its own)
    return with_layout_of(y.to(x.dtype), x)


def backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    invstd: torch.Tensor,
    per_channel: PerChannel,
    training: bool,
    compute_sums: bool,
    compute_dparam: bool,
    compute_dx: bool,
) -> tuple[tuple | None, torch.Tensor | None]:
    """((sum dz, sum dz*xhat, sum dparam terms or None) fp64 (C,) or None, dx or None).

    One pass of eager ops over what both of the kernels' passes compute:
    the temporaries live only during the backward, so this keeps the
    memory promise (autograd still saves only x and the vectors).
    """
    x = dense(x)
    dyc = with_layout_of(dy, x).to(compute_dtype(x.dtype))
    scale = normalize_scale(per_channel, invstd)
    d, z = _recompute(x, mean, scale, per_channel.bias)
    channels = channel_count(x)
    # The activation's backward at z (dparam per channel: a single parameter
    # is expanded to C in per_channel); z's buffer is free after it.
    dz, sum_dparam = per_channel.activation.torch_grads(
        z, dyc, per_channel.param, channels if compute_dparam else None
    )
    sums = None
    if compute_sums:
        sum_dz_d = sum_per_channel(torch.mul(dz, d, out=z), channels)
        sums = (sum_per_channel(dz, channels), dz_xhat_sum(sum_dz_d, invstd), sum_dparam)
    if not compute_dx:
        return sums, None
    scale, offset, slope = dx_coefficients(scale, invstd, sums, elements_per_channel(x), training)
    dx = dz.mul_(_per_channel_view(scale, x))
    if training:  # scale * dz - (offset + d * slope), in place
        dx.sub_(d.mul_(_per_channel_view(slope, x)).add_(_per_channel_view(offset, x)))
    return sums, with_layout_of(dx.to(x.dtype), x)
