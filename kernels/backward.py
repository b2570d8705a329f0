"""Backward of the ELU with a learnable per-channel alpha, dalpha fused.

    dx        = dy                         if x > 0
              = dy * alpha[c] * exp(x)     if x <= 0
    dalpha[c] = sum over all elements of channel c of dy * expm1(min(x, 0))

NaN in x gives NaN in dx and in its channel's dalpha; x = -inf gives dx = 0.

One pass: x and dy are read once, dx written once. dalpha is reduced without
atomics: each program writes the fp32 (fp64 for fp64) sums of its tile, per
row or per column, into ``dalpha_partials``, and the host sums those in a
fixed order, so dalpha is bitwise reproducible run to run.

Layout: x, dy and dx share one dense memory layout, viewed as the row-major
(R, K) matrix described in ``tiles.py``. dalpha_partials is a row-major
(C, sums per channel) matrix, so that the host's final sum runs along
contiguous rows: with the channel per column, tile row-block i of column c
goes to [c, i] (cdiv(R, BLOCK_R) sums per channel); with the channel per row,
the sum of row r = o*C + c over column block j goes to [c, j*(R//C) + o]
(cdiv(K, BLOCK_K) * R // C sums per channel).
"""

import triton
import triton.language as tl

from .elu_math import negative_branch
from .tiles import load_tile_alpha, tile_offsets


@triton.jit
def learnable_elu_backward_kernel(
    dy_ptr,  # upstream gradient, same layout as x
    x_ptr,  # forward input, R*K elements in memory order
    alpha_ptr,  # (C,) alpha
    dx_ptr,  # output gradient, same layout and dtype as x
    dalpha_partials_ptr,  # per-tile sums, see the module docstring (unused without COMPUTE_DALPHA)
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C,  # channels: alpha.numel()
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    COMPUTE_DALPHA: tl.constexpr,  # False when alpha needs no gradient
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    pid_r, pid_k, rows, cols, offsets, mask = tile_offsets(
        R, K, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64
    )
    x_raw = tl.load(x_ptr + offsets, mask=mask, other=0.0)
    compute_dtype = tl.float64 if x_raw.dtype == tl.float64 else tl.float32
    x = x_raw.to(compute_dtype)
    dy = tl.load(dy_ptr + offsets, mask=mask, other=0.0).to(compute_dtype)
    alpha, channels, index_in_channel = load_tile_alpha(
        alpha_ptr, rows, cols, R, K, C, compute_dtype, CHANNEL_IS_COLUMN
    )

    expm1_x, exp_x = negative_branch(tl.where(x < 0, x, 0.0))
    # NaN x must poison dx and dalpha, but the negative branch saw 0 for it:
    # put the NaN back into the negative-branch factors.
    is_nan = x != x
    exp_x = tl.where(is_nan, x, exp_x)
    expm1_x = tl.where(is_nan, x, expm1_x)
    # d/dx alpha*expm1(x) = alpha*exp(x); for x > 0 the slope is exactly 1.
    dx = tl.where(x > 0, dy, dy * (alpha * exp_x))
    tl.store(dx_ptr + offsets, dx.to(x_raw.dtype), mask=mask)

    if COMPUTE_DALPHA:
        # d/dalpha y = expm1(min(x, 0)); selecting after the product keeps an
        # infinite dy at x > 0 from making inf * 0 = NaN. Masked lanes give 0.
        dalpha_terms = tl.where(x > 0, 0.0, dy * expm1_x)
        if CHANNEL_IS_COLUMN:
            sums = tl.sum(dalpha_terms, axis=0)
            row_blocks = tl.cdiv(R, BLOCK_R)
            tl.store(dalpha_partials_ptr + cols * row_blocks + pid_r, sums, mask=cols < K)
        else:
            sums = tl.sum(dalpha_terms, axis=1)
            rows_per_channel = R // C
            sums_per_channel = tl.cdiv(K, BLOCK_K) * rows_per_channel
            index = channels * sums_per_channel + pid_k * rows_per_channel + index_in_channel
            tl.store(dalpha_partials_ptr + index, sums, mask=rows < R)
