"""A gradient-penalty step, two second-order strategies for the activation: time and memory.

The step: y = act(x, alpha); gx = d <y, r> / dx with create_graph=True (r a
fixed random tensor, so that the upstream gradient is a real one, not the
stride-0 ones of a sum); penalty = sum(gx ** 2); then the penalty's gradients
in x and alpha. Two ways to get the graph of gx:

- ``formula``: the package as it ships (``learnable_elu``): the fused
  first-order backward op, whose autograd formula is ``elu_triton/second_order.py``.
- ``composite``: the same forward and first-order path, but a backward under
  create_graph=True that recomputes the reference composite
  ``reference.learnable_elu(x, alpha)`` and differentiates it, as the batch
  norm's ``composite_grads`` does.

Measured, each strategy's runs interleaved with the other's:

- time: the median of ``--runs`` steps (CUDA: synchronized around each);
- saved: the bytes that autograd saves for a backward during the whole step
  (``elu_triton.demo.memory.saved_bytes``: saved-tensor hooks, each
  distinct view once), less x, alpha and r:
  the graph the step records, which a deeper network keeps once per layer;
- peak: the most tensor bytes live at once during the step, above what was
  live before it: on the CPU from ``torch.profiler``'s memory timeline
  (profile_memory=True), on CUDA ``torch.cuda.max_memory_allocated``;
- RSS (CPU, Linux only): the growth of the process's peak resident set over
  one step, each strategy and shape in a fresh child process (the peak only
  ever rises), after a warm-up at a tiny shape. The peak is /proc's VmHWM,
  not ``resource.getrusage``'s ru_maxrss: a child inherits its parent's
  ru_maxrss through fork and exec, so a parent that has held the big tensors
  hides every child's growth.

The strategies' gradients are compared before anything is timed. On the CPU
the PyTorch backend runs (never Triton's interpreter). On a loaded CPU,
``--threads 1`` times the work rather than the scheduler: with two threads
each exp and expm1 (MKL's, threaded at any size) cost about 15 ms on the
2-core machine of ``bench/RESULTS.md`` whatever the tensor's size, so a
two-thread time there counts exp calls.

    python -m bench.second_order                          # the demo shape and (32, 64, 56, 56)
    python -m bench.second_order --threads 1                # see below
    python -m bench.second_order --device cuda --runs 5
    python -m bench.second_order --shapes 4,8,12,12 --runs 2 --no-rss   # a smoke run
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from elu_triton import backends, eager, learnable_elu, reference
from elu_triton.demo.memory import saved_bytes

SHAPES = ((128, 20, 24, 24), (32, 64, 56, 56))  # the demo's activation; a ResNet stage's


class _CompositeSecondOrder(torch.autograd.Function):
    """The activation with the other strategy: create_graph differentiates the reference."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, alpha)  # as the package's Function: never y
        return eager.forward(x, alpha)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x, alpha = ctx.saved_tensors
        if not torch.is_grad_enabled():  # first order alone: the package's path
            return eager.grads_for_inputs(dy, x, alpha, True, True)
        with torch.enable_grad():
            y = reference.learnable_elu(x, alpha)
            return torch.autograd.grad(y, (x, alpha), dy, create_graph=True)


STRATEGIES = {"formula": learnable_elu, "composite": _CompositeSecondOrder.apply}


def inputs(shape, device: torch.device):
    """(x, alpha, r): x and alpha require grad; r weights y (the upstream gradient)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator).to(device).requires_grad_()
    alpha = (torch.rand(shape[1], generator=generator) + 0.5).to(device).requires_grad_()
    return x, alpha, torch.randn(shape, generator=generator).to(device)


def penalty_step(act, x: torch.Tensor, alpha: torch.Tensor, r: torch.Tensor):
    """(d penalty / dx, d penalty / dalpha) for penalty = sum((d <act(x, alpha), r> / dx) ** 2)."""
    (gx,) = torch.autograd.grad((act(x, alpha) * r).sum(), x, create_graph=True)
    return torch.autograd.grad(gx.square().sum(), (x, alpha))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_saved_bytes(act, x, alpha, r) -> int:
    """Bytes saved for a backward during one step, less x, alpha and r (the package's counter)."""
    return saved_bytes(lambda: penalty_step(act, x, alpha, r), kept=(x, alpha, r))


def peak_bytes(act, x, alpha, r) -> int:
    """The most tensor bytes live at once during one step, above those live before it."""
    device = x.device
    if device.type == "cuda":
        _sync(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        penalty_step(act, x, alpha, r)
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    # The memory timeline needs shapes and stacks; its API is torch's private one.
    from torch.profiler._memory_profiler import Action

    options = {"profile_memory": True, "record_shapes": True, "with_stack": True}
    with profile(activities=[ProfilerActivity.CPU], **options) as prof:
        penalty_step(act, x, alpha, r)
    live = peak = 0
    for _, action, _, size in prof._memory_profile().timeline:
        if action == Action.CREATE:
            live += size
            peak = max(peak, live)
        elif action == Action.DESTROY:
            live -= size
    return peak


def rss_growth_in_child(strategy: str, shape) -> int:
    """Bytes the peak RSS grows by over one step, in a fresh process."""
    argv = [sys.executable, "-m", "bench.second_order", "--rss-child", strategy]
    argv += ["--shapes", ",".join(map(str, shape))]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def _rss_child(strategy: str, shape) -> None:
    act = STRATEGIES[strategy]
    penalty_step(act, *inputs((2, shape[1], 3, 3), torch.device("cpu")))  # load the code paths
    x, alpha, r = inputs(shape, torch.device("cpu"))
    before = _peak_rss_bytes()
    penalty_step(act, x, alpha, r)
    print(_peak_rss_bytes() - before)


def _peak_rss_bytes() -> int:
    """This process's peak resident set since its exec, in bytes (Linux)."""
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    return 1024 * int(kib)


def check(x, alpha, r) -> None:
    """The two strategies' gradients agree (fp32: the formula's arithmetic is not the autograd's)."""
    formula, composite = (penalty_step(act, x, alpha, r) for act in STRATEGIES.values())
    for name, a, b in zip(("dx", "dalpha"), formula, composite):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


def measure(shape, device: torch.device, runs: int, rss: bool) -> dict:
    """One shape's row per strategy: ms (median), saved, peak and RSS bytes."""
    x, alpha, r = inputs(shape, device)
    check(x, alpha, r)
    seconds = {name: [] for name in STRATEGIES}
    for _ in range(runs):  # interleaved: a slow spell of the machine hits both
        for name, act in STRATEGIES.items():
            _sync(device)
            start = time.perf_counter()
            penalty_step(act, x, alpha, r)
            _sync(device)
            seconds[name].append(time.perf_counter() - start)
    rows = {}
    for name, act in STRATEGIES.items():
        rows[name] = {
            "ms": 1e3 * statistics.median(seconds[name]),
            "ms_all": [1e3 * s for s in seconds[name]],
            "saved_bytes": step_saved_bytes(act, x, alpha, r),
            "peak_bytes": peak_bytes(act, x, alpha, r),
            "rss_growth_bytes": rss_growth_in_child(name, shape) if rss else None,
        }
    return rows


def table(results: dict) -> str:
    mib = 2.0**-20
    lines = [
        "| shape | strategy | ms (median) | ms (min) | saved MiB | peak MiB | RSS growth MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for shape, rows in results.items():
        for name, row in rows.items():
            rss = row["rss_growth_bytes"]
            rss = "-" if rss is None else f"{rss * mib:.1f}"
            lines.append(
                f"| {shape} | {name} | {row['ms']:.1f} | {min(row['ms_all']):.1f} "
                f"| {row['saved_bytes'] * mib:.1f} "
                f"| {row['peak_bytes'] * mib:.1f} | {rss} |"
            )
        f, c = rows["formula"], rows["composite"]
        lines.append(
            f"| {shape} | composite / formula | {c['ms'] / f['ms']:.2f}x "
            f"| {min(c['ms_all']) / min(f['ms_all']):.2f}x "
            f"| {c['saved_bytes'] / f['saved_bytes']:.2f}x "
            f"| {c['peak_bytes'] / f['peak_bytes']:.2f}x | |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda[:N] or auto (a GPU if any)")
    parser.add_argument(
        "--shapes", nargs="+", default=[",".join(map(str, s)) for s in SHAPES], help="N,C,H,W"
    )
    parser.add_argument("--runs", type=int, default=5, help="timed steps per strategy")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (CPU; default: torch's)")
    parser.add_argument("--no-rss", action="store_true", help="skip the child processes")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--rss-child", choices=STRATEGIES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shapes = [tuple(int(n) for n in s.split(",")) for s in args.shapes]
    if args.threads:
        torch.set_num_threads(args.threads)  # the RSS children run with torch's default
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if args.device == "auto" else args.device)
    if device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1":
        sys.exit("unset TRITON_INTERPRET: the interpreter is never timed")
    # The CPU runs the PyTorch backend; CUDA its default (the kernels).
    forced = backends.use_backend("torch") if device.type == "cpu" else contextlib.nullcontext()
    with forced:
        if args.rss_child:
            _rss_child(args.rss_child, shapes[0])
            return 0
        rss = device.type == "cpu" and not args.no_rss and os.path.exists("/proc/self/status")
        results = {str(s): measure(s, device, args.runs, rss) for s in shapes}
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads")
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "device": str(device), "results": results}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
