"""What a demo run found: ``RunSummary``, and printing and writing it.

A run (``run.py``) fills a ``RunSummary``; ``print_results`` prints it and
``write_outputs`` writes the weights, the training history, summary.json and
the figures. ``activation_backend`` and ``device_name`` describe, in words,
what ran where, for the summary and the run's first lines.
"""

import dataclasses
import json
import os
from importlib import metadata
from pathlib import Path

import torch

from .. import backends
from . import figures, memory, report
from .digits import DigitSet
from .train import TrainHistory

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


def activation_backend(device: torch.device, compiled: bool = False) -> str:
    """What LearnableELU runs on device, in words."""
    if compiled:
        return "the reference composite, compiled with the network by torch.compile"
    return backends.backend_for(device).description


def package_version(package: str) -> str | None:
    """The installed version of package, or None if it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model with its core and thread counts."""
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


def example_prediction(model: torch.nn.Module, test_set: DigitSet, device: torch.device) -> dict:
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


def print_results(summary: RunSummary) -> None:
    """The run's last lines: accuracy, learned alphas, time, the example, the baseline."""
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


def write_outputs(
    out_dir: Path,
    model,
    summary: RunSummary,
    history: TrainHistory,
    results: figures.RunResults,
    draw: bool,
) -> list[Path]:
    """Write the weights (unfused), history.json, the figures (if draw) and summary.json.

    Returns the paths written; fills summary.figures with the PNGs' names.
    """
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
