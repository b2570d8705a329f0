"""The backend protocol: ``Backend``, ``Prepared``, ``dalpha_shape``, the empty backend, ``device_kind``.

A backend is a name, whether it serves a device type, the two passes on
validated, non-empty inputs, and optionally a launch: what it works out once
per input layout to run the passes on it, handed to both. The registry that picks one for a
call is ``backends/__init__.py``; this module imports nothing of ours, so the
backends can import it without a cycle.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

Forward = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]
Backward = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, bool, Any],
    tuple[torch.Tensor, torch.Tensor | None],
]


def _no_launch(x: torch.Tensor, num_alpha: int) -> None:
    return None


def _nothing_cached() -> None:
    return None


# eq=False: a backend is hashed by identity (a C-level hash), as it is part of
# prepare's cache key; a generated __hash__ would run Python over every field.
@dataclass(frozen=True, eq=False)
class Backend:
    """One way of running the passes.

    ``forward(x, alpha, launch)`` returns y in x's dtype and memory format;
    ``backward(dy, x, alpha, compute_dalpha, launch)`` returns (dx in x's dtype
    and memory format, dalpha of ``dalpha_shape(alpha)`` in alpha's dtype, or
    None). Both take validated, non-empty tensors on one device
    (``elu_triton.checks``), and the launch that ``launch_for(x, alpha.numel())``
    returned for x's layout (shape, strides, dtype, device), or None; they
    must also accept launch=None. The backward
    gets the forward's launch, but x as autograd saved it: a saved-tensor hook
    (``save_on_cpu``, say) may hand it back in another memory format or dtype,
    so a backend whose launch depends on them must check (the Triton backend does).
    A backend whose ``launch_for`` keeps a cache of its own empties it in ``clear_cache``.

    ``batch_norm`` names the module that runs the fused batch norm's passes
    on this backend (``statistics``, ``normalize_activate``, ``backward``:
    see ``elu_triton.batch_norm.torch_ops``), imported on first use; None for
    a backend that runs the activation only, which the fused layer refuses.
    """

    name: str
    description: str  # for reports: what runs, in words
    serves: Callable[[str], bool]  # device type ("cuda", "cpu", ...) -> runs there
    forward: Forward
    backward: Backward
    # (x, alpha.numel()) -> the launch of x's layout, worked out once (``prepare``)
    launch_for: Callable[[torch.Tensor, int], Any] = _no_launch
    clear_cache: Callable[[], None] = _nothing_cached  # forgets launch_for's own cache, if any
    batch_norm: str | None = None  # module of the fused batch norm's passes, or None


class Prepared(NamedTuple):
    """What runs a call: the backend, and its launch for the inputs' layout."""

    backend: Backend
    launch: Any


def dalpha_shape(alpha: torch.Tensor) -> tuple[int]:
    """The shape of dalpha as every backward pass and op returns it: (alpha.numel(),).

    One shape for a (C,), (1,) or 0-D alpha, so that no pass reshapes: a 0-D
    alpha's dalpha is (1,), which autograd sums to () as it sums any gradient
    to its input's shape.
    """
    return (alpha.numel(),)


def _empty_forward(x: torch.Tensor, alpha: torch.Tensor, launch: None) -> torch.Tensor:
    return torch.empty_like(x)


def _empty_backward(dy, x, alpha, compute_dalpha: bool, launch: None):
    return torch.empty_like(x), alpha.new_zeros(dalpha_shape(alpha)) if compute_dalpha else None


# Empty inputs, on any backend: nothing to compute, so nothing is launched.
NOTHING_TO_COMPUTE = Backend(
    "empty", "nothing to compute (an empty input)", lambda device_type: True,
    _empty_forward, _empty_backward,
)  # fmt: skip


def device_kind(x: torch.Tensor) -> str:
    """x.device.type; CUDA and CPU tensors answer without building a torch.device (slower)."""
    if x.is_cuda:
        return "cuda"
    return "cpu" if x.is_cpu else x.device.type
