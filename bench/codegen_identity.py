"""A refactor of device code proves itself: the same generated code before and after.

    python -m bench.codegen_identity BASE_CHECKOUT [TARGET ...]
    python -m bench.codegen_identity --save FILE.json CHECKOUT [TARGET ...]

compiles every codegen case (``elu_triton.codegen.all_cases``) twice, from
this checkout and from BASE_CHECKOUT (another checkout, say a worktree of
the parent commit, with the ``elu_triton/kernels -> ../kernels`` link that
running it from source needs), with the same Python, Triton and options,
and compares, case by case and for every target:

- the PTX or AMDGCN, after removing what names a source file or a kernel
  rather than the code: ``.file`` and ``.loc`` lines, DWARF sections and
  their labels, the kernel's name (and the blanks that pad it);
- the registers per thread and the local memory (spills);
- the width of each global access (PTX: per pointer argument; AMDGCN: the
  count of each load and store opcode).

(BASE_CHECKOUT may instead be a FILE.json that ``--save`` wrote from a
checkout.) Cases are matched by (target, kernel, dtype, layout, dalpha, activation); a
case of this checkout whose activation is not the learnable ELU has no twin
in a checkout before the activation was a parameter and is reported as new.
Prints one line per target and every difference; exits 1 on a difference.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

_KEY_FIELDS = ("target", "kernel", "dtype", "layout", "compute_dalpha")
# Kernel arguments renamed when the activation became a parameter of the
# batch norm's kernels: an access through alpha_ptr before is one through
# param_ptr after.
_RENAMED_ARGUMENTS = {"alpha_ptr": "param_ptr", "dalpha_partials_ptr": "dparam_partials_ptr"}
_BASE_ACTIVATION = "learnable_elu"  # the only one before the activation was a parameter

# A child run in a checkout: compile every case, print them as JSON.
_CHILD = """
import json, sys
from dataclasses import asdict
from elu_triton import assembly, codegen
cases = codegen.all_cases(sys.argv[1:] or tuple(codegen.TARGETS))
out = []
for c in codegen.compile_cases(cases):
    item = asdict(c)
    if c.case.isa == "ptx":
        accesses = assembly.global_accesses(c.asm, c.param_names, c.pointer_names)
        item["accesses"] = sorted(f"{a.op} {a.pointer} {a.bits}" for a in accesses)
    else:
        counts = assembly.amdgcn_opcodes(c.asm)
        item["accesses"] = sorted(f"{k} {v}" for k, v in counts.items() if "load" in k or "store" in k)
    out.append(item)
json.dump(out, sys.stdout)
"""


def compile_checkout(checkout: Path, targets: list[str]) -> list[dict]:
    """Every codegen case compiled from the package in checkout, as dicts."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(checkout)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *targets],
        cwd=checkout, env=env, text=True, capture_output=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"compiling in {checkout} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)


def _kernel_name(item: dict) -> str | None:
    """The compiled kernel's symbol, read from the code."""
    asm = item["asm"]
    found = re.search(r"\.entry\s+(\w+)", asm) or re.search(r"\.globl\s+(\w+)", asm)
    return found.group(1) if found else None


def normalized(item: dict) -> list[str]:
    """The code's lines without debug information or the kernel's name."""
    lines, in_debug = [], False
    name = _kernel_name(item)
    for line in item["asm"].splitlines():
        stripped = line.strip()
        if stripped.startswith(".section"):
            in_debug = ".debug" in stripped
            if in_debug:
                continue
        if in_debug:
            # PTX closes a debug section with "}"; AMDGCN's run to the next section.
            if stripped == "}":
                in_debug = False
            continue
        if stripped.startswith((".file", ".loc", ".Ltmp", ".Lfunc_begin", ".Lfunc_end")):
            continue
        if stripped.startswith(".Ldebug") or re.match(r"\.L(tmp|func_begin|func_end)\d+", stripped):
            continue
        if name:
            line = line.replace(name, "KERNEL")
        # Debug labels referenced by size directives and line-table anchors.
        line = re.sub(r"\.L(tmp|func_begin|func_end)\d+", ".Ldebug", line)
        # Runs of blanks: LLVM pads a comment after the kernel's name to align it.
        lines.append(" ".join(line.split()))
    return lines


def _renamed(value):
    """Accesses with the pointers' current names (other fields as they are)."""
    if not isinstance(value, list):
        return value
    renamed = []
    for access in value:
        words = access.split()
        words = [_RENAMED_ARGUMENTS.get(w, w) for w in words]
        renamed.append(" ".join(words))
    return sorted(renamed)


def _key(item: dict) -> tuple:
    """The case's fields, and its activation (the learnable ELU where a checkout had none)."""
    activation = item["case"].get("activation", _BASE_ACTIVATION)
    return (*(item["case"][f] for f in _KEY_FIELDS), activation)


def compare(base: list[dict], head: list[dict]) -> tuple[dict, list[str]]:
    """(per target: [identical, differing, new in head, missing from head], differences)."""
    base_by_key = {_key(i): i for i in base}
    counts, differences, seen = {}, [], set()
    for item in head:
        target = item["case"]["target"]
        tally = counts.setdefault(target, [0, 0, 0, 0])
        # (Keyed by activation too: a base's PReLU case is no twin of an ELU one.)
        twin = base_by_key.get(_key(item))
        if twin is None:
            tally[2] += 1
            continue
        seen.add(_key(item))
        found = []
        if normalized(item) != normalized(twin):
            found.append("code differs")
        for field in ("n_regs", "local_bytes", "accesses"):
            if _renamed(item[field]) != _renamed(twin[field]):
                found.append(f"{field}: {twin[field]} -> {item[field]}")
        if found:
            tally[1] += 1
            differences.append(f"{_key(item)}: " + "; ".join(found))
        else:
            tally[0] += 1
    for key, item in base_by_key.items():
        if key not in seen:
            counts.setdefault(item["case"]["target"], [0, 0, 0, 0])[3] += 1
            differences.append(f"{key}: missing from this checkout")
    return counts, differences


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    head_checkout = Path(__file__).resolve().parents[1]
    if argv[0] == "--save":  # a checkout's cases, to compare against later
        cases = compile_checkout(Path(argv[2]).resolve(), argv[3:])
        Path(argv[1]).write_text(json.dumps(cases))
        return 0
    base_checkout, targets = Path(argv[0]).resolve(), argv[1:]
    if base_checkout.suffix == ".json":  # a base compiled before, by --save
        base = json.loads(base_checkout.read_text())
    else:
        base = compile_checkout(base_checkout, targets)
    head = compile_checkout(head_checkout, targets)
    counts, differences = compare(base, head)
    print(f"base {base_checkout}, head {head_checkout}")
    print(f"{'target':<8}{'identical':>10}{'differ':>8}{'new':>6}{'missing':>9}")
    for target, (same, differ, new, missing) in counts.items():
        print(f"{target:<8}{same:>10}{differ:>8}{new:>6}{missing:>9}")
    for line in differences:
        print(line)
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
