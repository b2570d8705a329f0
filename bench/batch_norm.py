"""BatchNormLearnableELU against the pair nn.BatchNorm2d -> LearnableELU: memory kept, time.

- Activation memory: the bytes autograd saves for the backward during one
  training forward, counted by saved-tensor hooks (``activation_bytes``:
  each saved view once, parameters and buffers not counted), at
  (32, 64, 56, 56) fp32. Target
  (``targets.py``, as every target below): the fused layer keeps at most 0.55x the pair's.
- Forward+backward time (``torch.autograd.grad`` of y against x and the
  parameters), eager, fused against the pair: on the CPU reported without a
  target (the PyTorch backend recomputes z in the backward; the memory is
  the point). On CUDA also the pair under torch.compile, in fp32 and bf16,
  NCHW and channels_last (targets: 1.5x the eager pair, 1.0x the compiled one),
  and each Triton pass's bandwidth as a share of the copy bandwidth.

Both layers get the same state and inputs, and their outputs and gradients
are compared before anything is timed.

    python -m bench.batch_norm                        # (32, 64, 56, 56) fp32
    python -m bench.batch_norm --json out.json --shape 8 64 56 56
"""

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
from torch import nn

from elu_triton.demo.memory import activation_bytes

from . import matrix, targets, timing
from .activations import BY_NAME

SHAPE = (32, 64, 56, 56)


def layers(channels: int, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """(pair, fused) with equal, non-trivial state: the registry's elu_triton and bn_fused
    entries after a batch norm."""
    torch.manual_seed(0)
    pair = BY_NAME["elu_triton"].after_norm(channels).to(device)
    with torch.no_grad():
        pair[0].weight.uniform_(0.5, 1.5)
        pair[0].bias.uniform_(-0.5, 0.5)
        pair[1].alpha.uniform_(0.5, 1.5)
    fused = BY_NAME["bn_fused"].after_norm(channels).to(device)
    fused.load_state_dict({**copy.deepcopy(pair[0].state_dict()), "alpha": pair[1].alpha.detach()})
    return pair, fused


def step(model: nn.Module, x: torch.Tensor, dy: torch.Tensor):
    """One training forward+backward: gradients of x and the parameters."""
    y = model(x)
    return (y, *torch.autograd.grad(y, (x, *model.parameters()), dy))


def check_agree(pair, fused, x, dy) -> None:
    """Outputs and gradients of the two agree (fp32 arithmetic, sums over M elements)."""
    got, want = step(fused, x, dy), step(pair, x, dy)
    for name, a, b in zip(("y", "dx", "dweight", "dbias", "dalpha"), got, want):
        scale = float(b.abs().max()) + 1.0
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-3, atol=1e-3 * scale, msg=name)


def measure(shape, dtype, memory_format, device, compiled: bool) -> dict:
    pair, fused = layers(shape[1], device)
    x = torch.randn(shape, device=device, dtype=dtype).contiguous(memory_format=memory_format)
    x.requires_grad_()
    dy = torch.randn_like(x)
    pair, fused = pair.to(dtype=torch.float32), fused.to(dtype=torch.float32)
    check_agree(pair, fused, x, dy)
    result = {
        "shape": list(shape),
        "dtype": str(dtype).removeprefix("torch."),
        "memory_format": "channels_last" if memory_format == torch.channels_last else "NCHW",
        "saved_bytes_pair": activation_bytes(pair, x),
        "saved_bytes_fused": activation_bytes(fused, x),
        "x_bytes": x.numel() * x.element_size(),
    }
    result["memory_ratio"] = result["saved_bytes_fused"] / result["saved_bytes_pair"]
    providers = {"pair (eager)": pair, "fused": fused}
    if compiled:
        providers["pair (torch.compile)"] = torch.compile(copy.deepcopy(pair))
    for name, model in providers.items():
        run = lambda model=model: step(model, x, dy)  # noqa: E731
        run()  # compilation, caches
        timing.sync(device)
        result[f"{name} ms"] = timing.time_ms(run, device)["ms"]
    result["fused speedup vs eager pair"] = result["pair (eager) ms"] / result["fused ms"]
    if compiled:
        result["fused speedup vs compiled pair"] = (
            result["pair (torch.compile) ms"] / result["fused ms"]
        )
    return result


def pass_bandwidth(shape, dtype, memory_format, device, copy_gbps: float) -> dict:
    """Each Triton pass's GB/s (the bytes it must move / its time) and share of copy_gbps.

    Bytes: statistics reads x; normalize+activation reads x and writes y;
    the reduction reads x and dy; the dx pass reads x and dy and writes dx
    (per-channel vectors and partials are negligible). Each time includes
    the pass's host work and small launches (the shift gather, the sums of
    the partials), as a training step pays them.
    """
    from elu_triton.batch_norm import triton_kernels as passes
    from elu_triton.batch_norm.activations import LEARNABLE_ELU
    from elu_triton.batch_norm.statistics import PerChannel, dx_coefficients, normalize_scale

    x = torch.randn(shape, device=device, dtype=dtype).contiguous(memory_format=memory_format)
    dy = torch.randn_like(x)
    weight, bias, alpha = (torch.rand(shape[1], device=device) + 0.5 for _ in range(3))
    per_channel = PerChannel(x, weight, bias, alpha, LEARNABLE_ELU)
    mean, var = passes.statistics(x)
    invstd = torch.rsqrt(var + 1e-5)
    scale = normalize_scale(per_channel, invstd)
    sums = passes._reduce(dy, x, mean, invstd, scale, per_channel, True)
    coefficients = dx_coefficients(scale, invstd, sums, x.numel() // shape[1], True)
    size = x.numel() * x.element_size()
    runs = {
        "statistics": (lambda: passes.statistics(x), size),
        "normalize+activation": (
            lambda: passes.normalize_activate(x, mean, invstd, per_channel),
            2 * size,
        ),
        "reduction": (
            lambda: passes._reduce(dy, x, mean, invstd, scale, per_channel, True),
            2 * size,
        ),
        "dx": (lambda: passes._dx(dy, x, mean, per_channel, coefficients, True), 3 * size),
    }
    result = {}
    for name, (fn, nbytes) in runs.items():
        fn()  # Triton compiles on first use
        timing.sync(device)
        ms = timing.time_ms(fn, device)["ms"]
        gbps = nbytes / ms / 1e6
        result[name] = {"ms": ms, "GBps": gbps, "share_of_copy": gbps / copy_gbps}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--shape", type=int, nargs=4, default=SHAPE)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--device", default="auto", help="auto (the first GPU), cpu, cuda:N")
    args = parser.parse_args(argv)
    device = matrix.resolve_device(args.device)
    if timing.interpreter_active(device):
        print("TRITON_INTERPRET=1 on a CPU: the interpreter is not timed; unset it")
        return 2
    on_gpu = device.type == "cuda"
    dtypes = (torch.float32, torch.bfloat16) if on_gpu else (torch.float32,)
    formats = (
        (torch.contiguous_format, torch.channels_last) if on_gpu else (torch.contiguous_format,)
    )
    results = [
        measure(tuple(args.shape), dtype, fmt, device, compiled=on_gpu)
        for dtype in dtypes
        for fmt in formats
    ]
    report = {"environment": timing.environment(device), "results": results}
    if on_gpu:  # the Triton passes, each against the copy bandwidth
        copy_gbps = timing.copy_bandwidth_gbps(device)["GBps"]
        report["copy_GBps"] = copy_gbps
        for result, (dtype, fmt) in zip(results, [(d, f) for d in dtypes for f in formats]):
            result["passes"] = pass_bandwidth(tuple(args.shape), dtype, fmt, device, copy_gbps)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    for target in targets.batch_norm(report):
        print(f"{target.status}: {target.name} ({target.detail})")
    worst = max(r["memory_ratio"] for r in results)
    return 0 if worst <= targets.BATCH_NORM_MEMORY else 1


if __name__ == "__main__":
    sys.exit(main())
