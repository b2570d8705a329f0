"""elu_triton: an ELU with a learnable per-channel alpha, with fused Triton kernels.

    y = x                     if x > 0
      = alpha[c] * expm1(x)   if x <= 0

Public API: ``learnable_elu`` (functional), ``LearnableELUFunction``
(autograd Function), ``LearnableELU`` (nn.Module), ``LazyLearnableELU`` (its
channel count taken from the first input), ``replace_activations`` (swaps a
built model's ReLU/ELU/PReLU modules for LearnableELU layers), the custom ops
``torch.ops.elu_triton.forward`` / ``torch.ops.elu_triton.backward``, and
``elu_triton.reference.learnable_elu`` (pure PyTorch); and BatchNorm fused
with the activation: ``BatchNormLearnableELU``, ``batch_norm_learnable_elu``
and ``fuse_batchnorm`` (``elu_triton.batch_norm``, ``elu_triton.fuse``).
"""

from . import ops as _ops  # noqa: F401  (registers torch.ops.elu_triton.*)
from ._version import __version__
from .batch_norm import BatchNormLearnableELU, batch_norm_learnable_elu
from .convert import replace_activations
from .function import LearnableELUFunction, learnable_elu
from .fuse import fuse_batchnorm
from .lazy import LazyLearnableELU
from .module import LearnableELU

__all__ = [
    "__version__",
    "BatchNormLearnableELU",
    "LazyLearnableELU",
    "LearnableELU",
    "LearnableELUFunction",
    "batch_norm_learnable_elu",
    "fuse_batchnorm",
    "learnable_elu",
    "replace_activations",
]
