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
"""

import triton
import triton.language as tl


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
def channel_of_rows(rows, C):
    """(channel, index among the rows of that channel) of each row: row = index*C + channel.

    One integer division per row (not per element), for the channel-per-row view.
    """
    index = rows // C
    return rows - index * C, index


@triton.jit
def load_alpha(
    alpha_ptr,  # (C,) alpha, any float dtype
    channels,  # (BLOCK_R,) channel per row, or (BLOCK_K,) per column
    in_bounds,  # mask of the same shape
    COMPUTE_DTYPE: tl.constexpr,
    CHANNEL_IS_COLUMN: tl.constexpr,
):
    """alpha of each tile element's channel, broadcastable to (BLOCK_R, BLOCK_K).

    A gather per row or column, not per element: C is at most a few
    thousand, so alpha stays in L1.
    """
    alpha = tl.load(alpha_ptr + channels, mask=in_bounds, other=0.0).to(COMPUTE_DTYPE)
    if CHANNEL_IS_COLUMN:
        alpha = alpha[None, :]
    else:
        alpha = alpha[:, None]
    return alpha
