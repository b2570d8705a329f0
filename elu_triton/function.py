"""The autograd Function and the functional form.

``LearnableELUFunction`` is the eager path: its forward runs the body of
elu_triton::forward without the dispatcher's overhead and saves x and alpha
(never y); its backward runs the body of elu_triton::backward, asking for
dalpha only when alpha needs a gradient, and goes through the op itself
under create_graph=True so that second-order gradients are recorded. It
defines ``forward(ctx, ...)`` without a separate ``setup_context``: with
one, ``Function.apply`` binds the arguments through ``inspect.signature`` on
every call, which cost more than everything else on the host path together.

``learnable_elu`` is what the module calls. In eager mode it applies the
Function (or, when no graph is recorded, runs the forward op's body with no
Function at all). When this thread is traced (torch.compile, torch.export),
runs under a torch.func transform (grad, vmap, jacrev...) or takes x or alpha
as a forward-AD dual tensor, it returns the reference composite instead:
the compiler fuses it with its neighbours (a batch norm before it, say),
forward and backward, and the transforms and forward AD compose with its
plain PyTorch ops. Only this thread's own state and the call's own tensors
decide the route: another thread compiling must not change an eager call's
arithmetic.
"""

import torch
from torch._guards import TracingContext
from torch.autograd import forward_ad

from . import backends, reference
from .channels import on_channel_dim
from .checks import check_inputs
from .ops import (
    PLAIN_TENSOR_TYPES,
    can_skip_dispatcher,
    grads_for_inputs,
    is_functorch_wrapped,
    run_forward,
)
from .routes import traced_by_jit

_is_dynamo_compiling = torch.compiler.is_dynamo_compiling
_transforms_active = torch._C._are_functorch_transforms_active
_dispatch_modes = torch._C._len_torch_dispatch_stack
_jit_tracing = torch._C._is_tracing


class LearnableELUFunction(torch.autograd.Function):
    """y = x if x > 0 else alpha[c] * expm1(x), with the fused backward.

    ``LearnableELUFunction.apply(x, alpha)``: x is (N, C, *) or has fewer
    than 2 dims (the channels on dim 1 only: for another channel dim use
    ``learnable_elu(..., channel_dim=...)``); alpha is (C,), (1,) or 0-D.
    Returns y in x's dtype and memory format. For torch.func transforms and
    forward-mode AD use ``learnable_elu``, which routes them to the
    reference composite.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor, _plain: bool = False) -> torch.Tensor:
        # _plain: learnable_elu has already found the inputs plain (can_skip_dispatcher).
        if _plain or can_skip_dispatcher(x, alpha):
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
        # (and None for _plain: autograd accepts extra None gradients)
        return grads_for_inputs(grad_output, x, alpha, ctx.needs_input_grad, ctx.prepared) + (None,)


def _carries_a_tangent(x: torch.Tensor, alpha: torch.Tensor) -> bool:
    """Whether x or alpha is a dual tensor of the current forward-AD level."""
    return (
        forward_ad.unpack_dual(x).tangent is not None
        or forward_ad.unpack_dual(alpha).tangent is not None
    )


# Function.apply without its Python wrapper, which costs microseconds a call
# to unwrap functorch tensors and check for transforms: the eager route below
# takes it only for plain tensors with no transform active.
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
    if channel_dim != 1:  # moved to dim 1 as a view, and back
        return on_channel_dim(learnable_elu, x, alpha, channel_dim)
    # Every eager call pays for this test, so it is one expression:
    # can_skip_dispatcher's conditions inlined, with the tests for the cases
    # that _route_elsewhere sorts out (transforms, forward AD, TorchScript tracing).
    if not (
        not (_is_dynamo_compiling() or _transforms_active() or _dispatch_modes() or _jit_tracing())
        and forward_ad._current_level < 0
        and type(x) in PLAIN_TENSOR_TYPES
        and type(alpha) in PLAIN_TENSOR_TYPES
        and not (is_functorch_wrapped(x) or is_functorch_wrapped(alpha))
    ):
        routed = _route_elsewhere(x, alpha)
        if routed is not None:
            return routed
    if torch.is_grad_enabled() and (x.requires_grad or alpha.requires_grad):
        return _apply_eager(x, alpha, True)
    return run_forward(x, alpha)  # nothing to record: no autograd node at all


def _route_elsewhere(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor | None:
    """y for a call that is traced, transformed, dispatched or dual; None for the eager path."""
    # Whether this thread traces or transforms the call, by this thread's state
    # alone: is_dynamo_compiling is constant-folded to True by dynamo as it
    # traces (and is False when run); the functorch stack is this thread's;
    # forward-AD levels are process-wide, so a level only counts when x or
    # alpha carries a tangent. (torch.compiler.is_compiling is process-wide
    # too: a compile in another thread sets it.)
    if (
        _is_dynamo_compiling()
        or _transforms_active()
        or (forward_ad._current_level >= 0 and _carries_a_tangent(x, alpha))
    ):
        return reference.learnable_elu(x, alpha)
    # torch.jit.trace records the aten ops it sees: the composite's, never a
    # launch it cannot see. (Asked after dynamo, which cannot trace the question.)
    if _jit_tracing():
        return traced_by_jit(x, alpha)
    if can_skip_dispatcher(x, alpha):  # (which reads alpha=None as "no second tensor")
        check_inputs(x, alpha)  # before the eager path reads alpha.requires_grad
        return None  # a forward-AD level of another thread's, say
    # Subclass tensors or a dispatch mode: tracing (non-strict export, whose
    # TracingContext is this thread's) gets the composite, anything else the op.
    if TracingContext.try_get() is not None:
        return reference.learnable_elu(x, alpha)
    return LearnableELUFunction.apply(x, alpha)
