"""Backward of batch norm fused with an activation: a reduction pass, then a dx pass.

Both passes recompute, from x and the saved per-channel vectors, exactly as
the forward computed it (``batch_norm_math``),

    d = x - mean[c],   z = d * scale[c] + bias[c]      (scale = weight * invstd)
    dz, dparam term = ACTIVATION_GRADS(z, dy, param[c])

ACTIVATION_GRADS is the activation's gradient helper, a constexpr argument
(``activation.learnable_elu_grads`` for the learnable ELU).

Reduction pass: per-channel sums, as fixed-order partials with no atomics
(``tiles.store_channel_sums``; the host sums them in a fixed order, so
dweight, dbias and dparam are bitwise reproducible run to run):

    sum dz          sum dz * d          sum dparam terms

With xhat = d * invstd, the host finishes in fp64: dbias = sum dz,
dweight = sum dz * xhat = invstd * sum dz * d, dparam = sum dparam terms.
(d rather than xhat: the tile saves a product, and sum dz * d is the same
sum up to the rounding of its terms.)

dx pass, with per-channel coefficients the host derives from those sums:

    training: dx = scale * (dz - dbias/M - xhat * dweight/M)
                 = scale * dz - (offset + d * slope)
              offset = scale * dbias/M,  slope = scale * invstd * dweight/M
    eval:     dx = scale * dz      (the statistics are constants)

Layout: x, dy and dx share one dense layout, viewed as the row-major (R, K)
matrix of ``tiles.py``; per-channel vectors are contiguous (C,) in the
compute dtype (fp32; fp64 for fp64 x).
"""

import triton
import triton.language as tl

from .batch_norm_math import (
    batch_norm_tile,
    in_compute_dtype,
    load_channel_vector,
    load_normalization,
    load_tile,
    loads_issued,
    normalize,
)
from .tiles import store_channel_sums, with_channels


@triton.jit
def _loads(
    x_ptr, dy_ptr, mean_ptr, scale_ptr, bias_ptr, param_ptr, R, K, C: tl.constexpr,
    CHANNEL_IS_COLUMN: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr, INDEX_64: tl.constexpr,
):  # fmt: skip
    """(tile, x, dy, its ``Normalization``): both passes' loads, x and dy in their own dtype."""
    tile = batch_norm_tile(R, K, C, CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64)
    x, dy = load_tile(x_ptr, tile), load_tile(dy_ptr, tile)
    tile = with_channels(tile, CHANNEL_IS_COLUMN)
    vectors = load_normalization(mean_ptr, scale_ptr, bias_ptr, param_ptr, tile, CHANNEL_IS_COLUMN)
    return tile, x, dy, vectors


@triton.jit
def _gradients(x, dy, vectors, ACTIVATION_GRADS: tl.constexpr, LOADS_FIRST: tl.constexpr):
    """(d, dz, dparam terms) of a tile from its loads, once every load is issued.

    Masked lanes loaded x = dy = 0: there dz and the dparam terms are 0, and
    so is dz * d (d = -mean is finite wherever the channel's sums are).
    """
    token = loads_issued(LOADS_FIRST)
    x, dy = in_compute_dtype(x, token, LOADS_FIRST), in_compute_dtype(dy, token, LOADS_FIRST)
    d, z = normalize(x, vectors)
    dz, dparam_terms = ACTIVATION_GRADS(z, dy, vectors.param)
    return d, dz, dparam_terms


@triton.jit
def batch_norm_activation_reduce_kernel(
    x_ptr,  # forward input, R*K elements in memory order
    dy_ptr,  # upstream gradient, same layout as x
    mean_ptr,  # (C,) the forward's mean
    scale_ptr,  # (C,) the forward's weight / sqrt(var + eps)
    bias_ptr,  # (C,) affine bias (zeros without affine)
    param_ptr,  # (C,) the activation's parameter (a shared one expanded by the host)
    dz_partials_ptr,  # (C, sums per channel) partial sums of dz
    dz_d_partials_ptr,  # (C, sums per channel) partial sums of dz * (x - mean)
    dparam_partials_ptr,  # (C, sums per channel) partial sums of the dparam terms
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C: tl.constexpr,  # channels (a constant: batch_norm_math.batch_norm_tile)
    ACTIVATION_GRADS: tl.constexpr,  # @triton.jit (z, dy, param) -> (dz, dparam term)
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    COMPUTE_DPARAM: tl.constexpr,  # False when the parameter needs no gradient
    LOADS_FIRST: tl.constexpr,  # NVIDIA: no math before every load is issued (batch_norm_math)
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    tile, x, dy, vectors = _loads(
        x_ptr, dy_ptr, mean_ptr, scale_ptr, bias_ptr, param_ptr, R, K, C,
        CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64,
    )  # fmt: skip
    d, dz, dparam_terms = _gradients(x, dy, vectors, ACTIVATION_GRADS, LOADS_FIRST)
    store_channel_sums(dz_partials_ptr, dz, tile, CHANNEL_IS_COLUMN)
    store_channel_sums(dz_d_partials_ptr, dz * d, tile, CHANNEL_IS_COLUMN)
    if COMPUTE_DPARAM:
        store_channel_sums(dparam_partials_ptr, dparam_terms, tile, CHANNEL_IS_COLUMN)


@triton.jit
def batch_norm_activation_dx_kernel(
    x_ptr,  # forward input, R*K elements in memory order
    dy_ptr,  # upstream gradient, same layout as x
    mean_ptr,  # (C,) the forward's mean
    scale_ptr,  # (C,) the forward's weight / sqrt(var + eps)
    bias_ptr,  # (C,) affine bias (zeros without affine)
    param_ptr,  # (C,) the activation's parameter (a shared one expanded by the host)
    offset_ptr,  # (C,) scale * sum dz / M (unused unless TRAINING)
    slope_ptr,  # (C,) scale * invstd * sum dz * xhat / M (unused unless TRAINING)
    dx_ptr,  # output gradient, same layout and dtype as x
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C: tl.constexpr,  # channels (a constant: batch_norm_math.batch_norm_tile)
    ACTIVATION_GRADS: tl.constexpr,  # @triton.jit (z, dy, param) -> (dz, dparam term)
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    TRAINING: tl.constexpr,  # batch statistics: their gradients flow into dx
    LOADS_FIRST: tl.constexpr,  # NVIDIA: no math before every load is issued (batch_norm_math)
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    tile, x, dy, vectors = _loads(
        x_ptr, dy_ptr, mean_ptr, scale_ptr, bias_ptr, param_ptr, R, K, C,
        CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64,
    )  # fmt: skip
    if TRAINING:
        offset = load_channel_vector(offset_ptr, tile, CHANNEL_IS_COLUMN)
        slope = load_channel_vector(slope_ptr, tile, CHANNEL_IS_COLUMN)
    d, dz, _ = _gradients(x, dy, vectors, ACTIVATION_GRADS, LOADS_FIRST)
    if TRAINING:
        dx = tl.fma(vectors.scale, dz, -tl.fma(d, slope, offset))
    else:
        dx = vectors.scale * dz
    tl.store(dx_ptr + tile.offsets, dx.to(dx_ptr.dtype.element_ty), mask=tile.mask)
