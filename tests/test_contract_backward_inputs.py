"""Every layer's backward checks what reaches it past autograd (tests/layers.py's layers).

grad_fn.apply(dy) skips autograd's own check of dy's shape, and assigning
``.data`` resizes a tensor the graph saved: the backward makes its launch
anew and checks again, rather than read past dy, x or a parameter.
"""

import pytest
import torch

X_SHAPE = (2, 3, 4, 4)


@pytest.mark.parametrize("grad_mode", [torch.no_grad, torch.enable_grad])
@pytest.mark.parametrize(
    "dy_shape", [(1, 3, 4, 4), (4, 3, 4, 4), (2, 3, 16)], ids=["fewer", "more", "same-numel"]
)
def test_grad_fn_apply_checks_grad_output(layer, grad_mode, dy_shape, device):
    """grad_fn.apply(dy) bypasses autograd's shape check: the kernels must not read past dy."""
    module = layer.build(device=device)
    y = module(torch.randn(X_SHAPE, device=device, requires_grad=True))
    with grad_mode(), pytest.raises(ValueError, match=r"grad_output must have x's shape"):
        y.grad_fn.apply(torch.ones(dy_shape, device=device))


@pytest.mark.parametrize("new_size", [1, 2, 5])
def test_backward_after_a_vector_was_resized_raises(layer, vector, new_size, device):
    """A parameter's .data resized after the forward: raise, never read past it."""
    module = layer.build(device=device)
    y = module(torch.randn(X_SHAPE, device=device, requires_grad=True))
    getattr(module, vector).data = torch.rand(new_size, device=device)
    if new_size == 1 and vector in layer.shareable:
        # One element is a valid shared vector: the backward runs, and autograd
        # refuses its gradient of the wrong shape.
        error, message = RuntimeError, "returned an invalid gradient"
    elif layer.resized_vector_error is not None:
        error, message = (
            (ValueError, RuntimeError),
            rf"{vector} must have|{layer.resized_vector_error}",
        )
    else:
        error, message = ValueError, rf"{vector} must have"
    with pytest.raises(error, match=message):
        y.sum().backward()


def test_backward_after_x_data_was_resized_raises(layer, device):
    module = layer.build(device=device)
    x = torch.randn(X_SHAPE, device=device, requires_grad=True)
    y = module(x)
    x.data = torch.randn(3, *X_SHAPE[1:], device=device)  # the same strides, another shape
    with pytest.raises(ValueError, match=r"grad_output must have x's shape \(3, 3, 4, 4\)"):
        y.sum().backward()
