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

    python -m bench.fusion             # the sizes above, batch 2
    python -m bench.fusion --smoke     # narrow networks at small images: seconds
"""

import argparse
import copy
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

from .networks import iresnet, norm_act_net, timm_resnet

IRESNET_TARGET = 0.80  # fused / unfused saved bytes of the IResNet-50 forward, at most


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
    start = time.perf_counter()
    model(images).float().square().mean().backward()
    seconds = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return seconds


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


def measure(network: Network, smoke: bool, batch: int, runs: int) -> dict:
    """One network's row: pairs fused and present, saved bytes and step time, each way."""
    torch.manual_seed(0)
    images = torch.randn(batch, *network.image[smoke])
    unfused = network.make(smoke)
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
        "target": network.target,
    }
    row["ratio"] = row["saved_fused"] / row["saved_unfused"]
    if runs:
        row["step_unfused"], row["step_fused"] = step_seconds([unfused, fused], images, runs)
    return row


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
    return "\n".join(lines + [""] + [n for r, n in zip(rows, notes) if r["unfused_reasons"]])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="narrow networks, small images")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="timed steps per model (0: none)")
    args = parser.parse_args(argv)
    with use_backend("torch"):  # the CPU's backend: never Triton's interpreter
        rows = [measure(n, args.smoke, args.batch, args.runs) for n in NETWORKS]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, fp32,"
        f" saved bytes of one training-mode forward, step = forward + backward"
    )
    print(render(rows))
    return rows


if __name__ == "__main__":
    main()
