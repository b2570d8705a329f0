"""The six providers compared, defined once for the suite and the report.

Each provider turns the shared ``Inputs`` and a mode into a zero-argument
callable, the thing that is timed. Setup that is not part of the mode (the
forward graph of a backward-only measurement, compilation, leaf tensors)
happens in ``build``, outside the timed region. Each callable returns its
outputs, which ``check`` compares once with the provider's own float64
definition before any timing.

1. elu_triton   ``elu_triton.learnable_elu``; backward-only calls the op
                ``torch.ops.elu_triton.backward`` (dx and dalpha in one pass).
2. eager        ``elu_triton.reference.learnable_elu``: the same math as a
                few PyTorch ops, gradients by autograd.
3. compiled     the same reference under ``torch.compile(dynamic=False)``.
4. prelu        ``nn.PReLU(C)``'s function: a native per-channel learnable
                activation (another function, the same work shape).
5. elu_fixed    ``F.elu`` with a fixed alpha: no per-channel parameter and
                no dalpha, a lower bound.
6. copy         ``torch.clone`` of x: the bandwidth ceiling (forward only;
                for the other modes the ceiling is the minimum bytes at the
                measured copy bandwidth).

Modes: ``fwd`` (y from x), ``bwd`` (dx and the parameter gradient from x and
dy; the others use ``torch.autograd.grad`` on a graph built outside the timed
region), ``fwd+bwd`` (both, through autograd, as in training).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import elu_triton
from elu_triton import reference

from .cases import Inputs

Outputs = tuple[torch.Tensor, ...]
ActivationFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Provider:
    """A way of computing the activation that the benchmarks time."""

    name: str
    label: str
    modes: tuple[str, ...]
    build: Callable[[Inputs, str], Callable[[], Outputs]]
    expected: Callable[[Inputs, str], "Expected"]


@dataclass
class Expected:
    """float64 outputs to check against, and each parameter gradient's scale."""

    elementwise: Outputs  # y, or dx
    param_grad: torch.Tensor | None = None  # dalpha (C,), or None
    param_grad_scale: torch.Tensor | None = None  # sum of |terms| per channel


# ---------------------------------------------------------------------------
# Building the timed callables


def _leaves(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(t.detach().requires_grad_() for t in tensors)


def _autograd_modes(forward: ActivationFn, inputs: Inputs, mode: str, with_param: bool = True):
    """The timed callable of a provider whose gradients come from autograd."""
    x, alpha = _leaves(inputs.x, inputs.alpha)
    wrt = (x, alpha) if with_param else (x,)
    dy = inputs.dy
    if mode == "fwd":
        x0, a0 = inputs.x, inputs.alpha
        return lambda: (forward(x0, a0),)
    if mode == "bwd":
        y = forward(x, alpha)  # the graph, built once, outside the timed region
        return lambda: torch.autograd.grad(y, wrt, dy, retain_graph=True)
    return lambda: torch.autograd.grad(forward(x, alpha), wrt, dy)


def _build_elu_triton(inputs: Inputs, mode: str):
    if mode == "bwd":
        x, alpha, dy = inputs.x, inputs.alpha, inputs.dy
        return lambda: tuple(torch.ops.elu_triton.backward(dy, x, alpha, True))
    return _autograd_modes(elu_triton.learnable_elu, inputs, mode)


def _build_eager(inputs: Inputs, mode: str):
    return _autograd_modes(reference.learnable_elu, inputs, mode)


_compiled_reference: ActivationFn | None = None


def compiled_reference() -> ActivationFn:
    """reference.learnable_elu under torch.compile: one static graph per case."""
    global _compiled_reference
    if _compiled_reference is None:
        import torch._dynamo

        # One function recompiled per shape, dtype, layout and grad mode: raise
        # the recompile limit (8) past which dynamo silently runs eager.
        for name in ("cache_size_limit", "recompile_limit"):
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, 1024)
        _compiled_reference = torch.compile(reference.learnable_elu, dynamic=False)
    return _compiled_reference


def _build_compiled(inputs: Inputs, mode: str):
    return _autograd_modes(compiled_reference(), inputs, mode)


def _prelu(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.prelu(x, weight)


def _build_prelu(inputs: Inputs, mode: str):
    return _autograd_modes(_prelu, inputs, mode)


def _elu_fixed(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return F.elu(x, alpha=1.0)


def _build_elu_fixed(inputs: Inputs, mode: str):
    return _autograd_modes(_elu_fixed, inputs, mode, with_param=False)


def _build_copy(inputs: Inputs, mode: str):
    assert mode == "fwd", mode
    x = inputs.x
    return lambda: (torch.clone(x),)


# ---------------------------------------------------------------------------
# float64 definitions, for the check before timing


def _channel_view(alpha: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return reference.alpha_for_broadcast(alpha, x)


def _per_channel_sum(terms: torch.Tensor, num_alpha: int) -> torch.Tensor:
    if num_alpha == 1:
        return terms.sum().reshape(1)
    return terms.sum(dim=[d for d in range(terms.dim()) if d != 1])


def _expected_gated(inputs: Inputs, mode: str, negative_fn, slope_fn, with_param=True):
    """Outputs of y = x if x > 0 else a * negative_fn(x), with dy/dx = slope_fn(x) there."""
    x = inputs.x.double()
    a = _channel_view(inputs.alpha.double(), x)
    positive = x > 0
    neg = x.clamp(max=0)
    if mode == "fwd":
        return Expected((torch.where(positive, x, a * negative_fn(neg)),))
    dy = inputs.dy.double()
    dx = torch.where(positive, dy, dy * a * slope_fn(neg))
    if not with_param:
        return Expected((dx,))
    terms = torch.where(positive, 0.0, dy * negative_fn(neg))
    n = inputs.alpha.numel()
    return Expected((dx,), _per_channel_sum(terms, n), _per_channel_sum(terms.abs(), n))


def _expected_learnable_elu(inputs: Inputs, mode: str) -> Expected:
    return _expected_gated(inputs, mode, torch.expm1, torch.exp)


def _expected_prelu(inputs: Inputs, mode: str) -> Expected:
    return _expected_gated(inputs, mode, lambda v: v, torch.ones_like)


def _expected_elu_fixed(inputs: Inputs, mode: str) -> Expected:
    ones = Inputs(inputs.case, inputs.x, torch.ones_like(inputs.alpha), inputs.dy)
    return _expected_gated(ones, mode, torch.expm1, torch.exp, with_param=False)


def _expected_copy(inputs: Inputs, mode: str) -> Expected:
    return Expected((inputs.x.double(),))


PROVIDERS = (
    Provider("elu_triton", "elu_triton", ("fwd", "bwd", "fwd+bwd"),
             _build_elu_triton, _expected_learnable_elu),
    Provider("eager", "reference, eager", ("fwd", "bwd", "fwd+bwd"),
             _build_eager, _expected_learnable_elu),
    Provider("compiled", "reference, torch.compile", ("fwd", "bwd", "fwd+bwd"),
             _build_compiled, _expected_learnable_elu),
    Provider("prelu", "nn.PReLU(C)", ("fwd", "bwd", "fwd+bwd"),
             _build_prelu, _expected_prelu),
    Provider("elu_fixed", "F.elu, fixed alpha", ("fwd", "bwd", "fwd+bwd"),
             _build_elu_fixed, _expected_elu_fixed),
    Provider("copy", "torch.clone", ("fwd",), _build_copy, _expected_copy),
)  # fmt: skip
BY_NAME = {p.name: p for p in PROVIDERS}
OURS = BY_NAME["elu_triton"]


def runs(provider: Provider, case, mode: str) -> bool:
    """Whether this provider is measured for this case and mode."""
    if mode not in provider.modes:
        return False
    return case.compiled or provider.name != "compiled"


# ---------------------------------------------------------------------------
# The check


def tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance: 8 units of the dtype's precision.

    Loose enough for the eager reference in bf16, which rounds expm1(x) to
    bf16 and rebuilds exp(x) as expm1(x) + 1 in its backward; tight enough
    that a wrong channel, sign or layout fails somewhere among the elements.
    """
    return 8 * torch.finfo(dtype).eps


def check(provider: Provider, outputs: Outputs, inputs: Inputs, mode: str) -> None:
    """Raise AssertionError unless outputs match the provider's float64 definition."""
    expected = provider.expected(inputs, mode)
    dtype = inputs.x.dtype
    rtol = tolerance(dtype)
    n_elem = len(expected.elementwise)
    for got, want in zip(outputs[:n_elem], expected.elementwise):
        assert got.shape == want.shape and got.dtype == dtype, (got.shape, got.dtype)
        atol = rtol * want.abs().max().item()
        err = (got.double() - want).abs() - rtol * want.abs()
        worst = err.max().item()
        assert worst <= atol, f"{provider.name} {mode}: error {worst:.3g} > atol {atol:.3g}"
    if expected.param_grad is not None:
        got = outputs[n_elem].double().reshape(-1)
        # Sums of millions of rounded terms: bound the error by the terms' size.
        bound = max(rtol, 1e-5) * expected.param_grad_scale + 1e-30
        excess = ((got - expected.param_grad).abs() - bound).max().item()
        assert excess <= 0, f"{provider.name} {mode}: dalpha off by {excess:.3g} over bound"


def build_checked(provider: Provider, inputs: Inputs, mode: str) -> Callable[[], Outputs]:
    """The provider's timed callable, after one call whose outputs passed ``check``.

    That call also compiles, autotunes and warms caches, outside any timing.
    """
    fn = provider.build(inputs, mode)
    check(provider, fn(), inputs, mode)
    return fn
