"""Backward of batch norm fused with the learnable ELU: a reduction pass, then a dx pass.

Both passes recompute, from x and the saved per-channel statistics,

    xhat = (x - mean[c]) * invstd[c],   z = xhat * weight[c] + bias[c]
    dz, dalpha term = the activation's gradients at z for dy   (``activation``)

Reduction pass: per-channel sums, as fixed-order partials with no atomics
(``tiles.store_channel_sums``; the host sums them in a fixed order, so
dweight, dbias and dalpha are bitwise reproducible run to run):

    dbias[c]   = sum dz          dweight[c] = sum dz * xhat
    dalpha[c]  = sum dalpha terms

dx pass, with per-channel coefficients the host derives from those sums:

    training: dx = weight*invstd * (dz - dbias/M - xhat * dweight/M)
    eval:     dx = weight*invstd * dz      (the statistics are constants)

so the host passes g = weight*invstd, mean_dz = dbias/M and
mean_dz_xhat = dweight/M (zeros in eval, where the pass skips them).

Layout: x, dy and dx share one dense layout, viewed as the row-major (R, K)
matrix of ``tiles.py``; per-channel vectors are contiguous (C,) in the
compute dtype (fp32; fp64 for fp64 x).
"""

import triton
import triton.language as tl

from .activation import learnable_elu_grads
from .batch_norm_math import normalize_tile
from .tiles import (
    load_for_compute,
    load_per_channel,
    store_channel_sums,
    tile_channels,
    tile_offsets,
)


@triton.jit
def _recompute(
    x_ptr, dy_ptr, mean_ptr, invstd_ptr, weight_ptr, bias_ptr, alpha_ptr,
    R, K, C, CHANNEL_IS_COLUMN: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr, INDEX_64: tl.constexpr,
):  # fmt: skip
    """The tile's coordinates (as ``tile_offsets``, then channels, index_in_channel),
    then xhat, dz and the dalpha terms, all 0 in masked lanes."""
    pid_r, pid_k, rows, cols, offsets, mask = tile_offsets(
        R, K, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64
    )
    x = load_for_compute(x_ptr + offsets, mask)
    dy = load_for_compute(dy_ptr + offsets, mask)
    channels, index_in_channel = tile_channels(rows, cols, C, CHANNEL_IS_COLUMN)
    xhat, z, alpha = normalize_tile(
        x, mean_ptr, invstd_ptr, weight_ptr, bias_ptr, alpha_ptr, channels, rows, cols, R, K,
        CHANNEL_IS_COLUMN,
    )  # fmt: skip
    # Masked lanes have dy = 0, so dz and the dalpha terms vanish there;
    # xhat does not (x = 0 is not the mean): zero it for the dweight sums.
    xhat = tl.where(mask, xhat, 0.0)
    dz, dalpha_terms = learnable_elu_grads(z, dy, alpha)
    return (
        pid_r,
        pid_k,
        rows,
        cols,
        offsets,
        mask,
        channels,
        index_in_channel,
        xhat,
        dz,
        dalpha_terms,
    )


@triton.jit
def batch_norm_elu_reduce_kernel(
    x_ptr,  # forward input, R*K elements in memory order
    dy_ptr,  # upstream gradient, same layout as x
    mean_ptr,  # (C,) the forward's mean
    invstd_ptr,  # (C,) the forward's 1 / sqrt(var + eps)
    weight_ptr,  # (C,) affine weight (ones without affine)
    bias_ptr,  # (C,) affine bias (zeros without affine)
    alpha_ptr,  # (C,) alpha (a shared alpha expanded by the host)
    dz_partials_ptr,  # (C, sums per channel) partial sums of dz
    dz_xhat_partials_ptr,  # (C, sums per channel) partial sums of dz * xhat
    dalpha_partials_ptr,  # (C, sums per channel) partial sums of the dalpha terms
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C,  # channels
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    COMPUTE_DALPHA: tl.constexpr,  # False when alpha needs no gradient
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    pid_r, pid_k, rows, cols, _, _, channels, index_in_channel, xhat, dz, dalpha_terms = _recompute(
        x_ptr, dy_ptr, mean_ptr, invstd_ptr, weight_ptr, bias_ptr, alpha_ptr, R, K, C,
        CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64,
    )  # fmt: skip
    store_channel_sums(
        dz_partials_ptr, dz, pid_r, pid_k, rows, cols, channels, index_in_channel,
        R, K, C, BLOCK_R, BLOCK_K, CHANNEL_IS_COLUMN,
    )  # fmt: skip
    store_channel_sums(
        dz_xhat_partials_ptr, dz * xhat, pid_r, pid_k, rows, cols, channels, index_in_channel,
        R, K, C, BLOCK_R, BLOCK_K, CHANNEL_IS_COLUMN,
    )  # fmt: skip
    if COMPUTE_DALPHA:
        store_channel_sums(
            dalpha_partials_ptr, dalpha_terms, pid_r, pid_k, rows, cols, channels,
            index_in_channel, R, K, C, BLOCK_R, BLOCK_K, CHANNEL_IS_COLUMN,
        )  # fmt: skip


@triton.jit
def batch_norm_elu_dx_kernel(
    x_ptr,  # forward input, R*K elements in memory order
    dy_ptr,  # upstream gradient, same layout as x
    mean_ptr,  # (C,) the forward's mean
    invstd_ptr,  # (C,) the forward's 1 / sqrt(var + eps)
    weight_ptr,  # (C,) affine weight (ones without affine)
    bias_ptr,  # (C,) affine bias (zeros without affine)
    alpha_ptr,  # (C,) alpha (a shared alpha expanded by the host)
    scale_ptr,  # (C,) g = weight * invstd
    mean_dz_ptr,  # (C,) sum dz / M (unused unless TRAINING)
    mean_dz_xhat_ptr,  # (C,) sum dz * xhat / M (unused unless TRAINING)
    dx_ptr,  # output gradient, same layout and dtype as x
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C,  # channels
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    TRAINING: tl.constexpr,  # batch statistics: their gradients flow into dx
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    _, _, rows, cols, offsets, mask, channels, _, xhat, dz, _ = _recompute(
        x_ptr, dy_ptr, mean_ptr, invstd_ptr, weight_ptr, bias_ptr, alpha_ptr, R, K, C,
        CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64,
    )  # fmt: skip
    dt = xhat.dtype
    scale = load_per_channel(scale_ptr, channels, rows, cols, R, K, dt, CHANNEL_IS_COLUMN)
    if TRAINING:
        mean_dz = load_per_channel(mean_dz_ptr, channels, rows, cols, R, K, dt, CHANNEL_IS_COLUMN)
        mean_dz_xhat = load_per_channel(
            mean_dz_xhat_ptr, channels, rows, cols, R, K, dt, CHANNEL_IS_COLUMN
        )
        dz = dz - mean_dz - xhat * mean_dz_xhat
    tl.store(dx_ptr + offsets, (scale * dz).to(dx_ptr.dtype.element_ty), mask=mask)
