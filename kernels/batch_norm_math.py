"""Batch norm's per-element math on one tile, shared by its forward and backward kernels.

    xhat = (x - mean[c]) * invstd[c]
    z    = xhat * weight[c] + bias[c]        (weight 1, bias 0 without affine)

x - mean comes first, so that a mean large against the spread cancels
exactly (Sterbenz) instead of leaving the rounding error of a folded
x * scale + shift. Both kernels compute z the same way, so the backward's
recomputed z is bitwise the forward's.
"""

import triton
import triton.language as tl

from .tiles import load_per_channel


@triton.jit
def normalize(x, mean, invstd, weight, bias):
    """(xhat, z) for x and per-channel vectors that broadcast against it."""
    xhat = (x - mean) * invstd
    return xhat, tl.fma(xhat, weight, bias)


@triton.jit
def normalize_tile(
    x,  # a tile in the compute dtype
    mean_ptr,  # (C,) per-channel vectors in the compute dtype
    invstd_ptr,
    weight_ptr,
    bias_ptr,
    param_ptr,  # (C,) the activation's parameter
    tile,  # the tiles.Tile of x
    CHANNEL_IS_COLUMN: tl.constexpr,
):
    """(xhat, z, param) of the tile: its channels' vectors gathered, then ``normalize``."""
    dt = x.dtype
    mean = load_per_channel(mean_ptr, tile, dt, CHANNEL_IS_COLUMN)
    invstd = load_per_channel(invstd_ptr, tile, dt, CHANNEL_IS_COLUMN)
    weight = load_per_channel(weight_ptr, tile, dt, CHANNEL_IS_COLUMN)
    bias = load_per_channel(bias_ptr, tile, dt, CHANNEL_IS_COLUMN)
    param = load_per_channel(param_ptr, tile, dt, CHANNEL_IS_COLUMN)
    xhat, z = normalize(x, mean, invstd, weight, bias)
    return xhat, z, param
