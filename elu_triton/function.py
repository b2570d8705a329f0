"""The autograd Function and the functional form.

``LearnableELUFunction`` is the eager path: its forward runs the body of
elu_triton::forward without the dispatcher's overhead and saves x and alpha
(never y); its backward runs the body of elu_triton::backward, asking for
dalpha only when alpha needs a gradient, and goes through the op itself
under create_graph=True so that second-order gradients are recorded.

``learnable_elu`` is what the module calls. In eager mode it applies the
Function. Under torch.compile it returns the reference composite instead:
an opaque op would stop the compiler from fusing the activation with its
neighbours (a batch norm before it, say), while the composite compiles to
one fused kernel with them, forward and backward.
"""

import torch

from . import reference
from .checks import check_inputs
from .ops import backward_formula, can_skip_dispatcher, run_forward, save_for_backward


class LearnableELUFunction(torch.autograd.Function):
    """y = x if x > 0 else alpha[c] * expm1(x), with the fused backward.

    ``LearnableELUFunction.apply(x, alpha)``: x is (N, C, *) or has fewer
    than 2 dims; alpha is (C,) or (1,). Returns y in x's dtype and memory format.
    """

    @staticmethod
    def forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        if can_skip_dispatcher(x, alpha):
            return run_forward(x, alpha)  # checks its arguments
        check_inputs(x, alpha)  # before the op's schema, which only says "not a Tensor"
        return torch.ops.elu_triton.forward(x, alpha)

    # The same autograd formula the custom op registers.
    setup_context = staticmethod(save_for_backward)
    backward = staticmethod(backward_formula)


def learnable_elu(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """ELU with a learnable per-channel alpha, differentiable in x and alpha.

    Args:
        x: (N, C, *) float tensor (channel dim 1), or any float tensor of
            fewer than 2 dims (one channel). Any memory format.
        alpha: (C,) or (1,) float tensor on x's device; may have another
            float dtype than x (bf16 x with fp32 alpha under autocast).

    Returns:
        y, same shape, dtype and memory format as x.

    Raises:
        TypeError: x or alpha is not a floating-point tensor.
        ValueError: alpha is not 1-D, its size is neither 1 nor C, or it is
            on another device than x.
    """
    if torch.compiler.is_compiling():
        return reference.learnable_elu(x, alpha)
    return LearnableELUFunction.apply(x, alpha)
