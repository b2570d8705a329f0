"""``elu-triton-demo``: train the digit classifier with LearnableELU, end to end.

One command, no arguments, no downloads: generate the built-in digits, train
the original walkthrough's network for 30 epochs, evaluate it, print the
progress table and a summary, and write weights, ``summary.json``,
``history.json`` and figures to ``--out``. ``--load`` evaluates saved weights
again. User errors (bad flags, a missing or malformed data directory, an
unavailable device) end with a one-line message and exit status 2.
"""

import argparse
import json
import os
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import torch

from .. import backends
from . import digits, distributed, figures, memory, mnist, report
from .baseline import linear_softmax_accuracy
from .digits import DigitSet
from .model import digit_net, learned_alphas
from .train import TrainHistory, accuracy, predict, sgd, shuffled_batches, train, warm_up

PROG = "elu-triton-demo"
DEFAULT_OUT = "elu_triton_demo"
WEIGHTS_FILE = "model.pt"


def build_parser() -> argparse.ArgumentParser:
    """The command line; every default is the original walkthrough's setting."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--epochs", type=int, default=30, help="passes over the training set (default 30)"
    )
    p.add_argument("--batch-size", type=int, default=128, help="mini-batch size (default 128)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights and the shuffling (default 0)",
    )
    p.add_argument(
        "--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N"
    )
    p.add_argument(
        "--data",
        choices=("synthetic", "mnist"),
        default="synthetic",
        help="built-in synthetic digits (default) or MNIST IDX files from --data-dir",
    )
    p.add_argument(
        "--data-dir", type=Path, help="folder holding the MNIST IDX files (for --data mnist)"
    )
    p.add_argument(
        "--train-size", type=int, help="training images (default 5000 synthetic, all of MNIST)"
    )
    p.add_argument(
        "--test-size", type=int, help="test images (default 5000 synthetic, all of MNIST)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(DEFAULT_OUT),
        help=f"output folder (default ./{DEFAULT_OUT})",
    )
    p.add_argument(
        "--load",
        type=Path,
        metavar="WEIGHTS",
        help="evaluate saved weights on the test set, no training",
    )
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also fit a linear softmax classifier on raw pixels (the data's difficulty)",
    )
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument(
        "--compile",
        action="store_true",
        help="train the network under torch.compile (inductor fuses the activation with "
        "its neighbours); the warm-up step then includes the compilation",
    )
    p.add_argument(
        "--fused-batchnorm",
        action="store_true",
        help="fuse BatchNorm -> LearnableELU into one layer (elu_triton.fuse_batchnorm) and "
        "print the activation memory of one batch, fused and unfused",
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over the ranks torchrun starts, e.g. torchrun --nproc-per-node 2 "
        "-m elu_triton.demo --distributed; rank 0 prints and writes",
    )
    return p


def _check_args(args: argparse.Namespace) -> str | None:
    """The first problem with the flags' values, or None."""
    if args.epochs < 0:
        return f"--epochs must be >= 0, got {args.epochs}"
    if args.batch_size < 1:
        return f"--batch-size must be >= 1, got {args.batch_size}"
    if not args.lr > 0:
        return f"--lr must be > 0, got {args.lr}"
    for flag, size in (("--train-size", args.train_size), ("--test-size", args.test_size)):
        if size is not None and size < 1:
            return f"{flag} must be >= 1, got {size}"
    if args.data == "mnist" and args.data_dir is None:
        return (
            "--data mnist needs --data-dir DIR "
            "(a folder with the MNIST IDX files; nothing is downloaded)"
        )
    if args.data_dir is not None and not args.data_dir.is_dir():
        return f"--data-dir {args.data_dir}: no such directory"
    if args.load is not None and not args.load.is_file():
        return f"--load {args.load}: no such file"
    return None


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; otherwise the named device.

    Raises:
        ValueError: an unknown device, or a CUDA device this machine lacks.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available on this machine")
        if (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(
                f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    return device


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


def activation_backend(device: torch.device, compiled: bool = False) -> str:
    """What LearnableELU runs on device, in words."""
    if compiled:
        return "the reference composite, compiled with the network by torch.compile"
    return backends.backend_for(device).description


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), ""
            )
    except OSError:
        model = ""
    return (
        f"{model or 'CPU'}, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads"
    )


def _print_setup(
    args,
    device: torch.device,
    train_set: DigitSet,
    test_set: DigitSet,
    data_name: str,
    data_seconds: float,
) -> None:
    print(f"{PROG}: a digit classifier with LearnableELU (learned alpha per channel)")
    print(
        f"device: {device} ({_device_name(device)}); "
        f"LearnableELU runs {activation_backend(device, args.compile)}"
    )
    print(f"torch {torch.__version__}, triton {_version('triton') or 'not installed'}")
    print(
        f"data: {data_name}, {len(train_set)} training / {len(test_set)} test images "
        f"({data_seconds:.1f} s)"
    )


def _train_model(args, device: torch.device, train_set: DigitSet):
    """Build, warm up and train the network. Returns (model, initial alphas, history, warm-up s).

    Under --distributed every rank trains its shard of each global batch
    through DDP; the returned model is the unwrapped network.
    """
    torch.manual_seed(args.seed)
    model = digit_net(train_set.images.mean(dim=0)).to(device)
    initial_alphas = learned_alphas(model)
    images, labels = train_set.images.to(device), train_set.labels.to(device)
    if args.fused_batchnorm:
        show = distributed.is_main_process()
        model = memory.fuse_and_report(model, images[: args.batch_size], show)
    batches = shuffled_batches(
        images, labels, args.batch_size, torch.Generator().manual_seed(args.seed)
    )
    per_epoch = len(train_set) // args.batch_size
    main_process = distributed.is_main_process()
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


def _example(model: torch.nn.Module, test_set: DigitSet, device: torch.device) -> dict:
    """Classify test image 0 on its own, as the original does at the end."""
    with torch.inference_mode():
        probabilities = model.eval()(test_set.images[:1].to(device)).softmax(dim=1)[0].cpu()
    example = {
        "index": 0,
        "predicted": int(probabilities.argmax()),
        "true": int(test_set.labels[0]),
        "probability": round(float(probabilities.max()), 4),
    }
    if test_set.angles is not None:
        example["angle_degrees"] = round(float(test_set.angles[0]), 1)
    return example


def _print_results(summary: dict) -> None:
    correct = round(summary["test_accuracy"] * summary["test_size"])
    print(f"test accuracy: {summary['test_accuracy']:.4f} ({correct} / {summary['test_size']})")
    print(f"learned alpha per channel ({len(summary['alphas'])}):")
    print(report.format_alphas(summary["alphas"]))
    print(
        f"training time: {summary['train_seconds']:.2f} s for {summary['iterations']} iterations "
        f"({1000 * summary['seconds_per_iteration']:.2f} ms per iteration; "
        f"warm-up {summary['warmup_seconds']:.2f} s not included)"
    )
    ex = summary["example"]
    angle = f", rotated {ex['angle_degrees']:+.1f} degrees" if "angle_degrees" in ex else ""
    print(
        f"test image {ex['index']}: predicted {ex['predicted']} "
        f"(probability {ex['probability']:.3f}), "
        f"true {ex['true']}{angle}"
    )
    if "linear_baseline_accuracy" in summary:
        print(
            "linear softmax on raw pixels (difficulty check): "
            f"test accuracy {summary['linear_baseline_accuracy']:.4f} "
            f"(L2 {summary['linear_baseline']['l2']:g} chosen on validation data; best over all L2 "
            f"{summary['linear_baseline']['best_test_accuracy_any_l2']:.4f})"
        )


def _summary(
    args,
    device,
    model,
    history: TrainHistory,
    warmup_seconds,
    test_accuracy,
    train_set,
    test_set,
    data_name,
) -> dict:
    iterations = history.iterations
    return {
        "test_accuracy": test_accuracy,
        "train_seconds": history.seconds,
        "seconds_per_iteration": history.seconds / iterations if iterations else 0.0,
        "warmup_seconds": warmup_seconds,
        "epochs": history.epochs,
        "iterations": iterations,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "seed": args.seed,
        "device": str(device),
        "device_name": _device_name(device),
        "activation_backend": activation_backend(device, args.compile),
        "compiled": args.compile,
        "data": data_name,
        "train_size": len(train_set),
        "test_size": len(test_set),
        "alphas": learned_alphas(model),
        "torch_version": torch.__version__,
        "triton_version": _version("triton"),
    }


def _write_outputs(
    out_dir: Path,
    model,
    summary: dict,
    history: TrainHistory,
    results: figures.RunResults,
    draw: bool,
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(memory.unfused_state_dict(model), out_dir / WEIGHTS_FILE)
    (out_dir / "history.json").write_text(
        json.dumps({"loss": history.losses, "accuracy": history.accuracies})
    )
    written = [out_dir / WEIGHTS_FILE, out_dir / "history.json"]
    pngs = figures.save_figures(out_dir, results) if draw else []
    if pngs is None:
        print(f"figures skipped: matplotlib is not installed; to get them: {figures.INSTALL_HINT}")
        pngs = []
    summary["figures"] = [p.name for p in pngs]
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return written + [out_dir / "summary.json"] + pngs


def run(
    args: argparse.Namespace,
    device: torch.device,
    train_set: DigitSet,
    test_set: DigitSet,
    data_name: str,
) -> dict:
    """Train, evaluate, print and write everything. Returns the summary."""
    if device.type == "cuda":  # the same seed gives the same result
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    model, initial_alphas, history, warmup_seconds = _train_model(args, device, train_set)
    identical = distributed.parameters_identical(model) if args.distributed else None
    if not distributed.is_main_process():
        return {}
    predictions = predict(model, test_set.images)
    test_accuracy = accuracy(predictions, test_set.labels)
    summary = _summary(
        args, device, model, history, warmup_seconds, test_accuracy, train_set, test_set, data_name
    )
    summary["initial_alphas"] = initial_alphas
    summary["example"] = _example(model, test_set, device)
    if args.distributed:
        summary["world_size"] = torch.distributed.get_world_size()
        summary["parameters_identical_across_ranks"] = identical
        print(f"parameters identical on all {summary['world_size']} ranks: {identical}")
    if args.baseline:
        baseline = linear_softmax_accuracy(train_set, test_set)
        summary["linear_baseline_accuracy"] = baseline.test_accuracy
        summary["linear_baseline"] = {
            "l2": baseline.l2,
            "best_test_accuracy_any_l2": baseline.best_test_accuracy,
        }
    _print_results(summary)
    results = figures.RunResults(history, test_set, predictions, summary["alphas"], initial_alphas)
    written = _write_outputs(args.out, model, summary, history, results, not args.no_figures)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``elu-triton-demo`` and ``python -m elu_triton.demo``.

    Returns the exit status; user errors exit with status 2 (argparse's error).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = _check_args(args)
    if problem:
        parser.error(problem)
    try:
        if args.distributed:
            device = distributed.init_process_group(args.device)
            world_size = torch.distributed.get_world_size()
            if args.batch_size % world_size:
                raise ValueError(
                    f"--batch-size {args.batch_size} must be divisible by the {world_size} ranks"
                )
        else:
            device = resolve_device(args.device)
        start = time.perf_counter()
        train_set, test_set, data_name = load_data(args)
        data_seconds = time.perf_counter() - start
        if args.load is not None:
            evaluate_saved(args, device, test_set)
            return 0
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    if args.batch_size > len(train_set):
        parser.error(f"--batch-size {args.batch_size} exceeds the {len(train_set)} training images")
    if distributed.is_main_process():
        _print_setup(args, device, train_set, test_set, data_name, data_seconds)
    try:
        run(args, device, train_set, test_set, data_name)
        distributed.wait_for_all_ranks()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0
