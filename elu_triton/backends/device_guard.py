"""Running on a tensor's device, for any device type that torch has a module for.

Launchers such as Triton's start work on the current device of a type, so a
tensor on another device must make its own current first; a launch made while
that device's stream captures a graph must not be cached. Both go through the
device type's module, ``torch.get_device_module(type)`` (``torch.cuda``,
``torch.xpu``...), never through ``torch.cuda`` by name.

What a device type needs from its module: ``current_device()`` and
``device(d)`` (a context that makes d current), plus
``is_current_stream_capturing()`` if it can capture graphs. The CPU needs
neither switch nor capture test; types with no module (meta) have nothing to
switch.
"""

import contextlib
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

import torch

from .base import device_kind

_modules: dict[str, ModuleType | None] = {}
_Result = TypeVar("_Result")


def _device_module(kind: str) -> ModuleType | None:
    """torch's module for a device type; None for the CPU and types without one (meta)."""
    if kind not in _modules:
        try:
            _modules[kind] = None if kind == "cpu" else torch.get_device_module(kind)
        except RuntimeError:  # no module registered for the type
            _modules[kind] = None
    return _modules[kind]


def is_current_device(x: torch.Tensor) -> bool:
    """Whether x's device is the current one of its type (CPU tensors always are)."""
    if x.is_cpu:
        return True
    module = _device_module(device_kind(x))
    return module is None or x.get_device() == module.current_device()


def on_device_of(x: torch.Tensor) -> contextlib.AbstractContextManager:
    """A context in which x's device is the current one of its type."""
    module = _device_module(device_kind(x))
    return contextlib.nullcontext() if module is None else module.device(x.device)


def is_capturing(device: torch.device) -> bool:
    """Whether device's current stream is capturing a graph (device need not be current)."""
    module = _device_module(device.type)
    capturing = getattr(module, "is_current_stream_capturing", None)
    if capturing is None:  # the CPU, or a device type without graphs
        return False
    with module.device(device):
        return capturing()


def guard_needed(
    a: torch.Tensor, b: torch.Tensor | None = None, c: torch.Tensor | None = None
) -> bool:
    """Whether a launch on a (and b, c), all on one device, must go through ``run_guarded``.

    It must when their device is not the current one of its type (launches
    go to the current device) or when one of them is a lazily negated view
    (kernels read raw memory, not the view's sign bit). Every launch asks, so
    this is one expression over one to three tensors, not a loop over *args.
    """
    return (
        not (a.is_cpu or is_current_device(a))
        or a.is_neg()
        or (b is not None and b.is_neg())
        or (c is not None and c.is_neg())
    )


def run_guarded(launcher: Callable[..., _Result], num_tensors: int, *args) -> _Result:
    """launcher(*args) with the first argument's device current and negated views resolved.

    The first num_tensors arguments are the tensors ``guard_needed`` was asked about.
    """
    tensors = tuple(t.resolve_neg() for t in args[:num_tensors])
    with on_device_of(tensors[0]):
        return launcher(*tensors, *args[num_tensors:])
