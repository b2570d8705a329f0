"""Compiled autograd traces each layer's backward, by both of its switches.

Compiled autograd hands the whole backward graph to dynamo, so every
question the backward asks must be traceable (or answered before dynamo
sees it). Two switches turn it on: the private context manager that torch's
own tests use, and the public config flag; both run here, so that a rename
of the private one cannot silently skip the check.
"""

import pytest
import torch
from torch._dynamo import compiled_autograd
from torch._dynamo.utils import counters

from elu_triton import BatchNormLearnableELU, LearnableELU


def _layer(kind: str, device: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "LearnableELU":
        layer = LearnableELU(3, init=0.7, device=device)
    else:
        layer = BatchNormLearnableELU(3, init=0.7, device=device)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.rand_like(p) * 0.5)
    return layer


def _grads(layer, x, dy, backward):
    """(dx, *parameter grads) of one forward and the given backward call."""
    x = x.detach().requires_grad_()
    layer.zero_grad()
    backward(layer(x), dy)
    return [x.grad] + [p.grad for p in layer.parameters()]


def _eager_backward(y, dy):
    y.backward(dy)


LAYERS = ["LearnableELU", "BatchNormLearnableELU"]


@pytest.mark.parametrize("kind", LAYERS)
def test_backward_traces_whole_under_compiled_autograd_with_fullgraph(kind, device):
    torch._dynamo.reset()
    layer = _layer(kind, device)
    x = torch.randn(4, 3, 5, 5, device=device) * 2
    dy = torch.randn_like(x)
    want = _grads(layer, x, dy, _eager_backward)

    def compiled_backward(y, dy):
        compiler = torch.compile(backend="eager", fullgraph=True)
        with compiled_autograd._enable(compiler):
            y.backward(dy)

    counters.clear()
    got = _grads(layer, x, dy, compiled_backward)
    assert counters["compiled_autograd"]["captures"] == 1
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", LAYERS)
def test_backward_has_no_graph_break_under_the_compiled_autograd_config_flag(kind, device):
    torch._dynamo.reset()
    layer = _layer(kind, device)
    x = torch.randn(4, 3, 5, 5, device=device) * 2
    dy = torch.randn_like(x)
    want = _grads(layer, x, dy, _eager_backward)

    with torch._dynamo.config.patch(compiled_autograd=True):
        # The flag is read when torch.compile wraps the function; dynamo
        # itself breaks the graph at .backward() and runs it with compiled
        # autograd on, under the same (non-fullgraph) compiler.
        compiled_backward = torch.compile(_eager_backward, backend="eager")
        counters.clear()
        got = _grads(layer, x, dy, compiled_backward)
    assert counters["compiled_autograd"]["captures"] == 1
    breaks = [reason for reason in counters["graph_break"] if "backward()" not in reason]
    assert not breaks, breaks  # only the outer .backward() call itself
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-6)
