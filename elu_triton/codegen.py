"""Ahead-of-time compilation of the kernels for every GPU family, without a GPU.

Triton's compiler, with the tools it bundles, turns the kernels into PTX and
a cubin for NVIDIA targets (sm_80, sm_90, sm_100) and into AMDGCN for ROCm
ones (gfx942, gfx90a) on any machine. ``tests/test_codegen.py`` reads them
(``assembly.py``) to guard the properties the kernels rely on: the big
tensors (x, y, dy, dx) move in 128-bit accesses, nothing spills, the
backward has no atomics, every fma is explicit. ``python -m
elu_triton.codegen [TARGET]`` prints the register counts.

Each case is specialized the way a launch on a contiguous GPU tensor of
``EXAMPLE_SHAPE`` would be: tile and warps from ``launch_config_for``;
pointers and integer arguments divisible by 16 carry that divisibility;
integer arguments equal to 1 become constants (Triton's specialization).

Under TRITON_INTERPRET=1 (set before import) the kernels are interpreter
objects that cannot be compiled, so ``compile_cases`` always compiles in
child processes whose environment lacks TRITON_INTERPRET.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from . import kernels
from .assembly import amdgcn_resources
from .backends.triton_config import COMPILE_OPTIONS, TUNING, LaunchConfig, launch_config_for
from .layout import MemoryView, memory_view

# (N, C, H, W) with K = H*W = 576 (NCHW) and K = C = 64 (channels_last)
# multiples of 16: Triton then knows rows start 16-byte aligned. (With K = 49
# or 196, 7x7 or 14x14 maps, it does not, and the accesses become scalar.)
EXAMPLE_SHAPE = (8, 64, 24, 24)


@dataclass(frozen=True)
class Kernel:
    """A kernel to check, and which of its pointers move activation-sized tensors."""

    function: str  # its name in elu_triton.kernels
    big_loads: tuple  # pointers read element by element: 128-bit accesses expected
    big_stores: tuple  # pointers written element by element


KERNELS = {
    "forward": Kernel("learnable_elu_forward_kernel", ("x_ptr",), ("y_ptr",)),
    "backward": Kernel("learnable_elu_backward_kernel", ("x_ptr", "dy_ptr"), ("dx_ptr",)),
    # The fused batch norm + activation (elu_triton.batch_norm).
    "bn_statistics": Kernel("batch_norm_statistics_kernel", ("x_ptr",), ()),
    "bn_forward": Kernel("batch_norm_elu_forward_kernel", ("x_ptr",), ("y_ptr",)),
    "bn_reduce": Kernel("batch_norm_elu_reduce_kernel", ("x_ptr", "dy_ptr"), ()),
    "bn_dx": Kernel("batch_norm_elu_dx_kernel", ("x_ptr", "dy_ptr"), ("dx_ptr",)),
}
ACTIVATION_KERNELS = ("forward", "backward")
_BIG_TENSORS = {"x_ptr", "y_ptr", "dy_ptr", "dx_ptr"}  # in x's dtype
LAYOUTS = ("channel_per_row", "channel_per_column", "shared_alpha")
DTYPES = ("float32", "bfloat16", "float16", "float64")
# GPUTarget(backend, arch, warp size) of each family checked: Ampere, Hopper,
# Blackwell; CDNA3 (MI300) and CDNA2 (MI200).
TARGETS = {
    "sm_80": ("cuda", 80, 32),
    "sm_90": ("cuda", 90, 32),
    "sm_100": ("cuda", 100, 32),
    "gfx942": ("hip", "gfx942", 64),
    "gfx90a": ("hip", "gfx90a", 64),
}
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
class CodegenCase:
    """One specialization to compile: kernel, input dtype, memory layout, GPU target."""

    kernel: str  # one of KERNELS
    dtype: str  # one of DTYPES, the dtype of x (and y, dy, dx)
    layout: str  # one of LAYOUTS
    compute_dalpha: bool = True  # backward only
    target: str = "sm_90"  # one of TARGETS

    @property
    def isa(self) -> str:
        """ "ptx" for NVIDIA targets, "amdgcn" for ROCm ones."""
        return "ptx" if TARGETS[self.target][0] == "cuda" else "amdgcn"


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

    @property
    def elements_per_thread(self) -> int:
        return self.block_r * self.block_k // (self.num_warps * self.warp_size)


def example_view(layout: str) -> MemoryView:
    """The (R, K) view the host builds for ``EXAMPLE_SHAPE`` in the given layout."""
    x = torch.empty(EXAMPLE_SHAPE, device="meta")
    if layout == "channel_per_row":
        return memory_view(x, EXAMPLE_SHAPE[1])
    if layout == "channel_per_column":
        return memory_view(x.to(memory_format=torch.channels_last), EXAMPLE_SHAPE[1])
    if layout == "shared_alpha":
        return memory_view(x, 1)
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def _kernel_arguments(case: CodegenCase, view: MemoryView, cfg: LaunchConfig) -> dict:
    """Argument values by name: Triton pointer types for pointers, else the value.

    x, y, dy and dx are in the case's dtype, alpha in its parameter dtype, and
    every other vector (partial sums, per-channel statistics) in the compute
    dtype, as the host allocates them.
    """
    data = _TRITON_POINTER_TYPES[case.dtype]
    compute = "*fp64" if case.dtype == "float64" else "*fp32"
    values = {"R": view.rows, "K": view.cols, "C": view.channels,
              "CHANNEL_IS_COLUMN": view.channel_is_column, "BLOCK_R": cfg.block_r,
              "BLOCK_K": cfg.block_k, "K_MULTIPLE": cfg.k_multiple, "INDEX_64": cfg.index_64,
              "COMPUTE_DALPHA": case.compute_dalpha, "TRAINING": True}  # fmt: skip
    arguments = {}
    for name in kernel_function(case.kernel).arg_names:
        if name in _BIG_TENSORS:
            arguments[name] = data
        elif name == "alpha_ptr":
            arguments[name] = _TRITON_POINTER_TYPES[_ALPHA_DTYPE]
        elif name.endswith("_ptr"):
            arguments[name] = compute
        else:
            arguments[name] = values[name]
    return arguments


def kernel_function(kernel: str):
    """The @triton.jit function of a KERNELS entry."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {tuple(KERNELS)}, got {kernel!r}")
    return getattr(kernels, KERNELS[kernel].function)


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


def compile_case(case: CodegenCase, options: Mapping | None = None) -> CompiledCase:
    """Compile one case for its target in this process, with the launches' options.

    options: compile options instead of ``COMPILE_OPTIONS`` (num_warps aside).

    Raises:
        RuntimeError: the kernels were imported under TRITON_INTERPRET=1 (use
            ``compile_cases``, which compiles in a child process).
    """
    fn = kernel_function(case.kernel)
    if not isinstance(fn, triton.runtime.JITFunction):
        raise RuntimeError("kernels imported under TRITON_INTERPRET=1; use compile_cases()")
    backend, arch, warp_size = TARGETS[case.target]
    view = example_view(case.layout)
    tuning = TUNING[_TUNING_KIND[backend]]
    cfg = launch_config_for(view, getattr(torch, case.dtype).itemsize, tuning)
    signature, constexprs, attrs = _specialize(fn, _kernel_arguments(case, view, cfg))
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    options = dict(COMPILE_OPTIONS if options is None else options, num_warps=cfg.num_warps)
    compiled = triton.compile(source, target=GPUTarget(backend, arch, warp_size), options=options)
    if case.isa == "ptx":
        n_regs, local_bytes = _resource_usage(compiled.asm["cubin"], fn.__name__)
    else:
        n_regs, local_bytes = amdgcn_resources(compiled.asm["amdgcn"])
    params = tuple(name for name in fn.arg_names if signature[name] != "constexpr")
    return CompiledCase(
        case, compiled.asm[case.isa], compiled.asm["ttir"].count("math.fma"), n_regs,
        local_bytes, cfg.block_r, cfg.block_k, cfg.num_warps, warp_size, params,
        tuple(name for name in params if signature[name].startswith("*")),
    )  # fmt: skip


def _resource_usage(cubin: bytes, kernel_name: str) -> tuple[int, int]:
    """(registers, local bytes incl. stack) per thread of kernel_name, from cuobjdump."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        tool = triton.knobs.nvidia.cuobjdump.path
        report = subprocess.run([tool, "--dump-resource-usage", path], capture_output=True,
                                text=True, check=True).stdout  # fmt: skip
    # "Function <name>:\n  REG:32 STACK:0 SHARED:0 LOCAL:0 ..."
    match = re.search(
        rf"Function {kernel_name}:\s*REG:(\d+) STACK:(\d+) SHARED:\d+ LOCAL:(\d+)", report
    )
    if match is None:
        raise RuntimeError(f"no resource usage for {kernel_name} in cuobjdump output:\n{report}")
    regs, stack, local = map(int, match.groups())
    return regs, stack + local


def compile_cases(
    cases: Sequence[CodegenCase], jobs: int = 2, env: Mapping | None = None
) -> list[CompiledCase]:
    """Compile cases in ``jobs`` child processes without TRITON_INTERPRET.

    env: variables to set in the children (Triton's knobs, say).
    Returns the results in the order of ``cases``. Raises RuntimeError with the
    child's stderr when a compilation fails.
    """
    child_env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    child_env.update(env or {})
    chunks = [list(cases[i::jobs]) for i in range(jobs) if cases[i::jobs]]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "elu_triton.codegen", "--json", json.dumps([asdict(c) for c in chunk])],
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


def _compiled_from_json(item: dict) -> CompiledCase:
    item = dict(item, case=CodegenCase(**item["case"]))
    return CompiledCase(**{k: tuple(v) if isinstance(v, list) else v for k, v in item.items()})


def all_cases(targets: Sequence[str] = tuple(TARGETS)) -> list[CodegenCase]:
    """The cases the codegen tests check, per target.

    The activation: every kernel, 16/32-bit dtype and layout, the backward
    without dalpha, and fp64. The fused batch norm (a channel per row or
    column, never a shared one: its statistics are per channel): fp32 and
    bf16 in both layouts, and fp64.
    """
    cases = []
    for target in targets:
        cases += [
            CodegenCase(k, d, layout, target=target)
            for k in ACTIVATION_KERNELS
            for d in DTYPES[:3]
            for layout in LAYOUTS
        ]
        cases += [
            CodegenCase("backward", d, "channel_per_row", compute_dalpha=False, target=target)
            for d in DTYPES[:3]
        ]
        cases += [
            CodegenCase(k, "float64", "channel_per_row", target=target) for k in ACTIVATION_KERNELS
        ]
        batch_norm = [k for k in KERNELS if k not in ACTIVATION_KERNELS]
        cases += [
            CodegenCase(k, d, layout, target=target)
            for k in batch_norm
            for d in ("float32", "bfloat16")
            for layout in LAYOUTS[:2]
        ]
        cases += [CodegenCase(k, "float64", "channel_per_row", target=target) for k in batch_norm]
    return cases


def _main(argv: list[str]) -> None:
    if argv[:1] == ["--json"]:  # child of compile_cases
        cases = [CodegenCase(**c) for c in json.loads(argv[1])]
        json.dump([asdict(compile_case(c)) for c in cases], sys.stdout)
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
