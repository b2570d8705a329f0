"""The questions that decide a call's route, asked by every layer's route table.

Each layer's ``function.py`` holds its own route table (which road each kind
of call takes); the questions it asks live here, under public names, so that
every layer asks them the same way. Only this thread's state and the call's
own tensors answer them: another thread compiling must not change an eager
call's arithmetic.

| question | true when |
| --- | --- |
| ``is_plain`` | eager code may run the bodies on these tensors directly (asked first, once per call) |
| ``traced`` | dynamo traces this thread (torch.compile) |
| ``transformed`` | a torch.func transform is active in this thread |
| ``dual`` | a tensor carries a tangent of the current forward-AD level |
| ``jit_tracing`` | torch.jit.trace records this thread |
| ``export_tracing`` | non-strict torch.export traces this thread |
| ``is_batched_gradient`` | a backward's upstream gradient is one of autograd's batched ones |

Order matters in two places. ``is_plain`` comes first on the hot path:
dynamo folds its ``is_dynamo_compiling()`` to True, so a compiled graph
records none of the other questions. ``jit_tracing`` comes after ``traced``:
dynamo cannot trace it.
"""

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch._guards import TracingContext
from torch.autograd import forward_ad

__all__ = [
    "PLAIN_TENSOR_TYPES",
    "dual",
    "export_tracing",
    "is_batched_gradient",
    "is_plain",
    "jit_tracing",
    "jit_warnings_off",
    "traced",
    "transformed",
]

PLAIN_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)
_is_functorch_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
_is_dynamo_compiling = torch.compiler.is_dynamo_compiling
_dispatch_modes = torch._C._len_torch_dispatch_stack
_is_legacy_batched = torch._C._functorch.is_legacy_batchedtensor

# Marks a tensor not passed to is_plain: None passed for one is not plain.
_ABSENT = object()


def is_plain(a: torch.Tensor, b: torch.Tensor = _ABSENT, c: torch.Tensor = _ABSENT) -> bool:
    """Whether eager code may run the bodies on a (b, c) directly, by this thread's state.

    Only for plain tensors outside any tracing: fake, functional and other
    subclass tensors (torch.compile, torch.export, opcheck), dispatch modes
    (a FlopCounterMode, make_fx) and functorch's wrappers must meet the op,
    whose fake implementation they need or whose dispatch they watch; and
    anything that is not a tensor must meet the checks. (Spelled out for up
    to three tensors: every eager call runs this.)
    """
    if _is_dynamo_compiling() or _dispatch_modes():
        return False
    return (
        type(a) in PLAIN_TENSOR_TYPES
        and not _is_functorch_wrapped(a)
        and (b is _ABSENT or (type(b) in PLAIN_TENSOR_TYPES and not _is_functorch_wrapped(b)))
        and (c is _ABSENT or (type(c) in PLAIN_TENSOR_TYPES and not _is_functorch_wrapped(c)))
    )


def traced() -> bool:
    """Dynamo traces this thread: it constant-folds this to True as it traces.

    (torch.compiler.is_compiling is process-wide: a compile in another thread sets it.)
    """
    return _is_dynamo_compiling()


# C functions, called as they are on the hot path: a torch.func transform
# (grad, vmap, jacrev...) is active (the functorch stack is this thread's);
# torch.jit.trace records this thread.
transformed = torch._C._are_functorch_transforms_active
jit_tracing = torch._C._is_tracing


def dual(*tensors: torch.Tensor | None) -> bool:
    """One of the tensors (None skipped) carries a tangent of the current forward-AD level.

    Levels are process-wide, so a level alone (another thread's) does not count.
    """
    return forward_ad._current_level >= 0 and any(
        t is not None and forward_ad.unpack_dual(t).tangent is not None for t in tensors
    )


def export_tracing() -> bool:
    """Non-strict export traces this thread (its TracingContext is this thread's)."""
    return TracingContext.try_get() is not None


def is_batched_gradient(grad_output: torch.Tensor) -> bool:
    """Whether grad_output is one of autograd's batched gradients.

    ``torch.autograd.grad(..., is_grads_batched=True)`` and
    ``torch.autograd.functional.jacobian(..., vectorize=True)`` run the
    backward under autograd's own (legacy) vmap: the upstream gradient looks
    like a plain ``torch.Tensor`` to ``is_plain`` but has no storage for the
    kernels and no batching rule for the out= ops. Asked after
    ``is_dynamo_compiling``: compiled autograd traces the backward with
    dynamo, which cannot trace the functorch question (and never sees a
    legacy batched tensor).
    """
    return not _is_dynamo_compiling() and _is_legacy_batched(grad_output)


@contextlib.contextmanager
def jit_warnings_off() -> Iterator[None]:
    """A block without torch.jit.trace's warnings about the sizes it records as constants.

    The checks' sizes and dtypes become constants of the trace, as they should:
    a trace is made for one rank and dtype, as any trace of a layer is.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield
