"""Host cost of one call: the package's Python against F.elu and F.prelu.

At the activation sizes most layers see, the GPU finishes in microseconds
and then waits for the host, so what one call costs in Python (checks,
dispatch, allocation, launch) is the layer's speed. Two measurements:

- ``--stub`` (any machine, the default without a GPU): every Triton kernel
  launch is replaced by a no-op, CPU tensors are routed to the Triton
  backend, and the package's per-call time on a tiny tensor is set beside
  F.elu's and F.prelu's (aten's, whose kernels do run, but on 128 elements)
  and a bare autograd.Function's (a dtype check and the outputs'
  allocations: the floor for any Python Function, whose backward the
  autograd engine calls through the interpreter).
- on a GPU (the default with one): the real kernels at a launch-bound size,
  per call with the stream drained once per batch of calls, against F.elu
  and F.prelu (nn.PReLU's function).

Three modes, each per call: ``forward (no grad)`` (inference), ``training
forward`` (alpha requires grad: the graph is recorded) and ``forward+backward``
(``torch.autograd.grad`` of y against x and alpha with a given dy).
Providers run interleaved, in rounds; each figure is the minimum over
rounds of the mean per call in a round: on a shared machine other processes
only ever add time, so the minimum is the code's own cost (as
``timing.time_ms`` does on the CPU; the medians are printed too).

    python -m bench.host_overhead                   # stubbed on a CPU, real on a GPU
    python -m bench.host_overhead --json out.json
"""

import argparse
import collections
import contextlib
import dataclasses
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import elu_triton

from . import matrix, targets, timing
from .activations import BY_NAME, label

STUB_SHAPE = (2, 4, 4, 4)
GPU_SHAPE = (128, 20, 24, 24)  # the demo's activation: 5.9 MB in fp32
MODES = ("forward (no grad)", "training forward", "forward+backward")


def _no_launch() -> collections.defaultdict:
    """Stands in for a @triton.jit kernel: ``kernel[grid](*args, **kwargs)`` does nothing.

    Built from C-level pieces so that the stub itself costs next to nothing
    (a Python __getitem__ and __call__ would add about 1.5 us per launch, which
    no real launch has): the grid is a dict key, and str.format accepts and
    ignores any arguments.
    """
    return collections.defaultdict(lambda: "".format)


@contextlib.contextmanager
def stubbed_launches():
    """Route CPU tensors to the Triton backend with every kernel launch a no-op.

    Everything the package does around a launch still runs: checks, the
    launch plan, allocations, the dalpha finishing, autograd. The backend is
    forced with use_backend, which costs what the unforced selection does
    (the forced backend is one more part of prepare's cache key).
    """
    from elu_triton import backends
    from elu_triton.backends import triton_kernels

    kernels = ("learnable_elu_forward_kernel", "learnable_elu_backward_kernel")
    real = {name: getattr(triton_kernels, name) for name in kernels}
    everywhere = dataclasses.replace(triton_kernels.BACKEND, serves=lambda device_type: True)
    try:
        for name in kernels:
            setattr(triton_kernels, name, _no_launch())
        with backends.use_backend(everywhere):
            yield
    finally:
        for name, kernel in real.items():
            setattr(triton_kernels, name, kernel)


class BareFunction(torch.autograd.Function):
    """The floor of any autograd.Function: the dtype check and the outputs' allocations."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise TypeError(x.dtype)
        ctx.save_for_backward(x, alpha)
        return torch.empty_like(x)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x, alpha = ctx.saved_tensors
        return torch.empty_like(x), torch.empty_like(alpha)


# The registry's activations compared (their names key the JSON), and the floor.
COMPARED = ("elu_triton", "elu_fixed", "prelu")
BARE = "bare Function"


def _callables(x: torch.Tensor, channels: int) -> dict[str, dict[str, Callable[[], object]]]:
    """{mode: {provider: fn}}; each fn does one call of that mode.

    An activation that learns no alpha (elu_fixed) records its graph through
    x instead, and its backward gives dx alone.
    """
    alpha = torch.rand(channels, device=x.device) + 0.5
    alpha_leaf = alpha.clone().requires_grad_()
    x_leaf = x.clone().requires_grad_()
    dy = torch.randn_like(x)
    table: dict[str, dict[str, Callable[[], object]]] = {mode: {} for mode in MODES}
    entries = [(name, BY_NAME[name].function, BY_NAME[name].learns_alpha) for name in COMPARED]
    for name, fn, learns_alpha in [*entries, (BARE, BareFunction.apply, True)]:
        x_graph, wrt = (x, (x_leaf, alpha_leaf)) if learns_alpha else (x_leaf, (x_leaf,))
        table["forward (no grad)"][name] = lambda fn=fn: fn(x, alpha)
        table["training forward"][name] = lambda fn=fn, xg=x_graph: fn(xg, alpha_leaf)
        table["forward+backward"][name] = lambda fn=fn, wrt=wrt: torch.autograd.grad(
            fn(x_leaf, alpha_leaf), wrt, dy
        )
    # F.elu called directly, as nn.ELU calls it: the registry's (x, alpha)
    # wrapper would add a Python call to the reference the targets divide by.
    table["forward (no grad)"]["elu_fixed"] = lambda: F.elu(x, 1.0)
    table["training forward"]["elu_fixed"] = lambda: F.elu(x_leaf, 1.0)
    table["forward+backward"]["elu_fixed"] = lambda: torch.autograd.grad(
        F.elu(x_leaf, 1.0), x_leaf, dy
    )
    return table


def _per_call_us(fn: Callable[[], object], calls: int, device: torch.device) -> float:
    timing.sync(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    timing.sync(device)  # on a GPU: the time until the last kernel has run
    return (time.perf_counter() - start) / calls * 1e6


def _check_answer(x: torch.Tensor) -> None:
    """With the real kernels, the answer is checked once before anything is timed."""
    alpha = torch.rand(x.shape[1], device=x.device) + 0.5
    torch.testing.assert_close(
        elu_triton.learnable_elu(x, alpha), elu_triton.reference.learnable_elu(x, alpha)
    )


def measure(device: torch.device, shape: tuple, rounds: int, calls: int, stub: bool) -> dict:
    """{statistic: {mode: {provider: microseconds per call}}} for min and median over rounds."""
    x = torch.randn(shape, device=device)
    if not stub:
        _check_answer(x)
    table = _callables(x, shape[1])
    samples = {mode: {name: [] for name in fns} for mode, fns in table.items()}
    for fns in table.values():
        for fn in fns.values():
            for _ in range(20):  # warm-up: Triton's JIT, allocator, caches
                fn()
    for _ in range(rounds):
        for mode, fns in table.items():
            for name, fn in fns.items():
                samples[mode][name].append(_per_call_us(fn, calls, device))
    return {
        name: {mode: {n: stat(s) for n, s in by.items()} for mode, by in samples.items()}
        for name, stat in (("min", min), ("median", statistics.median))
    }


def report(result: dict, host_targets: dict) -> str:
    """A markdown table: us per call, elu_triton's ratio to each, and the targets."""
    names = [*COMPARED, BARE]
    others = [n for n in names if n != "elu_triton"]
    head = [f"{label(n)} us" for n in names] + [f"elu_triton / {label(n)}" for n in others[:2]]
    head += [f"{BARE} / {label('prelu')}", "target"]
    lines = ["| mode | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for mode in MODES:
        t = result.get(mode)
        if t is None:
            continue
        target = host_targets.get(mode)
        verdict = ""
        if target:
            ratio = t["elu_triton"] / t[target[0]]
            met = "met" if ratio <= target[1] else "missed"
            verdict = f"<= {target[1]}x {label(target[0])}: {met}"
        cells = [f"{t[n]:.1f}" for n in names]
        cells += [f"{t['elu_triton'] / t[n]:.2f}x" for n in others[:2]]
        cells += [f"{t[BARE] / t['prelu']:.2f}x", verdict]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--stub", action="store_true", help="stub the launches (the default without a GPU)"
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=100, help="calls per round and provider")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--device", default="auto", help="auto (the first GPU), cpu, cuda:N")
    args = parser.parse_args(argv)
    device = matrix.resolve_device(args.device)
    stub = args.stub or device.type != "cuda"
    if stub:
        device = torch.device("cpu")
    if timing.interpreter_active(device):
        parser.error("TRITON_INTERPRET=1: the interpreter is not timed; unset it")
    shape = STUB_SHAPE if stub else GPU_SHAPE
    with stubbed_launches() if stub else contextlib.nullcontext():
        result = measure(device, shape, args.rounds, args.calls, stub)
    env = timing.environment(device)
    header = (
        f"- {'launches stubbed' if stub else 'real kernels'}, {tuple(shape)} fp32, "
        f"{args.rounds} rounds x {args.calls} calls, minimum over rounds (medians below)\n"
        f"- {env['device']}; torch {torch.__version__}, Python {platform.python_version()}; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(header)
    host_targets = targets.HOST_STUB if stub else targets.HOST_GPU
    print(report(result["min"], host_targets))
    print("\nmedians over rounds:\n" + report(result["median"], host_targets))
    if args.json:
        args.json.write_text(
            json.dumps({"environment": env, "stub": stub, "shape": shape, "us": result}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
