"""Fit the static model's two constants to the one real GPU run, and judge it there.

The run: ``results/report-cuda.json``, an NVIDIA H200, commit fac9bf6, Triton
3.6. This script extracts that commit's kernels from git history, compiles
them as its launches did (``static_model_history.py``, under the installed
Triton, which must be 3.6 for the fit to mean anything), predicts every
measured case of the activation (forward, backward, both; fp32 and bf16)
and fits LATENCY and p to each case's fastest call (``min_ms``: medians
there include host noise) on the FIT cases only; the others are held out.

Where the host, not the GPU, bounds a call, the model cannot see it: the
smallest case (``demo``, 12 MB) measures the host's cost per call, and a
case's prediction is the larger of that floor and the device time.

    python -m bench.static_model_calibration      # writes results/static-model-calibration.{json,md}
"""

import argparse
import base64
import itertools
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import triton

from elu_triton.assembly import sass_of
from elu_triton.codegen import CompiledCase

from . import static_model
from .gpus import GPUS, Gpu
from .static_model import Constants, KernelCode, ModelCase, predict_case

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "fac9bf6"
REPORT = ROOT / "bench" / "results" / "report-cuda.json"
OUT_MD = static_model.CALIBRATION.with_suffix(".md")
# Fitted on the large cases the model is meant for: both layouts' forwards, and
# the backward of the channel-per-row and shared-alpha views; every other
# case is held out (mid-size ones, where the host floor matters, among them).
FIT = {("large", "fwd"), ("large", "bwd"), ("large_c1", "fwd"), ("large_c1", "bwd"),
       ("large_cl", "fwd"), ("large_c4096", "fwd")}  # fmt: skip
HOST_FLOOR_CASE = "demo"
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
KERNELS = {"fwd": ("forward",), "bwd": ("backward",), "fwd+bwd": ("forward", "backward")}
# Beyond this error a case is "not explained" (the model's other cases sit well inside it).
EXPLAINED = 0.15


def extract(commit: str, folder: Path) -> None:
    """commit's elu_triton, its kernels/ placed as elu_triton/kernels (as its wheel installs it)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "elu_triton", "kernels"],
                             capture_output=True, check=True).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "kernels").rename(folder / "elu_triton" / "kernels")


def compile_history(cases: list[ModelCase], jobs: int = 2) -> dict[ModelCase, KernelCode]:
    """Each case's kernel as commit COMMIT compiled it, read for the model."""
    with tempfile.TemporaryDirectory() as tmp:
        extract(COMMIT, Path(tmp))
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        env["PYTHONPATH"] = tmp
        chunks = [cases[i::jobs] for i in range(jobs) if cases[i::jobs]]
        script = str(Path(__file__).with_name("static_model_history.py"))
        children = [
            subprocess.Popen(
                [sys.executable, script,
                 json.dumps([[c.kernel, c.dtype, c.layout, list(c.shape)] for c in chunk])],
                cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for chunk in chunks
        ]  # fmt: skip
        codes = {}
        for chunk, child in zip(chunks, children):
            out, err = child.communicate()
            if child.returncode != 0:
                raise RuntimeError(f"compiling {COMMIT} failed:\n{err[-4000:]}")
            for case, item in zip(chunk, json.loads(out)):
                codes[case] = _code(item)
    return codes


def _code(item: dict) -> KernelCode:
    tool = triton.knobs.nvidia.cuobjdump.path
    compiled = CompiledCase(
        None, "", 0, item["n_regs"], item["local_bytes"], item["block_r"], item["block_k"],
        item["num_warps"], 32, (), (), tuple(item["grid"]), item["shared_bytes"],
        sass_of(base64.b64decode(item["cubin"]), tool),
    )  # fmt: skip
    return KernelCode.of(compiled)


def measured_rows(report: dict) -> list[dict]:
    """The elu_triton provider's records in the dtypes the model knows."""
    return [r for r in report["results"] if r["provider"] == "elu_triton" and r["dtype"] in DTYPES]


def model_case(row: dict, kernel: str) -> ModelCase:
    case = next(c for c in static_model.GPU_CASES if c.name == row["case"])
    return ModelCase(case.name, kernel, DTYPES[row["dtype"]], static_model.layout_of(case),
                     case.shape)  # fmt: skip


def cases_of(rows: list[dict]) -> list[ModelCase]:
    """The kernels the measured rows ran, each once."""
    return sorted({model_case(r, k) for r in rows for k in KERNELS[r["mode"]]}, key=str)


def gpu_of(report: dict) -> Gpu:
    """The run's GPU: its row of gpus.GPUS, with the SM count and copy bandwidth it measured."""
    device = report["environment"]["device"]
    name = next((k for k in GPUS if k in device), None)
    if name is None:
        raise ValueError(f"the model knows {sorted(GPUS)}; the report's GPU is {device!r}")
    return replace(GPUS[name], sms=report["environment"]["multiprocessors"],
                   copy_gbps=report["copy_bandwidth"]["GBps"], copy_source="measured")  # fmt: skip


def device_us(row: dict, codes: dict, gpu: Gpu, constants: Constants) -> float:
    """The mode's kernels and their partial sums, as the model predicts them."""
    total = 0.0
    for kernel in KERNELS[row["mode"]]:
        case = model_case(row, kernel)
        total += predict_case(case, codes[case], gpu, constants).us
    return total


def predictions(rows: list[dict], codes: dict, gpu: Gpu, constants: Constants) -> list[dict]:
    """Each measured case (the host-floor case aside) predicted beside its measurement."""
    floors = {(r["dtype"], r["mode"]): r["min_ms"] * 1e3 for r in rows
              if r["case"] == HOST_FLOOR_CASE}  # fmt: skip
    out = []
    for row in rows:
        if row["case"] == HOST_FLOOR_CASE:
            continue
        device = device_us(row, codes, gpu, constants)
        floor = floors.get((row["dtype"], row["mode"]), 0.0)
        predicted = max(device, floor)
        measured = row["min_ms"] * 1e3
        out.append({
            "case": row["case"], "dtype": row["dtype"], "mode": row["mode"],
            "fit": (row["case"], row["mode"]) in FIT, "measured_us": measured,
            "predicted_us": predicted, "device_us": device, "host_floor_us": floor,
            "error": predicted / measured - 1,
        })  # fmt: skip
    return out


def rms_log_error(table: list[dict], in_fit: bool = True) -> float:
    errors = [math.log1p(r["error"]) for r in table if r["fit"] == in_fit]
    return math.sqrt(sum(e * e for e in errors) / max(len(errors), 1))


def fit(rows: list[dict], codes: dict, gpu: Gpu) -> Constants:
    """LATENCY and p minimizing the RMS log error over the FIT cases: a coarse grid
    (300-2000 ns by 100, p 1.5-12 by 1.5), then a fine one around its best (20 ns, 0.25)."""

    def best(latencies, ps) -> Constants:
        candidates = (Constants(float(lat), p) for lat, p in itertools.product(latencies, ps))
        return min(candidates, key=lambda c: rms_log_error(predictions(rows, codes, gpu, c)))

    coarse = best(range(300, 2001, 100), [1.5 * i for i in range(1, 9)])
    lat, p = int(coarse.latency_ns), coarse.smoothing
    fine_ps = [x / 4 for x in range(max(int(4 * p) - 6, 6), int(4 * p) + 7)]
    return best(range(max(lat - 100, 300), min(lat + 100, 2000) + 1, 20), fine_ps)


def markdown(table: list[dict], constants: Constants, kernels: str) -> str:
    lines = [
        f"# The static model against a GPU run ({kernels}, Triton {triton.__version__})",
        "",
        f"Constants: LATENCY = {constants.latency_ns:.0f} ns, p = {constants.smoothing}; "
        f"LAUNCH_GAP = {constants.launch_gap_us} us (a guess). Measured: each case's fastest call "
        "(`min_ms`). Made by `python -m bench.static_model_calibration`.",
        "",
        "| case | dtype | mode | in fit | measured us | predicted us | device us | host floor us "
        "| error | explained |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['case']} | {r['dtype']} | {r['mode']} | {'fit' if r['fit'] else 'held out'} "
            f"| {r['measured_us']:.1f} | {r['predicted_us']:.1f} | {r['device_us']:.1f} "
            f"| {r['host_floor_us']:.1f} | {100 * r['error']:+.0f}% "
            f"| {'yes' if abs(r['error']) <= EXPLAINED else 'no'} |"
        )
    for name, selected in (("fit", True), ("held out", False)):
        errors = [abs(r["error"]) for r in table if r["fit"] == selected]
        if not errors:
            continue
        lines.append(f"\n{name}: {len(errors)} cases, mean |error| "
                     f"{100 * sum(errors) / len(errors):.1f}%, max {100 * max(errors):.1f}%")  # fmt: skip
    return "\n".join(lines) + "\n"


def calibrate_on_history() -> int:
    """Fit the constants on fac9bf6's kernels and the H200 run; write the calibration files."""
    if not triton.__version__.startswith("3.6"):
        print(f"Triton {triton.__version__}: the H200 run used 3.6; see bench/README.md")
        return 2
    report = json.loads(REPORT.read_text())
    rows = measured_rows(report)
    codes = compile_history(cases_of(rows))
    gpu = gpu_of(report)
    constants = fit(rows, codes, gpu)
    table = predictions(rows, codes, gpu, constants)
    static_model.CALIBRATION.write_text(json.dumps(
        {"commit": COMMIT, "triton": triton.__version__, "constants": constants.__dict__,
         "cases": table}, indent=1) + "\n")  # fmt: skip
    OUT_MD.write_text(markdown(table, constants, f"commit {COMMIT}"))
    print(OUT_MD.read_text())
    return 0


def judge_run(path: Path, gpu_name: str | None = None, summary: Path | None = None) -> int:
    """Today's kernels against a new run's report: predicted (landed constants) beside
    measured, then refitted; the result is added to the report as "static_model".

    gpu_name: a GPUS key to predict for instead of the report's GPU (the CPU smoke run).
    summary: write {"table": markdown lines} there (the GPU check's summary).
    """
    if not path.exists():
        return _not_judged(f"no {path.name} (did the report step run?)", summary)
    report = json.loads(path.read_text())
    known = {c.name for c in static_model.GPU_CASES}
    rows = [r for r in measured_rows(report) if r["case"] in known]
    try:
        gpu = GPUS[gpu_name] if gpu_name else gpu_of(report)
    except ValueError as error:
        return _not_judged(f"not judged: {error}", summary)
    if not any(r["case"] != HOST_FLOOR_CASE for r in rows):
        reason = f"{path.name} measured none of the GPU cases but the host floor's"
        return _not_judged(reason, summary)
    codes = static_model.compile_codes(cases_of(rows), jobs=max(os.cpu_count() or 1, 1))
    landed = static_model.calibrated()
    table = predictions(rows, codes, gpu, landed)
    refit = fit(rows, codes, gpu)
    refit_table = predictions(rows, codes, gpu, refit)
    report["static_model"] = {
        "gpu": gpu.name, "triton": triton.__version__, "constants": landed.__dict__,
        "cases": table, "refit": {"constants": refit.__dict__, "cases": refit_table},
    }  # fmt: skip
    path.write_text(json.dumps(report, indent=1) + "\n")
    landed_md = markdown(table, landed, f"today's kernels on {gpu.name}, the landed constants")
    print(landed_md)
    print(markdown(refit_table, refit, f"today's kernels on {gpu.name}, refitted on this run"))
    if summary:
        lines = landed_md.splitlines()[2:] + [
            f"Refitted on this run: LATENCY = {refit.latency_ns:.0f} ns, p = {refit.smoothing}, "
            f"fitted cases' RMS log error {rms_log_error(refit_table):.3f} "
            f"(landed constants: {rms_log_error(table):.3f})"
        ]  # fmt: skip
        summary.write_text(json.dumps({"table": lines}))
    return 0


def _not_judged(reason: str, summary: Path | None) -> int:
    print(f"static model: {reason}")
    if summary:
        summary.write_text(json.dumps({"table": [f"(the static model: {reason})"]}))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--report", type=Path,
                        help="judge today's kernels on this new run's report-<dev>.json instead "
                             "(bench.gpu_check does), and add the result to it")  # fmt: skip
    parser.add_argument("--gpu", choices=sorted(GPUS),
                        help="with --report: predict for this GPU, not the report's (a CPU smoke run)")  # fmt: skip
    parser.add_argument("--summary-json", type=Path,
                        help="with --report: the comparison's markdown lines, as JSON")  # fmt: skip
    args = parser.parse_args(argv)
    if args.report:
        return judge_run(args.report, args.gpu, args.summary_json)
    return calibrate_on_history()


if __name__ == "__main__":
    sys.exit(main())
