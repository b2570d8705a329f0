"""Triton device code for elu_triton (installed as ``elu_triton.kernels``).

Only ``@triton.jit`` functions live here; they import triton and nothing of
ours. Launch constants and allocation are host code in
``elu_triton/backends/triton_config.py`` and ``triton_kernels.py`` (the
activation) and ``elu_triton/batch_norm/triton_kernels.py`` (the fused batch
norm); argument checks in ``elu_triton/checks.py``.

Files are named by what they compute: the learnable ELU's kernels
(``learnable_elu_forward.py``, ``learnable_elu_backward.py``), the fused
batch norm's (``batch_norm_statistics.py``, ``batch_norm_forward.py``,
``batch_norm_backward.py``, which take the activation's device helpers as
constexpr arguments), and the helpers they share: ``activation.py`` (each
activation's value and gradient helpers), ``exp_math.py`` (an accurate
exp/expm1 pair), ``batch_norm_math.py`` and ``tiles.py`` (the (R, K) view,
the ``Tile`` the helpers take, the fixed-order per-channel sums).
"""

from .batch_norm_backward import (
    batch_norm_activation_dx_kernel,
    batch_norm_activation_reduce_kernel,
)
from .batch_norm_forward import batch_norm_activation_forward_kernel
from .batch_norm_statistics import batch_norm_statistics_kernel
from .learnable_elu_backward import learnable_elu_backward_kernel
from .learnable_elu_forward import learnable_elu_forward_kernel

__all__ = [
    "batch_norm_activation_dx_kernel",
    "batch_norm_activation_forward_kernel",
    "batch_norm_activation_reduce_kernel",
    "batch_norm_statistics_kernel",
    "learnable_elu_backward_kernel",
    "learnable_elu_forward_kernel",
]
