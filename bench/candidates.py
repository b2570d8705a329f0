"""The tuning candidates against today's defaults, side by side: each switch setting in a child process.

    python -m bench.candidates                      # the first GPU; every setting
    python -m bench.candidates --budget-s 50 --json F   # as bench.gpu_check runs it
    python -m bench.candidates --smoke              # the CPU, in Triton's interpreter

The switches (``elu_triton/switches.py``) are read once at import, so each
setting of ``SETTINGS`` runs in its own child process with its environment
variables set. A child measures the elu_triton call the report times
(``providers``: checked against float64 first) on the cases the static
model cannot explain (``MEASURED``): the channel-per-column backward
(``large_cl``, ``large_c4096``), 14x14 maps (``deep``) and 7x7 maps
(``deep7``), forward and backward, in fp32 and bf16. A measurement whose
launch and finish are the defaults' is not repeated ("= default"). The
compiled setting measures forward+backward under ``torch.compile`` against
the compiled reference composite, in the same child.

Settings run in order of priority until ``--budget-s`` is spent; the rest
are marked skipped. The table (markdown, on stdout; ``--json`` also keeps
the records) has one row per case, dtype and mode and one column per
setting: ms, percent of the copy bandwidth and the time over the
default's. ``--smoke`` runs every setting on tiny inputs, fp32 only, under
TRITON_INTERPRET=1, so that the switches reach the kernels; its times are
the interpreter's and mean nothing (no percentage of the copy bandwidth).
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from elu_triton import switches
from elu_triton.backends import triton_config
from elu_triton.backends.base import device_kind
from elu_triton.layout import memory_view

from . import cases, matrix, providers, timing
from .activations import BY_NAME as ACTIVATIONS

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Setting:
    name: str
    env: dict = field(default_factory=dict)  # the switches it sets
    compiled: bool = False  # measures under torch.compile instead
    min_s: float = 8.0  # seconds a child needs at least: start-up, compiles, timing


# In order of priority: the cheapest to run and likeliest to explain a gap first.
SETTINGS = (
    Setting("default"),
    Setting("finish by mv", {"ELU_TRITON_DALPHA_FINISH": "mv"}),
    Setting("128 rows per column tile", {"ELU_TRITON_TUNING": "column_min_rows=128"}),
    Setting("whole rows up to 1024", {"ELU_TRITON_TUNING": "whole_row_max=1024"}),
    Setting("16-bit tiles of 2048", {"ELU_TRITON_TUNING": "2:tile_elements=2048"}),
    Setting("8 rows per column tile", {"ELU_TRITON_TUNING": "column_min_rows=8"}),
    Setting(
        "compiled, triton_op backward", {"ELU_TRITON_COMPILED_BACKWARD": "triton_op"},
        compiled=True, min_s=30.0,
    ),
)  # fmt: skip
BY_NAME = {s.name: s for s in SETTINGS}
# (case, mode) measured by every setting but the compiled one, in fp32 and bf16.
MEASURED = (
    ("large_cl", "bwd"), ("large_c4096", "bwd"), ("deep", "fwd"), ("deep", "bwd"),
    ("deep7", "fwd"), ("deep7", "bwd"),
)  # fmt: skip
COMPILED_MEASURED = (("large_cl", "fwd+bwd"),)
DTYPES = ("fp32", "bf16")
SMOKE_DTYPES = ("fp32",)  # (bf16 under a switch: tests/test_switches.py)
# --smoke: the same kinds of view, small enough for the interpreter.
SMOKE_SHAPES = {
    "large_cl": ((2, 32, 6, 6), True),
    "large_c4096": ((192, 64), False),
    "deep": ((2, 16, 14, 14), False),
    "deep7": ((2, 32, 7, 7), False),
}


# ---------------------------------------------------------------------------
# The child: one setting, its switches already read at import


def _cases(device, smoke: bool) -> dict:
    if smoke:
        return {
            name: cases.Case(name, shape, channels_last=cl, listed=False, compiled=False)
            for name, (shape, cl) in SMOKE_SHAPES.items()
        }
    return {c.name: c for c in (*cases.GPU_CASES, *cases.CANDIDATE_GPU_CASES)}


def _launch(x, num_alpha: int) -> tuple[str, bool]:
    """x's launch in words, and whether it is the default's (the TUNING row, sum finish)."""
    kind = triton_config.tuning_kind(device_kind(x))
    args = triton_config.kernel_args(x, num_alpha)
    view = memory_view(x, num_alpha)
    default = triton_config.launch_config_for(view, x.element_size(), triton_config.TUNING[kind])
    cfg = args.config
    words = (
        f"{cfg.block_r}x{cfg.block_k}, {cfg.num_warps} warps, "
        f"partials {cfg.dalpha_partials_shape[0]}x{cfg.dalpha_partials_shape[1]}"
    )
    return words, cfg == default


def _measure(record: dict, provider, inputs, mode: str, device, copy_gbps: float | None) -> None:
    """The provider's ms, checked against float64 first: do_bench's median on a GPU.

    In the interpreter (smoke) the checked call itself is timed: a second
    call would only double the interpreter's time, for a figure that means nothing.
    """
    fn = providers.build(provider, inputs, mode)
    start = time.perf_counter()
    outputs = fn()  # (on a GPU: compiles; never timed there)
    record["ms"] = (time.perf_counter() - start) * 1e3
    providers.check(provider, outputs, inputs, mode)
    if device.type == "cuda":
        record["ms"] = timing.time_ms(fn, device)["ms"]
    gbps = cases.effective_gbps(inputs.case, inputs.x.dtype, mode, record["ms"])
    record["pct_copy"] = 100 * gbps / copy_gbps if copy_gbps else None


def _providers(setting: Setting) -> list:
    """What the child times: elu_triton; compiled, elu_triton's route and the compiled composite."""
    if not setting.compiled:
        return [providers.OURS]
    return [
        dataclasses.replace(providers.OURS, name="elu_triton compiled", compiled=True),
        ACTIVATIONS["compiled"],
    ]


def run_child(args) -> list[dict]:
    """The records of this process's setting: every (case, dtype, mode) it measures."""
    setting = BY_NAME[args.child]
    device = matrix.resolve_device(args.device)
    by_name = _cases(device, args.smoke)
    # (None in the interpreter, whose times mean nothing: no percentage.)
    copy_gbps = None if args.smoke else timing.copy_bandwidth_gbps(device)["GBps"]
    records = []
    for case_name, mode in COMPILED_MEASURED if setting.compiled else MEASURED:
        case = by_name[case_name]
        for dtype_name in SMOKE_DTYPES if args.smoke else DTYPES:
            try:
                inputs = cases.make_inputs(case, matrix.DTYPES[dtype_name], device)
            except Exception as e:  # out of memory, say: the other cases still run
                records.append({"setting": setting.name, "case": case_name, "dtype": dtype_name,
                                "mode": mode, "provider": "-", "error": _error(e)})  # fmt: skip
                continue
            launch, same = _launch(inputs.x, case.num_alpha)
            # What this process read: a finish other than the sum changes every
            # backward; the compiled setting measures anew.
            finish = switches.DALPHA_FINISH != "sum" and "bwd" in mode
            same = same and not (setting.compiled or finish)
            for provider in _providers(setting):
                record = {"setting": setting.name, "case": case_name, "shape": list(case.shape),
                          "layout": case.layout, "dtype": dtype_name, "mode": mode,
                          "provider": provider.name, "launch": launch, "same_as_default": same,
                          "ms": None}  # fmt: skip
                records.append(record)
                if same and setting.name != "default" and not args.smoke:
                    continue  # the default's launch: its figure stands for both
                try:
                    _measure(record, provider, inputs, mode, device, copy_gbps)
                except Exception as e:  # a failed check, an OOM: the others still run
                    record["error"] = _error(e)
            del inputs
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return records


def _error(e: Exception) -> str:
    return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"


# ---------------------------------------------------------------------------
# The parent: one child per setting, within the budget; the table


def _child_env(setting: Setting, smoke: bool) -> dict:
    """This environment without any switch of ours, with the setting's (and the interpreter in smoke)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ELU_TRITON_") and k != "TRITON_INTERPRET"}  # fmt: skip
    return {**env, **setting.env, **({"TRITON_INTERPRET": "1"} if smoke else {})}


def run_settings(args, scratch: Path) -> list[dict]:
    """Each chosen setting in a child, in order, while the budget lasts: all their records."""
    start = time.perf_counter()
    records = []
    for index, setting in enumerate(_chosen(args.only)):
        left = args.budget_s - (time.perf_counter() - start)
        if setting.compiled and args.smoke:
            records.append(_not_run(setting, "needs a GPU (interpreted kernels cannot be traced)"))
            continue
        if left < setting.min_s:
            records.append(_not_run(setting, "time budget spent"))
            continue
        print(f"[{time.perf_counter() - start:5.1f} s] {setting.name}: {setting.env or 'defaults'}",
              flush=True)  # fmt: skip
        out = scratch / f"setting-{index}.json"
        command = [sys.executable, "-m", "bench.candidates", "--child", setting.name,
                   "--device", args.device, "--json", str(out), *(["--smoke"] * args.smoke)]  # fmt: skip
        try:
            subprocess.run(command, cwd=ROOT, env=_child_env(setting, args.smoke), timeout=left,
                           check=True)  # fmt: skip
            records += json.loads(out.read_text())
        except (subprocess.SubprocessError, OSError, ValueError) as e:
            records.append(_not_run(setting, f"{type(e).__name__}: {str(e)[:160]}"))
        _save(args, records)  # after each setting: a run cut short keeps what it measured
    return records


def _save(args, records: list[dict]) -> None:
    """--json: the records, and the table for bench.gpu_summary (which imports no torch)."""
    if args.json:
        table = render(records)
        args.json.write_text(
            json.dumps({"smoke": args.smoke, "records": records, "table": table}, indent=1)
        )


def _chosen(only: str) -> list[Setting]:
    if not only:
        return list(SETTINGS)
    names = [n.strip() for n in only.split(",")]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"--only: unknown {unknown}; settings: {list(BY_NAME)}")
    return [BY_NAME[n] for n in names]


def _not_run(setting: Setting, why: str) -> dict:
    return {"setting": setting.name, "not_run": why}


def _cell(record: dict | None, baseline: dict | None) -> str:
    if record is None:
        return ""
    if record.get("error"):
        return f"error: {record['error'][:60]}"
    if record["ms"] is None:
        return "= default" if record["same_as_default"] else "not measured"
    text = f"{record['ms']:.4g} ms"
    if record.get("pct_copy") is not None:
        text += f", {record['pct_copy']:.0f}%"
    if baseline and baseline is not record and baseline.get("ms"):
        text += f" ({record['ms'] / baseline['ms']:.2f}x)"
    return text


def render(records: list[dict]) -> list[str]:
    """The side-by-side table: a row per case, dtype, mode and provider; a column per setting."""
    measured = [r for r in records if "not_run" not in r]
    settings = list(dict.fromkeys(r["setting"] for r in measured))
    rows = list(dict.fromkeys((r["case"], r["dtype"], r["mode"], r["provider"]) for r in measured))
    found = {(r["setting"], r["case"], r["dtype"], r["mode"], r["provider"]): r for r in measured}
    lines = [
        "| case | dtype | mode | provider | " + " | ".join(settings) + " |",
        "|---" * (4 + len(settings)) + "|",
    ]
    for case, dtype, mode, provider in rows:
        cells = []
        for setting in settings:
            # Against the default setting's figure; the compiled candidate
            # against the compiled composite measured beside it.
            if provider == "elu_triton compiled":
                baseline = found.get((setting, case, dtype, mode, "compiled"))
            else:
                baseline = found.get(("default", case, dtype, mode, provider))
            cells.append(_cell(found.get((setting, case, dtype, mode, provider)), baseline))
        lines.append(f"| {case} | {dtype} | {mode} | {provider} | " + " | ".join(cells) + " |")
    lines += [f"- {r['setting']}: not run, {r['not_run']}" for r in records if "not_run" in r]
    return lines


def render_launches(records: list[dict]) -> list[str]:
    """Each setting's launch (tile, warps, partials) per case and dtype: where it differs."""
    measured = [r for r in records if "launch" in r]
    settings = list(dict.fromkeys(r["setting"] for r in measured))
    rows = list(dict.fromkeys((r["case"], r["dtype"]) for r in measured))
    found = {(r["setting"], r["case"], r["dtype"]): r for r in measured}
    lines = ["| case | dtype | " + " | ".join(settings) + " |", "|---" * (2 + len(settings)) + "|"]
    for case, dtype in rows:
        cells = [found[(s, case, dtype)]["launch"] if (s, case, dtype) in found else ""
                 for s in settings]  # fmt: skip
        lines.append(f"| {case} | {dtype} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--device", default="auto", help="auto (the first GPU), cuda:N or cpu")
    parser.add_argument("--budget-s", type=float, default=600, help="stop starting settings after")
    parser.add_argument("--only", default="", help="comma-separated setting names (default all)")
    parser.add_argument("--json", type=Path, help="also write the records here")
    parser.add_argument("--smoke", action="store_true", help="CPU, interpreter, tiny inputs")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a setting's child process
    args = parser.parse_args(argv)
    if args.smoke:
        args.device = "cpu"
    elif matrix.resolve_device(args.device).type != "cuda":
        parser.error(
            "the switches reach the Triton kernels on a GPU, or with --smoke (interpreted)"
        )
    if args.child:
        records = run_child(args)
        args.json.write_text(json.dumps(records))
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        records = run_settings(args, Path(scratch))
    lines = ["## Tuning candidates against the defaults", "",
             "ms, % of the copy bandwidth, and (in parentheses) the time over the default's "
             "(the compiled candidate's: over the compiled composite's).", "",
             *render(records), "", "Launches (tile rows x columns, warps, dalpha partials):", "",
             *render_launches(records)]  # fmt: skip
    if args.smoke:
        lines += ["", "Smoke run: the interpreter on tiny inputs; the times mean nothing."]
    print("\n".join(lines))
    _save(args, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
