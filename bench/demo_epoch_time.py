"""Epoch time of the demo network: LearnableELU against torch.nn.ELU, in one run.

The same network, data, seed and optimizer, differing only in the
activation. Epochs alternate between the two networks (after one warm-up
epoch each), so that a machine that slows down or speeds up during the run
affects both alike; the medians are reported. Each network must also have
learned (its loss fell), or the timing is discarded.

    python bench/demo_epoch_time.py                 # CPU, 7 epochs each
    python bench/demo_epoch_time.py --device cuda --epochs 15
"""

import argparse
import platform
import statistics
import time

import torch

from elu_triton.demo.cli import resolve_device
from elu_triton.demo.digits import synthetic_digits
from elu_triton.demo.model import digit_net
from elu_triton.demo.train import sgd, shuffled_batches, train, warm_up

BATCH_SIZE = 128


def _setup(activation: str, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor):
    torch.manual_seed(0)
    net = digit_net(mean, activation).to(images.device)
    batches = shuffled_batches(images, labels, BATCH_SIZE, torch.Generator().manual_seed(0))
    return net, sgd(net, 0.01), batches


def epoch_times(device: torch.device, epochs: int) -> dict[str, list[float]]:
    """Seconds per epoch for each activation, epochs interleaved; checks that both learned."""
    train_set, _ = synthetic_digits(test_size=0)
    images, labels = train_set.images.to(device), train_set.labels.to(device)
    mean = train_set.images.mean(dim=0)
    per_epoch = len(train_set) // BATCH_SIZE
    runs = {name: _setup(name, images, labels, mean) for name in ("learnable", "elu")}
    times: dict[str, list[float]] = {name: [] for name in runs}
    losses: dict[str, list[float]] = {name: [] for name in runs}
    for epoch in range(epochs + 1):
        for name, (net, optimizer, batches) in runs.items():
            if epoch == 0:
                warm_up(net, images[:BATCH_SIZE], labels[:BATCH_SIZE])
            history = train(net, optimizer, batches, 1, per_epoch)
            losses[name] += history.losses
            if epoch > 0:  # epoch 0 is the warm-up epoch
                times[name].append(history.seconds)
    for name, values in losses.items():
        first, last = statistics.mean(values[:per_epoch]), statistics.mean(values[-per_epoch:])
        assert last < 0.5 * first, f"{name}: the loss did not fall ({first:.3f} -> {last:.3f})"
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument(
        "--epochs", type=int, default=7, help="timed epochs per activation (default 7)"
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    start = time.perf_counter()
    times = epoch_times(device, args.epochs)
    learnable, elu = statistics.median(times["learnable"]), statistics.median(times["elu"])
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    print(
        f"device {device} ({where}), torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{args.epochs} timed epochs each, interleaved, {time.perf_counter() - start:.0f} s in all"
    )
    print("| activation | median s/epoch | min | max |")
    print("| --- | --- | --- | --- |")
    for name, label in (("learnable", "LearnableELU(20)"), ("elu", "torch.nn.ELU()")):
        t = times[name]
        print(f"| {label} | {statistics.median(t):.3f} | {min(t):.3f} | {max(t):.3f} |")
    print(
        f"LearnableELU / nn.ELU epoch time: {learnable / elu:.3f} "
        f"({100 * (learnable / elu - 1):+.1f}%)"
    )


if __name__ == "__main__":
    main()
