"""Backends: the registry that picks what runs a call, and ``prepare``.

A backend (``base.Backend``) runs the two passes for the device types it
serves. ``BACKENDS`` lists them in order of preference; for a tensor's device
the first that serves it runs:

| backend | serves |
| --- | --- |
| ``triton`` (``triton_kernels.py``) | CUDA; CPU too under TRITON_INTERPRET=1 (Triton's interpreter) |
| ``torch`` (``torch_ops.py``) | every device: the same math in eager PyTorch ops |

``prepare(x, alpha)`` checks a call's inputs and returns its backend and
that backend's launch, worked out once per input signature. ``backend_for(device)`` says which
backend serves a device; ``use_backend(name)`` forces one in this thread;
``clear_caches()`` forgets what was worked out, for tests that patch it.
"""

import contextlib
import importlib
import threading
from collections.abc import Iterator

import torch

from ..checks import check_inputs
from .base import NOTHING_TO_COMPUTE, Backend, Prepared, device_kind
from .device_guard import is_capturing

__all__ = [
    "BACKENDS",
    "NOTHING_TO_COMPUTE",
    "Backend",
    "Prepared",
    "available",
    "backend_for",
    "clear_caches",
    "device_kind",
    "prepare",
    "use_backend",
]

# Module names, in order of preference; each module defines BACKEND. The
# Triton backend imports triton, which machines without it lack.
BACKENDS = ("triton_kernels", "torch_ops")


class _Forced(threading.local):
    """This thread's forced backend. A class default, not a getattr default:
    a missing thread-local attribute would raise and catch on every call."""

    backend: Backend | None = None


_forced = _Forced()
_by_device_type: dict[str, Backend] = {}
_prepared: dict[tuple, Prepared] = {}
# Distinct signatures kept; past this the cache starts over (a model sees a
# handful: one per activation shape and layout).
_MAX_PREPARED = 4096


def _load(module_name: str) -> Backend | None:
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


def backend_for(device: torch.device | str) -> Backend:
    """The backend that runs tensors on device (in this thread: use_backend applies).

    Raises:
        ValueError: the backend forced by use_backend does not serve device.
    """
    return _select(torch.device(device).type)


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


def prepare(x: torch.Tensor, alpha: torch.Tensor) -> Prepared:
    """Check (x, alpha) and choose what runs them: worked out once per signature.

    Validity (``check_inputs``), the backend (``use_backend`` included) and
    the backend's launch depend only on the signature: both tensors' layouts
    (strided, sparse...), shapes, dtypes and devices, x's strides, and this
    thread's forced backend. At the activation sizes most layers see the
    device waits for the host, so a signature seen before costs one dict
    lookup; invalid inputs are never cached, so each raises anew.

    Raises:
        TypeError, ValueError: as ``check_inputs``; ValueError also when the
            backend forced by use_backend does not serve x's device.
    """
    try:
        key = (
            x.shape, x.stride(), x.dtype, x.device, x.layout,
            alpha.shape, alpha.dtype, alpha.device, alpha.layout, _forced.backend,
        )  # fmt: skip
    except (AttributeError, TypeError, RuntimeError):  # not tensors, or without strides
        key = None
    prepared = _prepared.get(key)
    if prepared is None:
        prepared = _prepare(x, alpha, key)
    return prepared


def _prepare(x: torch.Tensor, alpha: torch.Tensor, key: tuple | None) -> Prepared:
    check_inputs(x, alpha)  # also refuses what the key could not be read from
    if key is None:  # (not an assert: python -O would cache the None key)
        raise TypeError(f"x and alpha must be strided tensors, got {type(x)} and {type(alpha)}")
    backend = _select(device_kind(x))  # (empty inputs too: a forced backend must serve)
    if x.numel() == 0:
        prepared = Prepared(NOTHING_TO_COMPUTE, None)
    else:
        prepared = Prepared(backend, backend.launch_for(x, alpha.numel()))  # (alpha may be 0-D)
    # A launch first made during graph capture may hold tensors from the
    # graph's private pool: not cached, so that the cache pins no pool.
    if not is_capturing(x.device):
        if len(_prepared) >= _MAX_PREPARED:
            _prepared.clear()
        _prepared[key] = prepared
    return prepared


def clear_caches() -> None:
    """Forget every signature, device selection and backend launch worked out so far.

    For tests that patch what those derive from (a threshold, the list of
    backends), before and after the patch.
    """
    _prepared.clear()
    _by_device_type.clear()
    for backend in available():
        backend.clear_cache()


@contextlib.contextmanager
def use_backend(backend: str | Backend) -> Iterator[Backend]:
    """Force a backend (by name, or a Backend of one's own) in this thread, for the block.

    Other threads keep their own choice. A call made in the block (of the
    activation or of the fused ``BatchNormLearnableELU``) runs its
    ordinary backward on the same backend, wherever and whenever autograd runs
    it. A backward under create_graph=True, and calls that go through the
    custom ops (under a dispatch mode, with tensor subclasses), select again
    where the backward runs. A forced backend still has to serve
    the device of each call (``backend_for`` raises otherwise), so forcing
    ``"triton"`` on CPU tensors needs TRITON_INTERPRET=1 set before import.
    A Backend of one's own runs the fused layer too where its ``batch_norm``
    names a module of passes; without one the fused layer raises ValueError
    rather than run on another backend.

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
        _forget_unless_registered(backend)


def _forget_unless_registered(backend: Backend) -> None:
    """Drop the signatures cached under a user's own backend: the cache must not keep it alive.

    (A graph recorded in the block keeps what runs its backward, as it should.)
    """
    if backend not in available():
        for key in [key for key in list(_prepared) if key[-1] is backend]:
            _prepared.pop(key, None)
