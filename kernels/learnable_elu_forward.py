"""Forward of the ELU with a learnable per-channel alpha.

    y = x                      if x > 0
      = alpha[c] * expm1(x)    if x <= 0   (and x = -inf gives -alpha[c])

NaN in x gives NaN in y. One pass: x is read once and y written once.

Layout: x and y share one dense memory layout, viewed as the row-major (R, K)
matrix described in ``tiles.py``; alpha is a contiguous (C,) vector.
Arithmetic is fp32 for 16- and 32-bit inputs, fp64 for fp64.
"""

import triton
import triton.language as tl

from .activation import learnable_elu
from .tiles import after_loads, load_for_compute, load_per_channel, tile_of, with_channels


@triton.jit
def learnable_elu_forward_kernel(
    x_ptr,  # input, R*K elements in memory order
    alpha_ptr,  # (C,) alpha
    y_ptr,  # output, same layout and dtype as x
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C,  # channels: alpha.numel()
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    tile = tile_of(R, K, C, CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64)
    x = load_for_compute(x_ptr + tile.offsets, tile.mask)
    tile = with_channels(tile, CHANNEL_IS_COLUMN)
    alpha = load_per_channel(alpha_ptr, tile, x.dtype, CHANNEL_IS_COLUMN)
    if after_loads():
        y = learnable_elu(x, alpha, y_ptr.dtype.element_ty.fp_mantissa_width + 1)
    else:  # never runs (see after_loads)
        y = x
    tl.store(y_ptr + tile.offsets, y.to(y_ptr.dtype.element_ty), mask=tile.mask)
