"""The CPU path: the kernels' math in PyTorch, for tensors the kernels don't take.

Runs for CPU tensors without TRITON_INTERPRET=1, and for devices other than
CUDA. On the CPU it is compiled by inductor into one loop per pass
(``cpu_compiled.py``); where that is switched off (ELU_TRITON_CPU_COMPILE=0)
or has failed, for fp64, and on other devices, eager ops serve (``cpu_eager.py``).
Both compute as the kernels do (``precision.py``): the same y and dx to the
rounding, the same edge values, only x needed by the backward; dalpha is
summed in fp64, so at least as accurately.
"""

from typing import Optional

import torch

from . import cpu_compiled, cpu_eager


def describe(device: torch.device) -> str:
    """Which of the two serves (fp32) tensors on device now, for reports."""
    if cpu_compiled.serves(torch.empty(0, device=device)):
        return "PyTorch ops compiled by inductor (elu_triton.cpu_compiled)"
    return "eager PyTorch ops (elu_triton.cpu_eager)"


def forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """y in x's dtype and memory format."""
    if cpu_compiled.serves(x):
        try:
            return cpu_compiled.forward(x, alpha)
        except cpu_compiled.CompileFailed:
            pass  # warned once; it stays off, and the eager ops serve
    return cpu_eager.forward(x, alpha)


def backward(
    dy: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, compute_dalpha: bool
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(dx, dalpha): dx in x's dtype and memory format, dalpha in alpha's dtype or None."""
    if cpu_compiled.serves(x):
        try:
            return cpu_compiled.backward(dy, x, alpha, compute_dalpha)
        except cpu_compiled.CompileFailed:
            pass
    return cpu_eager.backward(dy, x, alpha, compute_dalpha)
