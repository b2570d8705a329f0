"""torch.jit.trace and torch.export record every layer as its composite (tests/layers.py's layers).

Under both, a layer routes to its reference composite: the graph holds
plain aten ops (no launch the tracer cannot see, no custom op a runtime
without this package lacks), and replays the layer on other inputs.
"""

import copy

import pytest
import torch
from torch.export import Dim


@pytest.mark.filterwarnings("ignore:.*torch.jit.trace. is deprecated:DeprecationWarning")
def test_jit_trace_replays_the_composite(layer, mode, device, recwarn):
    """The trace holds aten ops (no launch it cannot see), and replays on other inputs."""
    module = layer.build(device=device, mode=mode)
    eager, twin = copy.deepcopy(module), copy.deepcopy(module)
    traced = torch.jit.trace(module, layer.sample(module, (2, 3, 4, 4), device=device))
    kinds = {node.kind() for node in traced.graph.nodes()}
    assert {f"aten::{op}" for op in layer.composite_ops} <= kinds, kinds
    assert "prim::PythonOp" not in kinds
    assert all(k.startswith(("aten::", "prim::")) for k in kinds), kinds
    assert not [w for w in recwarn if issubclass(w.category, torch.jit.TracerWarning)]
    traced.load_state_dict(twin.state_dict())  # (the trace's own forward counted a batch)
    x = layer.sample(module, (5, 3, 2, 6), device=device).requires_grad_()
    y, want, eager_y = traced(x), layer.reference_twin(twin)(x), eager(x)
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, eager_y)
    expected = twin.state_dict()
    for name, got in traced.state_dict().items():
        if got.is_floating_point():  # (the composite counts no batches: F.batch_norm's stats)
            torch.testing.assert_close(got, expected[name], rtol=1e-6, atol=1e-6, msg=name)
    (dx,) = torch.autograd.grad(y.sum(), x)  # the trace is differentiable
    torch.testing.assert_close(dx, torch.autograd.grad(want.sum(), x)[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(dx, torch.autograd.grad(eager_y.sum(), x)[0])


def _custom_op_nodes(graph):
    return [n for n in graph.nodes if n.op == "call_function" and "elu_triton" in str(n.target)]


# (N, C, *): the sample shapes; the layer moves C to its channel dim.
SHAPES = {"4d": (2, 3, 6, 5), "3d": (2, 3, 7)}


def _two_sizes(layer, module, shape, device):
    """x of shape (SHAPES), x with every dim but the channels' 3 longer, and the channel dim."""
    other = tuple(s if d == 1 else s + 3 for d, s in enumerate(shape))
    x = layer.sample(module, shape, device=device)
    return x, layer.sample(module, other, device=device), layer.channel_dim(module, x)


@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_export_with_every_dim_dynamic_but_the_channels(layer, mode, shape, strict, device):
    module = layer.build(device=device, mode=mode)
    x, other, channel = _two_sizes(layer, module, SHAPES[shape], device)
    dynamic = {d: Dim.DYNAMIC for d in range(x.dim()) if d != channel}
    program = torch.export.export(module, (x,), dynamic_shapes=(dynamic,), strict=strict)
    # The layer became its composite: plain aten ops, no custom op.
    assert _custom_op_nodes(program.graph) == []
    exported, eager = program.module(), copy.deepcopy(module)
    for sample in (x, other):
        # fp32 default rtol, and atol 1e-6: the tighter of the two originals each
        torch.testing.assert_close(exported(sample), eager(sample), rtol=1.3e-6, atol=1e-6)
    want = eager.state_dict()
    for name, got in exported.state_dict().items():  # running statistics updated alike
        torch.testing.assert_close(got, want[name], rtol=1e-6, atol=1e-6, msg=name)
