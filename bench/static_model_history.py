"""Compile an old commit's kernels for sm_90, as its launches would: the model's calibration input.

The one GPU run (``results/report-cuda.json``) measured the kernels of commit
fac9bf6, whose codegen API differs from today's. ``static_model_calibration.py``
extracts that commit's ``elu_triton`` (with ``kernels/`` placed as
``elu_triton/kernels``, as its wheel installed it) into a folder and runs this
file there as a script, with that folder first on ``sys.path``:

    python static_model_history.py '[["forward", "bfloat16", "channel_per_row", [32, 256, 128, 128]], ...]'

It prints, per case, what the model reads: the cubin (base64), registers, shared memory,
tile, warps and grid, as JSON. It imports nothing of today's code.
"""

import base64
import json
import sys

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource


def compile_old(kernel: str, dtype: str, layout: str, shape: list) -> dict:
    from elu_triton import codegen, kernels
    from elu_triton.launch import launch_config_for
    from elu_triton.layout import memory_view

    x = torch.empty(shape, device="meta")
    if layout == "channel_per_column" and x.dim() == 4:
        x = x.to(memory_format=torch.channels_last)
    view = memory_view(x, 1 if layout == "shared_alpha" else shape[1])
    cfg = launch_config_for(view, getattr(torch, dtype).itemsize, on_gpu=True)
    case = codegen.CodegenCase(kernel, dtype, layout)
    fn = getattr(kernels, f"learnable_elu_{kernel}_kernel")
    signature, constexprs, attrs = codegen._specialize(
        fn, codegen._kernel_arguments(case, view, cfg)
    )
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    # The options that commit's launches used: Triton's defaults and the tile's warps.
    compiled = triton.compile(
        source, target=GPUTarget("cuda", 90, 32), options={"num_warps": cfg.num_warps}
    )
    n_regs, local_bytes = codegen._resource_usage(compiled.asm["cubin"], fn.__name__)
    return {
        "n_regs": n_regs, "local_bytes": local_bytes, "shared_bytes": compiled.metadata.shared,
        "block_r": cfg.block_r, "block_k": cfg.block_k, "num_warps": cfg.num_warps,
        "grid": list(cfg.grid), "cubin": base64.b64encode(compiled.asm["cubin"]).decode(),
    }  # fmt: skip


if __name__ == "__main__":
    json.dump([compile_old(*case) for case in json.loads(sys.argv[1])], sys.stdout)
