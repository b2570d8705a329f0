"""Shared device math: an accurate exp/expm1 pair for the negative branch.

Why not ``tl.exp(x) - 1``: for tiny negative x it cancels (x = -1e-7 keeps
about one correct digit in fp32). Why not libdevice ``expm1``: the Triton
interpreter, which runs our tests on the CPU, has no libdevice. Why not
Kahan's ``(u - 1) * x / log(u)`` trick: on the GPU ``tl.log`` is
``lg2.approx``, whose absolute error near 1 ruins it.

So we do what libm does, in plain arithmetic that runs on both:
Cody-Waite range reduction x = k*ln2 + r with |r| <= ln2/2, a Taylor
polynomial p = expm1(r), and an exact power of two s = 2^k built from bits:

    expm1(x) = s*p + (s - 1)     exp(x) = s*p + s

For k = 0 the result is p itself, so tiny |x| keeps full relative accuracy.
Truncation error of the polynomial, relative: |r|^7/8! < 2e-8 (fp32, degree 7),
|r|^13/14! < 2e-17 (fp64, degree 13); both under half an ulp.
"""

import triton
import triton.language as tl

# tl.constexpr: a @triton.jit function compiled for the GPU may only read
# globals that are constexpr (plain floats work only in the interpreter).
LOG2E = tl.constexpr(1.4426950408889634)
# ln2 split in a head with trailing zero bits (k*head is exact for |k| < 2^8
# in fp32, 2^11 in fp64) and a tail; the fp32 pair is fdlibm's expf split.
LN2_HI_F32 = tl.constexpr(6.9313812256e-01)
LN2_LO_F32 = tl.constexpr(9.0580006145e-06)
LN2_HI_F64 = tl.constexpr(6.93147180369123816490e-01)
LN2_LO_F64 = tl.constexpr(1.90821492927058770002e-10)
# Below these, exp(x) is below the smallest normal number (we flush it to 0,
# as the GPU's ftz arithmetic would) and expm1(x) rounds to -1; clamping keeps
# 2^k a normal number built from its exponent bits.
CLAMP_F32 = tl.constexpr(-87.0)
CLAMP_F64 = tl.constexpr(-708.0)


# The polynomials: Horner's rule on the Taylor coefficients 1/i!, one fma per
# degree, then r + r^2*p, which keeps tiny r exact. (The nested form
# 1 + r/2*(1 + r/3*(...)) needs a multiply and an fma per degree: 7 more
# instructions per fp32 element, which made 16-bit inputs issue-bound.)
# Python constants meet r's dtype unrounded: the fp64 path gets fp64 1/i!.


@triton.jit
def _expm1_poly_f32(r):
    """expm1(r) for |r| <= ln2/2: Taylor polynomial of degree 7."""
    p = r * (1.0 / 5040) + (1.0 / 720)
    p = p * r + (1.0 / 120)
    p = p * r + (1.0 / 24)
    p = p * r + (1.0 / 6)
    p = p * r + 0.5
    return r + (r * r) * p


@triton.jit
def _expm1_poly_f64(r):
    """expm1(r) for |r| <= ln2/2: Taylor polynomial of degree 13."""
    p = r * (1.0 / 6227020800) + (1.0 / 479001600)
    p = p * r + (1.0 / 39916800)
    p = p * r + (1.0 / 3628800)
    p = p * r + (1.0 / 362880)
    p = p * r + (1.0 / 40320)
    p = p * r + (1.0 / 5040)
    p = p * r + (1.0 / 720)
    p = p * r + (1.0 / 120)
    p = p * r + (1.0 / 24)
    p = p * r + (1.0 / 6)
    p = p * r + 0.5
    return r + (r * r) * p


@triton.jit
def negative_branch(x):
    """Return (expm1(x), exp(x)) for x <= 0, each with relative error < 1 ulp-ish.

    x must be <= 0 and not NaN (callers replace NaN, +inf and positive values
    by 0 first, so no NaN reaches the integer conversion below); -inf gives
    (-1, 0).
    Computed in x's dtype: call with fp32 or fp64.
    """
    if x.dtype == tl.float64:
        underflow = x < CLAMP_F64
        x = tl.maximum(x, CLAMP_F64)
        k = tl.floor(x * LOG2E + 0.5)
        r = (x - k * LN2_HI_F64) - k * LN2_LO_F64
        p = _expm1_poly_f64(r)
        scale = ((k.to(tl.int64) + 1023) << 52).to(tl.float64, bitcast=True)
    else:
        underflow = x < CLAMP_F32
        x = tl.maximum(x, CLAMP_F32)
        k = tl.floor(x * LOG2E + 0.5)
        r = (x - k * LN2_HI_F32) - k * LN2_LO_F32
        p = _expm1_poly_f32(r)
        scale = ((k.to(tl.int32) + 127) << 23).to(tl.float32, bitcast=True)
    expm1_x = scale * p + (scale - 1.0)
    exp_x = tl.where(underflow, 0.0, scale * p + scale)
    return expm1_x, exp_x
