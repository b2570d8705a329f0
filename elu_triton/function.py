"""The autograd Function and ``learnable_elu``, the functional form the module calls.

Each call takes one route, decided by this thread's state and the call's own
tensors (another thread compiling must not change an eager call's arithmetic):

| the call is | route |
| --- | --- |
| on another channel dim | moved to dim 1 as a view (no copy), routed as below, moved back |
| traced (torch.compile) | the reference composite: the compiler fuses it with its neighbours |
| transformed (torch.func) or dual (forward AD) | the reference composite: plain ops compose |
| traced by torch.jit.trace | the reference composite: a trace records aten ops, never a launch |
| on subclass tensors, or under a dispatch mode | the Function over the custom ops (``ops.py``); the composite when non-strict export traces it |
| plain, grad needed | the Function, by its C-level apply, over the eager bodies (``eager.py``) |
| plain, no grad | the eager forward body: no autograd node at all |
"""

import torch
from torch._guards import TracingContext
from torch.autograd import forward_ad

from . import backends, eager, reference
from .channels import on_channel_dim
from .checks import check_inputs
from .eager import is_plain
from .routes import traced_by_jit

_is_dynamo_compiling = torch.compiler.is_dynamo_compiling
_transforms_active = torch._C._are_functorch_transforms_active
_jit_tracing = torch._C._is_tracing


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
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor, _plain: bool = False) -> torch.Tensor:
        # _plain: learnable_elu has already found the inputs plain (eager.is_plain).
        if _plain or is_plain(x, alpha):
            # Checks the inputs; the backward runs on the forward's backend
            # and plan, whichever thread runs it.
            ctx.prepared = backend, plan = backends.prepare(x, alpha)
            ctx.save_for_backward(x, alpha)  # never y: no more memory than nn.ELU
            return backend.forward(x, alpha, plan)
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
    # route is one named test in _route_elsewhere.
    # is_plain first: dynamo folds its is_dynamo_compiling() to True, so a
    # compiled graph records none of the other tests (and cannot trace _jit_tracing).
    if (
        not is_plain(x, alpha)
        or _transforms_active()
        or forward_ad._current_level >= 0
        or _jit_tracing()
    ):
        routed = _route_elsewhere(x, alpha)
        if routed is not None:
            return routed
    if torch.is_grad_enabled() and (x.requires_grad or alpha.requires_grad):
        return _apply_eager(x, alpha, True)
    return eager.forward(x, alpha)


def _route_elsewhere(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor | None:
    """y for a call off the plain route (the table above); None if it is plain after all."""
    if _traced() or _transformed() or _dual(x, alpha):
        return reference.learnable_elu(x, alpha)
    # (Asked after dynamo, which cannot trace this question.)
    if _jit_tracing():
        return traced_by_jit(x, alpha)
    if is_plain(x, alpha):  # tensors, checked where the plain route prepares
        return None  # a forward-AD level of another thread's, say
    if _export_tracing():
        return reference.learnable_elu(x, alpha)
    return LearnableELUFunction.apply(x, alpha)  # subclass tensors, dispatch modes


def _traced() -> bool:
    """Dynamo traces this thread: it constant-folds this to True as it traces.

    (torch.compiler.is_compiling is process-wide: a compile in another thread sets it.)
    """
    return _is_dynamo_compiling()


def _transformed() -> bool:
    """A torch.func transform (grad, vmap, jacrev...) is active: the functorch stack is this thread's."""
    return _transforms_active()


def _dual(*tensors: torch.Tensor | None) -> bool:
    """One of the tensors (x and alpha; None skipped) carries a tangent of the current forward-AD level.

    Levels are process-wide, so a level alone (another thread's) does not count.
    """
    return forward_ad._current_level >= 0 and any(
        t is not None and forward_ad.unpack_dual(t).tangent is not None for t in tensors
    )


def _export_tracing() -> bool:
    """Non-strict export traces this thread (its TracingContext is this thread's)."""
    return TracingContext.try_get() is not None
