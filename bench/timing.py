"""Timing, the copy-bandwidth ceiling, and the machine's description.

On CUDA a time is ``triton.testing.do_bench``'s median (L2 flushed before
each call, CUDA events around it). On the CPU it is the minimum of
``time.perf_counter`` around whole calls (see ``time_ms``); a CPU measurement
never goes through Triton's interpreter (``interpreter_active`` says when it
would).
"""

import datetime
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable

import torch

from elu_triton.environment import processor_name

from . import matrix

# do_bench's warm-up and timed milliseconds (its defaults are 25 and 100):
# at 50 ms a 256 MB tensor still gets ~100 timed calls, and the whole report
# fits its 8 minutes.
GPU_WARMUP_MS = 10
GPU_REP_MS = 50
# CPU: at least this many calls and this much time, at most MAX calls.
CPU_MIN_CALLS = 5
CPU_MIN_SECONDS = 0.3
CPU_MAX_CALLS = 50
STATISTIC = {"cuda": "median", "cpu": "min"}
# The copy ceiling is measured on a tensor far larger than any cache.
GPU_COPY_BYTES = 2 << 30
CPU_COPY_BYTES = 256 << 20


def pick_device() -> torch.device:
    """The first GPU (CUDA or ROCm) if there is one, else the CPU."""
    return matrix.resolve_device("auto")


def interpreter_active(device: torch.device) -> bool:
    """Whether CPU tensors would run the kernels in Triton's interpreter (not timed)."""
    return device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], object], device: torch.device, min_calls: int = CPU_MIN_CALLS) -> dict:
    """Time of fn() in ms ("ms"), with the median, the minimum and the number of calls.

    "ms" is the median on CUDA (do_bench's, as the issue asks) and the minimum
    on the CPU, where other processes only ever add time: on a shared 2-core
    machine a median measures the scheduler. fn must have run once already
    (compilation and autotuning excluded). min_calls applies to the CPU.
    """
    if device.type == "cuda":
        import triton.testing

        times = triton.testing.do_bench(fn, warmup=GPU_WARMUP_MS, rep=GPU_REP_MS, return_mode="all")
    else:
        times = []
        start = time.perf_counter()
        while len(times) < CPU_MAX_CALLS and (
            len(times) < min_calls or time.perf_counter() - start < CPU_MIN_SECONDS
        ):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    median, minimum = statistics.median(times), min(times)
    return {
        "ms": median if device.type == "cuda" else minimum,
        "statistic": STATISTIC[device.type],
        "median_ms": median,
        "min_ms": minimum,
        "calls": len(times),
    }


def step_samples_ms(
    step: Callable[[], object], device: torch.device, min_steps: int = 10, min_seconds: float = 1.0
) -> list[float]:
    """Milliseconds of each of at least min_steps calls of step, lasting at least min_seconds.

    For calls long enough (a training step) that do_bench would time only one or
    two: on CUDA each call sits between two events, read after one final
    synchronize, so the host never waits in between; on the CPU perf_counter.
    step must have run once already (compilation and capture excluded).
    """
    gpu = device.type == "cuda"
    spans, start = [], time.perf_counter()
    while len(spans) < min_steps or time.perf_counter() - start < min_seconds:
        if gpu:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            step()
            end.record()
            spans.append((begin, end))
        else:
            t0 = time.perf_counter()
            step()
            spans.append((time.perf_counter() - t0) * 1e3)
        if len(spans) >= 10 * min_steps:
            break
    if not gpu:
        return spans
    torch.cuda.synchronize(device)
    return [begin.elapsed_time(end) for begin, end in spans]


def median_and_spread(samples: list[float]) -> tuple[float, float]:
    """The median and the interquartile range (75th minus 25th percentile) of samples."""
    if len(samples) < 2:
        return samples[0], 0.0
    quartiles = statistics.quantiles(samples, n=4, method="inclusive")
    return statistics.median(samples), quartiles[2] - quartiles[0]


def copy_bandwidth_gbps(device: torch.device) -> dict:
    """Device-to-device copy bandwidth (bytes read + written per second, in GB/s)."""
    nbytes = GPU_COPY_BYTES if device.type == "cuda" else CPU_COPY_BYTES
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    copy = lambda: dst.copy_(src)  # noqa: E731
    copy()
    sync(device)
    timing = time_ms(copy, device)
    return {"GBps": 2 * nbytes / timing["ms"] / 1e6, "bytes": nbytes, **timing}


def _nvidia_driver() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def _load_average() -> str:
    """The 1-minute load average: CPU timings are only as quiet as the machine."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (OSError, AttributeError):
        return "unknown"


def device_name(device: torch.device) -> str:
    """'NVIDIA H100 80GB HBM3', or the CPU model with its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"{processor_name()} ({threads} thread{'s' if threads != 1 else ''})"


def environment(device: torch.device) -> dict:
    """The card or CPU, driver and library versions, and the date, for the record."""
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device_type": device.type,
        "device": device_name(device),
        "torch": torch.__version__,
        "triton": triton_version,
        "python": platform.python_version(),
        "cpu": processor_name(),
        "cpu_threads": torch.get_num_threads(),
        "load_average": _load_average(),
    }
    from elu_triton import backends

    env["backend"] = backends.backend_for(device).description
    if device.type == "cuda":
        env["driver"] = _nvidia_driver()
        env["cuda"] = torch.version.cuda
        env["toolkit"] = matrix.gpu_vendor()
        props = torch.cuda.get_device_properties(device)
        env["gpu_memory_GiB"] = round(props.total_memory / 2**30, 1)
        env["multiprocessors"] = props.multi_processor_count
    return env
