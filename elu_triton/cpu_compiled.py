"""The CPU path compiled: forward and backward each fused by inductor into one loop.

Eager PyTorch runs the backward as about ten passes over memory
(``cpu_eager.py``), where nn.ELU's aten kernels take one each way. Here each
pass is written once with ``torch.where``, as plainly as the reference, and
torch.compile turns it into one vectorized, multi-threaded C++ loop: x (and
dy) read once, y (or dx and the dalpha sums) written once, so that a
training step with LearnableELU costs about what it costs with nn.ELU
(``bench/demo_epoch_time.py``). The exception: with the channel per column
(channels_last, (N, C)) the dalpha column sums take a second loop.

The math sees a dense tensor's memory as the kernels do (``layout.py``): an
(R, K) matrix whose channel is row % C, the column, or one shared alpha.
Each placement has its own function, compiled on first use with dynamic
shapes, so that sizes share compiled loops and each function's variants
(which dynamo counts against a limit) stay few. Channel-per-row inputs stay
2-D with alpha[row % C] taken inside, and their dalpha leaves as one sum
per row, finished outside, rather than an (N, C, K) view against a
(1, C, 1) alpha, whose size-1 dims would each be a case to compile. (A
batch of one can still cost one more variant: dynamo assumes sizes equal
at the first call, R and C then, to stay equal.)

The dalpha sums accumulate in fp64: inductor adds up to 4096 fp32 terms
one after another per vector lane, 3e-5 off when the terms share a sign.
For the same reason fp64 inputs take the eager path (aten's cascade sum
keeps their dalpha to the last bits; inductor adds doubles sequentially).

The first call of each function compiles it: seconds (on a 2-core CPU about
15 s in a fresh process, 1-4 s after that; inductor caches on disk). If
compiling fails, for want of a C++ compiler say, the path switches itself
off (ENABLED) and raises ``CompileFailed``; ``cpu.py`` then runs the eager path.
"""

import functools
import inspect
import math
import os
import warnings

import torch

from .layout import dense, memory_view, with_layout_of
from .precision import compute_dtype

# ELU_TRITON_CPU_COMPILE=0 keeps the CPU path eager (read at import); a failed
# compile turns it off too.
ENABLED = os.environ.get("ELU_TRITON_CPU_COMPILE", "1") != "0"


def serves(x: torch.Tensor) -> bool:
    """Whether x goes through the compiled path (else cpu_eager)."""
    return ENABLED and x.device.type == "cpu" and x.dtype != torch.float64


class CompileFailed(RuntimeError):
    """torch.compile could not build the CPU path; the eager one serves instead."""


class _CompileUnavailable(RuntimeError):
    """torch.compile cannot be used at all here (unsupported Python, disabled)."""


# expm1 on x > -1/2 as its Taylor polynomial, to this degree: the first term
# left out, |x|^(n+1)/(n+1)! relative to |x|, is below 2^-26 (fp32) or
# 2^-59 (fp64) there.
_EXPM1_DEGREE = {torch.float32: 8, torch.float64: 15}  # fp64: for tests of _expm1


def _expm1(x: torch.Tensor) -> torch.Tensor:
    """expm1(x) for x <= 0 (the only side used) to a couple of ulps, tiny |x| included.

    Why not torch.expm1: inductor's vectorized C++ computes it as exp(x) - 1,
    which loses every digit for |x| below the dtype's epsilon (-1e-30 gives
    0). Below -1/2 that difference is accurate (exp(x) < 0.61 and the result
    has magnitude > 0.39), so only (-1/2, 0] needs the polynomial, and its
    multiply-adds vectorize as well as the rest of the loop. NaN and -inf
    take the exp branch: NaN and -1.
    """
    degree = _EXPM1_DEGREE[x.dtype]
    taylor = 1.0 / math.factorial(degree)
    for n in range(degree - 1, 0, -1):
        taylor = taylor * x + 1.0 / math.factorial(n)
    return torch.where(x > -0.5, taylor * x, torch.exp(x) - 1)


def _forward_math(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """y in x's dtype; alpha broadcasts against x and has the compute dtype."""
    xc = x.to(alpha.dtype)
    # The negative branch of x > 0 (inf, or NaN from +inf) is discarded by the select.
    return torch.where(xc > 0, xc, alpha * _expm1(xc)).to(x.dtype)


def _backward_math(dy: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor):
    """(dx in x's dtype, dalpha terms in the compute dtype), in the kernel's order.

    dx = dy if x > 0 else dy * (alpha * exp(x)); the dalpha term is
    dy * expm1(x) for x <= 0 and 0 otherwise, selected after the product so
    that an infinite dy at x > 0 gives 0, not inf * 0 = NaN. NaN x fails
    x > 0 and so reaches dx and its channel's dalpha.
    """
    xc, dyc = x.to(alpha.dtype), dy.to(alpha.dtype)
    positive = xc > 0
    dx = torch.where(positive, dyc, dyc * (alpha * torch.exp(xc)))
    dalpha_terms = torch.where(positive, 0.0, dyc * _expm1(xc))
    return dx.to(x.dtype), dalpha_terms


# One function per channel placement; each gets its own compiled cache.
def _alpha_per_row(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    # Rows are (outer, C) in memory order: row r has channel r % C. (alpha.repeat
    # would make outer == 1 a case of its own to compile.)
    rows = torch.arange(x.shape[0], device=x.device)
    return alpha[rows % alpha.shape[0]][:, None]


def _forward_channel_per_row(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return _forward_math(x, _alpha_per_row(x, alpha))


def _forward_channel_per_column(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return _forward_math(x, alpha[None, :])


def _forward_shared(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return _forward_math(x, alpha.reshape(()))


def _backward_channel_per_row(dy, x, alpha):
    dx, terms = _backward_math(dy, x, _alpha_per_row(x, alpha))
    return dx, terms.sum(dim=1, dtype=torch.float64)  # (R,): row r belongs to channel r % C


def _backward_channel_per_column(dy, x, alpha):
    dx, terms = _backward_math(dy, x, alpha[None, :])
    return dx, terms.sum(dim=0, dtype=torch.float64)


def _backward_shared(dy, x, alpha):
    dx, terms = _backward_math(dy, x, alpha.reshape(()))
    return dx, terms.sum(dtype=torch.float64).reshape(1)


def _run(function, *args):
    """Run the compiled function; compiling failures become CompileFailed (and a warning).

    Under the default stance: a stance the user sets for their own models
    (force_eager, fail_on_recompile) is not about this library's loops. With
    autocast off: the math states its dtypes, and dynamo would compile one
    variant with autocast and one without.
    """
    try:
        compiled = _compile(function)  # fails on Pythons that dynamo does not support
        with torch.compiler.set_stance("default"), torch.autocast("cpu", enabled=False):
            return compiled(*args)
    except Exception as error:
        if not _is_compile_error(error):
            raise  # out of memory, say: not a reason to stop compiling
        global ENABLED
        ENABLED = False  # warned once: the eager path serves from now on
        warnings.warn(
            f"elu_triton: torch.compile failed for the CPU path ({type(error).__name__}: "
            f"{(str(error).strip().splitlines() or [''])[0][:200]}); "
            "falling back to eager PyTorch ops, several times slower. "
            "ELU_TRITON_CPU_COMPILE=0 skips the attempt.",
            RuntimeWarning,
            stacklevel=2,
        )
        raise CompileFailed(f"torch.compile failed: {error}") from error


def _is_compile_error(error: Exception) -> bool:
    # Dynamo and inductor raise their own types (no C++ compiler, a failed
    # build); their names change between releases, their modules do not.
    module = type(error).__module__
    return module.startswith(("torch._dynamo", "torch._inductor")) or isinstance(
        error, _CompileUnavailable
    )


# Compiled variants one function may need: 3 dtypes x 3 dispatch contexts
# (plain tensors; below autograd, inside the custom op; inference tensors)
# x 2 for sizes dynamo took as equal or as 1 at the first call (a batch of
# one). Past the limit dynamo would run the function uncompiled: right,
# but slower than cpu_eager.
_RECOMPILE_LIMIT = 32


@functools.cache
def _compile(function):
    # Lazily, so that importing the package does not import dynamo.
    try:
        options = dict(dynamic=True, options={"cpp.dynamic_threads": True})
        if "recompile_limit" in inspect.signature(torch.compile).parameters:
            options["recompile_limit"] = _RECOMPILE_LIMIT  # else dynamo's global 8
        # dynamic_threads: with dynamic shapes, inductor decides from the first
        # call's sizes whether a loop runs on several threads, and caches that
        # decision on disk for all sizes: a first call on a tiny tensor would
        # leave every later one on one thread. With it, each loop is parallel
        # and OpenMP takes the thread count at run time (torch.set_num_threads).
        compiled = torch.compile(function, **options)
    except Exception as error:
        raise _CompileUnavailable(str(error)) from error
    if torch._dynamo.config.disable:  # TORCH_COMPILE_DISABLE=1: it would run uncompiled
        raise _CompileUnavailable("torch.compile is disabled (TORCH_COMPILE_DISABLE)")
    return compiled


def _placement(x: torch.Tensor, alpha: torch.Tensor):
    """(memory view, alpha as the compiled functions take it, kind) for dense x."""
    view = memory_view(x, alpha.numel())
    # requires_grad and strides would be guarded on: one more variant each.
    alpha = alpha.detach().to(compute_dtype(x.dtype)).contiguous()
    if view.channels == 1:
        return view, alpha.reshape(1), "shared"
    return view, alpha, "column" if view.channel_is_column else "row"


_FORWARD = {
    "row": _forward_channel_per_row,
    "column": _forward_channel_per_column,
    "shared": _forward_shared,
}
_BACKWARD = {
    "row": _backward_channel_per_row,
    "column": _backward_channel_per_column,
    "shared": _backward_shared,
}


def _alias(t: torch.Tensor, shape, strides) -> torch.Tensor:
    """t's memory seen with other shape and strides, as a plain tensor, not a view.

    detach() drops the view's _base: dynamo would otherwise guard on the
    base's shape too (one compiled variant per original rank and layout),
    and autograd forbids in-place changes to a view returned by a Function.
    """
    return t.as_strided(shape, strides).detach()


def _as_matrix(t: torch.Tensor, view) -> torch.Tensor:
    """Dense t's memory, in order, as the (R, K) matrix (1-D for a shared alpha)."""
    if view.channels == 1:
        return _alias(t, (view.cols,), (1,))
    return _alias(t, (view.rows, view.cols), (view.cols, 1))


def _in_layout_of(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A fresh result matrix seen with dense x's shape and strides."""
    return _alias(matrix, x.shape, x.stride())


def forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """y in x's dtype and memory format. Raises CompileFailed if compiling fails."""
    x = dense(x)
    view, alpha_arg, kind = _placement(x, alpha)
    with torch.no_grad():  # one grad mode, so no variant is compiled for the other
        y = _run(_FORWARD[kind], _as_matrix(x, view), alpha_arg)
    return _in_layout_of(y, x)


def backward(dy: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, compute_dalpha: bool):
    """(dx, dalpha or None), as ``cpu_eager.backward``. Raises CompileFailed if compiling fails.

    The dalpha sums are computed either way: in the dx loop (rows, shared
    alpha) they cost less than a second compiled variant would. For the
    channel-per-column placement inductor sums the columns in a second loop
    that reads x and dy again (about 2.4x the row-placement backward).
    """
    x = dense(x)
    dy = with_layout_of(dy, x)
    view, alpha_arg, kind = _placement(x, alpha)
    with torch.no_grad():
        dx, sums = _run(_BACKWARD[kind], _as_matrix(dy, view), _as_matrix(x, view), alpha_arg)
    if not compute_dalpha:
        return _in_layout_of(dx, x), None
    if kind == "row":
        sums = sums.view(-1, view.channels).sum(dim=0)  # (outer, C) row sums, in order
    return _in_layout_of(dx, x), sums.to(alpha.dtype)
