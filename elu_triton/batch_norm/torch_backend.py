"""The PyTorch backend of the fused layer: the kernels' passes in eager ops (the CPU path).

It keeps the kernels' memory promise by recomputing: the forward hands back
y and the per-channel statistics, and the backward recomputes z and the
activation's slope from x. Arithmetic is in fp32 (fp64 for fp64 x), as in
the kernels. The statistics come from ``torch.var_mean`` (a Welford
reduction: accurate when the mean is large against the spread).
"""

import torch
import torch.nn.functional as F

from ..layout import dense, memory_view, with_layout_of
from ..precision import compute_dtype
from .statistics import PerChannel


def _per_channel_view(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A (C,) vector shaped (1, C, 1, ...) to broadcast against x."""
    return v.reshape((1, -1) + (1,) * (x.dim() - 2))


def _reduced_dims(x: torch.Tensor) -> list[int]:
    return [d for d in range(x.dim()) if d != 1]


def statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, biased var) of each channel of x, in the compute dtype."""
    var, mean = torch.var_mean(x.to(compute_dtype(x.dtype)), _reduced_dims(x), correction=0)
    return mean, var


def _recompute(x, mean, invstd, per_channel: PerChannel):
    """(xc, xhat, z) in the compute dtype, in x's layout."""
    xc = x.to(compute_dtype(x.dtype))
    xhat = (xc - _per_channel_view(mean, x)) * _per_channel_view(invstd, x)
    z = torch.addcmul(
        _per_channel_view(per_channel.bias, x), xhat, _per_channel_view(per_channel.weight, x)
    )
    return xhat, z


def normalize_activate(
    x: torch.Tensor, mean: torch.Tensor, invstd: torch.Tensor, per_channel: PerChannel
) -> torch.Tensor:
    """y = learnable_elu(batch norm of x), in x's dtype and memory format."""
    x = dense(x)
    _, z = _recompute(x, mean, invstd, per_channel)
    # elu(z) > 0 exactly when z > 0, so prelu scales exactly the z <= 0
    # elements by alpha (vectorized selects: torch.where is slow on the CPU).
    y = F.prelu(F.elu(z, inplace=True), per_channel.alpha)
    return with_layout_of(y.to(x.dtype), x)


def _sum_per_channel(terms: torch.Tensor) -> torch.Tensor:
    """Per-channel sums of dense terms as (C,) fp64: one dim at a time in the memory view."""
    view = memory_view(terms, terms.shape[1])
    matrix = terms.as_strided((view.rows, view.cols), (view.cols, 1))
    if view.channel_is_column:
        return matrix.sum(dim=0).to(torch.float64)
    return matrix.sum(dim=1).view(-1, view.channels).sum(dim=0, dtype=torch.float64)


def _activation_grads(z, dy, alpha_view, compute_dalpha: bool):
    """(dz, dalpha terms or None) of the activation at z for dy."""
    negative = z.clamp(max=0)  # keeps NaN; 0 for z > 0 (exp 1, expm1 0)
    positive = z > 0
    dz = torch.where(positive, dy, dy * alpha_view * torch.exp(negative))
    terms = None
    if compute_dalpha:
        terms = torch.where(positive, torch.zeros_like(dy), dy * torch.expm1(negative))
    return dz, terms


def reduce(
    dy: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    invstd: torch.Tensor,
    per_channel: PerChannel,
    compute_dalpha: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(sum dz, sum dz*xhat, sum dalpha terms or None) per channel, fp64 (C,)."""
    x = dense(x)
    dyc = with_layout_of(dy, x).to(compute_dtype(x.dtype))
    xhat, z = _recompute(x, mean, invstd, per_channel)
    dz, terms = _activation_grads(z, dyc, _per_channel_view(per_channel.alpha, x), compute_dalpha)
    sum_dalpha = _sum_per_channel(terms) if compute_dalpha else None
    return _sum_per_channel(dz), _sum_per_channel(dz * xhat), sum_dalpha


def dx(
    dy: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    invstd: torch.Tensor,
    per_channel: PerChannel,
    coefficients: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    training: bool,
) -> torch.Tensor:
    """dx in x's dtype and memory format (coefficients: ``statistics.dx_coefficients``)."""
    x = dense(x)
    dyc = with_layout_of(dy, x).to(compute_dtype(x.dtype))
    xhat, z = _recompute(x, mean, invstd, per_channel)
    dz, _ = _activation_grads(z, dyc, _per_channel_view(per_channel.alpha, x), False)
    scale, mean_dz, mean_dz_xhat = (_per_channel_view(v, x) for v in coefficients)
    if training:
        dz = dz - mean_dz - xhat * mean_dz_xhat
    return with_layout_of((scale * dz).to(x.dtype), x)
