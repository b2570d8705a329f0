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
def load_tile_alpha(
    alpha_ptr,  # (C,) alpha, any float dtype
    rows,  # (BLOCK_R,) row indices of the tile
    cols,  # (BLOCK_K,) column indices of the tile
    R,
    K,
    C,  # channel count: alpha.numel()
    COMPUTE_DTYPE: tl.constexpr,
    CHANNEL_IS_COLUMN: tl.constexpr,
):
    """(alpha, channels, index_in_channel) of the tile.

    alpha is broadcastable to (BLOCK_R, BLOCK_K); channels holds the channel
    of each column (channel per column) or row (row = index_in_channel*C +
    channel). One gather and, per row, one integer division, never per
    element: C is at most a few thousand, so alpha stays in L1.
    """
    if CHANNEL_IS_COLUMN:
        channels = cols
        index_in_channel = cols  # unused: the sums are per column
        alpha = tl.load(alpha_ptr + cols, mask=cols < K, other=0.0).to(COMPUTE_DTYPE)
        alpha = alpha[None, :]
    else:
        index_in_channel = rows // C
        channels = rows - index_in_channel * C
        alpha = tl.load(alpha_ptr + channels, mask=rows < R, other=0.0).to(COMPUTE_DTYPE)
        alpha = alpha[:, None]
    return alpha, channels, index_in_channel
