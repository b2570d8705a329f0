"""The kernel report's providers: each activation of the registry with a function.

The activations compared, their labels and their float64 definitions are
``activations.ACTIVATIONS``, bench's one registry; this file turns each
into a zero-argument callable per mode, the thing that is timed. Setup that
is not part of the mode (the forward graph of a backward-only measurement,
compilation, leaf tensors) happens in ``build``, outside the timed region.
Each callable returns its outputs, which ``check`` compares once with the
activation's float64 definition before any timing.

Modes: ``fwd`` (y from x), ``bwd`` (dx and the parameter gradient from x and
dy: the entry's direct backward where it has one, else
``torch.autograd.grad`` on a graph built outside the timed region),
``fwd+bwd`` (both, through autograd, as in training). ``copy`` runs ``fwd``
only; for the other modes the ceiling is the minimum bytes at the measured
copy bandwidth.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from elu_triton import reference

from .activations import ACTIVATIONS, BY_NAME, Activation
from .cases import Inputs

Outputs = tuple[torch.Tensor, ...]
Provider = Activation  # a provider is a registry entry with a function


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


def build(provider: Provider, inputs: Inputs, mode: str) -> Callable[[], Outputs]:
    """The timed callable of provider in mode; its gradients from autograd unless direct."""
    assert mode in provider.modes, (provider.name, mode)
    forward = provider.resolved()
    if mode == "bwd" and provider.backward is not None:
        x, alpha, dy = inputs.x, inputs.alpha, inputs.dy
        return lambda: provider.backward(dy, x, alpha)
    if mode == "fwd":
        x0, a0 = inputs.x, inputs.alpha
        return lambda: (forward(x0, a0),)
    x, alpha = _leaves(inputs.x, inputs.alpha)
    wrt = (x, alpha) if provider.learns_alpha else (x,)
    dy = inputs.dy
    if mode == "bwd":
        y = forward(x, alpha)  # the graph, built once, outside the timed region
        return lambda: torch.autograd.grad(y, wrt, dy, retain_graph=True)
    return lambda: torch.autograd.grad(forward(x, alpha), wrt, dy)


# ---------------------------------------------------------------------------
# float64 definitions, for the check before timing


def _channel_view(alpha: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return reference.alpha_for_broadcast(alpha, x)


def _per_channel_sum(terms: torch.Tensor, num_alpha: int) -> torch.Tensor:
    if num_alpha == 1:
        return terms.sum().reshape(1)
    return terms.sum(dim=[d for d in range(terms.dim()) if d != 1])


def expected(provider: Provider, inputs: Inputs, mode: str) -> Expected:
    """Outputs of y = x if x > 0 else a * negative(x), with dy/dx = a * slope(x) there.

    The provider's gate gives (negative, slope); no gate is the identity (a
    copy); a provider that learns no alpha has a = 1 and no parameter gradient.
    """
    x = inputs.x.double()
    if provider.gate is None:
        return Expected((x,))
    negative_fn, slope_fn = provider.gate
    alpha = inputs.alpha.double()
    a = _channel_view(alpha if provider.learns_alpha else torch.ones_like(alpha), x)
    positive = x > 0
    neg = x.clamp(max=0)
    if mode == "fwd":
        return Expected((torch.where(positive, x, a * negative_fn(neg)),))
    dy = inputs.dy.double()
    dx = torch.where(positive, dy, dy * a * slope_fn(neg))
    if not provider.learns_alpha:
        return Expected((dx,))
    terms = torch.where(positive, 0.0, dy * negative_fn(neg))
    n = inputs.alpha.numel()
    return Expected((dx,), _per_channel_sum(terms, n), _per_channel_sum(terms.abs(), n))


PROVIDERS = tuple(a for a in ACTIVATIONS if a.function is not None)
OURS = BY_NAME["elu_triton"]


def runs(provider: Provider, case, mode: str) -> bool:
    """Whether this provider is measured for this case and mode."""
    if mode not in provider.modes:
        return False
    return case.compiled or not provider.compiled


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
    want_all = expected(provider, inputs, mode)
    dtype = inputs.x.dtype
    rtol = tolerance(dtype)
    n_elem = len(want_all.elementwise)
    for got, want in zip(outputs[:n_elem], want_all.elementwise):
        assert got.shape == want.shape and got.dtype == dtype, (got.shape, got.dtype)
        atol = rtol * want.abs().max().item()
        err = (got.double() - want).abs() - rtol * want.abs()
        worst = err.max().item()
        assert worst <= atol, f"{provider.name} {mode}: error {worst:.3g} > atol {atol:.3g}"
    if want_all.param_grad is not None:
        got = outputs[n_elem].double().reshape(-1)
        # Sums of millions of rounded terms: bound the error by the terms' size.
        bound = max(rtol, 1e-5) * want_all.param_grad_scale + 1e-30
        excess = ((got - want_all.param_grad).abs() - bound).max().item()
        assert excess <= 0, f"{provider.name} {mode}: dalpha off by {excess:.3g} over bound"


def build_checked(provider: Provider, inputs: Inputs, mode: str) -> Callable[[], Outputs]:
    """The provider's timed callable, after one call whose outputs passed ``check``.

    That call also compiles, autotunes and warms caches, outside any timing.
    """
    fn = build(provider, inputs, mode)
    check(provider, fn(), inputs, mode)
    return fn
