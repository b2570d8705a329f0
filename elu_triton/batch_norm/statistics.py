"""Per-channel host math shared by both backends: O(C) work, no pass over x.

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
    """weight, bias and alpha as (C,) contiguous vectors in x's compute dtype.

    Without affine, weight is ones and bias zeros; a single (1,) or 0-D alpha is
    expanded to C (its gradient is then the sum of the C channels'). Lazily
    negated views are resolved: kernels read raw memory, not the sign bit.
    """

    def __init__(self, x: torch.Tensor, weight, bias, alpha: torch.Tensor):
        dtype = compute_dtype(x.dtype)
        channels = channel_count(x)
        self.weight = _vector(weight, channels, dtype, x, 1.0)
        self.bias = _vector(bias, channels, dtype, x, 0.0)
        self.alpha = alpha.resolve_neg().to(dtype).expand(channels).contiguous()


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


def finish_statistics(
    shift: torch.Tensor, sums: torch.Tensor, squares: torch.Tensor, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, biased var) from sums of x - shift and of (x - shift)^2 over count elements.

    The sums arrive in fp64 (summed so from the kernels' partials); the
    difference of the two moments is taken there, then clamped at 0 (it may
    round below), and the results rounded to shift's dtype.
    """
    centered_mean = sums / count
    var = (squares / count - centered_mean * centered_mean).clamp_(min=0)
    return (shift.double() + centered_mean).to(shift.dtype), var.to(shift.dtype)


def dx_coefficients(
    per_channel: PerChannel,
    invstd: torch.Tensor,
    sums: tuple | None,
    count: int,
    training: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weight * invstd, sum dz / M, sum dz*xhat / M), in the compute dtype.

    dx = weight*invstd * (dz - mean(dz) - xhat * mean(dz * xhat)) in training;
    in eval the statistics are constants, dx = weight*invstd * dz, and the
    last two are zeros (sums may then be None).
    """
    scale = per_channel.weight * invstd
    if not training:
        return scale, torch.zeros_like(scale), torch.zeros_like(scale)
    sum_dz, sum_dz_xhat, _ = sums
    return scale, (sum_dz / count).to(scale.dtype), (sum_dz_xhat / count).to(scale.dtype)
