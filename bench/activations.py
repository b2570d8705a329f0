"""Every activation the benchmarks compare, defined once: bench's one registry.

Each entry names an activation once (``name``: the key in every result
file; ``label``: its name in tables) and gives what each benchmark needs of
it: the function ``y = function(x, alpha)`` that the kernel report, the
memory count and the host-cost bench call; the module for C channels that
the networks use; optionally a fused BatchNorm2d + activation module; and
its float64 definition, against which the kernel report checks it.

    elu_triton  ``elu_triton.learnable_elu``; LearnableELU in a network; its
                backward-only timing calls ``torch.ops.elu_triton.backward``
                (dx and dalpha in one pass).
    eager       ``elu_triton.reference.learnable_elu``: the same math as a few
                PyTorch ops, gradients by autograd; in a network, the
                composite a user writes without this package.
    compiled    the same reference under ``torch.compile(dynamic=False)``.
    prelu       ``F.prelu``, nn.PReLU(C)'s function: a native per-channel
                learnable activation (another function, the same work shape).
    elu_fixed   ``F.elu`` with a fixed alpha (nn.ELU): no per-channel
                parameter and no dalpha, a lower bound.
    copy        ``torch.clone`` of x: the bandwidth ceiling (forward only).
    bn_fused    ``BatchNormLearnableELU``: in a network, BatchNorm2d followed
                by LearnableELU fused into one layer (no function of its own).
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import elu_triton
from elu_triton import reference

ActivationFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# y = x where x > 0, else alpha * negative(x), whose slope there is alpha * slope(x).
Gate = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]
ELU_GATE: Gate = (torch.expm1, torch.exp)
PRELU_GATE: Gate = (lambda v: v, torch.ones_like)


@dataclass(frozen=True)
class Activation:
    """One activation under comparison, in each form a benchmark uses."""

    name: str
    label: str
    function: ActivationFn | None = None  # y = function(x, alpha); None: modules only
    module: Callable[[int], nn.Module] | None = None  # the layer for C channels
    norm_act: Callable[[int], nn.Module] | None = None  # a fused BatchNorm2d(C) + activation
    gate: Gate | None = None  # the float64 definition; None: the identity (a copy)
    learns_alpha: bool = True  # False: alpha is fixed at 1, no parameter gradient
    compiled: bool = False  # the function runs under torch.compile(dynamic=False)
    modes: tuple[str, ...] = ("fwd", "bwd", "fwd+bwd")
    # A direct backward (dy, x, alpha) -> (dx, dalpha), timed in "bwd" mode
    # instead of torch.autograd.grad.
    backward: Callable[..., tuple[torch.Tensor, ...]] | None = None

    def resolved(self) -> ActivationFn:
        """The function to call: compiled (once per function) when the entry says so."""
        assert self.function is not None, f"{self.name} has no function"
        return _compile(self.function) if self.compiled else self.function

    def after_norm(self, channels: int) -> nn.Module:
        """BatchNorm2d then the activation: the fused module when there is one."""
        if self.norm_act is not None:
            return self.norm_act(channels)
        return nn.Sequential(nn.BatchNorm2d(channels), self.module(channels))


@functools.cache
def _compile(function: ActivationFn) -> ActivationFn:
    """function under torch.compile: one static graph per shape, dtype and layout."""
    import torch._dynamo

    # One function recompiled per shape, dtype, layout and grad mode: raise
    # the recompile limit (8) past which dynamo silently runs eager.
    for name in ("cache_size_limit", "recompile_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 1024)
    return torch.compile(function, dynamic=False)


class CompositeELU(nn.Module):
    """What a user writes without this package: the reference as a module."""

    def __init__(self, num_channels: int, init: float = 1.0):
        super().__init__()
        self.alpha = nn.Parameter(torch.full((num_channels,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reference.learnable_elu(x, self.alpha)


def _op_backward(dy: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor):
    return tuple(torch.ops.elu_triton.backward(dy, x, alpha, True))


def _elu_fixed(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return F.elu(x, alpha=1.0)


def _copy(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return torch.clone(x)


ACTIVATIONS = (
    Activation("elu_triton", "elu_triton", elu_triton.learnable_elu, elu_triton.LearnableELU,
               gate=ELU_GATE, backward=_op_backward),
    Activation("eager", "reference, eager", reference.learnable_elu, CompositeELU,
               gate=ELU_GATE),
    Activation("compiled", "reference, torch.compile", reference.learnable_elu,
               gate=ELU_GATE, compiled=True),
    Activation("prelu", "nn.PReLU(C)", F.prelu, nn.PReLU, gate=PRELU_GATE),
    Activation("elu_fixed", "F.elu, fixed alpha", _elu_fixed, lambda c: nn.ELU(),
               gate=ELU_GATE, learns_alpha=False),
    Activation("copy", "torch.clone", _copy, modes=("fwd",)),
    Activation("bn_fused", "BatchNormLearnableELU", module=elu_triton.LearnableELU,
               norm_act=elu_triton.BatchNormLearnableELU),
)  # fmt: skip
BY_NAME = {a.name: a for a in ACTIVATIONS}


def label(name: str) -> str:
    """The table label of a registry name (the name itself for one from older results)."""
    return BY_NAME[name].label if name in BY_NAME else name
