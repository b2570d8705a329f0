"""PNG figures of a run, drawn with matplotlib when it is installed (the
``figures`` extra); without it the demo says once that it skips them.

Figures are built with matplotlib's object API (``Figure``), not pyplot, so no
GUI backend is touched and nothing global changes.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import reference
from .digits import DigitSet
from .train import TrainHistory

INSTALL_HINT = "pip install 'elu_triton[figures]' (or just matplotlib)"


@dataclass(frozen=True)
class RunResults:
    """What the figures show of a finished run."""

    history: TrainHistory
    test: DigitSet  # images on any device
    predictions: torch.Tensor  # (N,) int64, CPU
    alphas: list[float]  # learned, one per channel
    initial_alphas: list[float]


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def activation_comparison(path: Path, leaky_slope: float = 0.1) -> None:
    """ELU (alpha = 1), leaky ReLU and ReLU on [-3, 3], as in the original post."""
    x = torch.linspace(-3.0, 3.0, 301)
    elu = reference.learnable_elu(x, torch.ones(1)).numpy()
    leaky, relu = torch.nn.functional.leaky_relu(x, leaky_slope).numpy(), torch.relu(x).numpy()
    x = x.numpy()
    fig = _figure(5.0, 3.6)
    ax = fig.add_subplot()
    # Widest first: the three curves coincide for x > 0.
    ax.plot(x, elu, label="ELU (alpha = 1)", linewidth=4, alpha=0.6)
    ax.plot(x, leaky, "--", linewidth=2, label=f"leaky ReLU (scale {leaky_slope})")
    ax.plot(x, relu, ":", color="black", linewidth=1.5, label="ReLU")
    ax.axhline(0.0, color="gray", linewidth=0.5)
    ax.axvline(0.0, color="gray", linewidth=0.5)
    ax.set(xlabel="x", ylabel="f(x)", title="Activation functions", ylim=(-1.5, 3.0))
    ax.legend()
    fig.savefig(path, dpi=120)


def training_curves(path: Path, history: TrainHistory) -> None:
    """Mini-batch loss and accuracy per iteration, with a moving average."""
    fig = _figure(9.0, 3.6)
    iterations = np.arange(1, history.iterations + 1)
    series = [  # the loss on a log scale: it falls over three decades
        ("Mini-batch loss", history.losses, "loss", "log"),
        ("Mini-batch accuracy", history.accuracies, "accuracy", "linear"),
    ]
    window = max(1, history.iterations // 40)
    for i, (title, values, ylabel, yscale) in enumerate(series):
        ax = fig.add_subplot(1, 2, i + 1)
        v = np.asarray(values)
        ax.plot(iterations, v, color="lightsteelblue", linewidth=0.8, label="per iteration")
        if 1 < window <= v.size:
            smooth = np.convolve(v, np.full(window, 1.0 / window), mode="valid")
            ax.plot(iterations[window - 1 :], smooth, color="navy", label=f"mean of {window}")
        ax.set(xlabel="iteration", ylabel=ylabel, title=title, yscale=yscale)
        ax.legend()
    fig.savefig(path, dpi=120)


def prediction_grid(
    path: Path, test: DigitSet, predictions: torch.Tensor, rows: int = 4, cols: int = 8
) -> None:
    """The first rows*cols test images titled 'predicted (true)'; mistakes in red."""
    count = min(rows * cols, len(test))
    fig = _figure(1.3 * cols, 1.45 * rows)
    images = test.images[:count].cpu().numpy()
    for i in range(count):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(images[i, 0], cmap="gray", vmin=0.0, vmax=1.0)
        predicted, true = int(predictions[i]), int(test.labels[i])
        ax.set_title(
            f"{predicted} ({true})", color="black" if predicted == true else "red", fontsize=10
        )
        ax.axis("off")
    fig.suptitle("Test images: predicted (true) class")
    fig.savefig(path, dpi=120)


def alpha_bars(path: Path, alphas: list[float], initial_alphas: list[float]) -> None:
    """Learned alpha per channel as bars, the initial draws as dots."""
    fig = _figure(7.0, 3.4)
    ax = fig.add_subplot()
    channels = range(len(alphas))
    ax.bar(channels, alphas, color="tab:blue", label="learned")
    ax.plot(channels, initial_alphas, "o", color="tab:orange", label="initial (uniform in [0, 1))")
    ax.axhline(0.0, color="gray", linewidth=0.5)
    ax.set(xlabel="channel", ylabel="alpha", title="LearnableELU: alpha per channel")
    ax.set_xticks(list(channels))
    ax.legend()
    fig.savefig(path, dpi=120)


def save_figures(out_dir: Path, results: RunResults) -> list[Path] | None:
    """Write the four PNGs to out_dir.

    Returns:
        The paths written, or None when matplotlib is not installed.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    paths = {
        name: Path(out_dir) / f"{name}.png"
        for name in ("activations", "training", "predictions", "alphas")
    }
    activation_comparison(paths["activations"])
    training_curves(paths["training"], results.history)
    prediction_grid(paths["predictions"], results.test, results.predictions)
    alpha_bars(paths["alphas"], results.alphas, results.initial_alphas)
    return list(paths.values())
