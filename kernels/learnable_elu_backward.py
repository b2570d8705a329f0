"""Backward of the ELU with a learnable per-channel alpha, dalpha fused.

    dx        = dy                         if x > 0
              = dy * alpha[c] * exp(x)     if x <= 0
    dalpha[c] = sum over all elements of channel c of dy * expm1(min(x, 0))

NaN in x gives NaN in dx and in its channel's dalpha; x = -inf gives dx = 0.

One pass: x and dy are read once, dx written once. dalpha is reduced without
atomics: each program writes the fp32 (fp64 for fp64) sums of its tile, per
row or per column, into ``dalpha_partials`` (``tiles.store_channel_sums``),
and the host sums those in a fixed order, so dalpha is bitwise reproducible
run to run.

Layout: x, dy and dx share one dense memory layout, viewed as the row-major
(R, K) matrix described in ``tiles.py``.
"""

import triton
import triton.language as tl

from .activation import learnable_elu_grads
from .tiles import (
    after_loads,
    load_for_compute,
    load_per_channel,
    store_channel_sums,
    tile_of,
    with_channels,
)


@triton.jit
def learnable_elu_backward_kernel(
    dy_ptr,  # upstream gradient, same layout as x
    x_ptr,  # forward input, R*K elements in memory order
    alpha_ptr,  # (C,) alpha
    dx_ptr,  # output gradient, same layout and dtype as x
    dalpha_partials_ptr,  # (C, sums per channel) per-tile sums (unused without COMPUTE_DALPHA)
    R,  # rows of the memory view
    K,  # columns of the memory view (row stride)
    C,  # channels: alpha.numel()
    CHANNEL_IS_COLUMN: tl.constexpr,  # channel = column (else row % C)
    COMPUTE_DALPHA: tl.constexpr,  # False when alpha needs no gradient
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
    K_MULTIPLE: tl.constexpr,  # a power of two dividing K, for aligned vector access
    INDEX_64: tl.constexpr,
):
    tile = tile_of(R, K, C, CHANNEL_IS_COLUMN, BLOCK_R, BLOCK_K, K_MULTIPLE, INDEX_64)
    x = load_for_compute(x_ptr + tile.offsets, tile.mask)
    dy = load_for_compute(dy_ptr + tile.offsets, tile.mask)
    tile = with_channels(tile, CHANNEL_IS_COLUMN)
    alpha = load_per_channel(alpha_ptr, tile, x.dtype, CHANNEL_IS_COLUMN)

    if after_loads():
        dx, dalpha_terms = learnable_elu_grads(
            x, dy, alpha, dx_ptr.dtype.element_ty.fp_mantissa_width + 1
        )
    else:  # never runs (see after_loads)
        dx, dalpha_terms = dy, x
    tl.store(dx_ptr + tile.offsets, dx.to(dx_ptr.dtype.element_ty), mask=tile.mask)
    if COMPUTE_DALPHA:
        # Masked lanes loaded x = dy = 0: their terms are 0.
        store_channel_sums(dalpha_partials_ptr, dalpha_terms, tile, CHANNEL_IS_COLUMN)
