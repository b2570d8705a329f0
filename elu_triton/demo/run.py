"""The demo's run: load the data, train, evaluate, for what ``cli.py`` asks.

``run`` trains the network on the loaded data and returns a ``RunSummary``,
which ``summary.py`` prints and writes as ``summary.json``; ``evaluate_saved``
scores saved weights again.
"""

import argparse

import torch

from . import digits, distributed, figures, memory, mnist, report
from .baseline import linear_softmax_accuracy
from .digits import DigitSet
from .model import digit_net, learned_alphas
from .summary import (
    WEIGHTS_FILE,
    RunSummary,
    activation_backend,
    device_name,
    example_prediction,
    package_version,
    print_results,
    write_outputs,
)
from .train import accuracy, predict, sgd, shuffled_batches, train, warm_up

# WEIGHTS_FILE and RunSummary (summary.py) are importable from here too, as before.
__all__ = [
    "PROG",
    "WEIGHTS_FILE",
    "RunSummary",
    "evaluate_saved",
    "load_data",
    "print_setup",
    "run",
]

PROG = "elu-triton-demo"


def load_data(args: argparse.Namespace) -> tuple[DigitSet, DigitSet, str]:
    """(train, test, description) for the chosen data set and sizes.

    Raises:
        FileNotFoundError, ValueError: from the MNIST reader.
    """
    if args.data == "mnist":
        train_set, test_set = mnist.load_mnist(args.data_dir)
        train_set, test_set = train_set.head(args.train_size), test_set.head(args.test_size)
        return train_set, test_set, f"MNIST from {args.data_dir}"
    train_set, test_set = digits.synthetic_digits(args.train_size or 5000, args.test_size or 5000)
    return train_set, test_set, "built-in synthetic digits"


def print_setup(
    args: argparse.Namespace,
    device: torch.device,
    train_set: DigitSet,
    test_set: DigitSet,
    data_name: str,
    data_seconds: float,
) -> None:
    """The run's first lines: what runs where, on what data."""
    print(f"{PROG}: a digit classifier with LearnableELU (learned alpha per channel)")
    print(
        f"device: {device} ({device_name(device)}); "
        f"LearnableELU runs {activation_backend(device, args.compile)}"
    )
    print(f"torch {torch.__version__}, triton {package_version('triton') or 'not installed'}")
    print(
        f"data: {data_name}, {len(train_set)} training / {len(test_set)} test images "
        f"({data_seconds:.1f} s)"
    )


def _train_model(args: argparse.Namespace, device: torch.device, train_set: DigitSet):
    """Build, warm up and train the network. Returns (model, initial alphas, history, warm-up s).

    Under --distributed every rank trains its shard of each global batch
    through DDP; the returned model is the unwrapped network.
    """
    torch.manual_seed(args.seed)
    model = digit_net(train_set.images.mean(dim=0)).to(device)
    initial_alphas = learned_alphas(model)
    images, labels = train_set.images.to(device), train_set.labels.to(device)
    main_process = distributed.is_main_process()
    if args.fused_batchnorm:
        model = memory.fuse_and_report(model, images[: args.batch_size], main_process)
    batches = shuffled_batches(
        images, labels, args.batch_size, torch.Generator().manual_seed(args.seed)
    )
    per_epoch = len(train_set) // args.batch_size
    if main_process:
        print(
            f"network: {' -> '.join(type(m).__name__ for m in model)}; {args.epochs} epochs x "
            f"{per_epoch} iterations, batch {args.batch_size}, "
            f"SGD lr {args.lr} momentum 0.9 L2 1e-4"
        )
        # On a GPU Triton compiles the kernels on first use, and --compile
        # compiles the network: seconds of silence otherwise.
        compiles = device.type == "cuda" or args.compile
        print(
            f"warm-up: one step{', compiling on first use' if compiles else ''} ...",
            end=" ",
            flush=True,
        )
    warm_model = torch.compile(model) if args.compile else model
    warmup_seconds = warm_up(warm_model, images[: args.batch_size], labels[: args.batch_size])
    if main_process:
        print(f"{warmup_seconds:.1f} s")
    trained = model
    if args.distributed:
        rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
        trained = distributed.wrap(model, device)
        batches = distributed.shard(batches, rank, world_size)
        if main_process:
            print(
                f"distributed: {world_size} ranks, "
                f"{args.batch_size // world_size} images of each batch per rank"
            )
    optimizer = sgd(trained, args.lr)
    progress = report.progress_printer() if main_process else None
    stepped = torch.compile(trained) if args.compile else trained
    history = train(stepped, optimizer, batches, args.epochs, per_epoch, progress)
    if history.iterations and main_process:
        print(report.table_footer())
    model = trained.module if args.distributed else trained
    return model, initial_alphas, history, warmup_seconds


def run(
    args: argparse.Namespace,
    device: torch.device,
    train_set: DigitSet,
    test_set: DigitSet,
    data_name: str,
) -> RunSummary | None:
    """Train, evaluate, print and write everything. Returns the summary (None off rank 0)."""
    if device.type == "cuda":  # the same seed gives the same result
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    model, initial_alphas, history, warmup_seconds = _train_model(args, device, train_set)
    identical = distributed.parameters_identical(model) if args.distributed else None
    if not distributed.is_main_process():
        return None
    predictions = predict(model, test_set.images)
    iterations = history.iterations
    summary = RunSummary(
        test_accuracy=accuracy(predictions, test_set.labels),
        train_seconds=history.seconds,
        seconds_per_iteration=history.seconds / iterations if iterations else 0.0,
        warmup_seconds=warmup_seconds,
        epochs=history.epochs,
        iterations=iterations,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        device=str(device),
        device_name=device_name(device),
        activation_backend=activation_backend(device, args.compile),
        compiled=args.compile,
        data=data_name,
        train_size=len(train_set),
        test_size=len(test_set),
        alphas=learned_alphas(model),
        torch_version=torch.__version__,
        triton_version=package_version("triton"),
        initial_alphas=initial_alphas,
        example=example_prediction(model, test_set, device),
    )
    if args.distributed:
        summary.world_size = torch.distributed.get_world_size()
        summary.parameters_identical_across_ranks = identical
        print(f"parameters identical on all {summary.world_size} ranks: {identical}")
    if args.baseline:
        baseline = linear_softmax_accuracy(train_set, test_set)
        summary.linear_baseline_accuracy = baseline.test_accuracy
        summary.linear_baseline = {
            "l2": baseline.l2,
            "best_test_accuracy_any_l2": baseline.best_test_accuracy,
        }
    print_results(summary)
    results = figures.RunResults(history, test_set, predictions, summary.alphas, initial_alphas)
    written = write_outputs(args.out, model, summary, history, results, not args.no_figures)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return summary


def evaluate_saved(args: argparse.Namespace, device: torch.device, test_set: DigitSet) -> float:
    """Test accuracy of the weights in args.load (a state_dict written by a run).

    Raises:
        ValueError: the file is not such a state_dict.
    """
    model = digit_net().to(device)
    try:
        model.load_state_dict(torch.load(args.load, map_location=device, weights_only=True))
    except Exception as e:  # any unreadable or mismatched file is a user error here
        raise ValueError(
            f"--load {args.load}: not weights of this network ({type(e).__name__}: {e})"
        ) from None
    test_accuracy = accuracy(predict(model, test_set.images), test_set.labels)
    print(f"test accuracy of {args.load}: {test_accuracy:.4f} on {len(test_set)} test images")
    return test_accuracy
