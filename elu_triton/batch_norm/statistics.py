"""Per-channel host math: O(C) work (O(partials) for the combination), no pass over x.

The backends compute what needs a pass over x (the statistics, the
normalize+activation pass, the gradient sums, dx); this file turns their
per-channel results into the next step's inputs, in the compute dtype (fp32;
fp64 for fp64 x), the same way for both, so that they differ only by the
order of their sums.
"""

import torch

from ..checks import channel_count
from ..precision import compute_dtype


class PerChannel:
    """weight, bias and the activation's parameter as (C,) contiguous vectors
    in x's compute dtype, with the activation (an ``activations`` row).

    Without affine, weight is ones and bias zeros; a single (1,) or 0-D
    parameter is expanded to C (its gradient is then the sum of the C
    channels'). Lazily negated views are resolved: kernels read raw memory,
    not the sign bit.
    """

    def __init__(self, x: torch.Tensor, weight, bias, param: torch.Tensor, activation):
        dtype = compute_dtype(x.dtype)
        channels = channel_count(x)
        self.weight = _vector(weight, channels, dtype, x, 1.0)
        self.bias = _vector(bias, channels, dtype, x, 0.0)
        self.param = param.resolve_neg().to(dtype).expand(channels).contiguous()
        self.activation = activation


def _vector(t, channels, dtype, x, fill):
    if t is None:
        return torch.full((channels,), fill, dtype=dtype, device=x.device)
    return t.resolve_neg().to(dtype).contiguous()


def elements_per_channel(x: torch.Tensor) -> int:
    """M: how many elements each channel's statistics average over."""
    return x.numel() // channel_count(x)


def invstd_of(var: torch.Tensor, eps: float) -> torch.Tensor:
    """1 / sqrt(var + eps), in var's dtype."""
    return torch.rsqrt(var + eps)


def update_running(
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    mean: torch.Tensor,
    var: torch.Tensor,
    momentum: float,
    count: int,
) -> None:
    """BatchNorm's update, in place: the biased var normalized, the unbiased one is kept.

    running = (1 - momentum) * running + momentum * batch, as aten computes it.
    """
    if running_mean is None:
        return
    unbiased = var * (count / (count - 1))
    with torch.no_grad():
        running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
        running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)


def combine_segments(
    partials: torch.Tensor, lengths: torch.Tensor, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, biased var) of each channel from per-segment centered sums (Chan et al.).

    Args:
        partials: (3, C, S) in the compute dtype: c_t, about each segment's
            mean; s1_t, the sums of x - c_t over the segment; s2_t, the sums
            of (x - c_t)^2.
        lengths: (S,) fp64 n_t, the elements of each segment (alike in every channel).
        count: M, the elements of a channel (the sum of lengths).

    Returns:
        (C,) mean and biased variance, rounded to the partials' dtype.

    In fp64, each sum along contiguous rows in torch's fixed order:
    mean = sum (n_t c_t + s1_t) / M, then Chan's combination
    M2 = sum M2_t + sum n_t (m_t - mean)^2 with the segment's mean
    m_t = c_t + s1_t/n_t and M2_t = s2_t - s1_t^2/n_t; their s1_t^2/n_t
    cancel exactly, leaving, with d_t = c_t - mean,
    M2 = sum s2_t + sum d_t (n_t d_t + 2 s1_t). d_t is exact where the
    segments' means are close, however large they are, and s1_t is ~0: the
    terms are non-negative but for rounding, so nothing cancels, wherever
    an outlier sits.
    """
    centers, s1, s2 = partials.double().unbind(0)
    mean = torch.addcmul(s1, centers, lengths).sum(1).div_(count)
    offsets = centers - mean[:, None]  # d_t
    half_terms = torch.addcmul(s1, offsets, lengths, value=0.5)  # (n_t d_t + 2 s1_t) / 2
    m2 = torch.linalg.vecdot(offsets, half_terms).mul_(2).add_(s2.sum(1))
    var = m2.div_(count).clamp_(min=0)  # (rounding may take a constant channel below 0)
    return mean.to(partials.dtype), var.to(partials.dtype)


def normalize_scale(per_channel: PerChannel, invstd: torch.Tensor) -> torch.Tensor:
    """scale = weight * invstd (C,): every backend's passes compute z = (x - mean) * scale + bias.

    One product per channel instead of one per element. It is the exact
    product rounded once (two fp32 factors multiply exactly in fp64), and the
    forward and the backward compute it from the same weight and invstd, so
    the backward's recomputed z is bitwise the forward's.
    """
    return per_channel.weight * invstd


def dz_xhat_sum(dz_d_sum: torch.Tensor, invstd: torch.Tensor) -> torch.Tensor:
    """sum dz * xhat (fp64 (C,)) from the passes' sum dz * (x - mean): xhat = (x - mean) * invstd."""
    return dz_d_sum.mul_(invstd)  # (in fp64: dz_d_sum's dtype)


def dx_coefficients(
    scale: torch.Tensor,
    invstd: torch.Tensor,
    sums: tuple | None,
    count: int,
    training: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(scale, offset, slope) of dx = scale * dz - (offset + (x - mean) * slope), compute dtype.

    In training, dx = scale * (dz - mean(dz) - xhat * mean(dz * xhat)), so
    offset = scale * mean(dz) and slope = scale * invstd * mean(dz * xhat),
    each computed in fp64 from the fp64 sums and rounded once. In eval the
    statistics are constants, dx = scale * dz: offset and slope are None
    (sums may then be None).
    """
    if not training:
        return scale, None, None
    sum_dz, sum_dz_xhat, _ = sums
    # Both rows at once (fewer small ops): [sum dz, sum dz*xhat * invstd] * scale / M.
    terms = torch.stack((sum_dz, sum_dz_xhat * invstd))
    offset, slope = terms.mul_(scale).div_(count).to(scale.dtype)
    return scale, offset, slope
