"""The autograd Function and ``learnable_elu``, the functional form the module calls.

Each call takes one route, decided by this thread's state and the call's own
tensors (another thread compiling must not change an eager call's arithmetic):

| the call is | route |
| --- | --- |
| on another channel dim | moved to dim 1 as a view (no copy), routed as below, moved back |
| traced (torch.compile) | the reference composite: the compiler fuses it with its neighbours (``ELU_TRITON_COMPILED_BACKWARD=triton_op``: its forward, with the fused Triton backward as a triton_op, ``compiled_backward.py``) |
| transformed (torch.func) or dual (forward AD) | the reference composite: plain ops compose |
| traced by torch.jit.trace | the reference composite: a trace records aten ops, never a launch |
| on subclass tensors, or under a dispatch mode | the Function over the custom ops (``ops.py``); the composite when non-strict export traces it |
| plain, grad needed | the Function, by its C-level apply, over the eager bodies (``eager.py``) |
| plain, no grad | the eager forward body: no autograd node at all |
"""

import torch
from torch.autograd import forward_ad

from . import backends, eager, reference, switches
from .channels import on_channel_dim
from .checks import check_inputs
from .routes import (
    dual,
    export_tracing,
    is_plain,
    jit_tracing,
    jit_warnings_off,
    traced,
    transformed,
)


class LearnableELUFunction(torch.autograd.Function):
    """y = x if x > 0 else alpha[c] * expm1(x), with the fused backward.

    ``LearnableELUFunction.apply(x, alpha)``: x is (N, C, *) or has fewer
    than 2 dims (the channels on dim 1 only: for another channel dim use
    ``learnable_elu(..., channel_dim=...)``); alpha is (C,), (1,) or 0-D.
    Returns y in x's dtype and memory format. For torch.func transforms and
    forward-mode AD use ``learnable_elu``, which routes them to the
    reference composite.

    ``forward(ctx, ...)`` with no separate ``setup_context``: with one,
    ``Function.apply`` binds the arguments through ``inspect.signature`` on
    every call, which costs more than the rest of the host path.
    """

    @staticmethod
    def forward(
        ctx, x: torch.Tensor, alpha: torch.Tensor, _plain: bool | None = None
    ) -> torch.Tensor:
        # _plain: what learnable_elu found (routes.is_plain); None when it was not asked.
        if _plain or (_plain is None and is_plain(x, alpha)):
            # Checks the inputs; the backward runs on the forward's backend
            # and launch, whichever thread runs it.
            ctx.prepared = backend, launch = backends.prepare(x, alpha)
            ctx.save_for_backward(x, alpha)  # never y: no more memory than nn.ELU
            return backend.forward(x, alpha, launch)
        check_inputs(x, alpha)  # before the op's schema, which only says "not a Tensor"
        ctx.prepared = None
        ctx.save_for_backward(x, alpha)
        return torch.ops.elu_triton.forward(x, alpha)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        x, alpha = ctx.saved_tensors
        needs_dx, needs_dalpha = ctx.needs_input_grad[:2]  # (a third if _plain was passed)
        dx, dalpha = eager.grads_for_inputs(
            grad_output, x, alpha, needs_dx, needs_dalpha, ctx.prepared
        )
        return dx, dalpha, None  # (autograd accepts the extra None when _plain was not passed)


def _traced_route():
    """What a traced call runs: the composite, or the ELU_TRITON_COMPILED_BACKWARD candidate."""
    if switches.COMPILED_BACKWARD == "composite":
        return reference.learnable_elu
    from . import compiled_backward  # imports triton: only where the candidate is asked for

    return compiled_backward.learnable_elu


_traced = _traced_route()


# Function.apply without its Python wrapper, which on every call unwraps
# functorch tensors and checks for transforms: only the plain route
# takes it, where there is nothing to unwrap. tests/test_function.py pins it.
_apply_eager = super(torch.autograd.Function, LearnableELUFunction).apply


def learnable_elu(x: torch.Tensor, alpha: torch.Tensor, *, channel_dim: int = 1) -> torch.Tensor:
    """ELU with a learnable per-channel alpha, differentiable in x and alpha.

    Args:
        x: float tensor with its C channels on channel_dim ((N, C, *) by
            default), or any float tensor of fewer than 2 dims (one channel).
            Any memory format.
        alpha: (C,), (1,) or 0-D float tensor on x's device; may have another
            float dtype than x (bf16 x with fp32 alpha under autocast).
        channel_dim: the dim of x that holds the channels; -1 for
            features-last tensors ((B, H, W, C), (B, N, D)), served with no copy.

    Returns:
        y, same shape, dtype and memory format as x.

    Raises:
        TypeError: x or alpha is not a strided (dense, not nested)
            floating-point tensor.
        ValueError: alpha is not 0-D or 1-D, its size is neither 1 nor C, it
            is on another device than x, or channel_dim is not a dim of x.
    """
    if channel_dim != 1:
        return on_channel_dim(learnable_elu, x, alpha, channel_dim)
    # The hot path is one expression, true on the plain route; each slower
    # route is one named test in _route_elsewhere. is_plain first (routes.py).
    plain = is_plain(x, alpha)
    if not plain or transformed() or forward_ad._current_level >= 0 or jit_tracing():
        routed = _route_elsewhere(x, alpha, plain)
        if routed is not None:
            return routed
    if torch.is_grad_enabled() and (x.requires_grad or alpha.requires_grad):
        return _apply_eager(x, alpha, True)
    return eager.forward(x, alpha)


def _route_elsewhere(x: torch.Tensor, alpha: torch.Tensor, plain: bool) -> torch.Tensor | None:
    """y for a call off the plain route (the table above); None if it is plain after all."""
    if traced():
        return _traced(x, alpha)
    if transformed() or dual(x, alpha):
        return reference.learnable_elu(x, alpha)
    if jit_tracing():  # (asked after dynamo, which cannot trace this question)
        with jit_warnings_off():
            return reference.learnable_elu(x, alpha)
    if plain:  # tensors, checked where the plain route prepares
        return None  # a forward-AD level of another thread's, say
    if export_tracing():
        return reference.learnable_elu(x, alpha)
    return LearnableELUFunction.apply(x, alpha, False)  # subclass tensors, dispatch modes
