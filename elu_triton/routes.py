"""Routes off the eager path that the eager path's one test cannot see.

Autograd's batched gradients (``torch.autograd.grad(..., is_grads_batched=True)``,
``torch.autograd.functional.jacobian(..., vectorize=True)``) run the backward
under autograd's own (legacy) vmap: the upstream gradient is a batched tensor
that looks like a plain ``torch.Tensor`` to ``eager.is_plain`` but has no
storage for the kernels and no batching rule for the PyTorch backend's out=
ops. Such a backward runs the reference's backward, in plain ops, instead.

``torch.jit.trace`` records the aten ops it sees, and sees no Triton launch:
a traced call runs the reference composite, whose ops replay on any device.
"""

import contextlib
import warnings
from collections.abc import Iterator

import torch

from .reference import learnable_elu, learnable_elu_backward

_is_legacy_batched = torch._C._functorch.is_legacy_batchedtensor
_is_dynamo_compiling = torch.compiler.is_dynamo_compiling


def is_batched_gradient(grad_output: torch.Tensor) -> bool:
    """Whether grad_output is one of autograd's batched gradients.

    Asked after ``is_dynamo_compiling``: compiled autograd traces the backward
    with dynamo, which cannot trace the functorch question (and never sees a
    legacy batched tensor).
    """
    return not _is_dynamo_compiling() and _is_legacy_batched(grad_output)


def batched_grads(
    grad_output: torch.Tensor,
    x: torch.Tensor,
    alpha: torch.Tensor,
    needs_dx: bool,
    needs_dalpha: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(dx, dalpha) for a batched grad_output, None where no gradient is needed."""
    dx, dalpha = learnable_elu_backward(grad_output, x, alpha)
    return (dx if needs_dx else None), (dalpha if needs_dalpha else None)


def traced_by_jit(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The reference composite for torch.jit.trace, without its warnings about the checks.

    The checks' sizes and dtypes become constants of the trace, as they should:
    a trace is made for one rank and dtype, as any trace of a layer is.
    """
    with jit_warnings_off():
        return learnable_elu(x, alpha)


@contextlib.contextmanager
def jit_warnings_off() -> Iterator[None]:
    """A block without torch.jit.trace's warnings about the sizes it records as constants."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield
