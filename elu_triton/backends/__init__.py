"""Backends: what computes the forward and backward passes for a device.

A backend is a small protocol (``Backend``): a name, whether it serves a
device type, and the two passes on validated, non-empty inputs. ``BACKENDS``
lists them in order of preference; for a tensor's device the first that
serves it runs:

| backend | serves |
| --- | --- |
| ``triton`` (``triton_kernels.py``) | CUDA; CPU too under TRITON_INTERPRET=1 (Triton's interpreter) |
| ``torch`` (``torch_ops.py``) | every device: the same math in eager PyTorch ops |

Adding a device (XPU, say) is one module with a ``BACKEND`` and one row here;
ROCm GPUs are "cuda" devices to PyTorch, which the Triton backend serves.

``backend_for(device)`` says which backend serves a device; ``use_backend(name)``
forces one in this thread, for tests, benchmarks and the demo. The choice per
device type is cached: selecting costs one dict lookup per call.
"""

import contextlib
import importlib
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Union

import torch

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Backward = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, bool], tuple[torch.Tensor, Optional[torch.Tensor]]
]


@dataclass(frozen=True)
class Backend:
    """One way of running the passes.

    ``forward(x, alpha)`` returns y in x's dtype and memory format;
    ``backward(dy, x, alpha, compute_dalpha)`` returns (dx in x's dtype and
    memory format, dalpha in alpha's dtype or None). Both take validated,
    non-empty tensors on one device (``elu_triton.checks``).
    """

    name: str
    description: str  # for reports: what runs, in words
    serves: Callable[[str], bool]  # device type ("cuda", "cpu", ...) -> runs there
    forward: Forward
    backward: Backward


# Module names, in order of preference; each module defines BACKEND. The
# Triton backend imports triton, which machines without it lack.
BACKENDS = ("triton_kernels", "torch_ops")

class _Forced(threading.local):
    """This thread's forced backend. A class default, not a getattr default:
    getattr on a missing thread-local attribute raises and catches, 1.5 us."""

    backend: Optional[Backend] = None


_forced = _Forced()
_by_device_type: dict[str, Backend] = {}


def _load(module_name: str) -> Optional[Backend]:
    try:
        return importlib.import_module(f"{__name__}.{module_name}").BACKEND
    except ModuleNotFoundError as error:
        if error.name != "triton":
            raise
        return None  # triton is not installed (macOS, Windows): skip its backend


def available() -> tuple[Backend, ...]:
    """The backends this installation can run, in order of preference."""
    return tuple(b for b in map(_load, BACKENDS) if b is not None)


def _named(name: str) -> Backend:
    for backend in available():
        if backend.name == name:
            return backend
    raise ValueError(
        f"no backend named {name!r} can run here; available: {[b.name for b in available()]}"
    )


def backend_for(device: Union[torch.device, str]) -> Backend:
    """The backend that runs tensors on device (in this thread: use_backend applies).

    Raises:
        ValueError: the backend forced by use_backend does not serve device.
    """
    device_type = torch.device(device).type
    return _select(device_type)


def _select(device_type: str) -> Backend:
    forced = _forced.backend
    if forced is not None:
        if not forced.serves(device_type):
            raise ValueError(
                f"use_backend({forced.name!r}) is in force, but that backend does not "
                f"serve {device_type} tensors"
            )
        return forced
    backend = _by_device_type.get(device_type)
    if backend is None:
        backend = next(b for b in available() if b.serves(device_type))
        _by_device_type[device_type] = backend
    return backend


def device_kind(x: torch.Tensor) -> str:
    """x.device.type, without building a torch.device for CUDA and CPU tensors (0.7 us)."""
    if x.is_cuda:
        return "cuda"
    return "cpu" if x.is_cpu else x.device.type


def select(x: torch.Tensor) -> Backend:
    """The backend for x's device: the hot path's lookup (one dict get when nothing is forced)."""
    kind = device_kind(x)
    if _forced.backend is None:
        backend = _by_device_type.get(kind)
        if backend is not None:
            return backend
    return _select(kind)


@contextlib.contextmanager
def use_backend(backend: Union[str, Backend]) -> Iterator[Backend]:
    """Force a backend (by name, or a Backend of one's own) in this thread, for the block.

    Other threads keep their own choice. A call made in the block runs its
    ordinary backward on the same backend, wherever and whenever autograd runs
    it. A backward under create_graph=True, and calls that go through the
    custom ops (under a dispatch mode, with tensor subclasses), select again
    where the backward runs. A forced backend still has to serve
    the device of each call (``backend_for`` raises otherwise), so forcing
    ``"triton"`` on CPU tensors needs TRITON_INTERPRET=1 set before import.

    Example:
        >>> with elu_triton.backends.use_backend("torch"):
        ...     y = layer(x)  # the eager PyTorch ops, even on CUDA

    Raises:
        ValueError: no backend of that name can run here.
        TypeError: backend is neither a name nor a Backend.
    """
    if isinstance(backend, str):
        backend = _named(backend)
    elif not isinstance(backend, Backend):
        raise TypeError(
            f"use_backend takes a backend's name or a Backend, got {type(backend).__name__}"
        )
    previous = _forced.backend
    _forced.backend = backend
    try:
        yield backend
    finally:
        _forced.backend = previous
