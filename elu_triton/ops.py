"""torch.library custom ops: elu_triton::forward and elu_triton::backward.

The ops, their fake (meta) implementations for torch.compile and
torch.export, and their autograd formulas. Their bodies are ``eager.py``'s,
which eager code on plain tensors calls without the dispatcher. The forward's
formula saves x and alpha, never y; the backward's (``second_order.py``) is
recorded only under create_graph=True.
"""

import torch

from . import eager
from .backends.base import dalpha_shape
from .checks import check_grad_output, check_inputs
from .second_order import double_backward, save_for_double_backward


@torch.library.custom_op("elu_triton::forward", mutates_args=())
def forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """y = x if x > 0 else alpha[c] * expm1(x); y has x's dtype and memory format."""
    return eager.forward(x, alpha)


@forward.register_fake
def _forward_fake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    check_inputs(x, alpha)
    return torch.empty_like(x)


@torch.library.custom_op("elu_triton::backward", mutates_args=())
def backward(
    grad_output: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, compute_dalpha: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(dx, dalpha) of the forward at (x, alpha) for upstream gradient grad_output.

    grad_output is read in x's dtype (autograd passes it in y's, which is
    x's). dalpha is ``dalpha_shape(alpha)``, (alpha.numel(),), in alpha's dtype; it
    is an empty (0,) tensor when compute_dalpha is False (custom ops cannot return None).
    """
    return eager.backward(grad_output, x, alpha, compute_dalpha)


@backward.register_fake
def _backward_fake(grad_output, x, alpha, compute_dalpha):
    check_inputs(x, alpha)
    check_grad_output(grad_output, x)
    dalpha = alpha.new_empty(dalpha_shape(alpha) if compute_dalpha else (0,))
    return torch.empty_like(x), dalpha


def _save_x_and_alpha(ctx, inputs, output) -> None:
    """Autograd setup of the forward: keep x and alpha, never y (no more memory than nn.ELU)."""
    x, alpha = inputs
    ctx.save_for_backward(x, alpha)


def _forward_formula_backward(ctx, grad_output):
    """Autograd backward of the forward op: the eager backward body, or the backward op."""
    x, alpha = ctx.saved_tensors
    return eager.grads_for_inputs(grad_output, x, alpha, *ctx.needs_input_grad)


torch.library.register_autograd(
    "elu_triton::forward", _forward_formula_backward, setup_context=_save_x_and_alpha
)
torch.library.register_autograd(
    "elu_triton::backward", double_backward, setup_context=save_for_double_backward
)
