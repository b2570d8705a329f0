"""The Triton backend: allocation and launches of the fused kernels.

Serves CUDA tensors, and CPU tensors through Triton's interpreter when
TRITON_INTERPRET=1 was set before import (read here once, as Triton reads it
when the kernels are decorated). Inputs are already validated
(``checks.py``) and non-empty; launch constants come from ``triton_config.py``.
"""

import os
from typing import Optional

import torch

from ..kernels import learnable_elu_backward_kernel, learnable_elu_forward_kernel
from ..layout import dense, with_layout_of
from . import Backend
from .triton_config import Plan, plan

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
SERVED_DEVICE_TYPES = frozenset({"cuda", "cpu"} if INTERPRETED else {"cuda"})


def _dense_and_planned(x: torch.Tensor, num_alpha: int) -> tuple[torch.Tensor, Plan]:
    """x itself if dense (else a dense copy), and its launch plan."""
    planned = plan(x, num_alpha)
    if planned is None:
        x = dense(x)
        planned = plan(x, num_alpha)
    return x, planned


def forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """y = learnable_elu(x, alpha), in x's dtype and memory format."""
    # Triton launches on the current CUDA device. torch.cuda.device() costs
    # microseconds per call, so only a tensor on another device pays for it.
    if x.is_cuda and x.get_device() != torch.cuda.current_device():
        with torch.cuda.device(x.device):
            return forward(x, alpha)
    x, planned = _dense_and_planned(x, alpha.numel())
    y = torch.empty_like(x)
    learnable_elu_forward_kernel[planned.config.grid](
        x, alpha.contiguous(), y, *planned.sizes, **planned.constants
    )
    return y


def backward(
    dy: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, compute_dalpha: bool
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(dx, dalpha): dx in x's dtype and memory format, dalpha in alpha's dtype or None."""
    if x.is_cuda and x.get_device() != torch.cuda.current_device():  # as in forward
        with torch.cuda.device(x.device):
            return backward(dy, x, alpha, compute_dalpha)
    x, planned = _dense_and_planned(x, alpha.numel())
    dy = with_layout_of(dy, x)  # the kernel reads x and dy at the same offsets
    alpha = alpha.contiguous()
    dx = torch.empty_like(x)
    partials_shape = planned.config.dalpha_partials_shape if compute_dalpha else (0,)
    # (new_empty and positional arguments: Python's argument parsing of
    # torch.empty(..., device=x.device) and sum(dim=1) costs microseconds.)
    dalpha_partials = x.new_empty(partials_shape, dtype=planned.partials_dtype)
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
