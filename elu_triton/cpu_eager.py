"""The CPU path in eager PyTorch ops: the fallback where inductor can't compile.

``cpu.py`` runs this for non-CPU devices other than CUDA, for fp64 (whose
dalpha aten sums more exactly than inductor), and when compiling is switched
off or fails (no C++ compiler); so the package works on every machine.
Like the kernels: arithmetic in fp32 for 16- and 32-bit inputs (fp64 for
fp64), NaN propagated to y, dx and dalpha, and only x needed by the
backward; dalpha accumulated in fp64 (``precision.py``).

Why it is written with elu/prelu/threshold instead of ``torch.where``: on the
CPU ``torch.where`` (and masked_fill, heaviside, prelu's backward) runs a
scalar loop, about 20x slower per element than a memory-bound vectorized op,
while F.elu, F.prelu, clamp, exp, threshold and copysign are vectorized. Each
select of the formulas below is therefore done by an op that selects on the
sign of its input, which is made to carry the sign of x:

    forward:  y  = prelu(elu(x), alpha)       elu(x) > 0 exactly when x > 0
    backward: dx = dy * prelu(C, -alpha)      C = 1 if x > 0 else -exp(x)
              dalpha[c] = sum dy * expm1(min(x, 0))

prelu(C, -alpha) is 1 for x > 0 and (-alpha) * (-exp(x)) = alpha * exp(x)
otherwise, rounded in the kernel's order. Two traps are avoided: aten's
elu_backward would give the slope in one op, but its scalar tail loop drops
NaN; and the dalpha product dy * expm1(0) is NaN for an infinite dy at x > 0,
where the kernel (and so this file) gives 0: when a dalpha comes out NaN it
is recomputed with the select, so only such inputs pay for it.
"""

from typing import Optional

import torch
import torch.nn.functional as F

from .precision import compute_dtype


def _prelu_weight(alpha: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """alpha as F.prelu's weight: (C,) or (1,) in the compute dtype."""
    return alpha.reshape(-1).to(dtype)


def forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """y in x's dtype and memory format."""
    xc = x.to(compute_dtype(x.dtype))
    # elu with alpha 1 is x for x > 0 (NaN and +inf included) and expm1(x)
    # otherwise, so prelu then scales exactly the x <= 0 elements by alpha.
    # 16-bit x was copied by .to(): overwrite the copy, never x itself.
    negative_scaled = F.elu(xc, inplace=xc is not x)
    y = F.prelu(negative_scaled, _prelu_weight(alpha, xc.dtype))
    return y.to(x.dtype)


def _sum_per_channel(terms: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    # In fp64: summed over the outer dims, fp32 terms are added one after
    # another (8.5e-4 off for (2^17, 4, 16) equal terms); fp64 is exact enough.
    if alpha.numel() == 1:
        return terms.sum(dtype=torch.float64).reshape(1)
    return terms.sum(dim=[d for d in range(terms.dim()) if d != 1], dtype=torch.float64)


def _dalpha_with_select(dy: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The kernel's dalpha terms, selected after the product (slow, exact for inf dy)."""
    terms = torch.where(x > 0, 0.0, torch.expm1(x.clamp(max=0)).mul_(dy))
    return _sum_per_channel(terms, alpha)


def backward(
    dy: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, compute_dalpha: bool
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(dx, dalpha): dx in x's dtype, dalpha in alpha's dtype or None."""
    xc = x.to(compute_dtype(x.dtype))
    dyc = dy.to(x.dtype).to(xc.dtype)  # dy in x's dtype first, as the kernels read it
    # min(x, 0) keeps NaN, and maps x > 0 (+inf too) to 0: exp 1, expm1 0.
    # Three full-size buffers in all: on the CPU a fresh one costs about as
    # much as a pass over it (page faults), so the later steps reuse them.
    negative = xc.clamp(max=0)
    exp_negative = torch.exp(negative)
    dalpha = None
    if compute_dalpha:
        dalpha = _sum_per_channel(torch.expm1(negative, out=negative).mul_(dyc), alpha)
        if dalpha.isnan().any():
            # NaN x gives NaN here too; only an infinite dy at x > 0 changes it.
            dalpha = _dalpha_with_select(dyc, xc, alpha)
    # C = copysign(exp(min(x, 0)), x > 0 ? x : -1): 1 for x > 0, -exp(x)
    # otherwise (x = +0 included, which a copysign from x itself would miss).
    sign_source = torch.threshold(xc, 0.0, -1.0, out=negative)
    slope = exp_negative.copysign_(sign_source)
    dx = F.prelu(slope, _prelu_weight(alpha, xc.dtype).neg()).mul_(dyc).to(x.dtype)
    return dx, None if dalpha is None else dalpha.to(alpha.dtype)
