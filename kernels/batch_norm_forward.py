"""Batch norm's normalize pass fused with the learnable ELU.

    z = (x - mean[c]) * invstd[c] * weight[c] + bias[c]    (``batch_norm_math``)
    y = z if z > 0 else alpha[c] * expm1(z)                  (``activation``)

One pass: x read once, y written once. In training the host passes the
batch's statistics (from ``batch_norm_statistics``), in eval the running
ones; z is never stored.

Layout: x and y share one dense layout, viewed as the row-major (R, K)
matrix of ``tiles.py``; mean, invstd, weight, bias and alpha are contiguous
(C,) vectors in the compute dtype (fp32; fp64 for fp64 x).
"""

import triton
import triton.language as tl

from .activation import learnable_elu
from .batch_norm_math import normalize_tile
from .tiles import load_for_compute, tile_channels, tile_offsets


@triton.jit
def batch_norm_elu_forward_kernel(
    x_ptr,  # input, R*K elements in memory order
    mean_ptr,  # (C,) mean used to normalize
    invstd_ptr,  # (C,) 1 / sqrt(var + eps)
    weight_ptr,  # (C,) affine weight (ones without affine)
    bias_ptr,  # (C,) affine bias (zeros without affine)
    alpha_ptr,  # (C,) alpha (a shared alpha expanded by the host)
    y_ptr,  # output, same layout and dtype as x
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C,  # channels
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    _, _, rows, cols, offsets, mask = tile_offsets(R, K, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64)
    x = load_for_compute(x_ptr + offsets, mask)
    channels, _ = tile_channels(rows, cols, C, CHANNEL_IS_COLUMN)
    _, z, alpha = normalize_tile(
        x, mean_ptr, invstd_ptr, weight_ptr, bias_ptr, alpha_ptr, channels, rows, cols, R, K,
        CHANNEL_IS_COLUMN,
    )  # fmt: skip
    y = learnable_elu(z, alpha)
    tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)
