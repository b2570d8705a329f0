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
"""

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

import elu_triton

from . import cases, matrix, timing

PROFILED_CASES = ("conv", "demo")
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--cases", default=",".join(PROFILED_CASES), help="comma-separated")
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
    for name in args.cases.split(","):
        lines += profile_case(by_name[name], device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
