"""Export: torch.export, and ONNX through the dynamo exporter into ONNX Runtime.

During torch.export (strict and non-strict, hence also torch.onnx.export's
dynamo path) torch.compiler.is_compiling() is True, so learnable_elu routes
to the reference composite: the exported graph holds plain aten ops and the
ONNX model standard ONNX operators (Greater, Where, Exp, Sub, Mul), runnable
by ONNX Runtime without this package.

The ONNX tests need the ``onnx`` extra (onnx, onnxscript, onnxruntime) and
skip without it.
"""

import io

import pytest
import torch
from torch import nn
from torch.export import Dim

from elu_triton import LearnableELU


def _conv_model(alpha_size: int = 4) -> nn.Module:
    torch.manual_seed(0)
    act = LearnableELU(alpha_size)
    with torch.no_grad():
        act.alpha.copy_(torch.linspace(0.2, 1.8, alpha_size))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), act, nn.Conv2d(4, 2, 1))
    with torch.no_grad():  # BatchNorm with non-trivial running stats, used in eval mode
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return model.eval()


def _linear_model() -> nn.Module:
    """(N, C) activations, one alpha shared by all channels."""
    torch.manual_seed(0)
    act = LearnableELU(1, init=0.6)
    return nn.Sequential(nn.Linear(5, 6), act, nn.Linear(6, 2)).eval()


MODELS = {
    "conv-per-channel": (_conv_model, (3, 8, 8)),
    "conv-shared": (lambda: _conv_model(1), (3, 8, 8)),
    "linear-shared": (_linear_model, (5,)),
}
BATCH = Dim("batch", min=1, max=64)


def _export(model, sample, strict):
    return torch.export.export(model, (sample,), dynamic_shapes=({0: BATCH},), strict=strict)


def _custom_op_nodes(graph):
    return [n for n in graph.nodes if n.op == "call_function" and "elu_triton" in str(n.target)]


@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
@pytest.mark.parametrize("name", list(MODELS))
def test_torch_export_matches_eager(name, strict, device):
    build, item_shape = MODELS[name]
    model = build().to(device)
    program = _export(model, torch.randn(2, *item_shape, device=device), strict)
    # The layer became the reference composite: plain aten ops, no custom op.
    assert _custom_op_nodes(program.graph) == []
    exported = program.module()
    for batch in (1, 5):
        x = torch.randn(batch, *item_shape, device=device)
        x[0].view(-1)[:4] = torch.tensor([0.0, -1e-7, -20.0, 1e-7])  # edges of the branch
        with torch.no_grad():
            torch.testing.assert_close(exported(x), model(x), rtol=1e-5, atol=1e-6)


def test_exported_program_saves_and_loads():
    model = _conv_model()
    program = _export(model, torch.randn(2, 3, 8, 8), strict=False)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    buffer.seek(0)
    loaded = torch.export.load(buffer)
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module()(x), model(x), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def onnxruntime():
    reason = 'ONNX export needs the onnx extra: pip install "elu_triton[onnx]"'
    pytest.importorskip("onnx", reason=reason)
    pytest.importorskip("onnxscript", reason=reason)
    return pytest.importorskip("onnxruntime", reason=reason)


def _trained(model: nn.Module, item_shape) -> nn.Module:
    """A few SGD steps, so the exported alpha is a trained one, not the initial value."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, *item_shape)
    for _ in range(3):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
    return model.eval()


# torch.onnx's own pytree use warns on some torch versions; not ours to fix.
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_runtime_matches_eager(name, onnxruntime):
    build, item_shape = MODELS[name]
    model = _trained(build(), item_shape)
    onnx_program = torch.onnx.export(
        model, (torch.randn(2, *item_shape),), dynamo=True, verbose=False,
        input_names=["x"], dynamic_shapes=({0: BATCH},),
    )  # fmt: skip
    proto = onnx_program.model_proto
    # Standard operators only: nothing a runtime without this package lacks.
    assert {node.domain for node in proto.graph.node} <= {"", "ai.onnx"}
    assert len(proto.functions) == 0
    assert {"Exp", "Where"} <= {node.op_type for node in proto.graph.node}

    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    for batch in (1, 7):
        x = torch.randn(batch, *item_shape)
        x[0].view(-1)[:4] = torch.tensor([0.0, -1e-7, -20.0, 1e-7])
        (got,) = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            want = model(x)
        # ONNX has no Expm1: exp(x) - 1 loses relative, not absolute, accuracy
        # near 0, about 1e-7 * alpha.
        torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-5)
