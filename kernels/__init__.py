"""Triton device code for elu_triton (installed as ``elu_triton.kernels``).

Only ``@triton.jit`` functions live here; they import triton and nothing of
ours. Launch constants and allocation are host code in
``elu_triton/backends/triton_config.py`` and ``triton_kernels.py``; argument
checks in ``elu_triton/checks.py``.
"""

from .backward import learnable_elu_backward_kernel
from .forward import learnable_elu_forward_kernel

__all__ = ["learnable_elu_backward_kernel", "learnable_elu_forward_kernel"]
