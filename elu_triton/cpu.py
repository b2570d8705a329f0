"""The same math as the kernels, in PyTorch ops, for tensors the kernels don't take.

Runs for CPU tensors without TRITON_INTERPRET=1 (and any non-CUDA device), so
the package works on every machine. Like the kernels: arithmetic in fp32 for
16- and 32-bit inputs (fp64 for fp64), dalpha accumulated in that dtype,
NaN propagated to y, dx and dalpha, and only x needed by the backward.
"""

from typing import Optional

import torch

from .reference import alpha_for_broadcast


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """y in x's dtype and memory format."""
    xc = x.to(_compute_dtype(x))
    a = alpha_for_broadcast(alpha, x).to(xc.dtype)
    # clamp keeps NaN and maps +inf to 0, so the negative branch makes no inf.
    y = torch.expm1(xc.clamp(max=0)).mul_(a)
    return torch.where(xc > 0, xc, y).to(x.dtype)


def backward(
    dy: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, compute_dalpha: bool
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(dx, dalpha): dx in x's dtype, dalpha in alpha's dtype or None."""
    xc = x.to(_compute_dtype(x))
    dyc = dy.to(xc.dtype)
    a = alpha_for_broadcast(alpha, x).to(xc.dtype)
    negative = xc.clamp(max=0)
    positive = xc > 0
    dx = torch.where(positive, dyc, torch.exp(negative).mul_(a).mul_(dyc)).to(x.dtype)
    if not compute_dalpha:
        return dx, None
    terms = torch.where(positive, 0.0, torch.expm1(negative).mul_(dyc))
    if alpha.numel() == 1:
        dalpha = terms.sum().reshape(1)
    else:
        dalpha = terms.sum(dim=[d for d in range(x.dim()) if d != 1])
    return dx, dalpha.to(alpha.dtype)
