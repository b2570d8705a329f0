"""ELU_TRITON_COMPILED_BACKWARD=triton_op (elu_triton/compiled_backward.py): the candidate's op and graph.

The op's body is the eager backward's kernel and launch: its dx and dalpha
are the eager backward's, bitwise (the interpreter, or a GPU). Under
torch.compile its backward graph holds the kernel as a user-defined Triton
kernel, with the launch's tiles: traced in a child process without
TRITON_INTERPRET (the interpreter's kernels cannot be traced), and on a GPU
compiled by inductor and run against the eager layer.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import elu_triton

compiled_backward = pytest.importorskip("elu_triton.compiled_backward")
ROOT = Path(__file__).resolve().parents[1]

INPUTS = {
    "contiguous": lambda d: torch.randn(3, 6, 7, 7, device=d),
    "channels_last": lambda d: torch.randn(3, 6, 5, 4, device=d).to(
        memory_format=torch.channels_last
    ),
    "(N, C)": lambda d: torch.randn(70, 6, device=d),
    "not dense": lambda d: torch.randn(3, 12, 7, 8, device=d)[:, ::2, :, 1:],
}


def _grads(fn, x, alpha, dy):
    x = x.detach().requires_grad_()
    alpha = alpha.detach().requires_grad_(alpha.requires_grad)
    y = fn(x, alpha)
    wrt = (x, alpha) if alpha.requires_grad else (x,)
    return y, torch.autograd.grad(y, wrt, dy)


# Where the eager layer runs the Triton kernels: the interpreter's CPU, a GPU.
KERNEL_DEVICES = ["cpu"] * compiled_backward.INTERPRETED + ["cuda"] * torch.cuda.is_available()


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("alpha_kind", ["per channel", "shared", "no grad"])
@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_op_runs_the_eager_kernel_and_launch(device, inputs, alpha_kind, dtype, make_alpha):
    x = INPUTS[inputs](device).to(dtype)
    alpha = make_alpha(1 if alpha_kind == "shared" else 6, device=device)
    alpha.requires_grad_(alpha_kind != "no grad")
    dy = torch.randn_like(x)
    y, grads = _grads(compiled_backward.CompositeForwardKernelBackward.apply, x, alpha, dy)
    eager_y, eager_grads = _grads(elu_triton.learnable_elu, x, alpha, dy)
    torch.testing.assert_close(y, eager_y)  # the composite forward, within rounding
    for got, want in zip(grads, eager_grads):
        assert torch.equal(got, want) and got.stride() == want.stride()


@pytest.mark.parametrize("device", ["cuda"])
def test_inductor_compiles_the_kernel_into_the_graph(device, make_alpha):
    if not torch.cuda.is_available():
        pytest.skip("inductor compiles user-defined Triton kernels for GPUs")
    for dtype in (torch.float32, torch.bfloat16):
        nchw = torch.randn(8, 64, 14, 14, device=device).to(dtype)
        alpha = make_alpha(64, device=device).requires_grad_()
        for x in (nchw, nchw.to(memory_format=torch.channels_last)):
            dy = torch.randn_like(x)
            compiled = torch.compile(compiled_backward.learnable_elu, fullgraph=True)
            y, grads = _grads(compiled, x, alpha, dy)
            eager_y, eager_grads = _grads(elu_triton.learnable_elu, x, alpha, dy)
            torch.testing.assert_close(y, eager_y)
            torch.testing.assert_close(grads[0], eager_grads[0])
            torch.testing.assert_close(grads[1], eager_grads[1], rtol=1e-5, atol=1e-5)


_TRACE = """
import json, torch
from torch._dynamo.backends.common import aot_autograd
from elu_triton import compiled_backward
from elu_triton.backends.triton_config import kernel_args_for

graphs = {}

class NotRunnable(Exception):
    pass

def keep(name):
    def compiler(gm, example_inputs):
        graphs[name] = gm
        if name == "forward":
            return gm
        def cannot_run(*args):  # a CPU has no driver to launch a compiled kernel on
            raise NotRunnable
        return cannot_run
    return compiler

x = torch.randn(4, 6, 5, 5).to(memory_format=torch.channels_last).requires_grad_()
alpha = (torch.rand(6) + 0.5).requires_grad_()
backend = aot_autograd(fw_compiler=keep("forward"), bw_compiler=keep("backward"))
f = torch.compile(compiled_backward.learnable_elu, backend=backend, fullgraph=True)
y = f(x, alpha)
try:
    y.backward(torch.ones_like(y))
except NotRunnable:
    pass
(launch,) = [n for n in graphs["backward"].graph.nodes if "triton_kernel_wrapper" in str(n.target)]
forward_ops = [str(n.target) for n in graphs["forward"].graph.nodes if n.op == "call_function"]
args = kernel_args_for(x.shape, x.stride(), x.dtype, "cpu", 6)
print(json.dumps({
    "kwargs": {k: v for k, v in launch.kwargs["kwargs"].items() if k.isupper()},
    "expected": {k: v for k, v in args.constants.items() if k.isupper()},
    "sizes": dict(zip("RKC", args.sizes)),
    "grid": list(launch.kwargs["grid"][0]), "expected_grid": list(args.config.grid),
    "forward_ops": forward_ops,
    "saved": len(graphs["forward"].graph.output_node().args[0]) - 1,
}))
"""


def test_compiled_backward_graph_holds_the_kernel_with_the_launchs_tiles():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-c", _TRACE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["kwargs"] == {**seen["expected"], **seen["sizes"], "COMPUTE_DALPHA": True}
    assert seen["grid"][0] == seen["expected_grid"][0]
    assert not any("triton" in op for op in seen["forward_ops"])  # the composite forward
    assert seen["saved"] == 2  # x and alpha, never y


_COMPILE_EMITTED = """
import importlib.util, json, sys
from pathlib import Path
import triton
from torch._inductor.codegen import wrapper
from elu_triton import codegen, compiled_backward
from elu_triton.kernels import learnable_elu_backward_kernel

# The source inductor compiles for the user-defined kernel, as a module of its own.
source = wrapper.user_defined_triton_kernel_transitive_closure_source_code(
    learnable_elu_backward_kernel
)
path = Path(sys.argv[1]) / "emitted_backward.py"
path.write_text("import triton\\nimport triton.language as tl\\n\\n@triton.jit\\n" + source)
spec = importlib.util.spec_from_file_location("emitted_backward", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
codegen.kernel_function = lambda kernel: module.learnable_elu_backward_kernel
results = {}
for layout in ("channel_per_row", "channel_per_column"):
    case = codegen.CodegenCase("backward", "bfloat16", layout, target="sm_90")
    compiled = codegen.compile_case(case)
    results[layout] = {"regs": compiled.n_regs, "spills": compiled.local_bytes}
print(json.dumps(results))
"""


def test_the_source_inductor_emits_for_the_kernel_compiles(tmp_path):
    # Inductor recompiles a triton_op's kernel from its source; ours needs tiles.Tile.
    # A fresh cache: the emitted source is the original's, and a cache hit would
    # skip the frontend that finds the name missing.
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
    done = subprocess.run(
        [sys.executable, "-c", _COMPILE_EMITTED, str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    compiled = json.loads(done.stdout.splitlines()[-1])
    assert all(c["regs"] > 0 and c["spills"] == 0 for c in compiled.values()), compiled
