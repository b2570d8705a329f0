"""Triton device code for elu_triton (installed as ``elu_triton.kernels``).

Only ``@triton.jit`` functions live here; they import triton and nothing of
ours. Launch constants and allocation are host code in
``elu_triton/backends/triton_config.py`` and ``triton_kernels.py`` (the
activation) and ``elu_triton/batch_norm/triton_kernels.py`` (the fused batch
norm); argument checks in ``elu_triton/checks.py``.
"""

from .backward import learnable_elu_backward_kernel
from .batch_norm_backward import batch_norm_elu_dx_kernel, batch_norm_elu_reduce_kernel
from .batch_norm_forward import batch_norm_elu_forward_kernel
from .batch_norm_statistics import batch_norm_statistics_kernel
from .forward import learnable_elu_forward_kernel

__all__ = [
    "batch_norm_elu_dx_kernel",
    "batch_norm_elu_forward_kernel",
    "batch_norm_elu_reduce_kernel",
    "batch_norm_statistics_kernel",
    "learnable_elu_backward_kernel",
    "learnable_elu_forward_kernel",
]
