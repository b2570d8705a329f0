"""Shared device math: an accurate exp/expm1 pair for the negative branch.

Why not ``tl.exp(x) - 1``: for tiny negative x it cancels (x = -1e-7 keeps
about one correct digit in fp32). Why not libdevice ``expm1``: the Triton
interpreter, which runs our tests on the CPU, has no libdevice. Why not
Kahan's ``(u - 1) * x / log(u)`` trick: on the GPU ``tl.log`` is
``lg2.approx``, whose absolute error near 1 ruins it.

So we do what libm does, in plain arithmetic that runs on both:
Cody-Waite range reduction x = k*ln2 + r with |r| <= ln2/2, a polynomial
p = expm1(r), and an exact power of two s = 2^k built from bits:

    expm1(x) = s*p + (s - 1)     exp(x) = s*p + s

For k = 0 the result is p itself, so tiny |x| keeps full relative accuracy.

Rounding without conversions. k = rint(x*log2e) comes from one fma with the
magic number M = 1.5*2^23 (1.5*2^52 in fp64): j = fma(x, log2e, M) lies in
[2^23, 2^24), where the spacing is 1, so the fma rounds x*log2e to an
integer k and j = M + k exactly (|k| < 2^22); -k = M - j is exact, and j's
bits are M's plus k, so (bits(j) << 23) + ((127 + b) << 23) are the bits
of 2^(k + b) (M's own bits all shift out: its low 22 bits are 0). No
floor, no float-to-int conversion (those ran at a sixteenth of the fma
rate). |x*log2e - k| <= 1/2 with log2e rounded to the working precision;
the rounded constant (1.9e-8 off in fp32) moves r by under
|x| * 1.9e-8 * ln2 <= 1.4e-6 for |x| <= 104 (6e-14 in fp64), and an unfused
fma (Triton 3.6's interpreter) rounds x*log2e first, which moves it by under
150 * 2^-24 * ln2 < 7e-6 more: |r| <= 0.3466 holds, the interval the
polynomials are fitted on.

The reduction r = x - k*ln2. Where exp(x) matters (the backward's dx in
fp32, and fp64) ln2 is split in a head with trailing zero bits, k*head
exact, and a tail: r is then x - k*ln2 to one rounding. Where only
expm1(x) matters, or a 16-bit result, one fma with ln2 rounded to fp32
does: its error of 1.9e-9 per unit of k moves expm1(x) by
exp(x) * |k| * 1.9e-9, under 5e-9 relative to expm1(x) for every k (the
largest at k = -1, x = -0.35, where exp(x)/|expm1(x)| = 2.4), and exp(x)
by |k| * 1.9e-9 <= 3e-7 relative (|k| <= 150). Unfused (Triton 3.6's
interpreter), k*ln2 is rounded first: under 8e-8 relative to expm1(x), and
4e-6 to exp(x), which then only reaches 16-bit results.

The polynomials, p = r + r^2*q(r), relative error of p on |r| <= 0.3466
(``_expm1_poly_f32``): each q minimizes the largest relative error of p
(Remez exchange in mpmath at 40 digits, on p's relative error, with each
coefficient rounded to fp32 in turn from q's lowest and the rest refitted;
the errors below are those of the rounded coefficients, checked on 4000
points; ``python -m bench.expm1_minimax --fit`` derives them again):

- degree 6 (q of degree 4), for fp32 results and for the backward, whose
  dalpha terms are summed to a bound of 1e-5 * sum |terms|: 1.41e-8, a
  quarter of fp32's half ulp, one fma fewer than the degree-7 Taylor
  polynomial it replaces (1.70e-8);
- degree 4 (q of degree 2), for the forward's bf16 and fp16 results:
  2.06e-5 (2^-15.6). The fp32 arithmetic around it adds a few 2^-24, and
  for k < 0 the error of p reaches expm1(x) scaled by s*|p|/|expm1(x)| < 1.
  A result within eta of the truth (relative) rounds to the nearest 16-bit
  value within eta + half an ulp: within 2^-8 + eta (bf16) and 2^-11 + eta
  (fp16), inside the 2^-7 and 2^-10 the tests allow. Triton's interpreter
  truncates fp32 to bf16 instead: a full ulp, up to 2^-7 of a value just
  above a power of two. The truncated result still passes when the fp32
  value is within 2^-14 below the truth (relative): with y in [2^e, 2^(e+1)),
  truncation to m/128 * 2^e fails 2^-7 * |y| only if y > m/127 * 2^e while
  the computed value is below (m + 1)/128 * 2^e, which needs a relative
  error over (m - 127)/(128*m) >= 2^-14 (m = 128). 2.06e-5 is 2^-15.6.
- fp64: the Taylor polynomial of degree 13: 1.4e-17.

Underflow. exp(x) is subnormal below ln(2^-126) = -87.34 (fp32; -708.40 in
fp64) and rounds to 0 below ln(2^-150) = -103.97 (-745.13). The GPU (no .ftz
in our PTX) and numpy keep subnormals, and so does ``negative_branch``. Bits
make 2^k only while it is normal, so it builds 2^(k+64) and multiplies by
2^-64: exact down to 2^-149 (2^-1074), the smallest subnormal, and 0 for
k <= -150 (-1075), as 2^-150 ties to even. s*p + s then rounds into the subnormals once (an fma). x is
clamped at -104 (-746), below which exp rounds to 0 anyway: so k >= -150
(-1076), k+64 is a normal exponent, and at the clamp s = 0 gives exp = 0 and
expm1 = -1 exactly, with no select. The one inexact spot: k = -150 (x in
[-104, -103.63]; k = -1075 in fp64) gives exp = 0 where the true value
reaches 2^-149.5 (2^-1074.5), an error under one subnormal spacing. The
multiply costs an instruction per element, one fewer than flushing with a
compare and a select; ``negative_expm1``, for the forward, which needs no exp,
clamps where 2^k is still normal and skips it.

NaN. The clamps propagate NaN (min and max with ``PropagateNan.ALL``: one
instruction each, as the plain ones), and NaN then runs through the
arithmetic into both results: p is NaN, and whatever bits j's NaN gives s,
s*p is NaN. No select is needed to restore it, and nothing converts NaN to
an integer. +inf and positive x are clamped to 0 (their results are
discarded by the caller); -inf to the lower clamp.
"""

import triton
import triton.language as tl

# tl.constexpr: a @triton.jit function compiled for the GPU may only read
# globals that are constexpr (plain floats work only in the interpreter).
LOG2E = tl.constexpr(1.4426950408889634)
# 1.5*2^23 (1.5*2^52): j = fma(x, log2e, MAGIC) rounds x*log2e to an integer.
MAGIC_F32 = tl.constexpr(12582912.0)
MAGIC_F64 = tl.constexpr(6755399441055744.0)
# ln2 rounded to fp32, for the one-fma reduction (error 1.9e-9).
LN2_F32 = tl.constexpr(0.6931471824645996)
# ln2 split in a head with trailing zero bits (k*head is exact for |k| < 2^8
# in fp32, 2^11 in fp64: the clamps keep |k| <= 150, 1076) and a tail; the
# fp32 pair is fdlibm's expf split.
LN2_HI_F32 = tl.constexpr(6.9313812256e-01)
LN2_LO_F32 = tl.constexpr(9.0580006145e-06)
LN2_HI_F64 = tl.constexpr(6.93147180369123816490e-01)
LN2_LO_F64 = tl.constexpr(1.90821492927058770002e-10)
# exp: below the clamps exp rounds to 0; 2^(k + EXP_BIAS) is a normal number
# for every k they allow (see the module docstring).
CLAMP_F32 = tl.constexpr(-104.0)
CLAMP_F64 = tl.constexpr(-746.0)
EXP_BIAS = tl.constexpr(64)
EXP_UNBIAS = tl.constexpr(2.0**-64)
# expm1 alone: -1 to the last bit in fp32 and fp64 below -64 (exp(-64) <
# 2^-92), and 2^k stays normal without a bias down to it (k >= -92).
CLAMP_EXPM1 = tl.constexpr(-64.0)
# Significand bits of a result (with the implicit one) up to which the
# shorter reduction and polynomial are accurate enough: fp16's 11, bf16's 8.
SHORT_BITS = tl.constexpr(11)


# Every multiply-add whose rounding the accuracy bounds assume is an explicit
# tl.fma: Triton's FP-fusion default (on in 3.9, off from 3.10) then cannot
# change a result, and the kernels launch with fusion off.
#
# The polynomials: Horner's rule on q, one fma per degree, then r + r^2*q,
# which keeps tiny r exact. (The nested form 1 + r/2*(1 + r/3*(...)) needs a
# multiply and an fma per degree.) Coefficients: the fp32 minimax values of
# the module docstring, written as the exact decimals of those fp32 numbers.


@triton.jit
def _f64(value: tl.constexpr):
    """value as an fp64 scalar: before Triton 3.9, tl.fma made a Python float an fp32 constant."""
    return tl.full((), value, tl.float64)


@triton.jit
def _expm1_poly_f32(r, SHORT: tl.constexpr):
    """expm1(r) for |r| <= 0.3466: minimax, degree 4 if SHORT (2.1e-5 relative) else 6 (1.4e-8)."""
    if SHORT:
        q = tl.fma(r, 0.041612621396780014, 0.16749610006809235)
        q = tl.fma(q, r, 0.5000163912773132)
    else:
        q = tl.fma(r, 0.0013835610589012504, 0.008367122150957584)
        q = tl.fma(q, r, 0.04166775569319725)
        q = tl.fma(q, r, 0.16666539013385773)
        q = tl.fma(q, r, 0.4999999701976776)
    return tl.fma(r * r, q, r)


@triton.jit
def _expm1_poly_f64(r):
    """expm1(r) for |r| <= ln2/2: Taylor polynomial of degree 13."""
    p = tl.fma(r, _f64(1.0 / 6227020800), _f64(1.0 / 479001600))
    p = tl.fma(p, r, _f64(1.0 / 39916800))
    p = tl.fma(p, r, _f64(1.0 / 3628800))
    p = tl.fma(p, r, _f64(1.0 / 362880))
    p = tl.fma(p, r, _f64(1.0 / 40320))
    p = tl.fma(p, r, _f64(1.0 / 5040))
    p = tl.fma(p, r, _f64(1.0 / 720))
    p = tl.fma(p, r, _f64(1.0 / 120))
    p = tl.fma(p, r, _f64(1.0 / 24))
    p = tl.fma(p, r, _f64(1.0 / 6))
    p = tl.fma(p, r, _f64(0.5))
    return tl.fma(r * r, p, r)


@triton.jit
def _reduce(x, SHORT: tl.constexpr, SPLIT_LN2: tl.constexpr):
    """(j, p): x = k*ln2 + r with |r| <= 0.3466, k = j - MAGIC (j a float), p = expm1(r).

    SHORT: the short polynomial (fp32 only); SPLIT_LN2: ln2 in two parts (always in fp64).
    """
    if x.dtype == tl.float64:
        j = tl.fma(x, _f64(LOG2E), _f64(MAGIC_F64))
        # -k as MAGIC - j, not -(j - MAGIC): 0 - k is an instruction of its own.
        minus_k = _f64(MAGIC_F64) - j
        # x - k*LN2_HI is exact; the fma then rounds r once.
        r = tl.fma(minus_k, _f64(LN2_LO_F64), tl.fma(minus_k, _f64(LN2_HI_F64), x))
        p = _expm1_poly_f64(r)
    else:
        j = tl.fma(x, LOG2E, MAGIC_F32)
        minus_k = MAGIC_F32 - j
        if SPLIT_LN2:
            r = tl.fma(minus_k, LN2_LO_F32, tl.fma(minus_k, LN2_HI_F32, x))
        else:
            r = tl.fma(minus_k, LN2_F32, x)
        p = _expm1_poly_f32(r, SHORT)
    return j, p


@triton.jit
def _pow2(j, BIAS: tl.constexpr):
    """2^(k + BIAS) from the bits of j = MAGIC + k, in j's dtype (k + BIAS a normal exponent)."""
    # Unsigned: the shift drops MAGIC's bits (and k's sign) off the top.
    if j.dtype == tl.float64:
        bits = (j.to(tl.uint64, bitcast=True) << 52) + ((1023 + BIAS) << 52)
        scale = bits.to(tl.float64, bitcast=True)
    else:
        bits = (j.to(tl.uint32, bitcast=True) << 23) + ((127 + BIAS) << 23)
        scale = bits.to(tl.float32, bitcast=True)
    return scale


@triton.jit
def _clamp(x, lower):
    """min(max(x, lower), 0), NaN kept (one instruction per bound)."""
    x = tl.minimum(x, 0.0, propagate_nan=tl.PropagateNan.ALL)
    return tl.maximum(x, lower, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def negative_expm1(x, RESULT_BITS: tl.constexpr = 53):
    """expm1(min(x, 0)), NaN for NaN; +inf gives 0, -inf gives -1.

    RESULT_BITS: significand bits of the dtype the caller rounds the result
    to (fp16 11, bf16 8): up to SHORT_BITS a shorter polynomial suffices.
    Computed in x's dtype: call with fp32 or fp64.
    """
    k_and_magic, p = _reduce(_clamp(x, CLAMP_EXPM1), RESULT_BITS <= SHORT_BITS, False)
    scale = _pow2(k_and_magic, 0)
    return tl.fma(scale, p, scale - 1.0)


@triton.jit
def negative_branch(x, RESULT_BITS: tl.constexpr = 53):
    """Return (expm1(x), exp(x)) of min(x, 0), each with relative error < 1 ulp-ish.

    exp keeps subnormal results (absolute error under one subnormal spacing
    there, see the module docstring). NaN gives (NaN, NaN); +inf and
    positive x give (0, 1); -inf gives (-1, 0).
    RESULT_BITS: significand bits of the dtype the caller rounds exp's
    products to: up to SHORT_BITS, the one-fma reduction. expm1 keeps the
    long polynomial, for sums of its products (dalpha).
    Computed in x's dtype: call with fp32 or fp64.
    """
    if x.dtype == tl.float64:
        x = _clamp(x, CLAMP_F64)
    else:
        x = _clamp(x, CLAMP_F32)
    k_and_magic, p = _reduce(x, False, RESULT_BITS > SHORT_BITS)
    scale = _pow2(k_and_magic, EXP_BIAS) * EXP_UNBIAS
    return tl.fma(scale, p, scale - 1.0), tl.fma(scale, p, scale)
