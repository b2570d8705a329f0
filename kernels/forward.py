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

from .elu_math import negative_expm1
from .tiles import load_tile_alpha, tile_offsets


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
    _, _, rows, cols, offsets, mask = tile_offsets(R, K, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64)
    x_raw = tl.load(x_ptr + offsets, mask=mask, other=0.0)
    compute_dtype = tl.float64 if x_raw.dtype == tl.float64 else tl.float32
    x = x_raw.to(compute_dtype)
    alpha, _, _ = load_tile_alpha(alpha_ptr, rows, cols, R, K, C, compute_dtype, CHANNEL_IS_COLUMN)
    # The negative branch sees 0 for x > 0, +inf and NaN, so it never makes
    # an inf or NaN of its own; the select below restores NaN and +inf.
    expm1_x = negative_expm1(tl.where(x < 0, x, 0.0))
    # `x <= 0` is False for NaN, so NaN takes the identity branch and survives.
    y = tl.where(x <= 0, alpha * expm1_x, x)
    tl.store(y_ptr + offsets, y.to(x_raw.dtype), mask=mask)
