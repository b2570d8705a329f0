"""Ahead-of-time compilation of the kernels for every GPU family, without a GPU.

The cases (kernel, dtype, layout, target) are ``codegen_cases.py``'s table,
whose names this module also exports; reading the compiled code is
``assembly.py``'s job. This module compiles.


Triton's compiler, with the tools it bundles, turns the kernels into PTX and
a cubin for NVIDIA targets (sm_80, sm_90, sm_100) and into AMDGCN for ROCm
ones (gfx942, gfx90a) on any machine. ``tests/test_codegen.py`` reads them
(``assembly.py``) to guard the properties the kernels rely on: the big
tensors (x, y, dy, dx) move in 128-bit accesses, nothing spills, the
backward has no atomics, every fma is explicit. ``python -m
elu_triton.codegen [TARGET]`` prints the register counts.

Each case is specialized the way a launch on a contiguous GPU tensor of
``EXAMPLE_SHAPE`` would be: tile and warps from ``launch_config_for`` (the
batch norm's passes on NVIDIA targets: ``batch_norm/launch.py``);
pointers and integer arguments divisible by 16 carry that divisibility;
integer arguments equal to 1 become constants (Triton's specialization).

Under TRITON_INTERPRET=1 (set before import) the kernels are interpreter
objects that cannot be compiled, so ``compile_cases`` always compiles in
child processes whose environment lacks TRITON_INTERPRET.
"""

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from .assembly import amdgcn_resources, cubin_resources, sass_of
from .backends.triton_config import COMPILE_OPTIONS, LaunchConfig, launch_config_for, tuning_for
from .batch_norm.launch import pass_launch_config
from .codegen_cases import (
    ACTIVATION_KERNELS,
    DTYPES,
    EXAMPLE_SHAPE,
    KERNELS,
    LAYOUTS,
    TARGETS,
    CodegenCase,
    Kernel,
    activation_helpers,
    all_cases,
    example_view,
    kernel_function,
)
from .layout import MemoryView

__all__ = [
    # the case table (codegen_cases.py), importable from here as before
    "ACTIVATION_KERNELS",
    "DTYPES",
    "EXAMPLE_SHAPE",
    "KERNELS",
    "LAYOUTS",
    "TARGETS",
    "CodegenCase",
    "Kernel",
    "all_cases",
    "example_view",
    "kernel_function",
    # compiling
    "COMPILE_OPTIONS",
    "CompiledCase",
    "compile_case",
    "compile_cases",
]

_BIG_TENSORS = {"x_ptr", "y_ptr", "dy_ptr", "dx_ptr"}  # in x's dtype
# The TUNING row a launch on each backend's GPUs takes (triton_config.tuning_kind).
_TUNING_KIND = {"cuda": "cuda", "hip": "rocm"}

_TRITON_POINTER_TYPES = {
    "float32": "*fp32",
    "bfloat16": "*bf16",
    "float16": "*fp16",
    "float64": "*fp64",
}
_ALPHA_DTYPE = "float32"  # LearnableELU's default parameter dtype
_DIVISIBILITY = [["tt.divisibility", 16]]


@dataclass(frozen=True)
class CompiledCase:
    """What the compiler made of a CodegenCase."""

    case: CodegenCase
    asm: str  # PTX (NVIDIA) or AMDGCN (ROCm)
    ttir_fma: int  # tl.fma operations in Triton's IR, each over the whole tile
    n_regs: int  # registers per thread: from the cubin (NVIDIA), VGPRs (ROCm)
    local_bytes: int  # local memory or scratch per thread, spills included; 0: no spills
    block_r: int
    block_k: int
    num_warps: int
    warp_size: int
    param_names: tuple  # kernel arguments in parameter order (constants left out)
    pointer_names: tuple  # those of param_names that are pointers
    grid: tuple = ()  # the launch's grid
    shared_bytes: int = 0  # shared memory per program
    sass: str = ""  # the cubin's SASS (NVIDIA, when asked for)

    @property
    def elements_per_thread(self) -> int:
        return self.block_r * self.block_k // (self.num_warps * self.warp_size)


def _kernel_arguments(case: CodegenCase, view: MemoryView, cfg: LaunchConfig) -> dict:
    """Argument values by name: Triton pointer types for pointers, else the value.

    x, y, dy and dx are in the case's dtype, alpha (and the batch norm's
    param) in its parameter dtype, and every other vector (partial sums,
    per-channel statistics) in the compute dtype, as the host allocates them.
    The batch norm's activation helpers are the case's activation's, and
    its LOADS_FIRST is on for NVIDIA targets, as the host launches them.
    """
    data = _TRITON_POINTER_TYPES[case.dtype]
    compute = "*fp64" if case.dtype == "float64" else "*fp32"
    values = {"R": view.rows, "K": view.cols, "C": view.channels,
              "CHANNEL_IS_COLUMN": view.channel_is_column, "BLOCK_R": cfg.block_r,
              "BLOCK_K": cfg.block_k, "K_MULTIPLE": cfg.k_multiple, "INDEX_64": cfg.index_64,
              "COMPUTE_DALPHA": case.compute_dalpha, "COMPUTE_DPARAM": case.compute_dalpha,
              "TRAINING": True, "LOADS_FIRST": TARGETS[case.target][0] == "cuda",
              **activation_helpers(case.activation)}  # fmt: skip
    arguments = {}
    for name in kernel_function(case.kernel).arg_names:
        if name in _BIG_TENSORS:
            arguments[name] = data
        elif name in ("alpha_ptr", "param_ptr"):
            arguments[name] = _TRITON_POINTER_TYPES[_ALPHA_DTYPE]
        elif name.endswith("_ptr"):
            arguments[name] = compute
        else:
            arguments[name] = values[name]
    return arguments


def _specialize(fn, values: dict) -> tuple[dict, dict, dict]:
    """(signature, constexprs, attrs) for ASTSource, as a launch would specialize."""
    signature, constexprs, attrs = {}, {}, {}
    for index, name in enumerate(fn.arg_names):
        value = values[name]
        if index in fn.constexprs or (type(value) is int and value == 1):
            signature[name], constexprs[name] = "constexpr", value
        elif isinstance(value, str):  # pointer; torch allocations are 16-byte aligned
            signature[name], attrs[(index,)] = value, _DIVISIBILITY
        else:
            signature[name] = "i32" if abs(value) < 2**31 else "i64"
            if value % 16 == 0:
                attrs[(index,)] = _DIVISIBILITY
    return signature, constexprs, attrs


def compile_case(
    case: CodegenCase, options: Mapping | None = None, sass: bool = False
) -> CompiledCase:
    """Compile one case for its target in this process, with the launches' options.

    options: compile options instead of ``COMPILE_OPTIONS`` (num_warps aside).
    sass: also disassemble the cubin (NVIDIA targets; cuobjdump, tens of ms).

    Raises:
        RuntimeError: the kernels were imported under TRITON_INTERPRET=1 (use
            ``compile_cases``, which compiles in a child process).
    """
    fn = kernel_function(case.kernel)
    if not isinstance(fn, triton.runtime.JITFunction):
        raise RuntimeError("kernels imported under TRITON_INTERPRET=1; use compile_cases()")
    backend, arch, warp_size = TARGETS[case.target]
    view = example_view(case.layout, case.shape)
    element_size = getattr(torch, case.dtype).itemsize
    if backend == "cuda" and case.kernel.startswith("bn_"):  # (batch_norm/launch.py)
        cfg = pass_launch_config(view, element_size, case.kernel.removeprefix("bn_"))
    else:
        cfg = launch_config_for(view, element_size, tuning_for(_TUNING_KIND[backend], element_size))
    signature, constexprs, attrs = _specialize(fn, _kernel_arguments(case, view, cfg))
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    options = dict(COMPILE_OPTIONS if options is None else options, num_warps=cfg.num_warps)
    compiled = triton.compile(source, target=GPUTarget(backend, arch, warp_size), options=options)
    if case.isa == "ptx":
        tool = triton.knobs.nvidia.cuobjdump.path
        n_regs, local_bytes = cubin_resources(compiled.asm["cubin"], fn.__name__, tool)
    else:
        n_regs, local_bytes = amdgcn_resources(compiled.asm["amdgcn"])
    params = tuple(name for name in fn.arg_names if signature[name] != "constexpr")
    disassembly = ""
    if sass and case.isa == "ptx":
        disassembly = sass_of(compiled.asm["cubin"], triton.knobs.nvidia.cuobjdump.path)
    return CompiledCase(
        case, compiled.asm[case.isa], compiled.asm["ttir"].count("math.fma"), n_regs,
        local_bytes, cfg.block_r, cfg.block_k, cfg.num_warps, warp_size, params,
        tuple(name for name in params if signature[name].startswith("*")), cfg.grid,
        compiled.metadata.shared, disassembly,
    )  # fmt: skip


def compile_cases(
    cases: Sequence[CodegenCase], jobs: int = 2, env: Mapping | None = None, sass: bool = False
) -> list[CompiledCase]:
    """Compile cases in ``jobs`` child processes without TRITON_INTERPRET.

    env: variables to set in the children (Triton's knobs, say).
    sass: also disassemble each cubin (``compile_case``).
    Returns the results in the order of ``cases``. Raises RuntimeError with the
    child's stderr when a compilation fails.
    """
    child_env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    child_env.update(env or {})
    chunks = [list(cases[i::jobs]) for i in range(jobs) if cases[i::jobs]]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "elu_triton.codegen", "--sass" if sass else "--json",
             json.dumps([asdict(c) for c in chunk])],
            env=child_env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for chunk in chunks
    ]  # fmt: skip
    results = {}
    for child in children:
        out, err = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"codegen child failed ({child.returncode}):\n{err[-4000:]}")
        if err:
            raise RuntimeError(f"codegen child wrote to stderr (a warning?):\n{err[-4000:]}")
        for item in json.loads(out):
            compiled = _compiled_from_json(item)
            results[compiled.case] = compiled
    return [results[case] for case in cases]


def _case_from_json(item: dict) -> CodegenCase:
    return CodegenCase(**dict(item, shape=tuple(item["shape"])))


def _compiled_from_json(item: dict) -> CompiledCase:
    item = dict(item, case=_case_from_json(item["case"]))
    return CompiledCase(**{k: tuple(v) if isinstance(v, list) else v for k, v in item.items()})


def _main(argv: list[str]) -> None:
    if argv[:1] in (["--json"], ["--sass"]):  # child of compile_cases
        cases = [_case_from_json(c) for c in json.loads(argv[1])]
        sass = argv[0] == "--sass"
        json.dump([asdict(compile_case(c, sass=sass)) for c in cases], sys.stdout)
        return
    targets = argv or ["sm_90"]
    print(f"x of shape {EXAMPLE_SHAPE}, alpha {_ALPHA_DTYPE}")
    print(
        f"{'target':<8}{'kernel':<22}{'dtype':<10}{'layout':<20}{'tile':>10}{'warps':>6}"
        f"{'regs':>6}{'local B':>8}"
    )
    for c in compile_cases(all_cases(targets)):
        kernel = c.case.kernel + ("" if c.case.compute_dalpha else " (no dalpha)")
        tile = f"{c.block_r}x{c.block_k}"
        print(f"{c.case.target:<8}{kernel:<22}{c.case.dtype:<10}{c.case.layout:<20}{tile:>10}"
              f"{c.num_warps:>6}{c.n_regs:>6}{c.local_bytes:>8}")  # fmt: skip


if __name__ == "__main__":
    _main(sys.argv[1:])
