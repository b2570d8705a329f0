"""Training-step time of three networks, each with each activation, eager, compiled and graphed.

    python -m bench.training_cuda --out DIR            # the first GPU, else the CPU
    python -m bench.training_cuda --smoke --out DIR    # CPU, tiny sizes, a minute or two

Networks, built with no downloads: the demo network (the demo's own
``digit_net``: conv, batch norm, activation, linear), a ResNet-18-sized CNN (3x224x224, channels_last) and a
small MLP (``nets.NETWORKS``). Each is built with every activation of
``nets.TRAINED`` (names from bench's one registry, ``activations.py``) and timed
as one training step (forward, backward, SGD step) in three modes: eager,
``torch.compile``, and the whole step captured in one CUDA graph (GPU only;
skipped, and marked so, on the CPU). Each configuration is first checked to
train: over ``CHECK_STEPS`` steps on one fixed batch its loss must fall.
Then the median step time and its interquartile range are recorded
(``timing.step_samples_ms``).

Writes ``training-<cuda|cpu>.json`` after every row (a run stopped by a time
limit keeps what it measured): an ``environment`` object and ``rows`` of
``{"network", "mode", "activation", "dtype", "ms", "ms_spread", ...}``.
"""

import argparse
import json
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import matrix, nets, timing
from .activations import Activation

MODES = ("eager", "compiled", "cuda graph")
MEASURE_ORDER = ("eager", "cuda graph", "compiled")
CHECK_STEPS = 20
# Seconds a compiled configuration needs to be worth starting.
COMPILE_RESERVE_S = 40
# --smoke compiles only these (tracing the ResNet takes most of a minute on a small CPU).
SMOKE_COMPILED = ("demo", "mlp")


@dataclass
class Run:
    """One configuration's model, optimizer and fixed batch."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    x: torch.Tensor
    labels: torch.Tensor
    autocast: torch.dtype | None


def _loss(run: Run, model: nn.Module) -> torch.Tensor:
    device_type = run.x.device.type
    with torch.autocast(device_type, run.autocast or torch.float32, enabled=bool(run.autocast)):
        return F.cross_entropy(model(run.x).float(), run.labels)


def _plain_step(run: Run, model: nn.Module) -> Callable[[], torch.Tensor]:
    def step() -> torch.Tensor:
        run.optimizer.zero_grad(set_to_none=True)
        loss = _loss(run, model)
        loss.backward()
        run.optimizer.step()
        return loss.detach()

    return step


def _graphed_step(run: Run) -> Callable[[], torch.Tensor]:
    """The whole step (forward, backward, optimizer) captured once, replayed per call.

    Three eager steps on a side stream first: Triton compiles, cuDNN picks its
    algorithms, SGD allocates its momentum, so the capture records only launches.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            _plain_step(run, run.model)()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    run.optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss = _loss(run, run.model)
        loss.backward()
        run.optimizer.step()

    def step() -> torch.Tensor:
        graph.replay()
        return loss.detach().clone()

    return step


def build_step(run: Run, mode: str, compile_backend: str) -> Callable[[], torch.Tensor]:
    if mode == "eager":
        return _plain_step(run, run.model)
    if mode == "compiled":
        # Every row compiles an nn.Sequential: without a reset, dynamo's recompile
        # limit for Sequential.forward would silently leave later rows eager.
        torch._dynamo.reset()
        return _plain_step(run, torch.compile(run.model, backend=compile_backend))
    return _graphed_step(run)


def check_trains(step: Callable[[], torch.Tensor]) -> list[float]:
    """CHECK_STEPS losses; raises AssertionError unless they are finite and fall."""
    losses = torch.stack([step() for _ in range(CHECK_STEPS)]).tolist()
    first, last = losses[0], sum(losses[-5:]) / 5
    if not all(math.isfinite(loss) for loss in losses):
        raise AssertionError(f"a loss is not finite: {losses}")
    if not last < first:
        raise AssertionError(f"the loss did not fall: {first:.4f} -> mean of last 5 {last:.4f}")
    return losses


def measure_row(row: dict, run: Run, args, device: torch.device) -> None:
    """Fill row with the checked losses and the step time, or its error."""
    try:
        step = build_step(run, row["mode"], args.compile_backend)
        losses = check_trains(step)
        samples = timing.step_samples_ms(step, device, args.min_steps, args.min_seconds)
    except AssertionError as e:
        row["error"] = f"check failed: {e}"
        return
    except Exception as e:  # a compiler or capture error must not end the run
        row["error"] = f"error: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
        return
    ms, spread = timing.median_and_spread(samples)
    row.update(ms=ms, ms_spread=spread, steps=len(samples), loss_first=losses[0])
    row["loss_last"] = losses[-1]


def _skip_reason(network: str, mode: str, args, device, clock_left_s: float) -> str | None:
    if mode == "cuda graph" and device.type != "cuda":
        return "skipped: CUDA graphs need a GPU"
    if mode == "compiled" and args.smoke and network not in SMOKE_COMPILED:
        return f"skipped: --smoke compiles {', '.join(SMOKE_COMPILED)} only"
    if clock_left_s <= (COMPILE_RESERVE_S if mode == "compiled" else 0):
        return "skipped: time budget spent"
    return None


def configurations(args) -> list[tuple[nets.Network, str, str, Activation]]:
    """(network, dtype, mode, activation) in the order measured.

    The activations of one (network, dtype, mode) run one after another, so
    that they are compared under the same conditions; the compiled mode comes
    last, so that a time budget spent on compiling costs only compiled rows.
    """
    chosen = [n for n in nets.NETWORKS if not args.networks or n.name in args.networks.split(",")]
    modes = [m for m in MEASURE_ORDER if not args.modes or m in args.modes.split(",")]
    return [
        (network, dtype, mode, activation)
        for mode in modes
        for network in chosen
        for dtype in args.dtype_names
        for activation in nets.TRAINED
        if network.uses_norm or activation.norm_act is None
    ]


def run_all(args, device: torch.device, out_path: Path) -> dict:
    result = {
        "environment": timing.environment(device),
        "command": args.command,
        "sizes": "smoke" if args.smoke else "full",
        "compile_backend": args.compile_backend,
        "rows": [],
    }
    start = time.perf_counter()
    for network, dtype, mode, activation in configurations(args):
        row = {"network": network.name, "mode": mode, "activation": activation.name}
        row.update(dtype=dtype, ms=None, ms_spread=None)
        result["rows"].append(row)
        left_s = args.budget_s - (time.perf_counter() - start)
        skip = _skip_reason(network.name, mode, args, device, left_s)
        if skip:
            row["error"] = skip
        else:
            torch.manual_seed(0)
            model, x, labels = network.build(activation, args.smoke, device)
            optimizer = torch.optim.SGD(model.parameters(), lr=network.lr, momentum=0.9)
            autocast = None if dtype == "fp32" else matrix.DTYPES[dtype]
            measure_row(row, Run(model, optimizer, x, labels, autocast), args, device)
        _print_row(time.perf_counter() - start, row)
        out_path.write_text(json.dumps(result, indent=1) + "\n")
    result["elapsed_s"] = time.perf_counter() - start
    out_path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def _print_row(elapsed: float, row: dict) -> None:
    what = (
        f"{row['ms']:9.3f} ms, IQR {row['ms_spread']:.3f}, loss "
        f"{row['loss_first']:.3f} -> {row['loss_last']:.3f}"
        if row["ms"] is not None
        else row["error"]
    )
    print(f"[{elapsed:6.1f}s] {row['network']:8s} {row['dtype']} {row['mode']:10s} "
          f"{row['activation']:22s} {what}", flush=True)  # fmt: skip


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--dtypes", default="", help="fp32,bf16 (autocast); default the matrix's")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for a CPU check")
    parser.add_argument("--networks", default="", help=f"comma-separated of {nets.NETWORK_NAMES}")
    parser.add_argument("--modes", default="", help=f"comma-separated of {MODES}")
    parser.add_argument("--budget-s", type=float, default=300, help="start no row after this")
    parser.add_argument("--min-steps", type=int, default=20, help="timed steps per row, at least")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="timed seconds per row")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default torch's)")
    parser.add_argument(
        "--compile-backend", default="inductor",
        help="torch.compile backend (inductor; aot_eager checks the path without inductor)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.command = "python -m bench.training_cuda " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        device = matrix.resolve_device("cpu" if args.smoke else args.device)
        wanted = matrix.dtype_names(device, args.dtypes)
    except ValueError as e:
        sys.exit(str(e))
    args.dtype_names = [d for d in wanted if d in matrix.TRAINING_DTYPES]
    if not args.dtype_names:
        sys.exit(f"--dtypes {args.dtypes}: training runs {matrix.TRAINING_DTYPES} only")
    if timing.interpreter_active(device):
        sys.exit("TRITON_INTERPRET=1 on a CPU: the interpreter is not timed; unset it.")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = run_all(args, device, out / f"training-{device.type}.json")
    failed = [r for r in result["rows"] if r.get("error", "").startswith(("check", "error"))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
