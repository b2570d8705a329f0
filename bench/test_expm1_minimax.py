"""The minimax polynomials in kernels/exp_math.py are bench.expm1_minimax's, with the errors it states."""

import inspect

import pytest

pytest.importorskip("mpmath")

from elu_triton.kernels import exp_math  # noqa: E402

from . import expm1_minimax  # noqa: E402

# exp_math's docstring: degree 4 for 16-bit results, degree 6 for fp32 ones.
BOUNDS = {4: 2.1e-5, 6: 1.5e-8}


@pytest.mark.parametrize("degree", sorted(expm1_minimax.COEFFICIENTS))
def test_coefficients_are_the_kernels(degree):
    source = inspect.getsource(exp_math._expm1_poly_f32.fn)
    for coefficient in expm1_minimax.COEFFICIENTS[degree]:
        assert repr(coefficient) in source, f"{coefficient!r} missing from _expm1_poly_f32"


@pytest.mark.parametrize("degree", sorted(expm1_minimax.COEFFICIENTS))
def test_relative_error_within_the_stated_bound(degree):
    error = expm1_minimax.max_relative_error(expm1_minimax.COEFFICIENTS[degree], points=1000)
    assert error < BOUNDS[degree], error
