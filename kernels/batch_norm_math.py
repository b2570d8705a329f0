"""Batch norm's per-element math on one tile, shared by its forward and backward kernels.

    xhat = (x - mean[c]) * invstd[c]
    z    = xhat * weight[c] + bias[c]        (weight 1, bias 0 without affine)

x - mean comes first, so that a mean large against the spread cancels
exactly (Sterbenz) instead of leaving the rounding error of a folded
x * scale + shift. Both kernels compute z the same way, so the backward's
recomputed z is bitwise the forward's.
"""

import triton
import triton.language as tl


@triton.jit
def normalize(x, mean, invstd, weight, bias):
    """(xhat, z) for x and per-channel vectors that broadcast against it."""
    xhat = (x - mean) * invstd
    return xhat, tl.fma(xhat, weight, bias)
