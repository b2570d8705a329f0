"""Backends: what computes the forward and backward passes for a device.

A backend is a small protocol (``Backend``): a name, whether it serves a
device type, the two passes on validated, non-empty inputs, and optionally a
plan: what it can work out once per input layout (the Triton backend's
launch arguments), handed to both passes. ``BACKENDS``
lists them in order of preference; for a tensor's device the first that
serves it runs:

| backend | serves |
| --- | --- |
| ``triton`` (``triton_kernels.py``) | CUDA; CPU too under TRITON_INTERPRET=1 (Triton's interpreter) |
| ``torch`` (``torch_ops.py``) | every device: the same math in eager PyTorch ops |

Adding a device (XPU, say) is one module with a ``BACKEND`` and one row here;
ROCm GPUs are "cuda" devices to PyTorch, which the Triton backend serves.

``backend_for(device)`` says which backend serves a device; ``use_backend(name)``
forces one in this thread, for tests, benchmarks and the demo.

Every eager call goes through ``prepare(x, alpha)``: the inputs' check, the
backend, and the backend's plan for their layout (the Triton backend's launch
arguments) all follow from the pair's signature (layouts, shapes, x's
strides, dtypes, devices, and this thread's forced backend), so they are worked out once per
signature and a repeated call costs one dict lookup. At the activation sizes
most layers see, the GPU waits for this Python: every microsecond shows.
"""

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from ..checks import check_inputs

Forward = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]
Backward = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, bool, Any],
    tuple[torch.Tensor, torch.Tensor | None],
]


def _no_plan(x: torch.Tensor, num_alpha: int) -> None:
    return None


# eq=False: a backend is hashed by identity (a C-level hash), as it is part of
# prepare's cache key; a generated __hash__ would run Python over every field.
@dataclass(frozen=True, eq=False)
class Backend:
    """One way of running the passes.

    ``forward(x, alpha, plan)`` returns y in x's dtype and memory format;
    ``backward(dy, x, alpha, compute_dalpha, plan)`` returns (dx in x's dtype
    and memory format, dalpha in alpha's dtype or None). Both take validated,
    non-empty tensors on one device (``elu_triton.checks``), and the plan
    that ``plan(x, alpha.numel())`` returned for x's layout (shape, strides,
    dtype, device), or None; they must also accept plan=None. The backward
    gets the forward's plan, but x as autograd saved it: a saved-tensor hook
    (``save_on_cpu``, say) may hand it back in another memory format or dtype,
    so a backend whose plan depends on them must check (the Triton backend does).
    """

    name: str
    description: str  # for reports: what runs, in words
    serves: Callable[[str], bool]  # device type ("cuda", "cpu", ...) -> runs there
    forward: Forward
    backward: Backward
    plan: Callable[[torch.Tensor, int], Any] = _no_plan  # per layout, derived once (``prepare``)


class Prepared(NamedTuple):
    """What runs a call: the backend, and its plan for the inputs' layout."""

    backend: Backend
    plan: Any


# Module names, in order of preference; each module defines BACKEND. The
# Triton backend imports triton, which machines without it lack.
BACKENDS = ("triton_kernels", "torch_ops")


class _Forced(threading.local):
    """This thread's forced backend. A class default, not a getattr default:
    getattr on a missing thread-local attribute raises and catches, 1.5 us."""

    backend: Backend | None = None


_forced = _Forced()
_by_device_type: dict[str, Backend] = {}
_prepared: dict[tuple, Prepared] = {}
# Distinct signatures kept; past this the cache starts over (a model sees a
# handful: one per activation shape and layout).
_MAX_PREPARED = 4096


def _empty_forward(x: torch.Tensor, alpha: torch.Tensor, plan: None) -> torch.Tensor:
    return torch.empty_like(x)


def _empty_backward(dy, x, alpha, compute_dalpha: bool, plan: None):
    return torch.empty_like(x), torch.zeros_like(alpha) if compute_dalpha else None


# Empty inputs, on any backend: nothing to compute, so nothing is launched.
NOTHING_TO_COMPUTE = Backend(
    "empty", "nothing to compute (an empty input)", lambda device_type: True,
    _empty_forward, _empty_backward,
)  # fmt: skip


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


def prepare(x: torch.Tensor, alpha: torch.Tensor) -> Prepared:
    """Check (x, alpha) and choose what runs them: worked out once per signature.

    Validity (``check_inputs``), the backend (``use_backend`` included) and
    the backend's plan depend only on the signature: both tensors' layouts
    (strided, sparse...), shapes, dtypes and devices, x's strides, and this
    thread's forced backend. A signature seen before costs its key and one
    dict lookup; invalid inputs are never cached, so each raises anew.

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
        prepared = Prepared(backend, backend.plan(x, alpha.numel()))  # (alpha may be 0-D)
    # A plan first made during CUDA graph capture may hold tensors from the
    # graph's private pool: not cached, so that the cache pins no pool.
    if not (x.is_cuda and _capturing_on(x.device)):
        if len(_prepared) >= _MAX_PREPARED:
            _prepared.clear()
        _prepared[key] = prepared
    return prepared


def _capturing_on(device: torch.device) -> bool:
    """Whether x's device's current stream is capturing a CUDA graph (x may be off the current device)."""
    with torch.cuda.device(device):
        return torch.cuda.is_current_stream_capturing()


@contextlib.contextmanager
def use_backend(backend: str | Backend) -> Iterator[Backend]:
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
        _forget_unless_registered(backend)


def _forget_unless_registered(backend: Backend) -> None:
    """Drop the signatures cached under a user's own backend: the cache must not keep it alive.

    (A graph recorded in the block keeps what runs its backward, as it should.)
    """
    if backend not in available():
        for key in [key for key in list(_prepared) if key[-1] is backend]:
            _prepared.pop(key, None)
