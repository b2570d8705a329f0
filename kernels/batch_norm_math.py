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
