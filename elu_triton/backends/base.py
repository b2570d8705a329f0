"""The backend protocol: ``Backend``, ``Prepared``, the empty backend, ``device_kind``.

A backend is a name, whether it serves a device type, the two passes on
validated, non-empty inputs, and optionally a plan: what it can work out once
per input layout, handed to both passes. The registry that picks one for a
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


def _no_plan(x: torch.Tensor, num_alpha: int) -> None:
    return None


def _no_plans_kept() -> None:
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
    A backend that caches plans itself empties that cache in ``clear_plans``.
    """

    name: str
    description: str  # for reports: what runs, in words
    serves: Callable[[str], bool]  # device type ("cuda", "cpu", ...) -> runs there
    forward: Forward
    backward: Backward
    plan: Callable[[torch.Tensor, int], Any] = _no_plan  # per layout, derived once (``prepare``)
    clear_plans: Callable[[], None] = _no_plans_kept  # forgets plan's own cache, if it keeps one


class Prepared(NamedTuple):
    """What runs a call: the backend, and its plan for the inputs' layout."""

    backend: Backend
    plan: Any


def _empty_forward(x: torch.Tensor, alpha: torch.Tensor, plan: None) -> torch.Tensor:
    return torch.empty_like(x)


def _empty_backward(dy, x, alpha, compute_dalpha: bool, plan: None):
    # (alpha.numel(),), as the backward op's fake says: a 0-D alpha's is (1,).
    return torch.empty_like(x), alpha.new_zeros(alpha.numel()) if compute_dalpha else None


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
