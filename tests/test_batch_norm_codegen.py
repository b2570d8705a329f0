"""The fused layer's kernels compile for Hopper (sm_90) without a GPU: no spills, no atomics.

Compiled in a child process without TRITON_INTERPRET (under the interpreter
the kernels cannot be compiled), specialized as a launch on a (8, 64, 24,
24) CUDA tensor would be (``elu_triton.codegen``'s helpers). The parameter
gradients' determinism rests on the reduction writing partials with plain
stores: the PTX must hold no atom or red instruction.
"""

import json
import os
import subprocess
import sys

import pytest

_CHILD = r"""
import json, re, sys, torch, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from elu_triton.backends.triton_config import COMPILE_OPTIONS, TUNING, launch_config_for
from elu_triton.codegen import HOPPER, _resource_usage, _specialize, example_view
from elu_triton.kernels import batch_norm_backward, batch_norm_forward, batch_norm_statistics

dtype, layout = sys.argv[1], sys.argv[2]
data = {"float32": "*fp32", "bfloat16": "*bf16", "float64": "*fp64"}[dtype]
vector = "*fp64" if dtype == "float64" else "*fp32"
view = example_view(layout)
cfg = launch_config_for(view, getattr(torch, dtype).itemsize, TUNING["cuda"])
values = dict(
    R=view.rows, K=view.cols, C=view.channels, CHANNEL_IS_COLUMN=view.channel_is_column,
    BLOCK_R=cfg.block_r, BLOCK_K=cfg.block_k, K_MULTIPLE=cfg.k_multiple, INDEX_64=cfg.index_64,
    COMPUTE_DALPHA=True, TRAINING=True,
)
results = {}
for fn in (
    batch_norm_statistics.batch_norm_statistics_kernel,
    batch_norm_forward.batch_norm_elu_forward_kernel,
    batch_norm_backward.batch_norm_elu_reduce_kernel,
    batch_norm_backward.batch_norm_elu_dx_kernel,
):
    args = {n: values[n] if n in values else data if n[:-4] in ("x", "y", "dy", "dx") else vector
            for n in fn.arg_names}
    signature, constexprs, attrs = _specialize(fn, args)
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    compiled = triton.compile(source, target=GPUTarget(*HOPPER),
                              options={"num_warps": cfg.num_warps, **COMPILE_OPTIONS})
    regs, local = _resource_usage(compiled.asm["cubin"], fn.__name__)
    atomics = len(re.findall(r"\b(?:atom|red)\.", compiled.asm["ptx"]))
    results[fn.__name__] = {"regs": regs, "local_bytes": local, "atomics": atomics}
print(json.dumps(results))
"""


@pytest.mark.parametrize("layout", ["channel_per_row", "channel_per_column"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_kernels_compile_without_spills_or_atomics(dtype, layout):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, dtype, layout], env=env, capture_output=True, text=True
    )
    assert child.returncode == 0, child.stderr[-4000:]
    results = json.loads(child.stdout.strip().splitlines()[-1])
    assert len(results) == 4
    for name, usage in results.items():
        assert usage["atomics"] == 0, name
        assert usage["local_bytes"] == 0, (name, usage)  # no spills
