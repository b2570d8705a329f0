"""torch.compile and compiled autograd over every layer (tests/layers.py's layers).

Under torch.compile a layer routes to its reference composite: dynamo's
graph holds plain aten ops, fullgraph=True holds (no graph break), and the
results are eager's. Compiled autograd hands the whole backward graph to
dynamo, so every question the backward asks must be traceable (or answered
before dynamo sees it). Two switches turn it on: the private context
manager that torch's own tests use, and the public config flag; both run
here, so that a rename of the private one cannot silently skip the check.
"""

import copy

import pytest
import torch
from torch import nn
from torch._dynamo import compiled_autograd
from torch._dynamo.testing import CompileCounter
from torch._dynamo.utils import counters


def test_compile_routes_to_the_composite(layer, device):
    """Two training steps: eager's outputs, gradients and state; graphs of the composite's ops."""
    eager = layer.build(device=device)
    model = copy.deepcopy(eager)
    graphs = []

    def record(graph_module, example_inputs):  # dynamo's graph, run as it is
        graphs.append(graph_module.code)
        return graph_module.forward

    compiled = torch.compile(model, fullgraph=True, backend=record)
    for _ in range(2):
        x = layer.sample(eager, (4, 3, 6, 6), device=device)
        y_eager, y_compiled = eager(x), compiled(x)
        y_eager.square().sum().backward()
        y_compiled.square().sum().backward()
        torch.testing.assert_close(y_compiled, y_eager, rtol=1e-5, atol=1e-5)
    assert graphs
    for code in graphs:
        assert all(op in code for op in layer.composite_ops) and layer.name not in code, code
        assert "elu_triton" not in code, code
    for (name, got), want in zip(model.state_dict().items(), eager.state_dict().values()):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, msg=name)
    for got, want in zip(model.parameters(), eager.parameters()):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-4, atol=1e-4)


def test_compiled_functional_is_the_composite(layer):
    """The functional form, compiled: exactly the composite's values, from the composite's ops."""
    module = layer.build()
    twin = copy.deepcopy(module)
    x = layer.sample(module, (4, 3, 5))
    graph_ops = []

    def backend(gm, example_inputs):
        graph_ops.extend(str(node.target) for node in gm.graph.nodes)
        return gm

    functional = torch.compile(layer.functional(module), backend=backend, fullgraph=True)
    with torch.no_grad():
        y = functional(x, *layer.parameters(module))
        assert torch.equal(y, layer.reference_twin(twin)(x))
    assert not any("elu_triton" in op for op in graph_ops), graph_ops
    assert all(any(name in op for op in graph_ops) for name in layer.composite_ops), graph_ops


def test_inductor_compile_fullgraph_matches_eager(every_layer, assert_compiled_matches_eager):
    """The default backend, on a small convolutional model holding every layer in turn.

    One model for all: each inductor compile costs seconds under CI's interpreter.
    """
    torch.manual_seed(0)
    layers = [layer.build(4) for layer in every_layer]
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), *layers, nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    )
    assert_compiled_matches_eager(model, torch.randn(5, 1, 8, 8))


# (N, C, *): the sample shapes; the layer moves C to its channel dim.
SHAPES = {"4d": (2, 3, 6, 5), "3d": (2, 3, 7)}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_compile_dynamic_fullgraph_compiles_once(layer, mode, shape, device):
    """dynamic=True with fullgraph=True: one graph for every size (a fallback to eager fails)."""
    torch._dynamo.reset()
    module = layer.build(device=device, mode=mode)
    counter = CompileCounter()
    compiled = torch.compile(lambda t: module(t), fullgraph=True, dynamic=True, backend=counter)
    longer = tuple(s if d == 1 else s + 3 for d, s in enumerate(SHAPES[shape]))
    for size in (SHAPES[shape], longer):
        x = layer.sample(module, size, device=device)
        torch.testing.assert_close(compiled(x), module(x))
    assert counter.frame_count == 1


def _grads(module, x, dy, backward):
    """(dx, *parameter grads) of one forward and the given backward call."""
    x = x.detach().requires_grad_()
    module.zero_grad()
    backward(module(x), dy)
    return [x.grad] + [p.grad for p in module.parameters()]


def _eager_backward(y, dy):
    y.backward(dy)


def test_backward_traces_whole_under_compiled_autograd_with_fullgraph(layer, device):
    torch._dynamo.reset()
    module = layer.build(device=device)
    x = layer.sample(module, (4, 3, 5, 5), device=device)
    dy = torch.randn_like(x)
    want = _grads(module, x, dy, _eager_backward)

    def compiled_backward(y, dy):
        compiler = torch.compile(backend="eager", fullgraph=True)
        with compiled_autograd._enable(compiler):
            y.backward(dy)

    counters.clear()
    got = _grads(module, x, dy, compiled_backward)
    assert counters["compiled_autograd"]["captures"] == 1
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-6)


def test_backward_has_no_graph_break_under_the_compiled_autograd_config_flag(layer, device):
    torch._dynamo.reset()
    module = layer.build(device=device)
    x = layer.sample(module, (4, 3, 5, 5), device=device)
    dy = torch.randn_like(x)
    want = _grads(module, x, dy, _eager_backward)

    with torch._dynamo.config.patch(compiled_autograd=True):
        # The flag is read when torch.compile wraps the function; dynamo
        # itself breaks the graph at .backward() and runs it with compiled
        # autograd on, under the same (non-fullgraph) compiler.
        compiled_backward = torch.compile(_eager_backward, backend="eager")
        counters.clear()
        got = _grads(module, x, dy, compiled_backward)
    assert counters["compiled_autograd"]["captures"] == 1
    breaks = [reason for reason in counters["graph_break"] if "backward()" not in reason]
    assert not breaks, breaks  # only the outer .backward() call itself
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-6)
