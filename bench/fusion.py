"""fuse_batchnorm on whole networks: pairs fused, saved bytes and step time against unfused.

Networks (``bench/networks.py``, from their published structure):

- IResNet-50 with ``nn.PReLU`` at 112x112 (ArcFace): 25 BatchNorm -> PReLU
  pairs inside ``forward()``; they fuse once ``elu_triton.fuse.FUSED_KINDS``
  has an nn.PReLU row, which this script picks up by itself; and the same
  network with LearnableELU in PReLU's place, whose pairs fuse today;
- ResNet-50 as timm builds it with ``act_layer=LearnableELU`` at 224x224: 33 pairs;
- a stack of timm-style ``BatchNormAct2d`` blocks with ``LazyLearnableELU``: 8;
- the demo network (``elu_triton.demo.model.digit_net``): 1, in a Sequential.

For each: the pairs ``fuse_batchnorm`` fuses against the pairs the network
has (each BatchNorm whose output feeds only its activation); the bytes
autograd saves in one training-mode forward (``elu_triton.demo.memory.
saved_bytes``: each saved view once, Parameters and buffers excluded),
fused against unfused; and the median CPU time of a forward+backward,
fused against unfused, steps alternating, on the PyTorch backend (no
target; where nothing fuses, the two models are the same, and their times'
ratio shows the machine's noise). Target: the
IResNet-50 forward (batch 2, fp32) keeps at most 0.80x the unfused bytes.

On a GPU (``--device cuda``) the step runs the Triton kernels, and each row
also has the step's peak memory (``torch.cuda.max_memory_allocated`` above
what the model holds before it) and, with ``--compiled``, the step time of
``torch.compile`` of the unfused model. GPU targets: peak memory at most
0.85x the unfused model's, step time at most 1.05x the unfused eager step's.

    python -m bench.fusion             # the sizes above, batch 2
    python -m bench.fusion --smoke     # narrow networks at small images: seconds
    python -m bench.fusion --device cuda --only IResNet-50 --batch 32 --compiled --json F
"""

import argparse
import contextlib
import copy
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from elu_triton import LazyLearnableELU, LearnableELU, batchnorm_fusion_plan, fuse_batchnorm
from elu_triton.backends import use_backend
from elu_triton.demo.memory import activation_bytes
from elu_triton.demo.model import digit_net

from . import matrix, targets, timing
from .networks import iresnet, norm_act_net, timm_resnet

IRESNET_TARGET = targets.FUSION_SAVED_BYTES  # the IResNet-50 forward's saved bytes
CPU = torch.device("cpu")


@dataclass(frozen=True)
class Network:
    name: str
    make: Callable[[bool], nn.Module]  # smoke -> the model
    image: dict[bool, tuple[int, int, int]]  # smoke -> (C, H, W)
    pairs: int  # BatchNorm -> activation pairs in the published structure
    target: float | None = None  # the most fused / unfused saved bytes


NETWORKS = (
    Network(
        "IResNet-50 (nn.PReLU)",
        lambda smoke: iresnet(width=4 if smoke else 64, image_size=16 if smoke else 112),
        {False: (3, 112, 112), True: (3, 16, 16)},
        pairs=25,
        target=IRESNET_TARGET,
    ),
    Network(  # what an nn.PReLU row would give, near enough: the same pairs, fused today
        "IResNet-50 (LearnableELU in PReLU's place)",
        lambda smoke: iresnet(
            width=4 if smoke else 64, image_size=16 if smoke else 112, activation=LearnableELU
        ),
        {False: (3, 112, 112), True: (3, 16, 16)},
        pairs=25,
    ),
    Network(
        "ResNet-50, timm (LearnableELU)",
        lambda smoke: timm_resnet(LearnableELU, width=4 if smoke else 64),
        {False: (3, 224, 224), True: (3, 32, 32)},
        pairs=33,
    ),
    Network(
        "timm BatchNormAct2d stack (LazyLearnableELU)",
        lambda smoke: norm_act_net(LazyLearnableELU, width=4 if smoke else 32),
        {False: (3, 224, 224), True: (3, 32, 32)},
        pairs=8,
    ),
    Network(
        "demo (digit_net)", lambda smoke: digit_net(), {False: (1, 28, 28), True: (1, 28, 28)}, 1
    ),
)


def _step(model: nn.Module, images: torch.Tensor) -> float:
    timing.sync(images.device)
    start = time.perf_counter()
    model(images).float().square().mean().backward()
    timing.sync(images.device)
    seconds = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return seconds


def peak_step_bytes(model: nn.Module, images: torch.Tensor) -> int:
    """The most CUDA memory a training step holds above what was allocated before it."""
    torch.cuda.synchronize(images.device)
    before = torch.cuda.memory_allocated(images.device)
    torch.cuda.reset_peak_memory_stats(images.device)
    _step(model.train(), images)
    return torch.cuda.max_memory_allocated(images.device) - before


def step_seconds(models: list[nn.Module], images: torch.Tensor, runs: int) -> list[float]:
    """Each model's median time of a training-mode forward + backward.

    The models' steps alternate (after two warm-up steps each), so that a
    neighbour's load on a shared machine falls on both alike.
    """
    times: list[list[float]] = [[] for _ in models]
    for model in models:
        model.train()
    for run in range(runs + 2):
        for model, mine in zip(models, times):
            seconds = _step(model, images)
            if run >= 2:
                mine.append(seconds)
    return [statistics.median(mine) for mine in times]


def measure(
    network: Network,
    smoke: bool,
    batch: int,
    runs: int,
    device: torch.device = CPU,
    compiled: bool = False,
) -> dict:
    """One network's row: pairs fused and present, saved bytes and step time, each way.

    On CUDA also the step's peak memory; with compiled, the compiled unfused step's time.
    """
    torch.manual_seed(0)
    images = torch.randn(batch, *network.image[smoke], device=device)
    unfused = network.make(smoke).to(device)
    with torch.no_grad():
        unfused.eval()(images)  # sizes lazy modules, without moving statistics
    fused = fuse_batchnorm(copy.deepcopy(unfused))
    plan = batchnorm_fusion_plan(unfused)
    reasons = sorted({c.reason for c in plan if not c.fuses})
    with torch.no_grad():  # the answer first: eval outputs agree
        torch.testing.assert_close(
            fused.eval()(images), unfused.eval()(images), rtol=1e-4, atol=1e-4
        )
    row = {
        "network": network.name,
        "fused": sum(c.fuses for c in plan),
        "candidates": len(plan),
        "pairs": network.pairs,
        "unfused_reasons": reasons,
        "saved_unfused": activation_bytes(unfused, images),
        "saved_fused": activation_bytes(fused, images),
        "target": None if smoke else network.target,  # (set for the published sizes)
    }
    row["ratio"] = row["saved_fused"] / row["saved_unfused"]
    if device.type == "cuda":
        row["peak_unfused"] = peak_step_bytes(unfused, images)
        row["peak_fused"] = peak_step_bytes(fused, images)
    if runs:
        models = [unfused, fused] + ([torch.compile(copy.deepcopy(unfused))] if compiled else [])
        steps = step_seconds(models, images, runs)
        row["step_unfused"], row["step_fused"] = steps[:2]
        if compiled:
            row["step_compiled"] = steps[2]
    return row


def gpu_figures(row: dict) -> list[str]:
    """A row's GPU figures, fused against unfused (targets.fusion judges them)."""
    found = []
    if "peak_fused" in row:
        found.append(f"peak memory {row['peak_fused'] / row['peak_unfused']:.3f}x")
    if "peak_fused" in row and "step_fused" in row:
        found.append(f"step time {row['step_fused'] / row['step_unfused']:.3f}x")
    if "step_compiled" in row:
        found.append(f"against compiled unfused {row['step_fused'] / row['step_compiled']:.3f}x")
    return found


def verdict(row: dict) -> str:
    if row["target"] is None:
        return "-"
    met = row["ratio"] <= row["target"]
    return f"{'met' if met else 'MISSED'} (<= {row['target']:.2f}x)"


def render(rows: list[dict]) -> str:
    lines = [
        "| network | pairs fused / present | saved, unfused | fused | ratio | target "
        "| step, unfused | fused | speed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        step = ("-", "-", "-")
        if "step_unfused" in r:
            su, sf = r["step_unfused"], r["step_fused"]
            step = (f"{su * 1e3:.1f} ms", f"{sf * 1e3:.1f} ms", f"{su / sf:.2f}x")
        lines.append(
            f"| {r['network']} | {r['fused']} / {r['pairs']} | {r['saved_unfused'] / 2**20:.1f} MiB "
            f"| {r['saved_fused'] / 2**20:.1f} MiB | {r['ratio']:.3f}x | {verdict(r)} | "
            + " | ".join(step)
            + " |"
        )
    notes = [f"- {r['network']}: unfused because {'; '.join(r['unfused_reasons'])}" for r in rows]
    notes = [n for r, n in zip(rows, notes) if r["unfused_reasons"]]
    notes += [
        f"- {r['network']}, fused: {'; '.join(gpu_figures(r))}" for r in rows if gpu_figures(r)
    ]
    return "\n".join(lines + [""] + notes)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="narrow networks, small images")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="timed steps per model (0: none)")
    parser.add_argument("--device", default="cpu", help="cpu (the default), auto, cuda, cuda:N")
    parser.add_argument("--only", default="", help="the networks whose name starts with this")
    parser.add_argument("--compiled", action="store_true", help="also torch.compile the unfused")
    parser.add_argument("--json", default="", help="also write the rows here")
    parser.add_argument(
        "--threads", type=int, default=0,
        help="CPU threads for torch (default: torch's); 1 on a machine other jobs share",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = matrix.resolve_device(args.device)
    networks = [n for n in NETWORKS if n.name.startswith(args.only)]
    # On the CPU the PyTorch backend, never Triton's interpreter; on a GPU the kernels.
    backend = use_backend("torch") if device.type == "cpu" else contextlib.nullcontext()
    with backend:
        rows = [
            measure(n, args.smoke, args.batch, args.runs, device, args.compiled) for n in networks
        ]
    print(
        f"{timing.device_name(device)}, torch {torch.__version__}, batch {args.batch}, fp32,"
        f" saved bytes of one training-mode forward, step = forward + backward"
    )
    print(render(rows))
    if args.json:
        environment = timing.environment(device)
        with open(args.json, "w") as f:
            json.dump({"environment": environment, "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
