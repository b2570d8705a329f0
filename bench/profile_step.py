"""Where one forward+backward of the activation spends its time, from torch.profiler.

    python -m bench.profile_step --out DIR             # the first GPU, else the CPU
    python -m bench.profile_step --device cpu --out DIR

For the "conv" and "demo" cases of ``cases.py`` (fp32), it profiles one
forward+backward of ``learnable_elu`` (x and alpha requiring grad, a given
dy), after warm-up calls, with CPU and (on a GPU) CUDA activity and memory,
and writes ``profile.txt``: per case the top rows of ``key_averages``, the
kernel launches per step, the allocations, any host synchronization, and
the idle gaps on the device between consecutive kernels. The result is
checked against the reference first.

Then the per-kernel table (``--kernel-cases``, in fp32 and bf16): for the
gaps the static model cannot explain (the channel-per-column backward of
"large_cl" and "large_c4096", the 14x14 "deep" forward), each kernel of
the report's elu_triton call timed apart: our Triton kernel, the dalpha
partials' sum that follows it, any other launch, and the device's idle time
between them against the host's time per call. On the CPU (no device
kernels) the profiler's host events stand in: each op's own CPU time.
``--json FILE`` also writes the table as JSON (``bench.gpu_summary`` reads it).
"""

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

import elu_triton

from . import cases, matrix, providers, timing

PROFILED_CASES = ("conv", "demo")
# case:mode of the per-kernel table; on the CPU (--smoke) the same kinds of view.
KERNEL_CASES = {
    "cuda": "large_cl:bwd,large_c4096:bwd,deep:fwd,deep:bwd",
    "cpu": "conv_cl:bwd,mlp:bwd,conv:fwd",
}
KERNEL_DTYPES = "fp32,bf16"
KERNEL_CALLS = 10  # profiled calls per row, after the warm-up
# Device kernels by what they are: ours, the dalpha finish, the rest.
OUR_KERNELS = ("learnable_elu",)
FINISH_KERNELS = ("reduce_kernel", "gemv", "gemvx", "aten::sum", "aten::mv")
TOP_ROWS = 15
WARMUP_CALLS = 3
# Host calls that wait for the device: any of them inside a step is a stall.
SYNC_NAMES = ("Synchronize", "aten::item", "aten::_local_scalar_dense", "cudaMemcpy ")
LAUNCH_NAMES = ("LaunchKernel", "cuLaunch", "hipLaunch", "hipModuleLaunch")


def _step(inputs: cases.Inputs):
    x = inputs.x.detach().requires_grad_()
    alpha = inputs.alpha.detach().float().requires_grad_()

    def step():
        y = elu_triton.learnable_elu(x, alpha)
        return torch.autograd.grad(y, (x, alpha), inputs.dy)

    return step, x, alpha


def _check(inputs: cases.Inputs) -> None:
    """The profiled call's gradients match the reference's, or nothing is profiled."""
    step, x, alpha = _step(inputs)
    dx, dalpha = step()
    y_ref = elu_triton.reference.learnable_elu(x, alpha)
    dx_ref, dalpha_ref = torch.autograd.grad(y_ref, (x, alpha), inputs.dy)
    torch.testing.assert_close(dx, dx_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dalpha, dalpha_ref, rtol=1e-4, atol=1e-3)


def _device_kernels(events) -> list:
    return sorted(
        (e for e in events if e.device_type != torch.autograd.DeviceType.CPU),
        key=lambda e: e.time_range.start,
    )


def _gaps_us(kernels) -> list[float]:
    """Idle time between the end of each device kernel and the start of the next."""
    return [max(0.0, b.time_range.start - a.time_range.end) for a, b in zip(kernels, kernels[1:])]


def summarize(prof, device: torch.device) -> list[str]:
    """The lines of one case's summary: launches, allocations, syncs, gaps, top rows."""
    events = prof.events()
    kernels = _device_kernels(events)
    launches = [e for e in events if any(n in e.name for n in LAUNCH_NAMES)]
    syncs = sorted({e.name for e in events if any(n in e.name for n in SYNC_NAMES)})
    # An op's own allocations (its children's not counted twice), host and device.
    allocated = [
        max(0, e.self_cpu_memory_usage) + max(0, e.self_device_memory_usage) for e in events
    ]
    lines = [
        f"- kernel launches per step (host launch calls): {len(launches)}; "
        f"kernels run on the device: {len(kernels)}"
        + ("" if device.type == "cuda" else " (a CPU run: aten runs on the host, no kernels)"),
        f"- ops that allocate: {sum(1 for b in allocated if b > 0)}, "
        f"{sum(allocated) / 2**20:.1f} MiB in all",
        f"- host synchronization: {', '.join(syncs) if syncs else 'none'}",
    ]
    gaps = _gaps_us(kernels)
    if gaps:
        lines.append(
            f"- gaps between kernels (us): {', '.join(f'{g:.1f}' for g in gaps)}; "
            f"sum {sum(gaps):.1f}, kernels' own time {sum(k.time_range.elapsed_us() for k in kernels):.1f}"
        )
    else:
        lines.append("- gaps between kernels: fewer than two device kernels")
    sort_by = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    lines += ["", "```", prof.key_averages().table(sort_by=sort_by, row_limit=TOP_ROWS), "```"]
    return lines


def profile_case(case: cases.Case, device: torch.device) -> list[str]:
    inputs = cases.make_inputs(case, torch.float32, device)
    _check(inputs)
    step, _, _ = _step(inputs)
    for _ in range(WARMUP_CALLS):
        step()
    timing.sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, profile_memory=True, record_shapes=True) as prof:
        step()
        timing.sync(device)
    title = f"## {case.name}: {case.describe()}, fp32, one forward+backward"
    return [title, ""] + summarize(prof, device) + [""]


def breakdown(events, device_type: str, calls: int, wall_us: float) -> dict:
    """Per call: each kernel's time (device kernels; on the CPU each op's own host time).

    Returns {"kernels": [{name, kind, calls, us}] longest first, "busy_us":
    their sum, "span_us": the first kernel's start to the last one's end (the
    host's time on the CPU), "wall_us": the host's time}.
    """
    totals: dict[str, list[float]] = {}
    device_kernels = _device_kernels(events) if device_type == "cuda" else []
    for event in device_kernels:
        entry = totals.setdefault(event.name, [0, 0.0])
        entry[0] += 1
        entry[1] += event.time_range.elapsed_us()
    if device_type != "cuda":  # no device kernels: each op's own host time
        for event in events:
            if event.self_cpu_time_total > 0:
                entry = totals.setdefault(event.name, [0, 0.0])
                entry[0] += 1
                entry[1] += event.self_cpu_time_total
    kernels = sorted(
        ({"name": name, "kind": _kind(name), "calls": n / calls, "us": us / calls}
         for name, (n, us) in totals.items()),
        key=lambda k: -k["us"],
    )  # fmt: skip
    span_us = wall_us
    if device_kernels:
        span_us = (device_kernels[-1].time_range.end - device_kernels[0].time_range.start) / calls
    busy_us = sum(k["us"] for k in kernels) if device_kernels else wall_us
    return {"kernels": kernels, "busy_us": busy_us, "span_us": span_us, "wall_us": wall_us}


def _kind(name: str) -> str:
    if any(k in name for k in OUR_KERNELS):
        return "ours"
    return "finish" if any(k in name for k in FINISH_KERNELS) else "other"


def kernel_breakdown(fn, device: torch.device, calls: int = KERNEL_CALLS) -> dict:
    """``breakdown`` of calls of fn (built and checked), after warm-up, under the profiler.

    (The profiler adds host time to each call: wall_us is an upper bound.)
    """
    for _ in range(WARMUP_CALLS):
        fn()
    timing.sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        timing.sync(device)
        wall_us = (time.perf_counter() - start) * 1e6 / calls
    return breakdown(prof.events(), device.type, calls, wall_us)


def kernel_rows(device: torch.device, wanted: str, dtypes: str) -> Iterator[dict]:
    """The per-kernel row of each case:mode in wanted, in each dtype: checked, then profiled."""
    by_name = {c.name: c for c in cases.cases_for(device)}
    for item in wanted.split(","):
        name, mode = item.split(":")
        for dtype_name in matrix.dtype_names(device, dtypes):
            case, dtype = by_name[name], matrix.DTYPES[dtype_name]
            row = {"case": name, "shape": list(case.shape), "layout": case.layout,
                   "dtype": dtype_name, "mode": mode}  # fmt: skip
            inputs = None
            try:
                inputs = cases.make_inputs(case, dtype, device)
                fn = providers.build_checked(providers.OURS, inputs, mode)
                row.update(kernel_breakdown(fn, device))
            except Exception as e:  # an OOM or a failed check: the other rows still run
                row["error"] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
            del inputs
            yield row


def idle_us(row: dict) -> float:
    """The device's idle time per call between the first kernel's start and the last's end."""
    return max(0.0, row["span_us"] - row["busy_us"])


def _markdown(rows: list[dict], columns: list[str], lines_of) -> list[str]:
    """A table of rows by case, dtype and mode; lines_of(row) gives a row's lines of other cells."""
    lines = [
        "| case | dtype | mode | " + " | ".join(columns) + " |",
        "|---" * (3 + len(columns)) + "|",
    ]
    for row in rows:
        what = f"| {row['case']} | {row['dtype']} | {row['mode']} | "
        error = [[row["error"][:100]] + [""] * (len(columns) - 1)] if "error" in row else None
        lines += [what + " | ".join(cells) + " |" for cells in error or lines_of(row)]
    return lines


def render_kernel_table(rows: list[dict], device_type: str) -> list[str]:
    """Markdown: per case, dtype and mode, each kernel's us per call, then idle and host time."""

    def lines_of(row: dict) -> list[list[str]]:
        span = row["span_us"] or 1.0
        lines = [[k["name"][:70], k["kind"], f"{k['calls']:.0f}", f"{k['us']:.1f}",
                  f"{100 * k['us'] / span:.0f}%"] for k in row["kernels"][:6]]  # fmt: skip
        if device_type == "cuda":
            idle = idle_us(row)
            lines.append(["(device idle between kernels)", "gap", "", f"{idle:.1f}",
                          f"{100 * idle / span:.0f}%"])  # fmt: skip
        return lines + [["(host, per call, profiled)", "host", "", f"{row['wall_us']:.1f}", ""]]

    unit = "device us" if device_type == "cuda" else "host us (CPU ops)"
    return _markdown(rows, ["kernel", "kind", "calls", unit, "share"], lines_of)


def render_kernel_summary(rows: list[dict], device_type: str) -> list[str]:
    """One line per case, dtype and mode: ours, the finish, the rest, idle and host, in us per call."""

    def lines_of(row: dict) -> list[list[str]]:
        by_kind = [sum(k["us"] for k in row["kernels"] if k["kind"] == kind)
                   for kind in ("ours", "finish", "other")]  # fmt: skip
        idle = f"{idle_us(row):.1f}" if device_type == "cuda" else "-"
        return [[*(f"{us:.1f}" for us in by_kind), idle, f"{row['wall_us']:.1f}"]]

    unit = "device us" if device_type == "cuda" else "CPU ops' us"
    columns = [f"ours ({unit})", "finish", "other", "idle", "host us"]
    return _markdown(rows, columns, lines_of)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--cases", default=",".join(PROFILED_CASES), help="comma-separated")
    parser.add_argument(
        "--kernel-cases", default=None,
        help="case:mode,... of the per-kernel table ('' for none; default: the model's gaps)",
    )  # fmt: skip
    parser.add_argument("--kernel-dtypes", default=KERNEL_DTYPES, help="its dtypes")
    parser.add_argument("--json", type=Path, help="also write the per-kernel table here")
    args = parser.parse_args(argv)
    device = matrix.resolve_device(args.device)
    if timing.interpreter_active(device):
        sys.exit("TRITON_INTERPRET=1 on a CPU: the interpreter is not profiled; unset it.")
    env = timing.environment(device)
    lines = [
        "# Profile of one forward+backward of learnable_elu",
        "",
        f"- {env['date']}; {env['device']}; torch {env['torch']}, triton {env['triton']}; "
        f"backend: {env['backend']}",
        "",
    ]
    by_name = {c.name: c for c in cases.cases_for(device)}
    for name in filter(None, args.cases.split(",")):
        lines += profile_case(by_name[name], device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = KERNEL_CASES[device.type] if args.kernel_cases is None else args.kernel_cases
    # Written again after each row: a step cut short by its time limit keeps what it measured.
    table = []
    text = _write(out, lines, table, device.type, env, args.json)
    for row in kernel_rows(device, wanted, args.kernel_dtypes) if wanted else ():
        table.append(row)
        text = _write(out, lines, table, device.type, env, args.json)
    print(text)
    return 0


def _write(out: Path, lines: list[str], table: list[dict], device_type: str, env: dict,
           json_path: Path | None) -> str:  # fmt: skip
    """profile.txt (the profiled cases, then the per-kernel table so far), and the JSON if asked."""
    if table:
        lines = lines + [
            "## Per kernel: our kernel, the dalpha finish, other launches, idle time",
            "",
            f"Per call of the report's elu_triton callable, {KERNEL_CALLS} calls profiled "
            "after warm-up; share: of the device's span from the first kernel's start to "
            "the last one's end (on the CPU, of the host's time per call).",
            "",
            *render_kernel_table(table, device_type),
            "",
        ]
    text = "\n".join(lines)
    (out / "profile.txt").write_text(text + "\n")
    if json_path:
        summary = render_kernel_summary(table, device_type) if table else []
        json_path.write_text(
            json.dumps({"environment": env, "kernels": table, "table": summary}, indent=1)
        )
    return text


if __name__ == "__main__":
    sys.exit(main())
