"""Epoch time of the demo network: LearnableELU against torch.nn.ELU, eager and compiled.

The same network, data, seed and optimizer, differing only in the
activation, each run eagerly and under ``torch.compile`` (where the layer
becomes the reference composite that inductor fuses with its neighbours).
Epochs alternate between the networks (after one warm-up epoch each, which
also compiles), so that a machine that slows down or speeds up during the
run affects all alike; the medians are reported. Each network must also
have learned (its loss fell), or the timing is discarded.

    python -m bench.demo_epoch_time                 # CPU, 7 epochs each, eager and compiled
    python -m bench.demo_epoch_time --device cuda --epochs 15
    python -m bench.demo_epoch_time --modes eager
"""

import argparse
import platform
import statistics
import time

import torch

from elu_triton.demo.digits import synthetic_digits
from elu_triton.demo.model import ACTIVATIONS, digit_net
from elu_triton.demo.train import sgd, shuffled_batches, train, warm_up

from . import matrix, targets

BATCH_SIZE = 128

# The demo's own activations (digit_net's "learnable" and "elu"), compared as it trains them.
LABELS = {"learnable": "LearnableELU(20)", "elu": "torch.nn.ELU()"}


def _setup(
    activation: str, mode: str, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor
):
    torch.manual_seed(0)
    net = digit_net(mean, activation).to(images.device)
    optimizer = sgd(net, 0.01)
    if mode == "compiled":
        net = torch.compile(net)
    batches = shuffled_batches(images, labels, BATCH_SIZE, torch.Generator().manual_seed(0))
    return net, optimizer, batches


def epoch_times(
    device: torch.device, epochs: int, modes: tuple[str, ...] = ("eager", "compiled")
) -> dict[tuple[str, str], list[float]]:
    """Seconds per epoch for each (activation, mode), epochs interleaved; checks that all learned."""
    train_set, _ = synthetic_digits(test_size=0)
    images, labels = train_set.images.to(device), train_set.labels.to(device)
    mean = train_set.images.mean(dim=0)
    per_epoch = len(train_set) // BATCH_SIZE
    runs = {
        (name, mode): _setup(name, mode, images, labels, mean)
        for mode in modes
        for name in ACTIVATIONS
    }
    times: dict[tuple, list[float]] = {key: [] for key in runs}
    losses: dict[tuple, list[float]] = {key: [] for key in runs}
    for epoch in range(epochs + 1):
        for key, (net, optimizer, batches) in runs.items():
            if epoch == 0:
                warm_up(net, images[:BATCH_SIZE], labels[:BATCH_SIZE])
            history = train(net, optimizer, batches, 1, per_epoch)
            losses[key] += history.losses
            if epoch > 0:  # epoch 0 is the warm-up epoch
                times[key].append(history.seconds)
    for key, values in losses.items():
        first, last = statistics.mean(values[:per_epoch]), statistics.mean(values[-per_epoch:])
        assert last < 0.5 * first, f"{key}: the loss did not fall ({first:.3f} -> {last:.3f})"
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument(
        "--epochs", type=int, default=7, help="timed epochs per activation and mode (default 7)"
    )
    parser.add_argument(
        "--modes", default="eager,compiled", help="comma-separated: eager, compiled (default both)"
    )
    args = parser.parse_args()
    device = matrix.resolve_device(args.device)
    modes = tuple(args.modes.split(","))
    if not set(modes) <= {"eager", "compiled"}:
        parser.error(f"--modes takes eager and/or compiled, got {args.modes!r}")
    start = time.perf_counter()
    times = epoch_times(device, args.epochs, modes)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    print(
        f"device {device} ({where}), torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{args.epochs} timed epochs each, interleaved, {time.perf_counter() - start:.0f} s in all"
    )
    print("| mode | activation | median s/epoch | min | max |")
    print("| --- | --- | --- | --- | --- |")
    for (name, mode), t in times.items():
        print(
            f"| {mode} | {LABELS.get(name, name)} | {statistics.median(t):.3f} | {min(t):.3f} | {max(t):.3f} |"
        )
    for mode in modes:
        ratio = statistics.median(times["learnable", mode]) / statistics.median(times["elu", mode])
        verdict = ""
        if device.type == "cuda":
            met = ratio <= targets.DEMO_EPOCH_GPU
            verdict = f"; target <= {targets.DEMO_EPOCH_GPU}x: {'met' if met else 'missed'}"
        print(
            f"{mode}: LearnableELU / nn.ELU epoch time {ratio:.3f} ({100 * (ratio - 1):+.1f}%)"
            + verdict
        )


if __name__ == "__main__":
    main()
