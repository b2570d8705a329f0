"""The Triton backend: allocation and launches of the fused kernels.

Serves CUDA tensors, and CPU tensors through Triton's interpreter when
TRITON_INTERPRET=1 was set before import (read here once, as Triton reads it
when the kernels are decorated). Inputs are already validated
(``checks.py``) and non-empty; launch constants come from ``triton_config.py``.
"""

import contextlib
import os
from typing import Optional

import torch

from ..kernels import learnable_elu_backward_kernel, learnable_elu_forward_kernel
from ..layout import dense, with_layout_of
from ..precision import compute_dtype
from . import Backend
from .triton_config import Plan, plan

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
SERVED_DEVICE_TYPES = frozenset({"cuda", "cpu"} if INTERPRETED else {"cuda"})


_ALREADY_ON_DEVICE = contextlib.nullcontext()


def _on_device_of(x: torch.Tensor):
    """Triton launches on the current CUDA device: make that x's, for the launch.

    torch.cuda.device() costs microseconds per call; the common case (x on the
    current device) takes a reusable no-op context instead.
    """
    if x.is_cuda and x.get_device() != torch.cuda.current_device():
        return torch.cuda.device(x.device)
    return _ALREADY_ON_DEVICE


def _dense_and_planned(x: torch.Tensor, num_alpha: int) -> tuple[torch.Tensor, Plan]:
    """x itself if dense (else a dense copy), and its launch plan."""
    planned = plan(x, num_alpha)
    if planned is None:
        x = dense(x)
        planned = plan(x, num_alpha)
    return x, planned


def forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """y = learnable_elu(x, alpha), in x's dtype and memory format."""
    x, planned = _dense_and_planned(x, alpha.numel())
    alpha = alpha.contiguous()
    y = torch.empty_like(x)
    with _on_device_of(x):
        learnable_elu_forward_kernel[planned.config.grid](
            x, alpha, y, *planned.sizes, **planned.constants
        )
    return y


def backward(
    dy: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, compute_dalpha: bool
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(dx, dalpha): dx in x's dtype and memory format, dalpha in alpha's dtype or None."""
    x, planned = _dense_and_planned(x, alpha.numel())
    dy = with_layout_of(dy, x)  # the kernel reads x and dy at the same offsets
    alpha = alpha.contiguous()
    dx = torch.empty_like(x)
    partials_shape = planned.config.dalpha_partials_shape if compute_dalpha else (0,)
    # (new_empty and positional arguments: Python's argument parsing of
    # torch.empty(..., device=x.device) and sum(dim=1) costs microseconds.)
    dalpha_partials = x.new_empty(partials_shape, dtype=compute_dtype(x.dtype))
    with _on_device_of(x):
        learnable_elu_backward_kernel[planned.config.grid](
            dy, x, alpha, dx, dalpha_partials, *planned.sizes,
            COMPUTE_DALPHA=compute_dalpha, **planned.constants,
        )  # fmt: skip
    if not compute_dalpha:
        return dx, None
    # Fixed-order sum along contiguous rows of (C, sums per channel): no atomics.
    dalpha = dalpha_partials.sum(1)
    # .to() costs microseconds even when it has nothing to do.
    return dx, dalpha if dalpha.dtype == alpha.dtype else dalpha.to(alpha.dtype)


BACKEND = Backend(
    name="triton",
    description="Triton kernels in the interpreter" if INTERPRETED else "Triton kernels",
    serves=SERVED_DEVICE_TYPES.__contains__,
    forward=forward,
    backward=backward,
)
