"""The activations' math on one tile, for any kernel that applies them.

Each activation is a pair of helpers, its value (x, param) -> y and its
gradients (x, dy, param) -> (dx, dparam term); the fused batch norm's
kernels take a pair as constexpr arguments.

The learnable ELU (``learnable_elu``, ``learnable_elu_grads``):

    y         = x                      if x > 0
              = alpha * expm1(x)       if x <= 0
    dx        = dy                     if x > 0
              = dy * alpha * exp(x)    if x <= 0
    dalpha    = dy * expm1(min(x, 0))  (summed per channel by the caller)

x, dy and alpha are in the compute dtype (fp32, or fp64 for fp64 inputs).
NaN in x gives NaN in y, dx and the dalpha term; +inf gives y = +inf and the
slope 1; -inf gives y = -alpha, dx = 0 and the dalpha term -dy.

PReLU (``prelu``, ``prelu_grads``), as ``F.prelu`` and aten's backward
(``_prelu_kernel_backward``) compute it, NaN and x = 0 included:

    y         = x                      if x > 0
              = a * x                  otherwise (NaN: a * NaN = NaN)
    dx        = dy                     if x > 0
              = a * dy                 otherwise (x = 0 and NaN x too)
    da        = dy * x  if not x > 0, else 0   (summed per channel by the caller)
"""

import triton
import triton.language as tl

from .exp_math import negative_branch, negative_expm1


@triton.jit
def learnable_elu(x, alpha, Y_BITS: tl.constexpr = 53):
    """y of the activation, in x's dtype; alpha broadcasts against x.

    Y_BITS: significand bits of the dtype y is stored in (fp16 11, bf16 8;
    the default, full precision): 16-bit results take a shorter polynomial.
    """
    # The negative branch clamps +inf and positive x to 0, so it never makes
    # an inf of its own, and passes NaN through: `x > 0` is False for NaN,
    # whose alpha * NaN is NaN.
    return tl.where(x > 0, x, alpha * negative_expm1(x, Y_BITS))


@triton.jit
def learnable_elu_grads(x, dy, alpha, DX_BITS: tl.constexpr = 53):
    """(dx, dalpha term) of the activation at x for the upstream gradient dy.

    DX_BITS: significand bits of the dtype dx is stored in (as Y_BITS).
    """
    # NaN x gives NaN in both factors (negative_branch passes it through),
    # which poisons dx and the dalpha term.
    expm1_x, exp_x = negative_branch(x, DX_BITS)
    # d/dx alpha*expm1(x) = alpha*exp(x); for x > 0 the slope is exactly 1
    # (dy * 1 is dy, inf and NaN included). Selecting the slope, not dy, keeps
    # dx an fp32 product: a 16-bit dx then converts in pairs, where selecting
    # dy let the compiler select between 16-bit values, one conversion each.
    dx = dy * tl.where(x > 0, 1.0, alpha * exp_x)
    # d/dalpha y = expm1(min(x, 0)); selecting after the product keeps an
    # infinite dy at x > 0 from making inf * 0 = NaN.
    dalpha_term = tl.where(x > 0, 0.0, dy * expm1_x)
    return dx, dalpha_term


@triton.jit
def prelu(x, a):
    """y of PReLU, in x's dtype; a broadcasts against x."""
    # `x > 0` is False for NaN, whose a * x is NaN: F.prelu's select.
    return tl.where(x > 0, x, a * x)


@triton.jit
def prelu_grads(x, dy, a):
    """(dx, da term) of PReLU at x for the upstream gradient dy, as aten's backward."""
    is_positive = x > 0
    dx = tl.where(is_positive, dy, a * dy)
    # Selecting after the product, as aten does: x = 0 with an infinite dy
    # gives NaN there too.
    da_term = tl.where(is_positive, 0.0, x * dy)
    return dx, da_term
