"""LearnableELUFunction and learnable_elu: the same values and gradients as the ops."""

import threading

import pytest
import torch

from elu_triton import LearnableELUFunction, learnable_elu, reference


@pytest.mark.parametrize(
    "shape,channels", [((2, 3, 4), 3), ((2, 3, 4), 1), ((6,), 1), ((2, 2, 2, 3), 2)], ids=str
)
def test_gradcheck_float64(shape, channels, device):
    # Keep x away from 0, where the derivative in x jumps from alpha to 1.
    x = torch.randn(shape, dtype=torch.float64, device=device)
    x = torch.where(x.abs() < 0.05, x.sign() * 0.05 + x, x).requires_grad_()
    alpha = (torch.rand(channels, dtype=torch.float64, device=device) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(LearnableELUFunction.apply, (x, alpha))
    assert torch.autograd.gradcheck(learnable_elu, (x, alpha))


def test_all_entry_points_agree(device):
    x = torch.randn(4, 6, 5, 3, device=device).to(memory_format=torch.channels_last)
    alpha = torch.rand(6, device=device)
    dy = torch.randn_like(x)
    results = []
    for forward in (learnable_elu, LearnableELUFunction.apply, torch.ops.elu_triton.forward):
        xi, ai = x.clone().requires_grad_(), alpha.clone().requires_grad_()
        y = forward(xi, ai)
        y.backward(dy)
        results.append((y, xi.grad, ai.grad))
    dx, dalpha = torch.ops.elu_triton.backward(dy, x, alpha, True)
    for y, gx, ga in results:
        assert torch.equal(y, results[0][0]) and torch.equal(gx, dx) and torch.equal(ga, dalpha)


def test_gradient_only_for_x(device):
    x = torch.randn(3, 4, device=device, requires_grad=True)
    alpha = torch.rand(4, device=device)
    learnable_elu(x, alpha).sum().backward()
    assert x.grad is not None and alpha.grad is None


def test_gradient_only_for_alpha(device):
    x = torch.randn(3, 4, device=device)
    alpha = torch.rand(4, device=device, requires_grad=True)
    learnable_elu(x, alpha).sum().backward()
    assert alpha.grad is not None and alpha.grad.shape == (4,)


def test_output_can_be_modified_in_place(device):
    # A Function must not return a view (autograd then forbids in-place ops).
    x = torch.randn(2, 3, 4, 5, device=device).to(memory_format=torch.channels_last)
    x.requires_grad_()
    alpha = torch.rand(3, device=device, requires_grad=True)
    y = learnable_elu(x, alpha)
    y.mul_(2).sum().backward()
    expected_x, expected_alpha = x.detach().clone().requires_grad_(), alpha.detach().clone().requires_grad_()
    (learnable_elu(expected_x, expected_alpha) * 2).sum().backward()
    assert torch.equal(x.grad, expected_x.grad) and torch.equal(alpha.grad, expected_alpha.grad)


def _bf16_case(device):
    # bf16 values whose fp32 arithmetic (the promise) and bf16 arithmetic (the
    # composite before it computed in fp32) differ in the last bit somewhere.
    x = torch.linspace(-3, -0.01, 64, device=device).bfloat16()
    return x, torch.tensor([0.7], device=device)


def test_eager_route_ignores_the_process_wide_compile_flag(monkeypatch, device):
    """Another thread compiling sets torch.compiler's process-wide flag; eager calls here must not care."""
    x, alpha = _bf16_case(device)
    expected = learnable_elu(x, alpha)
    calls = []
    monkeypatch.setattr(reference, "learnable_elu", lambda *args: calls.append(args) or expected)
    monkeypatch.setattr(torch.compiler, "_is_compiling_flag", True)
    assert torch.compiler.is_compiling()  # what a compile in another thread makes it say
    assert torch.equal(learnable_elu(x, alpha), expected) and calls == []


def test_results_do_not_depend_on_another_thread_compiling(device):
    x, alpha = _bf16_case(device)
    expected = learnable_elu(x, alpha)
    done = threading.Event()

    def compile_in_a_loop():
        for i in range(3):
            torch.compile(lambda t: t.sin() * (i + 1), backend="eager")(torch.randn(8 + i))
        done.set()

    other = threading.Thread(target=compile_in_a_loop)
    other.start()
    differing = 0
    while not done.is_set():
        differing += not torch.equal(learnable_elu(x, alpha), expected)
    other.join()
    assert differing == 0


def test_traced_under_compile_as_the_composite():
    x, alpha = torch.randn(4, 3, 5), torch.rand(3)
    graph_ops = []

    def backend(gm, example_inputs):
        graph_ops.extend(str(node.target) for node in gm.graph.nodes)
        return gm

    y = torch.compile(learnable_elu, backend=backend, fullgraph=True)(x, alpha)
    assert torch.equal(y, reference.learnable_elu(x, alpha))
    assert not any("elu_triton" in op for op in graph_ops) and any("expm1" in op for op in graph_ops)
