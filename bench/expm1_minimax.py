"""The minimax polynomials of ``kernels/exp_math.py``: how they were derived, and their errors.

expm1(r) ~ p(r) = r + r^2 * q(r) on |r| <= R_MAX. Each q minimizes the
largest relative error of p: a Remez exchange in mpmath (40 digits) on the
weighted error (q - g) * |w|, with g = (expm1(r) - r)/r^2 and w =
r^2/expm1(r), so that (q - g) * w is p's relative error. The coefficients
are rounded to fp32 one at a time, from q's lowest, the others refitted after
each. ``COEFFICIENTS`` holds the results (the literals of
``_expm1_poly_f32``); ``--fit`` derives them again (about 30 s).

    python -m bench.expm1_minimax          # the errors of COEFFICIENTS
    python -m bench.expm1_minimax --fit    # derive them again
"""

import argparse
import sys

import mpmath as mp
import numpy as np

# ln2/2 = 0.34657, plus the reduction's slack (exp_math's docstring).
R_MAX = 0.3466
# q's coefficients, lowest first, by the degree of p: fp32 values, exact decimals.
COEFFICIENTS = {
    4: (0.5000163912773132, 0.16749610006809235, 0.041612621396780014),
    6: (
        0.4999999701976776, 0.16666539013385773, 0.04166775569319725,
        0.008367122150957584, 0.0013835610589012504,
    ),
}  # fmt: skip


def _g(r):
    return (mp.expm1(r) - r) / r**2


def _w(r):
    return abs(r**2 / mp.expm1(r))


def relative_error(coefficients, r) -> mp.mpf:
    """p's relative error at r for q's coefficients (lowest first)."""
    q = sum(c * r**i for i, c in enumerate(coefficients))
    return (r + r * r * q - mp.expm1(r)) / mp.expm1(r)


def max_relative_error(coefficients, points: int = 4000) -> float:
    """The largest |relative error| of p on ``points`` points across [-R_MAX, R_MAX] (0 left out)."""
    with mp.workdps(40):
        grid = [mp.mpf(R_MAX) * (2 * mp.mpf(i) / (points + 1) - 1) for i in range(points + 2)]
        return float(max(abs(relative_error(coefficients, r)) for r in grid if r != 0))


def _remez(fixed: list, degree: int, iterations: int = 25, grid: int = 1500) -> list:
    """q of the given degree with its lowest coefficients fixed, the rest minimax."""
    h, free = mp.mpf(R_MAX), degree + 1 - len(fixed)
    n = free + 1
    # Chebyshev extrema, nudged off r = 0 (where the weight vanishes).
    nodes = [h * mp.cos(mp.pi * (n - 1 - i) / (n - 1)) + h / 997 for i in range(n)]
    nodes[-1] = h
    points = [-h + 2 * h * (i + mp.mpf(1) / 3) / grid for i in range(grid)] + [h]
    for _ in range(iterations):
        a, b = mp.matrix(n, n), mp.matrix(n, 1)
        for i, x in enumerate(nodes):
            for j in range(free):
                a[i, j] = x ** (len(fixed) + j)
            a[i, free] = (-1) ** i / _w(x)
            b[i] = _g(x) - sum(c * x**j for j, c in enumerate(fixed))
        solution = mp.lu_solve(a, b)
        q = list(fixed) + [solution[j] for j in range(free)]
        # The new reference: the largest error of each run of one sign.
        runs = []
        for x in points:
            e = (sum(c * x**i for i, c in enumerate(q)) - _g(x)) * _w(x)
            if runs and (runs[-1][1] >= 0) == (e >= 0):
                if abs(e) > abs(runs[-1][1]):
                    runs[-1] = (x, e)
            else:
                runs.append((x, e))
        if len(runs) < n:
            break
        start = max(range(len(runs) - n + 1), key=lambda s: min(abs(e) for _, e in runs[s : s + n]))
        nodes = [x for x, _ in runs[start : start + n]]
    return q


def fit(degree: int) -> tuple:
    """q's fp32 coefficients for p of the given degree, rounded one at a time."""
    fixed = []
    with mp.workdps(40):
        for i in range(degree - 1):
            q = _remez(fixed, degree - 2)
            fixed.append(mp.mpf(float(np.float32(float(q[i])))))
    return tuple(float(c) for c in fixed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.expm1_minimax", description=__doc__)
    parser.add_argument("--fit", action="store_true", help="derive the coefficients again")
    args = parser.parse_args(argv)
    for degree, coefficients in COEFFICIENTS.items():
        if args.fit:
            coefficients = fit(degree)
            same = "same as" if coefficients == COEFFICIENTS[degree] else "DIFFERENT from"
            print(f"degree {degree}: {coefficients} ({same} COEFFICIENTS)")
        error = max_relative_error(coefficients)
        print(f"degree {degree}: max relative error {error:.3g} (2^{np.log2(error):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
