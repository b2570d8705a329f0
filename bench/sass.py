"""Reading a kernel's SASS (``elu_triton.assembly.sass_of``: an sm_90 cubin, disassembled).

What the static model (``static_model.py``) needs from the machine code:

- instructions per thread, each in the pipe that executes it (``PIPES``);
- global load round trips: loads issued together are one trip; a trip ends
  at the first instruction that reads a register a pending load writes,
  since the warp stalls there until the data arrives;
- bytes each thread asks for per trip.

The kernels have no loops (one tile per program), so the static count is
the executed count; code after the last ``EXIT`` (the trailing ``BRA``
to itself) and ``NOP`` padding are not executed and not counted.
"""

import re
from collections import Counter
from dataclasses import dataclass

# "/*0390*/  @P1 LDG.E.128 R8, desc[UR4][R12.64] ;"
_LINE = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(@!?U?P\w+\s+)?([A-Z][\w.]*)\s*([^;]*);")
_REGISTER = re.compile(r"\bR(\d+)(?:\.(64|128))?\b")
_ACCESS_WIDTH = re.compile(r"\.(64|128)\b")

# The pipe of each opcode on Hopper (sm_90), by the opcode's first part. The
# rates (results per clock per SM, CUDA C++ Programming Guide, "Arithmetic
# Instructions", compute capability 9.0): fp32 add/multiply/fma 128, 32-bit
# integer add/compare/logic/shift 64, integer multiply 64, conversions and
# special functions 16. Which SASS opcode runs on which pipe is not
# documented: the grouping below is a guess, from NVIDIA's Nsight Compute
# pipe names (fma, alu, xu) and the opcodes' meaning.
PIPES = {
    # F2FP packs two fp32 values into a 16-bit pair: on sm_90 at the fp32
    # rate, not the conversion rate (a guess from its encoding family; the
    # one H200 run cannot tell them apart).
    "fma": set("FFMA FADD FMUL HFMA2 HADD2 HMUL2 IMAD DFMA DADD DMUL F2FP".split()),
    "alu": set(
        "FMNMX FSETP FSEL ISETP IADD3 LOP3 SHF LEA SEL PRMT IABS SGXT HSETP2 HMNMX2 MOV CS2R "
        "PLOP3 FCHK P2R R2P VIADD IMNMX BMSK POPC FLO BREV".split()
    ),
    "xu": set("F2I I2F FRND F2F MUFU I2FP F2IP".split()),
    "memory": set("LDG STG LDS STS LDC SHFL ATOMG RED LD ST".split()),
}
# Lanes per clock per SM of each pipe (see PIPES); issue: 4 schedulers x 32.
PIPE_RATE = {"issue": 128, "fma": 128, "alu": 64, "xu": 16}
# Conversions between fp32 and integers or 16-bit floats, and rounding, on
# whichever pipe they run.
CONVERSIONS = {"F2I", "I2F", "FRND", "F2F", "F2FP", "I2FP", "F2IP"}


@dataclass(frozen=True)
class Instruction:
    opcode: str  # e.g. "LDG.E.128"
    predicated: bool
    operands: str

    @property
    def base(self) -> str:
        return self.opcode.split(".")[0]


def executed(sass: str) -> list[Instruction]:
    """The instructions a thread executes, in order: up to the last EXIT, without NOPs."""
    code = []
    for line in sass.splitlines():
        match = _LINE.search(line)
        if match:
            predicate, opcode, operands = match.groups()
            code.append(Instruction(opcode, bool(predicate), operands.strip()))
    last_exit = max((i for i, ins in enumerate(code) if ins.base == "EXIT"), default=len(code) - 1)
    return [ins for ins in code[: last_exit + 1] if ins.base != "NOP"]


def _registers(text: str) -> set[int]:
    """Registers an operand text names, a .64/.128 operand as its 2 or 4 registers."""
    found = set()
    for number, width in _REGISTER.findall(text):
        count = {"64": 2, "128": 4}.get(width, 1)
        found.update(range(int(number), int(number) + count))
    return found


def _load_destination(ins: Instruction) -> set[int]:
    """The registers a global load writes (its width from the opcode)."""
    first = ins.operands.split(",")[0]
    number = int(_REGISTER.search(first).group(1))
    width = _ACCESS_WIDTH.search(ins.opcode)
    count = {"64": 2, "128": 4}[width.group(1)] if width else 1
    return set(range(number, number + count))


def load_bytes(ins: Instruction) -> int:
    width = _ACCESS_WIDTH.search(ins.opcode)
    bits = int(width.group(1)) if width else (16 if ".U16" in ins.opcode else 32)
    return bits // 8


@dataclass(frozen=True)
class Trips:
    """Global load round trips of one thread."""

    count: int  # trips with at least one global load
    bytes_per_trip: tuple  # bytes each trip asks for, per thread


def load_round_trips(code: list[Instruction]) -> Trips:
    """Group the global loads into trips: a trip ends where a pending load's data is used."""
    pending, trips, current = set(), [], 0
    for ins in code:
        sources = ins.operands if ins.base != "LDG" else ins.operands.split(",", 1)[-1]
        if pending and (_registers(sources) & pending or ins.base == "EXIT"):
            trips.append(current)
            pending, current = set(), 0
        if ins.base == "LDG":
            pending |= _load_destination(ins)
            current += load_bytes(ins)
    if pending:
        trips.append(current)
    return Trips(len(trips), tuple(trips))


def pipe_counts(code: list[Instruction]) -> Counter:
    """Instructions per thread by pipe ("issue" counts every one)."""
    counts = Counter(issue=len(code))
    for ins in code:
        counts[next((name for name, ops in PIPES.items() if ins.base in ops), "other")] += 1
    return counts


def conversions(code: list[Instruction]) -> int:
    """Conversion instructions (fp32 <-> int, rounding, 16-bit packing) per thread."""
    return sum(ins.base in CONVERSIONS for ins in code)
