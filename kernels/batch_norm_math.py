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

from typing import NamedTuple

import triton
import triton.language as tl

from .tiles import tile_of


class Normalization(NamedTuple):
    """A tile's per-channel vectors (``load_normalization``), each broadcastable against it."""

    mean: tl.tensor
    scale: tl.tensor  # weight * invstd
    bias: tl.tensor
    param: tl.tensor  # the activation's parameter


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
def load_normalization(
    mean_ptr,  # (C,) per-channel vectors in the compute dtype
    scale_ptr,
    bias_ptr,
    param_ptr,
    tile,  # a Tile, with its channels
    CHANNEL_IS_COLUMN: tl.constexpr,
):
    """The tile's channels' ``Normalization``."""
    return Normalization(
        load_channel_vector(mean_ptr, tile, CHANNEL_IS_COLUMN),
        load_channel_vector(scale_ptr, tile, CHANNEL_IS_COLUMN),
        load_channel_vector(bias_ptr, tile, CHANNEL_IS_COLUMN),
        load_channel_vector(param_ptr, tile, CHANNEL_IS_COLUMN),
    )


@triton.jit
def loads_issued(LOADS_FIRST: tl.constexpr):
    """0; with LOADS_FIRST, once every thread of the CTA has issued its loads (a barrier's count)."""
    if LOADS_FIRST:
        # The count, 32 * num_warps, is below 2^31; the predicate is always true.
        token = tl.inline_asm_elementwise(
            "{ .reg .pred p; setp.eq.u32 p, $1, $1; bar.red.popc.u32 $0, 0, p; "
            "shr.u32 $0, $0, 31; }",
            "=r,r",
            [tl.program_id(0)],
            dtype=tl.int32,
            is_pure=False,
            pack=1,
        )
    else:
        token = 0
    return token


@triton.jit
def in_compute_dtype(values, token, LOADS_FIRST: tl.constexpr):
    """values in the compute dtype (fp32; fp64 for fp64); with LOADS_FIRST, read after token.

    token is ``loads_issued``'s 0, which the compiler cannot know: every
    result is computed from it, so that no instruction reads values before
    the barrier. For bf16 the conversion itself takes it (a byte permute
    per element, as the plain conversion), for the other dtypes an OR per
    32 bits.
    """
    if not LOADS_FIRST:
        if values.dtype != tl.float64:
            values = values.to(tl.float32)
    elif values.dtype == tl.bfloat16:
        # A pair of bf16 in one register: each fp32 is its 16 bits over 16
        # zero bits, taken from token.
        values = tl.inline_asm_elementwise(
            "prmt.b32 $0, $2, $3, 0x1044; prmt.b32 $1, $2, $4, 0x3244;",
            "=r,=r,r,r,r",
            [values, tl.full(values.shape, 0, tl.int32) | token],
            dtype=tl.float32,
            is_pure=True,
            pack=2,
        )
    elif values.dtype == tl.float16:
        pair = (tl.full(values.shape, 0, tl.int16) | token.to(tl.int16)).to(
            tl.float16, bitcast=True
        )
        values = tl.inline_asm_elementwise(
            "or.b32 $0, $1, $2;", "=r,r,r", [values, pair], dtype=tl.float16, is_pure=True, pack=2
        ).to(tl.float32)
    elif values.dtype == tl.float64:
        bits = values.to(tl.int64, bitcast=True) | token.to(tl.int64)
        values = bits.to(tl.float64, bitcast=True)
    else:
        values = (values.to(tl.int32, bitcast=True) | token).to(tl.float32, bitcast=True)
    return values


@triton.jit
def normalize(x, vectors):
    """(d, z) for x in the compute dtype and its tile's ``Normalization``."""
    d = x - vectors.mean
    return d, tl.fma(d, vectors.scale, vectors.bias)
