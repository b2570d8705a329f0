"""Batch norm's per-element math on one tile, shared by its forward and backward kernels.

    d = x - mean[c]
    z = d * scale[c] + bias[c]       one fma; scale = weight * invstd, from the host

x - mean comes first, so that a mean large against the spread cancels
exactly (Sterbenz) instead of leaving the rounding error of a folded
x * scale + shift. The host multiplies weight by invstd once per channel
(``elu_triton/batch_norm/statistics.py``), which saves the tile a product
and two of its per-channel loads. Every kernel computes z the same way, so
the backward's recomputed z is bitwise the forward's.
"""

import triton
import triton.language as tl

from .tiles import tile_of


@triton.jit
def batch_norm_tile(
    R,  # rows of the (R, K) memory view
    K,  # columns of the view, the row stride (C with the channel per column)
    C: tl.constexpr,  # channels
    CHANNEL_IS_COLUMN: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,
    INDEX_64: tl.constexpr,
):
    """``tiles.tile_of`` for a constant channel count (and K = C with the channel per column).

    Constant, C turns the divisions by C (a row's channel, R // C for the
    partials) into multiplications, and with the channel per column the
    division of the program id by the column blocks too: 3 to 6
    instructions per element in all.
    """
    if CHANNEL_IS_COLUMN:
        tile = tile_of(R, C, C, CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64)
    else:
        tile = tile_of(R, K, C, CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64)
    return tile


@triton.jit
def load_tile(pointer, tile):
    """A big tensor's tile in its own dtype (0 in masked lanes): ``in_compute_dtype`` after."""
    return tl.load(pointer + tile.offsets, mask=tile.mask, other=0.0)


@triton.jit
def load_channel_vector(
    pointer,  # a (C,) per-channel vector in the compute dtype
    tile,  # a Tile, with its channels
    CHANNEL_IS_COLUMN: tl.constexpr,
):
    """The vector's value for each element of the tile, broadcastable to (BLOCK_R, BLOCK_K).

    A row's channel, row % C, is a channel even past R: its load needs no
    mask (nor the zeroing a masked load's other value costs).
    """
    if CHANNEL_IS_COLUMN:
        values = tl.load(pointer + tile.channels, mask=tile.cols < tile.K, other=0.0)[None, :]
    else:
        values = tl.load(pointer + tile.channels)[:, None]
    return values


@triton.jit
def in_compute_dtype(values):
    """values in the compute dtype: fp32, or fp64 for fp64."""
    if values.dtype != tl.float64:
        values = values.to(tl.float32)
    return values


@triton.jit
def normalize(x, mean, scale, bias):
    """(d, z) for x in the compute dtype and per-channel vectors that broadcast against it."""
    d = x - mean
    return d, tl.fma(d, scale, bias)
