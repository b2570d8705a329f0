"""Generated code for every GPU family: the kernels' properties, no GPU needed.

Every kernel is compiled ahead of time for each target of ``codegen.TARGETS``
(NVIDIA sm_80, sm_90, sm_100; AMD gfx942, gfx90a), specialized as a launch
on a contiguous GPU tensor would be (``elu_triton/codegen.py``). Everywhere:

- x and dy loads, y and dx stores: 128-bit vector accesses, exactly as many
  as the tile needs (tile bytes / 16 bytes / threads);
- no spills (no local memory on NVIDIA, no scratch on AMD);
- no atomics (the reductions write fixed-order partial sums);
- every fused multiply-add is an explicit tl.fma and nothing else is fused,
  so neither Triton's FP-fusion default nor TRITON_FORCE_DISABLE_FP_FUSION
  changes a result (and compiling prints no Triton warning).

On NVIDIA, where the PTX shows which argument each access uses: alpha loads
and dalpha partial-sum stores are the only other global accesses, a few
each; no per-element integer division, no 64-bit integer arithmetic besides
address formation when INDEX_64 is off; fp64 constants at full precision.

Runs under TRITON_INTERPRET=1 too: compilation happens in child processes
started without it. ``pytest -s`` prints the register counts.
"""

import math
import re
import struct

import pytest
import torch

from elu_triton import assembly, codegen
from elu_triton.kernels import exp_math

CASES = codegen.all_cases()
PTX_CASES = [c for c in CASES if c.isa == "ptx"]
AMDGCN_CASES = [c for c in CASES if c.isa == "amdgcn"]
REGISTERS_PER_SM = 65536
VECTOR_BYTES = 16


def _case_id(case: codegen.CodegenCase) -> str:
    dalpha = "" if case.compute_dalpha else "-no_dalpha"
    activation = "" if case.activation == "learnable_elu" else f"-{case.activation}"
    return f"{case.target}-{case.kernel}{activation}{dalpha}-{case.dtype}-{case.layout}"


@pytest.fixture(scope="module")
def compiled() -> dict:
    """All cases compiled once for the module (two child processes)."""
    return {c.case: c for c in codegen.compile_cases(CASES)}


def _threads(c: codegen.CompiledCase) -> int:
    return c.num_warps * c.warp_size


def _vector_accesses_per_tensor(c: codegen.CompiledCase) -> int:
    """128-bit accesses per thread that cover one tile of one big tensor."""
    tile_bytes = c.block_r * c.block_k * getattr(torch, c.case.dtype).itemsize
    assert tile_bytes % (VECTOR_BYTES * _threads(c)) == 0, "tile smaller than one vector per thread"
    return tile_bytes // (VECTOR_BYTES * _threads(c))


def _opcodes(ptx: str) -> list[str]:
    return [opcode for opcode, _ in assembly.ptx_instructions(ptx)]


@pytest.mark.parametrize("case", PTX_CASES, ids=_case_id)
def test_big_tensors_move_in_128_bit_accesses(compiled, case):
    c = compiled[case]
    accesses = assembly.global_accesses(c.asm, c.param_names, c.pointer_names)
    unattributed = [a for a in accesses if a.pointer is None]
    assert not unattributed, f"global accesses not traced to one pointer argument: {unattributed}"
    expected = _vector_accesses_per_tensor(c)
    kernel = codegen.KERNELS[case.kernel]
    for op, pointers in (("ld", kernel.big_loads), ("st", kernel.big_stores)):
        for pointer in sorted(pointers):
            bits = [a.bits for a in accesses if (a.op, a.pointer) == (op, pointer)]
            assert bits == [128] * expected, (
                f"{op} of {pointer}: expected {expected} 128-bit accesses per thread "
                f"(tile {c.block_r}x{c.block_k}, {_threads(c)} threads), got widths {bits}"
            )
    big = {("ld", p) for p in kernel.big_loads} | {("st", p) for p in kernel.big_stores}
    others = [a for a in accesses if (a.op, a.pointer) not in big]
    small = _small_accesses(c)
    assert {(a.op, a.pointer) for a in others} <= small, f"unexpected accesses: {others}"
    # Per-channel vectors: at most one gather per vector access (one per row
    # or per column block); partial sums: at most one store per row or column.
    for op, pointer in small:
        count = sum(1 for a in others if (a.op, a.pointer) == (op, pointer))
        assert count <= expected, f"{count} {op} of {pointer} per thread, more than {expected}"


def _small_accesses(c: codegen.CompiledCase) -> set:
    """The other accesses a kernel may make: loads of per-channel vectors, stores of partials."""
    kernel = codegen.KERNELS[c.case.kernel]
    small = set(c.pointer_names) - set(kernel.big_loads) - set(kernel.big_stores)
    return {("st" if name.endswith("partials_ptr") else "ld", name) for name in small}


@pytest.mark.parametrize("case", AMDGCN_CASES, ids=_case_id)
def test_big_tensors_move_in_128_bit_accesses_on_amd(compiled, case):
    # AMDGCN names no pointer per access: count the 128-bit ones per kernel.
    # With the channel per column, a per-channel vector's gather may be
    # 128-bit too: at most one per vector access of a big tensor, as on NVIDIA.
    c = compiled[case]
    opcodes = assembly.amdgcn_opcodes(c.asm)
    expected = _vector_accesses_per_tensor(c)
    kernel = codegen.KERNELS[case.kernel]
    vectors = sum(1 for op, _ in _small_accesses(c) if op == "ld")
    loads, stores = opcodes["global_load_dwordx4"], opcodes["global_store_dwordx4"]
    big_loads = expected * len(kernel.big_loads)
    assert big_loads <= loads <= big_loads + expected * vectors, f"{loads} 128-bit loads"
    assert stores == expected * len(kernel.big_stores), f"{stores} 128-bit stores per thread"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_no_spills(compiled, case):
    c = compiled[case]
    assert c.local_bytes == 0, f"{c.local_bytes} bytes of local memory or scratch per thread"
    if case.isa == "ptx":
        assert not re.search(r"\b(ld|st)\.local\b", c.asm), "PTX uses local memory"
    else:
        assert not [op for op in assembly.amdgcn_opcodes(c.asm) if op.startswith("scratch_")]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_no_atomics(compiled, case):
    c = compiled[case]
    if case.isa == "ptx":
        atomics = [op for op in _opcodes(c.asm) if op.startswith(("atom.", "red."))]
    else:
        atomics = [op for op in assembly.amdgcn_opcodes(c.asm) if "atomic" in op]
    assert not atomics, f"atomics: {atomics}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_every_fma_is_explicit(compiled, case):
    # Each tl.fma of the math is one fma per element, rounded once; the
    # compiler fuses nothing else (packed fma count two lanes).
    c = compiled[case]
    expected = c.ttir_fma * c.elements_per_thread
    assert assembly.fma_lanes(c.asm, case.isa) == expected
    if case.isa == "ptx":
        assert not assembly.ptx_contractible_arithmetic(c.asm), "ptxas may fuse these"


# Each kernel in fp32 and fp64 on one target per compiler backend (the knobs
# are read the same way for every target of a backend): compiling everything
# three times more would double the module's time for no more coverage.
_FUSION_CASES = [
    c for c in CASES
    if c.target in ("sm_90", "gfx942") and c.layout == "channel_per_row"
    and c.dtype in ("float32", "float64") and c.compute_dalpha
]  # fmt: skip


@pytest.mark.parametrize(
    "knobs",
    [{"TRITON_DEFAULT_FP_FUSION": "1"}, {"TRITON_DEFAULT_FP_FUSION": "0"},
     {"TRITON_FORCE_DISABLE_FP_FUSION": "1"}],
    ids=["default_fusion_on", "default_fusion_off", "fusion_forced_off"],
)  # fmt: skip
def test_code_does_not_depend_on_tritons_fusion_settings(compiled, knobs):
    # compile_cases also fails when a child writes to stderr: no warning either.
    again = codegen.compile_cases(_FUSION_CASES, env=knobs)
    for c in again:
        code = assembly.instructions(c.asm, c.case.isa)
        assert code, _case_id(c.case)
        expected = assembly.instructions(compiled[c.case].asm, c.case.isa)
        assert code == expected, f"{_case_id(c.case)} differs under {knobs}"


@pytest.mark.parametrize("case", PTX_CASES, ids=_case_id)
def test_no_per_element_integer_division(compiled, case):
    c = compiled[case]
    divisions = [op for op in _opcodes(c.asm) if re.match(r"(div|rem)\.[su](32|64)$", op)]
    # Per program: pid // k_blocks and R // C. Per row segment at most: a
    # row // C and its remainder (the channel). Never one per element.
    limit = 2 + 2 * _vector_accesses_per_tensor(c)
    assert len(divisions) <= limit, f"{len(divisions)} integer divisions per thread: {divisions}"


@pytest.mark.parametrize("case", [c for c in PTX_CASES if c.dtype != "float64"], ids=_case_id)
def test_32_bit_index_math_without_index_64(compiled, case):
    # The example tensor is far below 2^31 elements, so INDEX_64 is off: the
    # only 64-bit integer work left is adding the widened offset to a pointer.
    ops = _opcodes(compiled[case].asm)
    # (Triton 3.6 widens some offsets with cvt where 3.9 uses mul.wide.)
    widening = {"add.s64", "cvt.s64.s32", "cvt.u64.u32"}
    wide = [op for op in ops if re.search(r"\.[su]64\b", op) and op not in widening]
    assert not wide, f"64-bit integer arithmetic with INDEX_64=False: {sorted(set(wide))}"


def _fp64_literals(ptx: str) -> set[float]:
    return {
        struct.unpack(">d", bytes.fromhex(h))[0]
        for h in re.findall(r"\b0d([0-9A-Fa-f]{16})\b", ptx)
    }


def _fp32_rounded(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _significant_bits(value: float) -> int:
    mantissa, bits = abs(math.frexp(value)[0]), 0
    while mantissa != int(mantissa):
        mantissa, bits = mantissa * 2, bits + 1
    return bits


# The forward needs expm1 alone (exp_math.negative_expm1), the backward exp
# too (negative_branch), each with its own clamp; the backward also unbiases 2^k.
_FP64_CONSTANTS = {
    "forward": ("LOG2E", "LN2_HI_F64", "LN2_LO_F64", "CLAMP_EXPM1"),
    "backward": ("LOG2E", "LN2_HI_F64", "LN2_LO_F64", "CLAMP_F64", "EXP_UNBIAS"),
}


@pytest.mark.parametrize("target", [t for t, spec in codegen.TARGETS.items() if spec[0] == "cuda"])
@pytest.mark.parametrize("kernel", codegen.ACTIVATION_KERNELS)
def test_fp64_constants_are_not_rounded_to_fp32(compiled, kernel, target):
    literals = _fp64_literals(
        compiled[codegen.CodegenCase(kernel, "float64", "channel_per_row", target=target)].asm
    )
    for name in _FP64_CONSTANTS[kernel]:
        value = getattr(exp_math, name)
        value = getattr(value, "value", value)  # tl.constexpr
        # The compiler may fold a sign in: x - k*c becomes fma(k, -c, x).
        assert {value, -value} & literals, f"{name} = {value!r} missing from the fp64 PTX"
    # A constant that went through fp32 is an fp32 value with a long mantissa
    # (short ones, such as 0.5 or -746, are exact in both).
    rounded = [v for v in literals if v == _fp32_rounded(v) and _significant_bits(v) > 12]
    assert not rounded, f"fp64 literals with only fp32 precision: {rounded}"


def test_report_register_counts(compiled, record_property):
    # Reported, not asserted: the count depends on the compiler Triton bundles
    # (Triton 3.9's ptxas gives the 16-bit backward up to ~150, 3.6's ~125),
    # and 16 elements per thread keep enough bytes in flight even at one CTA per SM.
    print(f"\nregisters per thread, x of shape {codegen.EXAMPLE_SHAPE}:")
    for c in compiled.values():
        record_property(f"n_regs[{_case_id(c.case)}]", c.n_regs)
        occupancy = ""
        if c.case.isa == "ptx":
            ctas = REGISTERS_PER_SM // (_register_allocation(c.n_regs) * _threads(c))
            occupancy = f", {ctas} CTAs/SM by registers"
        print(f"  {_case_id(c.case):<52} tile {c.block_r}x{c.block_k}, "
              f"{c.num_warps} warps: {c.n_regs:3d} regs{occupancy}")  # fmt: skip


def _register_allocation(n_regs: int) -> int:
    # Registers are allocated per warp in units of 256, i.e. 8 per thread.
    return -(-n_regs // 8) * 8
