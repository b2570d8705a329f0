"""Which device and which dtypes a benchmark measures: one matrix for every script.

``report.py``, ``training_cuda.py``, ``profile_step.py`` and ``gpu_check.py``
take the same ``--device`` and ``--dtypes`` flags and read them here, so that
one command serves an A100, H100, H200, B200 or MI300 unchanged: ROCm builds
of PyTorch expose their GPUs as ``cuda`` devices, and nothing below names a
card. What differs between cards is measured (copy bandwidth, memory), never
assumed.
"""

import torch

from elu_triton.environment import resolve_device  # noqa: F401  (the scripts' --device)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}

# What each device type measures when --dtypes is not given. The CPU has no
# fp16 fast path worth timing; its bf16 is timed on the cases that list it.
DEVICE_DTYPES = {
    "cuda": ("fp32", "bf16", "fp16"),
    "cpu": ("fp32", "bf16", "fp16"),
}
# Training steps run under autocast in these dtypes ("fp32": no autocast).
# fp16 training needs a GradScaler, whose inf check reads a flag on the host
# every step: a CUDA graph cannot hold it, so fp16 is left to the kernel report.
TRAINING_DTYPES = ("fp32", "bf16")


def dtype_names(device: torch.device, wanted: str = "") -> tuple[str, ...]:
    """The device type's dtypes, or the comma-separated subset wanted of them, in order.

    Raises:
        ValueError: a wanted name that is not a dtype of DTYPES.
    """
    names = DEVICE_DTYPES[device.type]
    if not wanted:
        return names
    chosen = tuple(n.strip() for n in wanted.split(",") if n.strip())
    unknown = [n for n in chosen if n not in DTYPES]
    if unknown:
        raise ValueError(f"--dtypes: unknown {unknown}; choose from {list(DTYPES)}")
    return tuple(n for n in DTYPES if n in chosen)


def gpu_vendor() -> str:
    """'ROCm <version>' or 'CUDA <version>': which toolkit this torch was built for."""
    hip = getattr(torch.version, "hip", None)
    return f"ROCm {hip}" if hip else f"CUDA {torch.version.cuda}"
