"""Batch norm's normalize pass fused with an activation.

    z = (x - mean[c]) * scale[c] + bias[c]    (``batch_norm_math``; scale = weight * invstd)
    y = ACTIVATION(z, param[c])                (``activation``)

ACTIVATION is the activation's value helper, a constexpr argument (the
learnable ELU's ``learnable_elu``: y = z if z > 0 else alpha[c] * expm1(z)),
so each activation compiles to a kernel of its own. One pass: x read once,
y written once. In training the host passes the batch's statistics (from
``batch_norm_statistics``), in eval the running ones; z is never stored.

Layout: x and y share one dense layout, viewed as the row-major (R, K)
matrix of ``tiles.py``; mean, scale, bias and param are contiguous (C,)
vectors in the compute dtype (fp32; fp64 for fp64 x).
"""

import triton
import triton.language as tl

from .batch_norm_math import (
    batch_norm_tile,
    in_compute_dtype,
    load_normalization,
    load_tile,
    loads_issued,
    normalize,
)
from .tiles import with_channels


@triton.jit
def batch_norm_activation_forward_kernel(
    x_ptr,  # input, R*K elements in memory order
    mean_ptr,  # (C,) mean used to normalize
    scale_ptr,  # (C,) weight / sqrt(var + eps) (weight 1 without affine)
    bias_ptr,  # (C,) affine bias (zeros without affine)
    param_ptr,  # (C,) the activation's parameter (a shared one expanded by the host)
    y_ptr,  # output, same layout and dtype as x
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C: tl.constexpr,  # channels (a constant: batch_norm_math.batch_norm_tile)
    ACTIVATION: tl.constexpr,  # @triton.jit (z, param) -> y, from kernels/activation.py
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    LOADS_FIRST: tl.constexpr,  # NVIDIA: no math before every load is issued (batch_norm_math)
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    tile = batch_norm_tile(R, K, C, CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64)
    x = load_tile(x_ptr, tile)
    tile = with_channels(tile, CHANNEL_IS_COLUMN)
    vectors = load_normalization(mean_ptr, scale_ptr, bias_ptr, param_ptr, tile, CHANNEL_IS_COLUMN)
    x = in_compute_dtype(x, loads_issued(LOADS_FIRST), LOADS_FIRST)
    _, z = normalize(x, vectors)
    y = ACTIVATION(z, vectors.param)
    tl.store(y_ptr + tile.offsets, y.to(y_ptr.dtype.element_ty), mask=tile.mask)
