"""Routes the eager test cannot see: autograd's batched gradients and torch.jit.trace."""

import pytest
import torch

from elu_triton import LearnableELU


@pytest.mark.filterwarnings("ignore:.*torch.jit.trace. is deprecated:DeprecationWarning")
@pytest.mark.parametrize("channel_dim", [1, -1])
def test_jit_trace_replays_the_composite(channel_dim, device, recwarn):
    """The trace holds aten ops (no launch it cannot see), and replays on other inputs."""
    torch.manual_seed(0)
    layer = LearnableELU(3, init=0.6, channel_dim=channel_dim, device=device)
    shape = (2, 3, 4) if channel_dim == 1 else (2, 4, 3)
    traced = torch.jit.trace(layer, torch.randn(shape, device=device))
    kinds = {node.kind() for node in traced.graph.nodes()}
    assert "aten::expm1" in kinds and "prim::PythonOp" not in kinds
    assert all(k.startswith(("aten::", "prim::")) for k in kinds)
    assert not [w for w in recwarn if issubclass(w.category, torch.jit.TracerWarning)]
    other = (5, 3, 7) if channel_dim == 1 else (5, 7, 3)
    x = torch.randn(other, device=device, requires_grad=True)
    y = traced(x)
    torch.testing.assert_close(y, layer(x))
    y.sum().backward()  # and the trace is differentiable
    (want,) = torch.autograd.grad(layer(x).sum(), x)
    torch.testing.assert_close(x.grad, want)
