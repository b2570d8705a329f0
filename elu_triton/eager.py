"""The eager seam: the bodies that plain tensors run without the dispatcher.

Going through the dispatcher costs more than the kernel itself on
activations of a few MB, so eager code on plain tensors (``routes.is_plain``)
calls the bodies below directly; ``ops.py`` registers the same bodies as the custom ops, and
``function.py`` calls them from the autograd Function. Nothing here imports
either of them.
"""

import torch

from . import backends
from .checks import check_grad_output
from .reference import learnable_elu_backward
from .routes import is_batched_gradient, is_plain


def forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The body of elu_triton::forward: y, in x's dtype and memory format.

    Raises:
        TypeError, ValueError: as ``checks.check_inputs``.
    """
    backend, launch = backends.prepare(x, alpha)  # checks the inputs
    return backend.forward(x, alpha, launch)


def backward(
    grad_output: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, compute_dalpha: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The body of elu_triton::backward: dalpha is an empty (0,) tensor without compute_dalpha.

    Raises:
        TypeError, ValueError: as ``checks.check_inputs`` and ``checks.check_grad_output``.
    """
    backend, launch = backends.prepare(x, alpha)  # checks the inputs
    check_grad_output(grad_output, x)
    dx, dalpha = backend.backward(grad_output, x, alpha, compute_dalpha, launch)
    return dx, dalpha if dalpha is not None else alpha.new_empty(0)


def grads_for_inputs(
    grad_output: torch.Tensor,
    x: torch.Tensor,
    alpha: torch.Tensor,
    needs_dx: bool,
    needs_dalpha: bool,
    prepared: backends.Prepared | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The autograd backward of the forward: (dx, dalpha), None where no gradient is needed.

    prepared: what ran the forward, which found x and alpha plain and checked
    them (so that use_backend reaches a backward that runs after its block,
    or on autograd's device threads); None to prepare now.
    """
    if not (needs_dx or needs_dalpha):
        return None, None
    if is_batched_gradient(grad_output):  # is_grads_batched=True, jacobian(vectorize=True)
        # The reference's backward, in plain ops: autograd's vmap batches them.
        dx, dalpha = learnable_elu_backward(grad_output, x, alpha)
        return (dx if needs_dx else None), (dalpha if needs_dalpha else None)
    # Under create_graph=True (grad mode on) the op records its second-order formula.
    if not torch.is_grad_enabled() and (
        is_plain(grad_output) if prepared is not None else is_plain(grad_output, x, alpha)
    ):
        # autograd hands over a gradient of y's shape, device and dtype; but
        # grad_fn.apply(dy) does not.
        if grad_output.shape != x.shape:
            check_grad_output(grad_output, x)
        backend, launch = prepared if prepared is not None else backends.prepare(x, alpha)
        dx, dalpha = backend.backward(grad_output, x, alpha, needs_dalpha, launch)
    else:
        dx, dalpha = torch.ops.elu_triton.backward(grad_output, x, alpha, needs_dalpha)
    return (dx if needs_dx else None), (dalpha if needs_dalpha else None)
