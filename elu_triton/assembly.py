"""Reading the kernels' generated code: PTX and cubins (NVIDIA), AMDGCN (ROCm).

``codegen.py`` compiles the kernels for each GPU target; the functions here
read what came out, for ``tests/test_codegen.py``: every global access with
the pointer argument it uses and its width, the fused multiply-adds counted
in lanes (one packed instruction does two), and the resource usage that
shows spills (a cubin's through cuobjdump).
"""

import os
import re
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass

# PTX: an optional predicate, the opcode, the operands up to ';'.
_PTX_INSTRUCTION = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z][\w.:]*)\s+([^;]*);")
_PTX_REGISTER = re.compile(r"%[a-z]+\d+")
_PTX_PARAM = re.compile(r"\[\s*(\w+_param_(\d+))\s*\]")
_PTX_MEMORY_OPS = {"ld.global": "ld", "st.global": "st", "atom.": "atom", "red.": "red"}
# AMDGCN: the opcode that starts an instruction line.
_AMDGCN_INSTRUCTION = re.compile(r"^\s+([a-z][a-z0-9_]*)\b", re.M)
# Fused multiply-adds and the lanes each computes: Blackwell's f32x2 and
# CDNA's packed v_pk_fma_f32 do two.
_PTX_FMA = re.compile(r"fma\.rn\.f(32|64)(x2)?$")
# v_fmac accumulates into its destination; v_fmamk / v_fmaak take one operand
# as a literal constant (Triton 3.6's AMD backend emits them): each one fma.
_AMDGCN_FMA = re.compile(r"v_(pk_)?fma(c|mk|ak)?_f(32|64)(_e32|_e64)?$")


@dataclass(frozen=True)
class GlobalAccess:
    """One global memory instruction of the PTX and the pointer argument it uses."""

    op: str  # "ld", "st", "atom" or "red"
    pointer: str | None  # kernel argument the address derives from; None if unknown
    bits: int  # bits moved per thread: vector length times element width


def ptx_instructions(ptx: str) -> list[tuple[str, str]]:
    """(opcode, operands) of every instruction in the PTX, inline asm included."""
    matches = (_PTX_INSTRUCTION.match(line.split("//")[0]) for line in ptx.splitlines())
    return [m.groups() for m in matches if m is not None]


def amdgcn_opcodes(amdgcn: str) -> Counter:
    """How often each opcode occurs in the AMDGCN assembly (directives and labels left out)."""
    return Counter(_AMDGCN_INSTRUCTION.findall(amdgcn))


def instructions(asm: str, isa: str) -> list[str]:
    """The code's instructions in order, without directives or debug information
    (which name the source files, so that the same code compiled from two
    checkouts differs there)."""
    if isa == "ptx":
        return [f"{opcode} {operands}" for opcode, operands in ptx_instructions(asm)]
    return [line.strip() for line in asm.splitlines() if _AMDGCN_INSTRUCTION.match(line)]


def fma_lanes(asm: str, isa: str) -> int:
    """Fused multiply-adds the code computes per thread, counting each packed lane."""
    if isa == "ptx":
        opcodes = Counter(opcode for opcode, _ in ptx_instructions(asm))
        pattern, packed_group = _PTX_FMA, 2
    else:
        opcodes, pattern, packed_group = amdgcn_opcodes(asm), _AMDGCN_FMA, 1
    lanes = 0
    for opcode, count in opcodes.items():
        match = pattern.match(opcode)
        if match:
            lanes += count * (2 if match.group(packed_group) else 1)
    return lanes


def ptx_contractible_arithmetic(ptx: str) -> list[str]:
    """Float multiplies, adds and subtracts that ptxas may still fuse (no .rn rounding mode)."""
    return [
        opcode
        for opcode, _ in ptx_instructions(ptx)
        if re.fullmatch(r"(mul|add|sub)(\.ftz)?\.f(32|64)(x2)?", opcode)
    ]


def amdgcn_resources(amdgcn: str) -> tuple[int, int]:
    """(VGPRs per thread, scratch bytes plus spilled registers) from the assembly's notes."""
    vgprs = int(re.search(r"; NumVgprs: (\d+)", amdgcn).group(1))
    scratch = int(re.search(r"; ScratchSize: (\d+)", amdgcn).group(1))
    spills = sum(int(n) for n in re.findall(r"\.[sv]gpr_spill_count:\s*(\d+)", amdgcn))
    return vgprs, scratch + spills


def cubin_resources(cubin: bytes, kernel_name: str, cuobjdump: str) -> tuple[int, int]:
    """(registers, local bytes incl. stack) per thread of kernel_name in a cubin.

    cuobjdump: the path of the tool that reads it (Triton bundles one).
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        report = subprocess.run([cuobjdump, "--dump-resource-usage", path], capture_output=True,
                                text=True, check=True).stdout  # fmt: skip
    # "Function <name>:\n  REG:32 STACK:0 SHARED:0 LOCAL:0 ..."
    match = re.search(
        rf"Function {kernel_name}:\s*REG:(\d+) STACK:(\d+) SHARED:\d+ LOCAL:(\d+)", report
    )
    if match is None:
        raise RuntimeError(f"no resource usage for {kernel_name} in cuobjdump output:\n{report}")
    regs, stack, local = map(int, match.groups())
    return regs, stack + local


def sass_of(cubin: bytes, cuobjdump: str) -> str:
    """The SASS (machine code) of a cubin, as text; cuobjdump: the tool's path."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        return subprocess.run([cuobjdump, "-sass", path], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip


def global_accesses(ptx: str, param_names: tuple, pointer_names: tuple) -> list[GlobalAccess]:
    """Every global load, store, atomic and reduction in the PTX, with its pointer.

    The pointer is found by following the address register back through the
    instructions that define it to the ``ld.param`` of a pointer argument
    (None when it reaches none, or more than one). param_names: the kernel's
    arguments in PTX parameter order; pointer_names: those that are pointers.
    """
    sources, params, accesses = {}, {}, []
    for opcode, operands in ptx_instructions(ptx):
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
    named = {index: name for index, name in enumerate(param_names) if name in pointer_names}
    return [
        GlobalAccess(op, _pointer_of(address, sources, params, named), _access_bits(opcode))
        for op, opcode, address in accesses
    ]


def _pointer_of(address: list, sources: dict, params: dict, pointers: dict) -> str | None:
    """The single pointer argument the address registers derive from, or None."""
    seen, todo, found = set(), list(address), set()
    while todo:
        reg = todo.pop()
        if reg in seen:
            continue
        seen.add(reg)
        if params.get(reg) in pointers:
            found.add(pointers[params[reg]])
        todo.extend(sources.get(reg, ()))
    return found.pop() if len(found) == 1 else None


def _access_bits(opcode: str) -> int:
    """Bits per thread of a memory opcode such as ``ld.global.v4.b32``."""
    parts = opcode.split(".")
    vector = next((int(p[1:]) for p in parts if re.fullmatch(r"v\d", p)), 1)
    width = next(int(m.group(1)) for p in reversed(parts) if (m := re.fullmatch(r"[bfsu](\d+)", p)))
    return vector * width
