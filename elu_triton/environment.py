"""The environment report for bug reports: ``python -m elu_triton``.

Versions of the package, torch, triton and Python, and for each device
present the backend that serves it, with the GPU's name and compute
capability (CUDA) or architecture (ROCm), as ``python -m
torch.utils.collect_env`` reports PyTorch's.
"""

import os
import platform
import sys
from dataclasses import asdict, dataclass

import torch

from . import backends
from ._version import __version__


@dataclass(frozen=True)
class DeviceReport:
    """One device present: what it is and which backend runs the layer there."""

    device: str  # "cpu", "cuda:0", ...
    name: str  # the GPU's name, or the processor's
    arch: str  # "sm_90" (CUDA), "gfx942" (ROCm), or "" for the CPU
    backend: str  # the backend's name
    runs: str  # what the backend runs, in words


def _triton_version() -> str:
    try:
        import triton
    except ImportError:
        return "not installed"
    return triton.__version__


def processor_name() -> str:
    """The CPU's model name (Linux reports it only in /proc/cpuinfo), else its architecture."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(name: str = "auto") -> torch.device:
    """A --device flag's value: 'auto' is the first GPU (CUDA or ROCm) if any, else the CPU.

    For the demo's and the benchmarks' command lines.

    Raises:
        ValueError: an unknown device, or a GPU this machine lacks.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available on this machine")
        if (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(
                f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    return device


def _gpu_report(index: int) -> DeviceReport:
    device = f"cuda:{index}"
    properties = torch.cuda.get_device_properties(index)
    if torch.version.hip:
        arch = properties.gcnArchName.split(":")[0]  # "gfx942:sramecc+:xnack-"
    else:
        arch = f"sm_{properties.major}{properties.minor}"
    backend = backends.backend_for(device)
    return DeviceReport(device, properties.name, arch, backend.name, backend.description)


def devices() -> list[DeviceReport]:
    """The CPU, then every GPU that torch sees (CUDA or ROCm), then MPS or XPU if present."""
    cpu = backends.backend_for("cpu")
    found = [DeviceReport("cpu", processor_name(), "", cpu.name, cpu.description)]
    if torch.cuda.is_available():
        found += [_gpu_report(i) for i in range(torch.cuda.device_count())]
    for kind in ("mps", "xpu"):
        module = getattr(torch, kind, None)
        if module is not None and module.is_available():
            backend = backends.backend_for(kind)
            found.append(DeviceReport(kind, kind, "", backend.name, backend.description))
    return found


def versions() -> dict[str, str]:
    """The versions that decide what runs: package, torch (with its GPU runtime), triton, Python."""
    gpu_runtime = (
        f"ROCm {torch.version.hip}" if torch.version.hip
        else f"CUDA {torch.version.cuda}" if torch.version.cuda
        else "none (CPU build)"
    )  # fmt: skip
    return {
        "elu_triton": __version__,
        "torch": torch.__version__,
        "torch GPU runtime": gpu_runtime,
        "triton": _triton_version(),
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "TRITON_INTERPRET": os.environ.get("TRITON_INTERPRET", "unset"),
    }


def report() -> str:
    """The whole report as text, one fact per line."""
    lines = ["elu_triton environment", ""]
    lines += [f"{key:<18} {value}" for key, value in versions().items()]
    lines += ["", "devices:"]
    for d in devices():
        what = f"{d.name} ({d.arch})" if d.arch else d.name
        lines.append(f"  {d.device:<8} {what}: backend {d.backend!r}, {d.runs}")
    return "\n".join(lines)


def as_dict() -> dict:
    """The report as data (``--json``)."""
    return {"versions": versions(), "devices": [asdict(d) for d in devices()]}
