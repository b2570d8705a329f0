"""Autograd's batched gradients through every layer (tests/layers.py's layers).

``is_grads_batched=True`` and ``jacobian(vectorize=True)`` hand the backward
a dy batched by vmap, which the passes cannot read: the layer's backward
takes its composite's gradient instead. Every result is compared with the
composite's own, in float64 where the comparison is exact enough to mean it.
"""

import pytest
import torch

TOL = dict(rtol=1e-12, atol=1e-12)  # float64: the passes and the composite, a few ulps apart


def _case(layer, device, mode=None, shared=(), dtype=torch.float64, shape=(4, 3, 5)):
    """(fused, composite, inputs): the functional forms of one module on x and its vectors."""
    module = layer.build(device=device, dtype=torch.float64, mode=mode, shared=shared)
    x = layer.sample(module, shape, device=device, dtype=dtype).requires_grad_()
    return layer.functional(module), layer.composite(module), (x, *layer.parameters(module))


@pytest.mark.parametrize("shared", [False, True], ids=["per-channel", "shared"])
def test_is_grads_batched_matches_the_composite(layer, mode, shared, device):
    """Each row of the batched gradients is the gradient of its own dy."""
    fused, composite, inputs = _case(layer, device, mode, layer.shareable if shared else ())
    x = inputs[0]
    dys = torch.randn(4, *x.shape, device=device, dtype=x.dtype)
    got = torch.autograd.grad(fused(*inputs), inputs, dys, is_grads_batched=True)
    want = torch.autograd.grad(composite(*inputs), inputs, dys, is_grads_batched=True)
    assert [g.shape for g in got] == [(4, *t.shape) for t in inputs]
    torch.testing.assert_close(got, want, **TOL)
    single = torch.autograd.grad(fused(*inputs), inputs, dys[2])
    torch.testing.assert_close(tuple(g[2] for g in got), single, **TOL)


def test_one_input_batched_at_a_time(layer, device):
    fused, composite, inputs = _case(layer, device)
    dys = torch.randn(3, *inputs[0].shape, device=device, dtype=inputs[0].dtype)
    want = torch.autograd.grad(composite(*inputs), inputs, dys, is_grads_batched=True)
    for i, tensor in enumerate(inputs):
        (got,) = torch.autograd.grad(fused(*inputs), tensor, dys, is_grads_batched=True)
        torch.testing.assert_close(got, want[i], **TOL)


def test_batched_gradients_of_a_16_bit_input(layer, device):
    """bf16 x, fp32 parameters (autocast's pairing): each gradient in its input's dtype."""
    module = layer.build(device=device)
    x = layer.sample(module, (2, 3, 5), device=device, dtype=torch.bfloat16).requires_grad_()
    inputs = (x, *layer.parameters(module))
    dys = torch.randn(2, *x.shape, device=device).bfloat16()
    got = torch.autograd.grad(layer.functional(module)(*inputs), inputs, dys, is_grads_batched=True)
    want = torch.autograd.grad(layer.composite(module)(*inputs), inputs, dys, is_grads_batched=True)
    assert [g.dtype for g in got] == [torch.bfloat16] + [torch.float32] * (len(inputs) - 1)
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1:], want[1:], rtol=1e-5, atol=1e-5)


def test_vectorized_jacobian_matches_the_composite(layer, mode, device):
    fused, composite, inputs = _case(layer, device, mode, shape=(2, 3, 2))
    inputs = tuple(t.detach() for t in inputs)
    got = torch.autograd.functional.jacobian(fused, inputs, vectorize=True)
    want = torch.autograd.functional.jacobian(composite, inputs)
    torch.testing.assert_close(got, want, **TOL)
