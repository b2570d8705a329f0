"""Backward of batch norm fused with an activation: a reduction pass, then a dx pass.

Both passes recompute, from x and the saved per-channel statistics,

    xhat = (x - mean[c]) * invstd[c],   z = xhat * weight[c] + bias[c]
    dz, dparam term = ACTIVATION_GRADS(z, dy, param[c])

ACTIVATION_GRADS is the activation's gradient helper, a constexpr argument
(``activation.learnable_elu_grads`` for the learnable ELU).

Reduction pass: per-channel sums, as fixed-order partials with no atomics
(``tiles.store_channel_sums``; the host sums them in a fixed order, so
dweight, dbias and dparam are bitwise reproducible run to run):

    dbias[c]   = sum dz          dweight[c] = sum dz * xhat
    dparam[c]  = sum dparam terms

dx pass, with per-channel coefficients the host derives from those sums:

    training: dx = weight*invstd * (dz - dbias/M - xhat * dweight/M)
    eval:     dx = weight*invstd * dz      (the statistics are constants)

so the host passes g = weight*invstd, mean_dz = dbias/M and
mean_dz_xhat = dweight/M (zeros in eval, where the pass skips them).

Layout: x, dy and dx share one dense layout, viewed as the row-major (R, K)
matrix of ``tiles.py``; per-channel vectors are contiguous (C,) in the
compute dtype (fp32; fp64 for fp64 x).
"""

from typing import NamedTuple

import triton
import triton.language as tl

from .batch_norm_math import normalize_tile
from .tiles import load_for_compute, load_per_channel, store_channel_sums, tile_of, with_channels


class Recomputed(NamedTuple):
    """What both passes recompute for a tile (``_recompute``), 0 in masked lanes."""

    tile: tuple  # the tiles.Tile
    xhat: tl.tensor
    dz: tl.tensor
    dparam_terms: tl.tensor


@triton.jit
def _recompute(
    x_ptr, dy_ptr, mean_ptr, invstd_ptr, weight_ptr, bias_ptr, param_ptr, R, K, C,
    ACTIVATION_GRADS: tl.constexpr, CHANNEL_IS_COLUMN: tl.constexpr, BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr, K_MULTIPLE: tl.constexpr, INDEX_64: tl.constexpr,
):  # fmt: skip
    """The tile, then xhat, dz and the dparam terms: a ``Recomputed``."""
    tile = tile_of(R, K, C, CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64)
    x = load_for_compute(x_ptr + tile.offsets, tile.mask)
    dy = load_for_compute(dy_ptr + tile.offsets, tile.mask)
    tile = with_channels(tile, CHANNEL_IS_COLUMN)
    xhat, z, param = normalize_tile(
        x, mean_ptr, invstd_ptr, weight_ptr, bias_ptr, param_ptr, tile, CHANNEL_IS_COLUMN
    )
    # Masked lanes have dy = 0, so dz and the dparam terms vanish there;
    # xhat does not (x = 0 is not the mean): zero it for the dweight sums.
    xhat = tl.where(tile.mask, xhat, 0.0)
    dz, dparam_terms = ACTIVATION_GRADS(z, dy, param)
    return Recomputed(tile, xhat, dz, dparam_terms)


@triton.jit
def batch_norm_activation_reduce_kernel(
    x_ptr,  # forward input, R*K elements in memory order
    dy_ptr,  # upstream gradient, same layout as x
    mean_ptr,  # (C,) the forward's mean
    invstd_ptr,  # (C,) the forward's 1 / sqrt(var + eps)
    weight_ptr,  # (C,) affine weight (ones without affine)
    bias_ptr,  # (C,) affine bias (zeros without affine)
    param_ptr,  # (C,) the activation's parameter (a shared one expanded by the host)
    dz_partials_ptr,  # (C, sums per channel) partial sums of dz
    dz_xhat_partials_ptr,  # (C, sums per channel) partial sums of dz * xhat
    dparam_partials_ptr,  # (C, sums per channel) partial sums of the dparam terms
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C,  # channels
    ACTIVATION_GRADS: tl.constexpr,  # @triton.jit (z, dy, param) -> (dz, dparam term)
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    COMPUTE_DPARAM: tl.constexpr,  # False when the parameter needs no gradient
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    r = _recompute(
        x_ptr, dy_ptr, mean_ptr, invstd_ptr, weight_ptr, bias_ptr, param_ptr, R, K, C,
        ACTIVATION_GRADS, CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64,
    )  # fmt: skip
    store_channel_sums(dz_partials_ptr, r.dz, r.tile, CHANNEL_IS_COLUMN)
    store_channel_sums(dz_xhat_partials_ptr, r.dz * r.xhat, r.tile, CHANNEL_IS_COLUMN)
    if COMPUTE_DPARAM:
        store_channel_sums(dparam_partials_ptr, r.dparam_terms, r.tile, CHANNEL_IS_COLUMN)


@triton.jit
def batch_norm_activation_dx_kernel(
    x_ptr,  # forward input, R*K elements in memory order
    dy_ptr,  # upstream gradient, same layout as x
    mean_ptr,  # (C,) the forward's mean
    invstd_ptr,  # (C,) the forward's 1 / sqrt(var + eps)
    weight_ptr,  # (C,) affine weight (ones without affine)
    bias_ptr,  # (C,) affine bias (zeros without affine)
    param_ptr,  # (C,) the activation's parameter (a shared one expanded by the host)
    scale_ptr,  # (C,) g = weight * invstd
    mean_dz_ptr,  # (C,) sum dz / M (unused unless TRAINING)
    mean_dz_xhat_ptr,  # (C,) sum dz * xhat / M (unused unless TRAINING)
    dx_ptr,  # output gradient, same layout and dtype as x
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C,  # channels
    ACTIVATION_GRADS: tl.constexpr,  # @triton.jit (z, dy, param) -> (dz, dparam term)
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    TRAINING: tl.constexpr,  # batch statistics: their gradients flow into dx
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    r = _recompute(
        x_ptr, dy_ptr, mean_ptr, invstd_ptr, weight_ptr, bias_ptr, param_ptr, R, K, C,
        ACTIVATION_GRADS, CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64,
    )  # fmt: skip
    dt = r.xhat.dtype
    scale = load_per_channel(scale_ptr, r.tile, dt, CHANNEL_IS_COLUMN)
    dz = r.dz
    if TRAINING:
        mean_dz = load_per_channel(mean_dz_ptr, r.tile, dt, CHANNEL_IS_COLUMN)
        mean_dz_xhat = load_per_channel(mean_dz_xhat_ptr, r.tile, dt, CHANNEL_IS_COLUMN)
        dz = dz - mean_dz - r.xhat * mean_dz_xhat
    tl.store(dx_ptr + r.tile.offsets, (scale * dz).to(dx_ptr.dtype.element_ty), mask=r.tile.mask)
