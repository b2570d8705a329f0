"""Ahead-of-time compilation of the kernels for Hopper (sm_90), without a GPU.

Triton's compiler, with the ptxas and cuobjdump it bundles, turns the kernels
into PTX and an sm_90 cubin on any machine. ``tests/test_codegen.py`` reads
them to guard the performance properties the kernels rely on: the big
tensors (x, y, dy, dx) move in 128-bit accesses, nothing lives in local
memory (no spills), the backward has no atomics. ``python -m
elu_triton.codegen`` prints the register counts (for ``bench/report.py``).

Each case is specialized the way a launch on a contiguous CUDA tensor of
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from . import kernels
from .backends.triton_config import COMPILE_OPTIONS, TUNING, LaunchConfig, launch_config_for
from .layout import MemoryView, memory_view

# (N, C, H, W) with K = H*W = 576 (NCHW) and K = C = 64 (channels_last)
# multiples of 16: Triton then knows rows start 16-byte aligned. (With K = 49
# or 196, 7x7 or 14x14 maps, it does not, and the accesses become scalar.)
EXAMPLE_SHAPE = (8, 64, 24, 24)
KERNELS = ("forward", "backward")
LAYOUTS = ("channel_per_row", "channel_per_column", "shared_alpha")
DTYPES = ("float32", "bfloat16", "float16", "float64")
HOPPER = ("cuda", 90, 32)  # GPUTarget(backend, compute capability, warp size)

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
    """One specialization to compile: kernel, input dtype, memory layout."""

    kernel: str  # one of KERNELS
    dtype: str  # one of DTYPES, the dtype of x (and y, dy, dx)
    layout: str  # one of LAYOUTS
    compute_dalpha: bool = True  # backward only


@dataclass(frozen=True)
class CompiledCase:
    """What the compiler made of a CodegenCase."""

    case: CodegenCase
    ptx: str
    n_regs: int  # registers per thread, from the cubin
    local_bytes: int  # local memory per thread (spills and stack); 0 means no spills
    block_r: int
    block_k: int
    num_warps: int
    param_names: tuple  # kernel arguments in PTX parameter order (constants left out)
    pointer_names: tuple  # those of param_names that are pointers


@dataclass(frozen=True)
class GlobalAccess:
    """One global memory instruction of the PTX and the pointer argument it uses."""

    op: str  # "ld", "st", "atom" or "red"
    pointer: str | None  # kernel argument the address derives from; None if unknown
    bits: int  # bits moved per thread: vector length times element width


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
    """Argument values by name: Triton pointer types for pointers, else the value."""
    data = _TRITON_POINTER_TYPES[case.dtype]
    shared = {"alpha_ptr": _TRITON_POINTER_TYPES[_ALPHA_DTYPE],
              "R": view.rows, "K": view.cols, "C": view.channels,
              "CHANNEL_IS_COLUMN": view.channel_is_column, "BLOCK_R": cfg.block_r,
              "BLOCK_K": cfg.block_k, "K_MULTIPLE": cfg.k_multiple,
              "INDEX_64": cfg.index_64}  # fmt: skip
    if case.kernel == "forward":
        return {"x_ptr": data, "y_ptr": data, **shared}
    if case.kernel == "backward":
        partials = "*fp64" if case.dtype == "float64" else "*fp32"
        return {"dy_ptr": data, "x_ptr": data, "dx_ptr": data, "dalpha_partials_ptr": partials,
                "COMPUTE_DALPHA": case.compute_dalpha, **shared}  # fmt: skip
    raise ValueError(f"kernel must be one of {KERNELS}, got {case.kernel!r}")


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


def compile_for_hopper(case: CodegenCase) -> CompiledCase:
    """Compile one case for sm_90 in this process.

    Raises:
        RuntimeError: the kernels were imported under TRITON_INTERPRET=1 (use
            ``compile_cases``, which compiles in a child process).
    """
    fn = getattr(kernels, f"learnable_elu_{case.kernel}_kernel")
    if not isinstance(fn, triton.runtime.JITFunction):
        raise RuntimeError("kernels imported under TRITON_INTERPRET=1; use compile_cases()")
    view = example_view(case.layout)
    cfg = launch_config_for(view, getattr(torch, case.dtype).itemsize, TUNING["cuda"])
    values = _kernel_arguments(case, view, cfg)
    signature, constexprs, attrs = _specialize(fn, values)
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    compiled = triton.compile(
        source, target=GPUTarget(*HOPPER), options={"num_warps": cfg.num_warps, **COMPILE_OPTIONS}
    )
    n_regs, local_bytes = _resource_usage(compiled.asm["cubin"], fn.__name__)
    params = tuple(name for name in fn.arg_names if signature[name] != "constexpr")
    return CompiledCase(
        case, compiled.asm["ptx"], n_regs, local_bytes, cfg.block_r, cfg.block_k, cfg.num_warps,
        params, tuple(name for name in params if signature[name].startswith("*")),
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


def compile_cases(cases: Sequence[CodegenCase], jobs: int = 2) -> list[CompiledCase]:
    """Compile cases for sm_90 in ``jobs`` child processes without TRITON_INTERPRET.

    Returns the results in the order of ``cases``. Raises RuntimeError with the
    child's stderr when a compilation fails.
    """
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    chunks = [list(cases[i::jobs]) for i in range(jobs) if cases[i::jobs]]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "elu_triton.codegen", "--json", json.dumps([asdict(c) for c in chunk])],
            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for chunk in chunks
    ]  # fmt: skip
    results = {}
    for child in children:
        out, err = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"codegen child failed ({child.returncode}):\n{err[-4000:]}")
        for item in json.loads(out):
            compiled = _compiled_from_json(item)
            results[compiled.case] = compiled
    return [results[case] for case in cases]


def _compiled_from_json(item: dict) -> CompiledCase:
    item = dict(item, case=CodegenCase(**item["case"]))
    return CompiledCase(**{k: tuple(v) if isinstance(v, list) else v for k, v in item.items()})


# PTX: an optional predicate, the opcode, the operands up to ';'.
_PTX_INSTRUCTION = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z][\w.:]*)\s+([^;]*);")
_PTX_REGISTER = re.compile(r"%[a-z]+\d+")
_PTX_PARAM = re.compile(r"\[\s*(\w+_param_(\d+))\s*\]")
_PTX_MEMORY_OPS = {"ld.global": "ld", "st.global": "st", "atom.": "atom", "red.": "red"}


def ptx_instructions(ptx: str) -> list[tuple[str, str]]:
    """(opcode, operands) of every instruction in the PTX, inline asm included."""
    matches = (_PTX_INSTRUCTION.match(line.split("//")[0]) for line in ptx.splitlines())
    return [m.groups() for m in matches if m is not None]


def global_accesses(compiled: CompiledCase) -> list[GlobalAccess]:
    """Every global load, store, atomic and reduction in the PTX, with its pointer.

    The pointer is found by following the address register back through the
    instructions that define it to the ``ld.param`` of a pointer argument
    (None when it reaches none, or more than one).
    """
    sources, params, accesses = {}, {}, []
    for opcode, operands in ptx_instructions(compiled.ptx):
        registers = _PTX_REGISTER.findall(operands)
        op = next((v for k, v in _PTX_MEMORY_OPS.items() if opcode.startswith(k)), None)
        if op is not None:
            address = _PTX_REGISTER.findall(operands[operands.index("[") :].split("]")[0])
            accesses.append((op, opcode, address))
            if op in ("ld", "atom"):
                for dst in _PTX_REGISTER.findall(operands[: operands.index("[")]):
                    sources.setdefault(dst, set()).update(address)
        elif opcode.startswith("ld.param"):
            params[registers[0]] = int(_PTX_PARAM.search(operands).group(2))
        elif registers:  # the first register is the destination
            sources.setdefault(registers[0], set()).update(registers[1:])
    return [
        GlobalAccess(op, _pointer_of(address, sources, params, compiled), _access_bits(opcode))
        for op, opcode, address in accesses
    ]


def _pointer_of(address: list, sources: dict, params: dict, compiled: CompiledCase) -> str | None:
    """The single pointer argument the address registers derive from, or None."""
    seen, todo, found = set(), list(address), set()
    while todo:
        reg = todo.pop()
        if reg in seen:
            continue
        seen.add(reg)
        if reg in params and params[reg] < len(compiled.param_names):
            name = compiled.param_names[params[reg]]
            if name in compiled.pointer_names:
                found.add(name)
        todo.extend(sources.get(reg, ()))
    return found.pop() if len(found) == 1 else None


def _access_bits(opcode: str) -> int:
    """Bits per thread of a memory opcode such as ``ld.global.v4.b32``."""
    parts = opcode.split(".")
    vector = next((int(p[1:]) for p in parts if re.fullmatch(r"v\d", p)), 1)
    width = next(int(m.group(1)) for p in reversed(parts) if (m := re.fullmatch(r"[bfsu](\d+)", p)))
    return vector * width


def all_cases() -> list[CodegenCase]:
    """The cases the codegen tests check: every kernel, 16/32-bit dtype and layout, plus fp64."""
    cases = [CodegenCase(k, d, layout) for k in KERNELS for d in DTYPES[:3] for layout in LAYOUTS]
    cases += [
        CodegenCase("backward", d, "channel_per_row", compute_dalpha=False) for d in DTYPES[:3]
    ]
    cases += [CodegenCase(k, "float64", "channel_per_row") for k in KERNELS]
    return cases


def _main(argv: list[str]) -> None:
    if argv[:1] == ["--json"]:  # child of compile_cases
        cases = [CodegenCase(**c) for c in json.loads(argv[1])]
        json.dump([asdict(compile_for_hopper(c)) for c in cases], sys.stdout)
        return
    print(f"sm_90, x of shape {EXAMPLE_SHAPE}, alpha {_ALPHA_DTYPE}")
    print(
        f"{'kernel':<22}{'dtype':<10}{'layout':<20}{'tile':>10}{'warps':>6}{'regs':>6}{'local B':>8}"
    )
    for c in compile_cases(all_cases()):
        kernel = c.case.kernel + ("" if c.case.compute_dalpha else " (no dalpha)")
        tile = f"{c.block_r}x{c.block_k}"
        print(f"{kernel:<22}{c.case.dtype:<10}{c.case.layout:<20}{tile:>10}{c.num_warps:>6}"
              f"{c.n_regs:>6}{c.local_bytes:>8}")  # fmt: skip


if __name__ == "__main__":
    _main(sys.argv[1:])
