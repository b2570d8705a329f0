"""The demo's run: train, evaluate, print, and write the outputs that ``cli.py`` asks for.

``run`` trains the network on the loaded data and returns a ``RunSummary``,
which is also written as ``summary.json``; ``evaluate_saved`` scores saved
weights again.
"""

import argparse
import dataclasses
import json
import os
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
WEIGHTS_FILE = "model.pt"


@dataclasses.dataclass
class RunSummary:
    """What a run found, as written to summary.json (in this key order)."""

    test_accuracy: float
    train_seconds: float
    seconds_per_iteration: float
    warmup_seconds: float  # the first step, compilation included; not in train_seconds
    epochs: int
    iterations: int
    batch_size: int
    learning_rate: float
    seed: int
    device: str
    device_name: str
    activation_backend: str  # what LearnableELU ran, in words
    compiled: bool
    data: str
    train_size: int
    test_size: int
    alphas: list
    torch_version: str
    triton_version: str | None
    initial_alphas: list
    example: dict  # test image 0 classified on its own
    # Only for --distributed, only for --baseline: left out of the JSON otherwise.
    world_size: int | None = None
    parameters_identical_across_ranks: bool | None = None
    linear_baseline_accuracy: float | None = None
    linear_baseline: dict | None = None
    figures: list = dataclasses.field(default_factory=list)  # PNG names, once written

    def as_json(self) -> dict:
        """The summary.json object: every field, less the optional ones a run did not fill."""
        return {
            key: value
            for key, value in dataclasses.asdict(self).items()
            if value is not None or key not in _OPTIONAL_FIELDS
        }


_OPTIONAL_FIELDS = frozenset(
    (
        "world_size",
        "parameters_identical_across_ranks",
        "linear_baseline_accuracy",
        "linear_baseline",
    )
)


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
        f"device: {device} ({_device_name(device)}); "
        f"LearnableELU runs {activation_backend(device, args.compile)}"
    )
    print(f"torch {torch.__version__}, triton {_version('triton') or 'not installed'}")
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


def _print_results(summary: RunSummary) -> None:
    correct = round(summary.test_accuracy * summary.test_size)
    print(f"test accuracy: {summary.test_accuracy:.4f} ({correct} / {summary.test_size})")
    print(f"learned alpha per channel ({len(summary.alphas)}):")
    print(report.format_alphas(summary.alphas))
    print(
        f"training time: {summary.train_seconds:.2f} s for {summary.iterations} iterations "
        f"({1000 * summary.seconds_per_iteration:.2f} ms per iteration; "
        f"warm-up {summary.warmup_seconds:.2f} s not included)"
    )
    ex = summary.example
    angle = f", rotated {ex['angle_degrees']:+.1f} degrees" if "angle_degrees" in ex else ""
    print(
        f"test image {ex['index']}: predicted {ex['predicted']} "
        f"(probability {ex['probability']:.3f}), "
        f"true {ex['true']}{angle}"
    )
    if summary.linear_baseline_accuracy is not None:
        print(
            "linear softmax on raw pixels (difficulty check): "
            f"test accuracy {summary.linear_baseline_accuracy:.4f} "
            f"(L2 {summary.linear_baseline['l2']:g} chosen on validation data; best over all L2 "
            f"{summary.linear_baseline['best_test_accuracy_any_l2']:.4f})"
        )


def _write_outputs(
    out_dir: Path,
    model,
    summary: RunSummary,
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
    summary.figures = [p.name for p in pngs]
    (out_dir / "summary.json").write_text(json.dumps(summary.as_json(), indent=2) + "\n")
    return written + [out_dir / "summary.json"] + pngs


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
        device_name=_device_name(device),
        activation_backend=activation_backend(device, args.compile),
        compiled=args.compile,
        data=data_name,
        train_size=len(train_set),
        test_size=len(test_set),
        alphas=learned_alphas(model),
        torch_version=torch.__version__,
        triton_version=_version("triton"),
        initial_alphas=initial_alphas,
        example=_example(model, test_set, device),
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
    _print_results(summary)
    results = figures.RunResults(history, test_set, predictions, summary.alphas, initial_alphas)
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
