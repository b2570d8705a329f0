"""The whole comparison in one run: every case, dtype, mode and provider.

    python -m bench.report                  # measure on this machine's GPU, else its CPU
    python -m bench.report --device cpu --dtypes fp32,bf16   # the matrix of matrix.py
    python -m bench.report --from-json F    # re-render a stored run, measure nothing

It measures the copy bandwidth, the activation memory and a compiled conv
net, then each provider (checked against float64 once, then timed); judges
the issue's targets; prints markdown tables; and writes
``report-<cuda|cpu>.{json,md,png}`` to --out and the device type's section of
bench/RESULTS.md (not for a run limited by --cases or --dtypes).
On one H100 or H200 it is sized to finish in under 8 minutes: --budget-s
stops measuring when its time is spent (what is left is marked skipped).
Without a GPU it runs the CPU comparison (smaller shapes) and says so.
"""

import argparse
import json
import shlex
import sys
import time
import traceback
from pathlib import Path

import torch

from . import cases, matrix, measure, providers, render, targets, timing, training

HERE = Path(__file__).resolve().parent
# Time the compiled provider needs per (case, dtype) to be worth starting.
_COMPILE_RESERVE_S = 45


class Clock:
    """Seconds since the start, and whether the budget still allows a step."""

    def __init__(self, budget_s: float):
        self.start = time.perf_counter()
        self.budget_s = budget_s

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def allows(self, reserve_s: float = 0.0) -> bool:
        return self.elapsed() + reserve_s < self.budget_s


def _error_text(e: Exception) -> str:
    traceback.print_exc()
    first_line = (str(e).splitlines() or [""])[0]
    return f"error: {type(e).__name__}: {first_line[:200]}"


def measure_one(record, provider, inputs, mode, device, copy_gbps) -> None:
    """Build, check and time one provider; fills record (ms, GB/s...) or its error."""
    try:
        fn = providers.build_checked(provider, inputs, mode)
        measure.time_into(record, fn, inputs, device, copy_gbps)
        del fn
    except AssertionError as e:
        record["error"] = f"check failed: {e}"
    except Exception as e:  # an OOM or a compiler error must not end the run
        record["error"] = _error_text(e)


def measure_all(device, selected, clock: Clock, copy_gbps: float) -> list[dict]:
    records = []
    for case, dtype in selected:
        try:
            inputs = cases.make_inputs(case, dtype, device)
        except Exception as e:  # out of memory, say: the other cases still run
            inputs, failure = None, _error_text(e)
        for mode in cases.MODES:
            for provider in providers.PROVIDERS:
                if not providers.runs(provider, case, mode):
                    continue
                record = measure.new_record(case, dtype, mode, provider)
                records.append(record)
                reserve = _COMPILE_RESERVE_S if provider.name == "compiled" else 0
                if inputs is None:
                    record["error"] = failure
                    continue
                if not clock.allows(reserve):
                    record["error"] = "skipped: time budget spent"
                    continue
                measure_one(record, provider, inputs, mode, device, copy_gbps)
                _progress(clock, record)
        del inputs
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return records


def _progress(clock: Clock, r: dict) -> None:
    result = f"{r['ms']:9.4f} ms {r['GBps']:8.1f} GB/s" if r.get("ms") else r.get("error")
    print(f"[{clock.elapsed():6.1f}s] {r['case']:12s} {r['dtype']} {r['mode']:8s} "
          f"{r['provider']:10s} {result}", flush=True)  # fmt: skip


def measure_extras(device) -> tuple[dict, dict]:
    """Activation memory on the memory case, and the compiled conv net."""
    case = next(c for c in cases.cases_for(device) if c.name == cases.CPU_TARGET_CASE)
    try:
        inputs = cases.make_inputs(case, torch.float32, device)
        saved = training.activation_memory(inputs.x, inputs.alpha)
        memory = {
            "case": f"{case.name} {case.describe()}, fp32",
            "numel": case.numel,
            "bytes": saved,
        }
        del inputs
    except Exception as e:
        memory = {"error": _error_text(e)}
    try:
        model = training.model_step_times(device)
    except Exception as e:
        model = {"error": _error_text(e)}
    return memory, model


def _select(device, names: str, dtypes: str):
    wanted_cases = set(names.split(",")) if names else None
    wanted_dtypes = matrix.dtype_names(device, dtypes)
    return [
        (c, d) for c, d in cases.case_dtypes(device)
        if (wanted_cases is None or c.name in wanted_cases)
        and cases.DTYPE_NAMES[d] in wanted_dtypes
    ]  # fmt: skip


def run(args) -> dict:
    try:
        device = matrix.resolve_device(args.device)
        selected = _select(device, args.cases, args.dtypes)
    except ValueError as e:
        sys.exit(str(e))
    if timing.interpreter_active(device):
        sys.exit("TRITON_INTERPRET=1 with no GPU: the interpreter is not timed; unset it.")
    if device.type == "cpu":
        print("No GPU: running the CPU comparison (PyTorch path, smaller shapes).", flush=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = Clock(args.budget_s)
    report = {"environment": timing.environment(device), "command": args.command}
    print(f"device: {report['environment']['device']}", flush=True)
    report["copy_bandwidth"] = timing.copy_bandwidth_gbps(device)
    print(f"copy bandwidth: {report['copy_bandwidth']['GBps']:.1f} GB/s", flush=True)
    if not args.no_extras:
        report["activation_memory"], report["model"] = measure_extras(device)
        print(f"[{clock.elapsed():6.1f}s] activation memory and conv net done", flush=True)
    report["results"] = measure_all(device, selected, clock, report["copy_bandwidth"]["GBps"])
    report["elapsed_s"] = clock.elapsed()
    return report


def finish(report: dict, args) -> None:
    """Judge the targets, print the tables, write JSON, PNG and RESULTS.md."""
    report["targets"] = [t.as_dict() for t in targets.evaluate(report)]
    text = render.markdown(report)
    print("\n" + text)
    kind = report["environment"]["device_type"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"report-{kind}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"report-{kind}.md").write_text(text)
    try:
        render.chart(report, out / f"report-{kind}.png")
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
    print(f"wrote {out}/report-{kind}.json, .md, .png")
    if args.results_md and not args.cases and not args.dtypes:
        if render.update_results_md(Path(args.results_md), kind, text):
            print(f"updated the {kind} section of {args.results_md}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for JSON, PNG, MD")
    parser.add_argument("--device", default="auto", help="auto (the first GPU), cpu, cuda:N")
    parser.add_argument("--budget-s", type=float, default=450, help="stop measuring after this")
    parser.add_argument("--cases", default="", help="comma-separated case names (default all)")
    parser.add_argument("--dtypes", default="", help="comma-separated of fp32,bf16,fp16 (all)")
    parser.add_argument("--no-extras", action="store_true", help="skip memory and conv net")
    parser.add_argument(
        "--threads", type=int, default=0,
        help="CPU threads for torch (default: torch's); 1 on a machine other jobs share",
    )  # fmt: skip
    parser.add_argument("--from-json", help="re-render this stored report, measure nothing")
    parser.add_argument(
        "--results-md", default=str(HERE / "RESULTS.md"),
        help="RESULTS.md whose section to replace ('' for none; never for a subset run)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.command = "python -m bench.report " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:])
    )
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
    else:
        report = run(args)
    finish(report, args)


if __name__ == "__main__":
    main()
