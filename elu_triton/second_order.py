"""Second-order gradients: the autograd formula of elu_triton::backward.

The first-order backward is the fused op elu_triton::backward. With
s = 1 if x > 0 else alpha[c]*exp(x) (the slope) and m = 0 if x > 0 else
expm1(x) (the slope in alpha), it computes

    dx        = dy * s
    dalpha[c] = sum over the elements of channel c of dy * m

Differentiating that once more, for upstream gradients gdx (x's shape) of dx
and gdalpha ((C,) or (1,)) of dalpha:

    d/d dy    = gdx * s + gdalpha[c] * m
    d/d x     = 0 if x > 0 else (gdx * alpha[c] + gdalpha[c]) * dy * exp(x)
    d/d alpha = sum over the elements of channel c of
                0 if x > 0 else gdx * dy * exp(x)

since ds/dx = alpha*exp(x), dm/dx = exp(x) and ds/dalpha = exp(x) on the
negative side, and all are 0 on the positive side.

Why a separate formula in plain PyTorch ops: autograd records it only when
the first backward runs with create_graph=True (a gradient penalty, say), so
plain training keeps the one fused kernel and saves nothing more. Being made
of differentiable ops, it also gives third and higher orders.

Why a formula at all, rather than recomputing the reference composite and
differentiating it with create_graph=True (simpler: no formula to derive):
measured on a gradient-penalty step (``python -m bench.second_order``;
``bench/RESULTS.md``, "Second order"), the composite records 2.75x the
saved bytes (30.9 against 11.2 MiB at the demo's (128, 20, 24, 24) fp32)
and takes 1.7-1.9x the time on one CPU thread, at the same peak of live
tensor bytes (within 3%: both peak in the second backward's temporaries).
The fused batch norm's second order differentiates its normalization as a
composite but reaches the activation through ``learnable_elu``, so that
this formula serves both layers.

Edge values as in ``reference.py``: the negative branch sees 0 for x > 0, so
exp(+inf) never makes inf * 0 = NaN; selecting after the product keeps an
infinite upstream gradient at x > 0 out; NaN x gives NaN in every gradient of
its channel; x = -inf gives exp(x) = 0. Arithmetic is in fp32 for 16- and
32-bit inputs, as in the kernels, and in fp64 when any of dy, x and alpha
is fp64 (a float64 gradgradcheck may pass fp64 upstream gradients).
"""

import torch

from .reference import alpha_for_broadcast


def save_for_double_backward(ctx, inputs, output) -> None:
    """Autograd setup of elu_triton::backward: keep dy, x and alpha."""
    grad_output, x, alpha, _compute_dalpha = inputs
    ctx.save_for_backward(grad_output, x, alpha)
    # Unused outputs (dalpha in a gradient penalty on x, the empty dalpha
    # placeholder) then arrive as None rather than as zeros to multiply.
    ctx.set_materialize_grads(False)


def double_backward(
    ctx, grad_dx: torch.Tensor | None, grad_dalpha: torch.Tensor | None
) -> tuple[torch.Tensor | None, ...]:
    """Gradients of (dx, dalpha) w.r.t. (grad_output, x, alpha); None for compute_dalpha."""
    dy, x, alpha = ctx.saved_tensors
    needs_ddy, needs_dx, needs_dalpha = ctx.needs_input_grad[:3]
    if grad_dalpha is not None and grad_dalpha.numel() == 0:
        grad_dalpha = None  # compute_dalpha was False: dalpha was an empty placeholder
    if grad_dx is None and grad_dalpha is None:
        return None, None, None, None

    dtype = torch.float64 if torch.float64 in (dy.dtype, x.dtype, alpha.dtype) else torch.float32
    xc, dyc = x.to(dtype), dy.to(dtype)
    a = alpha_for_broadcast(alpha, x).to(dtype)
    positive = xc > 0
    negative = torch.where(positive, 0.0, xc)
    exp_negative = torch.exp(negative)
    gdx = None if grad_dx is None else grad_dx.to(dtype)
    gda = None if grad_dalpha is None else alpha_for_broadcast(grad_dalpha, x).to(dtype)

    ddy = dx = dalpha = None
    if needs_ddy:
        ddy = _sum_defined(
            None if gdx is None else torch.where(positive, gdx, gdx * (a * exp_negative)),
            None if gda is None else torch.where(positive, 0.0, gda * torch.expm1(negative)),
        ).to(dy.dtype)
    dy_exp = dyc * exp_negative
    if needs_dx:
        # Two products, not (gdx * alpha + gdalpha) * dy * exp(x): with an
        # infinite dy, inf - inf gives NaN, as the reference does.
        dx = _sum_defined(
            None if gdx is None else gdx * a * dy_exp, None if gda is None else gda * dy_exp
        )
        dx = torch.where(positive, 0.0, dx).to(x.dtype)
    if needs_dalpha and gdx is not None:
        terms = torch.where(positive, 0.0, gdx * dy_exp)
        dalpha = terms.sum_to_size(a.shape).reshape(alpha.shape).to(alpha.dtype)
    return ddy, dx, dalpha, None


def _sum_defined(first: torch.Tensor | None, second: torch.Tensor | None) -> torch.Tensor:
    """first + second, where at most one of them may be None (an unused gradient)."""
    if first is None:
        return second
    return first if second is None else first + second
