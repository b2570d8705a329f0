"""Batch norm's per-element math on one tile, shared by its forward and backward kernels.

    d = x - mean[c]
    z = d * scale[c] + bias[c]       one fma; scale = weight * invstd, from the host

x - mean comes first, so that a mean large against the spread cancels
exactly (Sterbenz) instead of leaving the rounding error of a folded
x * scale + shift. The host multiplies weight by invstd once per channel
(``elu_triton/batch_norm/statistics.py``), which saves the tile a product
and two of its per-channel loads. Every kernel computes z the same way, so
the backward's recomputed z is bitwise the forward's.

Every load first. A load issued after the math has started on an earlier
one's data costs the program a second memory round trip (about a
microsecond under load). The kernels issue the big tiles' loads and then
the per-channel vectors', but ptxas schedules by its own latency model:
it starts converting and computing on the first tile while later loads
wait, the more so the more registers the math needs (2 to 8 round trips
per tile, ``bench/static_model``). A ``tl.debug_barrier`` after the loads
does not stop it: ptxas keeps loads above a bar.sync but hoists
arithmetic over it. What does: the math reads x and dy through ``gated``,
which ties them to the count a CTA-wide barrier returns (``bar.red.popc``,
whose value ptxas cannot know): no instruction may read them before the
barrier, and every load was issued before it. NVIDIA only (inline PTX);
the kernels take LOADS_FIRST=False elsewhere (AMD GPUs, the interpreter).
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
def loads_issued():
    """0, once every thread of the CTA has issued its loads: a barrier's count, shifted out."""
    # (The count, 32 * num_warps, is below 2^31; the predicate is always true.)
    return tl.inline_asm_elementwise(
        "{ .reg .pred p; setp.eq.u32 p, $1, $1; bar.red.popc.u32 $0, 0, p; shr.u32 $0, $0, 31; }",
        "=r,r",
        [tl.program_id(0)],
        dtype=tl.int32,
        is_pure=False,
        pack=1,
    )


@triton.jit
def gated(values, token):
    """values, unchanged, as results of an OR with token (0, from ``loads_issued``)."""
    if values.dtype == tl.float64:
        values = (values.to(tl.int64, bitcast=True) | token.to(tl.int64)).to(
            tl.float64, bitcast=True
        )
    elif values.dtype == tl.float32:
        values = (values.to(tl.int32, bitcast=True) | token).to(tl.float32, bitcast=True)
    else:
        # One OR per register, a pair of 16-bit values (an OR per element
        # would cost a conversion each).
        pair = (tl.full(values.shape, 0, tl.int16) | token.to(tl.int16)).to(
            values.dtype, bitcast=True
        )
        values = tl.inline_asm_elementwise(
            "or.b32 $0, $1, $2;", "=r,r,r", [values, pair], dtype=values.dtype, is_pure=True, pack=2
        )
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
