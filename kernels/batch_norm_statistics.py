"""Batch norm's statistics pass: per-channel shifted sums, no atomics.

    s1[c] = sum over channel c of (x - shift[c])
    s2[c] = sum over channel c of (x - shift[c])^2

The host then takes mean = shift + s1/M and var = s2/M - (s1/M)^2. With
shift[c] one sample of channel c, |mean - shift| is of the order of the
spread, so the subtraction in var loses no more than a few ulps even when
the mean is large against the spread (naive sums of x and x^2 would lose
everything there).

Each program writes its tile's sums, per row or per column, into the
(C, sums per channel) partials (``tiles.store_channel_sums``); the host sums
those in a fixed order, so the statistics are reproducible run to run.

Layout: x dense, viewed as the row-major (R, K) matrix of ``tiles.py``; the
sums are in the compute dtype (fp32; fp64 for fp64 x).
"""

import triton
import triton.language as tl

from .tiles import (
    load_for_compute,
    load_per_channel,
    store_channel_sums,
    tile_channels,
    tile_offsets,
)


@triton.jit
def batch_norm_statistics_kernel(
    x_ptr,  # input, R*K elements in memory order
    shift_ptr,  # (C,) one sample per channel, in the compute dtype
    sum_partials_ptr,  # (C, sums per channel) partial sums of x - shift
    square_partials_ptr,  # (C, sums per channel) partial sums of (x - shift)^2
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C,  # channels
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    pid_r, pid_k, rows, cols, offsets, mask = tile_offsets(
        R, K, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64
    )
    x = load_for_compute(x_ptr + offsets, mask)
    channels, index_in_channel = tile_channels(rows, cols, C, CHANNEL_IS_COLUMN)
    shift = load_per_channel(shift_ptr, channels, rows, cols, R, K, x.dtype, CHANNEL_IS_COLUMN)
    # Masked lanes loaded 0: zero their terms, which 0 - shift would not be.
    centered = tl.where(mask, x - shift, 0.0)
    store_channel_sums(
        sum_partials_ptr, centered, pid_r, pid_k, rows, cols, channels,
        index_in_channel, R, K, C, BLOCK_R, BLOCK_K, CHANNEL_IS_COLUMN,
    )  # fmt: skip
    store_channel_sums(
        square_partials_ptr, centered * centered, pid_r, pid_k, rows, cols, channels,
        index_in_channel, R, K, C, BLOCK_R, BLOCK_K, CHANNEL_IS_COLUMN,
    )  # fmt: skip
