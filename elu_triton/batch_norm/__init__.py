"""BatchNorm fused with an activation: one activation fewer kept for the backward.

``BatchNormLearnableELU`` (module.py) equals ``nn.BatchNorm{1,2,3}d``
followed by ``LearnableELU``, ``BatchNormPReLU`` the same followed by
``nn.PReLU``; ``batch_norm_learnable_elu`` and ``batch_norm_prelu``
(function.py) are their functional forms in ``F.batch_norm``'s argument
order. The activation is
a parameter of everything below the module: a row of activations.py (its
device helpers, reference, PyTorch-backend math and parameter's name).
Files, in the order an input meets them: module.py (the modules and their
FX-wrapped forward), activations.py, checks.py, function.py (routing, the autograd Function), ops.py
(custom ops), eager.py (the eager bodies and the backward seam), statistics.py (per-channel host
math), torch_ops.py / triton_kernels.py (the passes over x, as each backend runs them), the kernels
in ``elu_triton.kernels.batch_norm_*``, and second_order.py (the composite's
gradients, for create_graph=True and autograd's batched gradients).
"""

from .function import BatchNormLearnableELUFunction, batch_norm_learnable_elu, batch_norm_prelu
from .module import BatchNormLearnableELU, BatchNormPReLU

__all__ = [
    "BatchNormLearnableELU",
    "BatchNormLearnableELUFunction",
    "BatchNormPReLU",
    "batch_norm_learnable_elu",
    "batch_norm_prelu",
]
