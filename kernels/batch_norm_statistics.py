"""Batch norm's statistics pass: per-tile centered sums, no atomics, no shift to choose.

Each program sums, for each channel's row (or column) segment t of its tile,
of n_t elements:

    c_t  = (sum of x) / n_t              the segment's mean, to a few ulps
    s1_t = sum of (x - c_t)              what rounding c_t left: ~0
    s2_t = sum of (x - c_t)^2

two passes over the tile in registers, x read from memory once. The host
combines the segments (Chan et al.'s parallel formula, in fp64, in a fixed
order; ``statistics.combine_segments``): mean_t = c_t + s1_t/n_t and
M2_t = s2_t - s1_t^2/n_t are exact algebra, and nothing cancels, since
s1_t is of the order of rounding errors. Every term x - c_t is of the order
of the spread wherever an outlier sits and however large the mean is, so the
error neither depends on the data's order nor grows with the channel's size
beyond that of the fp32 sums themselves. (A single shift per channel, its
first element, lost everything when that element was an outlier; Welford's
per-element update would cost a division per element.)

Each program writes its segments' c_t, s1_t and s2_t into three
(C, segments per channel) partials (``tiles.store_channel_partials``); the
host reads them in a fixed order, so the statistics are reproducible run
to run.

Layout: x dense, viewed as the row-major (R, K) matrix of ``tiles.py``; the
partials are in the compute dtype (fp32; fp64 for fp64 x).
"""

import triton
import triton.language as tl

from .batch_norm_math import batch_norm_tile, in_compute_dtype, load_tile, loads_issued
from .tiles import (
    channel_sums,
    per_element,
    store_channel_partials,
    store_channel_sums,
    with_channels,
)


@triton.jit
def segment_length(tile, CHANNEL_IS_COLUMN: tl.constexpr):
    """n_t: the unmasked elements of each of the tile's channel segments (all alike)."""
    if CHANNEL_IS_COLUMN:
        block_r: tl.constexpr = tile.rows.shape[0]
        n = tl.minimum(tile.R - tile.pid_r * block_r, block_r)
    else:
        block_k: tl.constexpr = tile.cols.shape[0]
        n = tl.minimum(tile.K - tile.pid_k * block_k, block_k)
    return n


@triton.jit
def batch_norm_statistics_kernel(
    x_ptr,  # input, R*K elements in memory order
    center_partials_ptr,  # (C, segments per channel) c_t: each segment's mean
    deviation_partials_ptr,  # (C, segments per channel) s1_t: sums of x - c_t
    square_partials_ptr,  # (C, segments per channel) s2_t: sums of (x - c_t)^2
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C: tl.constexpr,  # channels (a constant: batch_norm_math.batch_norm_tile)
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    LOADS_FIRST: tl.constexpr,  # NVIDIA: no math before every load is issued (batch_norm_math)
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    tile = batch_norm_tile(R, K, C, CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64)
    x = load_tile(x_ptr, tile)
    tile = with_channels(tile, CHANNEL_IS_COLUMN)
    x = in_compute_dtype(x, loads_issued(LOADS_FIRST), LOADS_FIRST)
    # Masked lanes loaded 0, so the sum is that of the segment's n elements.
    # The center need only be near the mean (s1 holds the rest): 1/n as
    # rsqrt(n)^2, a few ulps, once per program, where a division would
    # expand into fma on AMD GPUs (and every fma here is an explicit one).
    n = segment_length(tile, CHANNEL_IS_COLUMN).to(tl.float32)
    inverse_n = tl.math.rsqrt(n)
    center = channel_sums(x, CHANNEL_IS_COLUMN) * (inverse_n * inverse_n)
    # ... but not their deviations, which 0 - c_t would not be.
    centered = tl.where(tile.mask, x - per_element(center, CHANNEL_IS_COLUMN), 0.0)
    store_channel_partials(center_partials_ptr, center, tile, CHANNEL_IS_COLUMN)
    store_channel_sums(deviation_partials_ptr, centered, tile, CHANNEL_IS_COLUMN)
    store_channel_sums(square_partials_ptr, centered * centered, tile, CHANNEL_IS_COLUMN)
