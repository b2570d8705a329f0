"""The torch.library custom ops: opcheck, fake tensors, empty inputs, determinism."""

import dataclasses

import pytest
import torch

from elu_triton import backends

OPCHECK_SAMPLES = [
    lambda d: (torch.randn(2, 5, 3, 4, device=d), torch.rand(5, device=d)),
    lambda d: (
        torch.randn(2, 5, 3, 4, device=d).to(memory_format=torch.channels_last),
        torch.rand(5, device=d),
    ),
    lambda d: (torch.randn(7, 3, device=d, dtype=torch.bfloat16), torch.rand(1, device=d)),
    lambda d: (
        torch.randn(9, device=d, dtype=torch.float64),
        torch.rand(1, device=d, dtype=torch.float64),
    ),
]


@pytest.mark.parametrize("sample", range(len(OPCHECK_SAMPLES)))
def test_opcheck_forward(sample, device):
    x, alpha = OPCHECK_SAMPLES[sample](device)
    torch.library.opcheck(torch.ops.elu_triton.forward, (x, alpha.requires_grad_()))
    torch.library.opcheck(torch.ops.elu_triton.forward, (x.requires_grad_(), alpha))


@pytest.mark.parametrize("compute_dalpha", [True, False])
@pytest.mark.parametrize("sample", range(len(OPCHECK_SAMPLES)))
def test_opcheck_backward(sample, compute_dalpha, device):
    x, alpha = OPCHECK_SAMPLES[sample](device)
    dy = torch.randn_like(x)
    # The autograd test needs float64 (second-order formula); schema, fake and
    # dispatch tests run on every sample.
    utils = ("test_schema", "test_faketensor", "test_autograd_registration")
    torch.library.opcheck(
        torch.ops.elu_triton.backward, (dy, x, alpha, compute_dalpha), test_utils=utils
    )


def test_backward_without_dalpha_returns_empty(device):
    x, alpha = torch.randn(3, 4, device=device), torch.rand(4, device=device)
    dx, dalpha = torch.ops.elu_triton.backward(torch.ones_like(x), x, alpha, False)
    assert dalpha.shape == (0,) and dx.shape == x.shape


def test_alpha_without_grad_skips_dalpha(monkeypatch, fresh_caches, device):
    calls = []
    default = backends.backend_for(device)

    def backward(dy, x, alpha, compute_dalpha, launch):
        calls.append(compute_dalpha)
        return default.backward(dy, x, alpha, compute_dalpha, launch)

    spy = dataclasses.replace(default, name="spy", backward=backward)
    # The op's backward selects its backend where autograd runs it: for CUDA
    # tensors on autograd's device thread, where this thread's use_backend is
    # not in force. So the spy is also the only backend available, which the
    # emptied caches then select for the device type.
    monkeypatch.setattr(backends, "available", lambda: (spy,))
    x = torch.randn(3, 4, device=device, requires_grad=True)
    with backends.use_backend(spy):  # (the cpu-torch run forces "torch" in this thread)
        torch.ops.elu_triton.forward(x, torch.rand(4, device=device)).sum().backward()
    assert calls == [False]


def test_empty_input_launches_nothing(device):
    def fail(*args):
        raise AssertionError("launched on an empty tensor")

    nothing = backends.Backend("fail", "fails", lambda device_type: True, fail, fail)
    x = torch.randn(0, 4, 3, device=device, requires_grad=True)
    alpha = torch.rand(4, device=device, requires_grad=True)
    with backends.use_backend(nothing):
        y = torch.ops.elu_triton.forward(x, alpha)
        y.sum().backward()
    assert y.shape == (0, 4, 3) and torch.equal(alpha.grad, torch.zeros(4, device=device))


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=str)
def test_dalpha_is_bitwise_deterministic(memory_format, device):
    x = torch.randn(8, 20, 33, 31, device=device).to(memory_format=memory_format)
    alpha, dy = torch.rand(20, device=device), torch.randn_like(x)
    first = torch.ops.elu_triton.backward(dy, x, alpha, True)[1]
    second = torch.ops.elu_triton.backward(dy, x, alpha, True)[1]
    assert torch.equal(first, second)


def test_saves_only_x_and_alpha(device):
    """No y among the saved tensors: no more activation memory than nn.ELU."""
    saved = []
    x = torch.randn(4, 5, 6, device=device, requires_grad=True)
    alpha = torch.rand(5, device=device, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = torch.ops.elu_triton.forward(x, alpha)
    assert len(saved) == 2
    assert saved[0].data_ptr() == x.data_ptr() and saved[1].data_ptr() == alpha.data_ptr()
    assert all(t.data_ptr() != y.data_ptr() for t in saved)


def test_opcheck_backward_of_an_empty_input_with_a_0d_alpha(device):
    """The empty backend's dalpha is (alpha.numel(),), as the fake says: (1,) for a 0-D alpha."""
    x = torch.randn(0, 3, 4, device=device)
    alpha = torch.tensor(0.7, device=device, requires_grad=True)
    args = (torch.randn_like(x), x, alpha, True)
    torch.library.opcheck(torch.ops.elu_triton.backward, args)
    assert torch.ops.elu_triton.backward(*args)[1].shape == (1,)
