"""The Triton backend: allocation and launches of the fused kernels.

Serves CUDA tensors, and CPU tensors through Triton's interpreter when
TRITON_INTERPRET=1 was set before import (read here once, as Triton reads it
when the kernels are decorated). Inputs are already validated
(``checks.py``) and non-empty; launch constants come from ``triton_config.py``;
both passes launch through ``device_guard``.

Serving another device type that Triton compiles for (XPU, say) takes its
type in ``SERVED_DEVICE_TYPES``, its row in ``triton_config.TUNING``, and a
torch device module as ``device_guard`` describes.
"""

import functools
import os
from typing import NamedTuple

import torch

from .. import switches
from ..checks import check_inputs
from ..kernels import learnable_elu_backward_kernel, learnable_elu_forward_kernel
from ..layout import dense, with_layout_of
from .base import Backend
from .device_guard import guard_needed, run_guarded
from .triton_config import KernelArgs, clear_kernel_args, kernel_args

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
SERVED_DEVICE_TYPES = frozenset({"cuda", "cpu"} if INTERPRETED else {"cuda"})
# ELU_TRITON_DALPHA_FINISH (switches.py), read once: the default sum, or a candidate.
_FINISH_BY_SUM = switches.DALPHA_FINISH == "sum"


class Launch(NamedTuple):
    """A dense layout's kernel arguments, with what allocating for it on one device takes."""

    kernel_args: KernelArgs
    # The dalpha partials' shape and dtype on x's device, as a stride-0 view of
    # one element: torch.empty_like(it) allocates the partials, cheaper than
    # x.new_empty(shape, dtype=...), whose argument parsing costs more than
    # the allocation. Never written: it also stands in for the partials when
    # no dalpha is due.
    dalpha_partials_like: torch.Tensor
    strides: tuple  # of the x it was made for, with its dtype, shape and alpha's size: see backward
    dtype: torch.dtype
    shape: torch.Size
    num_alpha: int


def launch_for(x: torch.Tensor, num_alpha: int) -> Launch | None:
    """The launch of x's layout on x's device; None if x is not dense (``Backend.launch_for``)."""
    args = kernel_args(x, num_alpha)
    if args is None:
        return None
    partials_like = x.new_empty(1, dtype=args.partials_dtype)
    partials_like = partials_like.expand(args.config.dalpha_partials_shape)
    return Launch(args, partials_like, x.stride(), x.dtype, x.shape, num_alpha)


def _densified(x: torch.Tensor, num_alpha: int) -> tuple[torch.Tensor, Launch]:
    """x if dense, else a dense copy, and its launch: made anew on every such call."""
    x = dense(x)
    return x, launch_for(x, num_alpha)


def forward(x: torch.Tensor, alpha: torch.Tensor, launch: Launch | None = None) -> torch.Tensor:
    """y = learnable_elu(x, alpha), in x's dtype and memory format.

    launch: ``launch_for(x, alpha.numel())``; None for a non-dense x (copied first).
    """
    if guard_needed(x, alpha):
        return run_guarded(forward, 2, x, alpha, launch)
    if launch is None:
        x, launch = _densified(x, alpha.numel())
    args = launch.kernel_args
    y = torch.empty_like(x)
    learnable_elu_forward_kernel[args.config.grid](
        x, alpha.contiguous(), y, *args.sizes, **args.constants
    )
    return y


def backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    alpha: torch.Tensor,
    compute_dalpha: bool,
    launch: Launch | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(dx, dalpha): dx in x's dtype and memory format, dalpha in alpha's dtype or None.

    launch: as in ``forward``.
    """
    if guard_needed(dy, x, alpha):
        return run_guarded(backward, 3, dy, x, alpha, compute_dalpha, launch)
    # The forward's launch, unless x is not dense or is not the x it was made
    # for: a saved-tensor hook (save_on_cpu, say) may hand x back in another
    # memory format or dtype, and x.data or alpha.data may have been resized
    # since; the kernel must not read them with the old launch.
    if (
        launch is None
        or x.stride() != launch.strides
        or x.dtype != launch.dtype
        or x.shape != launch.shape
        or alpha.numel() != launch.num_alpha
    ):
        check_inputs(x, alpha)  # (an alpha.data resized to a wrong size)
        x, launch = _densified(x, alpha.numel())
    args = launch.kernel_args
    dy = with_layout_of(dy, x)  # the kernel reads x and dy at the same offsets
    dx = torch.empty_like(x)
    if compute_dalpha:
        dalpha_partials = torch.empty_like(launch.dalpha_partials_like)
    else:
        dalpha_partials = launch.dalpha_partials_like  # a valid pointer, never written
    learnable_elu_backward_kernel[args.config.grid](
        dy, x, alpha.contiguous(), dx, dalpha_partials, *args.sizes,
        COMPUTE_DALPHA=compute_dalpha, **args.constants,
    )  # fmt: skip
    if not compute_dalpha:
        return dx, None
    # Fixed-order sum along contiguous rows of (C, sums per channel): no atomics.
    # (A positional dim: parsing the keyword of sum(dim=1) costs more than this small sum.)
    dalpha = dalpha_partials.sum(1) if _FINISH_BY_SUM else finish_by_mv(dalpha_partials)
    # .to() parses its arguments even when it has nothing to do: skipped then.
    return dx, dalpha if dalpha.dtype == alpha.dtype else dalpha.to(alpha.dtype)


def finish_by_mv(dalpha_partials: torch.Tensor) -> torch.Tensor:
    """dalpha as (C, P) partials times a vector of P ones: ELU_TRITON_DALPHA_FINISH=mv.

    A GEMV instead of a reduction kernel, a candidate for the partials'
    finish; as deterministic (BLAS sums in a fixed order, no atomics).
    """
    return torch.mv(
        dalpha_partials,
        _ones(dalpha_partials.shape[1], dalpha_partials.dtype, dalpha_partials.device),
    )


@functools.lru_cache(maxsize=64)
def _ones(count: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A vector of count ones, made once per (count, dtype, device)."""
    return torch.ones(count, dtype=dtype, device=device)


def _clear_caches() -> None:
    clear_kernel_args()
    _ones.cache_clear()


BACKEND = Backend(
    name="triton",
    description="Triton kernels in the interpreter" if INTERPRETED else "Triton kernels",
    serves=SERVED_DEVICE_TYPES.__contains__,
    forward=forward,
    backward=backward,
    launch_for=launch_for,
    clear_cache=_clear_caches,
    batch_norm="elu_triton.batch_norm.triton_kernels",
)
