"""Tiling of a dense tensor seen in memory order as a row-major (R, K) matrix.

The host views the elements of x, in memory order, as a matrix of R rows and
K columns such that the channel of every element is either a function of its
row or its column (see ``elu_triton/layout.py``):

- channel per row (``CHANNEL_IS_COLUMN=False``): NCHW-like layouts, K = the
  extent below the channel dim (H*W for contiguous NCHW), channel = row % C;
  a shared alpha is the case C = 1, R = 1, K = numel.
- channel per column (``CHANNEL_IS_COLUMN=True``): channels_last and (N, C)
  inputs, K = C, channel = column.

A program owns one BLOCK_R x BLOCK_K tile. The 1-D grid walks tiles with the
column block fastest, so neighbouring programs touch neighbouring memory.

A tile is one value, a ``Tile``: its coordinates, mask and channels, and
the view's sizes; the helpers take it whole. A kernel makes it in two
steps, ``tile_of`` and, after the tile's big loads, ``with_channels``: the
integer division per row then comes after the loads, where the kernels
always computed it (before them, the compiler schedules the code
differently: bench/codegen_identity.py shows it). The layout's constexpr
(CHANNEL_IS_COLUMN) travels beside it: Triton (3.6 and 3.9 alike) turns a
constexpr held in a tuple into a runtime value once the tuple is assigned,
and the layout must stay a compile-time branch. BLOCK_R and BLOCK_K need no
such help: they are the shapes of ``rows`` and ``cols``.
"""

from typing import NamedTuple

import triton
import triton.language as tl


class Tile(NamedTuple):
    """One program's tile of the (R, K) view (``tile_of``): a tuple in Triton's eyes."""

    pid_r: tl.tensor  # the tile's row block
    pid_k: tl.tensor  # the tile's column block
    rows: tl.tensor  # (BLOCK_R,) row indices
    cols: tl.tensor  # (BLOCK_K,) column indices
    offsets: tl.tensor  # (BLOCK_R, BLOCK_K) element offsets in memory order
    mask: tl.tensor  # (BLOCK_R, BLOCK_K) elements inside the view
    channels: tl.tensor  # the channel of each row or column (0 before with_channels)
    index_in_channel: tl.tensor  # row = index_in_channel*C + channel (channel per row)
    R: tl.tensor  # rows of the view
    K: tl.tensor  # columns of the view, the row stride
    C: tl.tensor  # channels


@triton.jit
def tile_of(
    R,  # rows of the (R, K) memory view
    K,  # columns of the view; also the row stride, in elements
    C,  # channel count
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    BLOCK_R: tl.constexpr,  # rows per tile
    BLOCK_K: tl.constexpr,  # columns per tile (a power of two)
    K_MULTIPLE: tl.constexpr,  # a power of two that divides K (at most 16)
    INDEX_64: tl.constexpr,  # whether element offsets may reach 2^31
):
    """This program's ``Tile``, its channels still 0 (``with_channels`` adds them)."""
    pid_r, pid_k, rows, cols, offsets, mask = tile_offsets(
        R, K, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64
    )
    # (0 for the channels: Triton 3.6 cannot return None in a tuple.)
    return Tile(pid_r, pid_k, rows, cols, offsets, mask, 0, 0, R, K, C)


@triton.jit
def with_channels(tile, CHANNEL_IS_COLUMN: tl.constexpr):
    """The tile with its channels (``tile_channels``)."""
    channels, index_in_channel = tile_channels(tile, CHANNEL_IS_COLUMN)
    return Tile(
        tile.pid_r, tile.pid_k, tile.rows, tile.cols, tile.offsets, tile.mask,
        channels, index_in_channel, tile.R, tile.K, tile.C,
    )  # fmt: skip


@triton.jit
def tile_offsets(
    R,  # rows of the (R, K) memory view
    K,  # columns of the view; also the row stride, in elements
    BLOCK_R: tl.constexpr,  # rows per tile
    BLOCK_K: tl.constexpr,  # columns per tile (a power of two)
    K_MULTIPLE: tl.constexpr,  # a power of two that divides K (at most 16)
    INDEX_64: tl.constexpr,  # whether element offsets may reach 2^31
):
    """Return (pid_r, pid_k, rows, cols, offsets, mask) of this program's tile."""
    pid = tl.program_id(0)
    if INDEX_64:
        # Only tensors of 2^31+ elements pay for 64-bit address arithmetic.
        pid = pid.to(tl.int64)
    k_blocks = tl.cdiv(K, BLOCK_K)
    pid_r = pid // k_blocks
    pid_k = pid - pid_r * k_blocks  # pid % k_blocks without a second division
    rows = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    row_starts = rows * K
    if K_MULTIPLE > 1:
        # Triton only learns divisibility by 16 from arguments. Telling it that
        # rows start at multiples of K_MULTIPLE, and writing the column bound
        # as a visible multiple of it (the same value), lets 14x14 or 7x7 maps
        # and odd channel counts keep 128-bit accesses.
        row_starts = tl.multiple_of(row_starts, K_MULTIPLE)
        K = (K // K_MULTIPLE) * K_MULTIPLE
    offsets = row_starts[:, None] + cols[None, :]
    mask = (rows[:, None] < R) & (cols[None, :] < K)
    return pid_r, pid_k, rows, cols, offsets, mask


@triton.jit
def after_loads():
    """True: a kernel computes its tile under ``if after_loads():``, after all of the tile's loads.

    Left alone, ptxas schedules the math of a thread's first 128-bit vector
    ahead of the loads of its other vectors and tensors, so the thread waits
    for memory once per vector: 2 to 4 round trips of about 1.3 us per tile
    where one would do (``bench/sass.py`` counts them). A branch that ptxas
    cannot resolve splits the code in two blocks, every load in the first and
    the math in the second: one round trip. No compiler can prove this
    condition (a program's index below the grid's size), and it holds in every
    launch. The other branch never runs, but must use the loaded values too:
    without it, the branch became an early exit and a load sank past it.
    """
    return tl.program_id(0) < tl.num_programs(0)


@triton.jit
def load_for_compute(pointers, mask):
    """A tile of a 16-, 32- or 64-bit float tensor in the compute dtype (fp32; fp64 for fp64)."""
    values = tl.load(pointers, mask=mask, other=0.0)
    if values.dtype != tl.float64:
        values = values.to(tl.float32)
    return values


@triton.jit
def tile_channels(tile, CHANNEL_IS_COLUMN: tl.constexpr):
    """(channels, index_in_channel): the channel of each column, or of each row.

    With the channel per row, row = index_in_channel*C + channel: one integer
    division per row, never per element. With the channel per column,
    index_in_channel is unused (the per-channel sums are per column).
    """
    if CHANNEL_IS_COLUMN:
        channels = tile.cols
        index_in_channel = tile.cols
    else:
        index_in_channel = tile.rows // tile.C
        channels = tile.rows - index_in_channel * tile.C
    return channels, index_in_channel


@triton.jit
def load_per_channel(
    pointer,  # a (C,) per-channel vector (alpha, a mean, a weight...), any float dtype
    tile,  # a Tile
    COMPUTE_DTYPE: tl.constexpr,
    CHANNEL_IS_COLUMN: tl.constexpr,
):
    """The vector's value for each element of the tile, broadcastable to (BLOCK_R, BLOCK_K).

    One gather per tile row or column: C is at most a few thousand, so the
    vector stays in L1.
    """
    if CHANNEL_IS_COLUMN:
        values = tl.load(pointer + tile.channels, mask=tile.cols < tile.K, other=0.0)
    else:
        values = tl.load(pointer + tile.channels, mask=tile.rows < tile.R, other=0.0)
    return per_element(values.to(COMPUTE_DTYPE), CHANNEL_IS_COLUMN)


@triton.jit
def channel_sums(
    terms,  # (BLOCK_R, BLOCK_K) terms to sum per channel; 0 in masked lanes
    CHANNEL_IS_COLUMN: tl.constexpr,
):
    """The tile's sum of terms for each column (channel per column) or each row."""
    if CHANNEL_IS_COLUMN:
        sums = tl.sum(terms, axis=0)
    else:
        sums = tl.sum(terms, axis=1)
    return sums


@triton.jit
def per_element(
    values,  # one value per column (channel per column) or per row, as channel_sums gives
    CHANNEL_IS_COLUMN: tl.constexpr,
):
    """values broadcastable against the tile: the inverse of channel_sums' reduction."""
    if CHANNEL_IS_COLUMN:
        values = values[None, :]
    else:
        values = values[:, None]
    return values


@triton.jit
def store_channel_sums(
    partials_ptr,  # (C, sums per channel) row-major partial sums, see below
    terms,  # (BLOCK_R, BLOCK_K) terms to sum per channel; 0 in masked lanes
    tile,  # a Tile
    CHANNEL_IS_COLUMN: tl.constexpr,
):
    """Write the tile's per-channel sums of terms into the partials matrix, no atomics."""
    sums = channel_sums(terms, CHANNEL_IS_COLUMN)
    store_channel_partials(partials_ptr, sums, tile, CHANNEL_IS_COLUMN)


@triton.jit
def store_channel_partials(
    partials_ptr,  # (C, partials per channel) row-major, see below
    values,  # one value per column or per row of the tile (``channel_sums``)
    tile,  # a Tile
    CHANNEL_IS_COLUMN: tl.constexpr,
):
    """Write one value per tile column or row into the partials matrix, no atomics.

    The partials are a row-major (C, partials per channel) matrix, so that the
    host's final, fixed-order sum runs along contiguous rows: with the channel
    per column, row-block i of column c goes to [c, i] (cdiv(R, BLOCK_R)
    partials per channel); with the channel per row, row r = o*C + c of
    column block j goes to [c, j*(R//C) + o] (cdiv(K, BLOCK_K) * R // C).
    """
    if CHANNEL_IS_COLUMN:
        row_blocks = tl.cdiv(tile.R, tile.rows.shape[0])  # BLOCK_R
        tl.store(
            partials_ptr + tile.cols * row_blocks + tile.pid_r, values, mask=tile.cols < tile.K
        )
    else:
        rows_per_channel = tile.R // tile.C
        partials_per_channel = tl.cdiv(tile.K, tile.cols.shape[0]) * rows_per_channel  # BLOCK_K
        index = (
            tile.channels * partials_per_channel
            + tile.pid_k * rows_per_channel
            + tile.index_in_channel
        )
        tl.store(partials_ptr + index, values, mask=tile.rows < tile.R)
