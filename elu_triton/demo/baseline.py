"""How hard is the data? A linear softmax classifier on raw pixels.

The honest yardstick for the demo's accuracy: if a linear model on the pixels
already scored 98%, the network's 98.5% would prove nothing. The classifier
is fit to convergence (full-batch L-BFGS on the zero-centred pixels). Its L2
strength is chosen the textbook way, on a validation fifth held out of the
training set, then the model is refit on the whole training set and scored
once on the test set. The best test score over all strengths (test-set
tuning, an upper bound no honest protocol reaches) is reported beside it.
"""

from dataclasses import dataclass

import torch
from torch import nn

from .digits import NUM_CLASSES, DigitSet

L2_STRENGTHS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class LinearBaseline:
    """Test accuracies of the linear softmax classifier."""

    test_accuracy: float  # with the L2 strength chosen on validation data
    l2: float  # that strength
    best_test_accuracy: float  # the maximum over all strengths (upper bound)


def _fit_linear(x: torch.Tensor, y: torch.Tensor, l2: float, max_iter: int) -> nn.Linear:
    model = nn.Linear(x.shape[1], NUM_CLASSES)
    # The problem is convex: start from zero, which leaves the global RNG alone.
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    optimizer = torch.optim.LBFGS(
        model.parameters(), max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y) + 0.5 * l2 * model.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


def _accuracy(model: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def linear_softmax_accuracy(
    train: DigitSet,
    test: DigitSet,
    l2_strengths: tuple[float, ...] = L2_STRENGTHS,
    max_iter: int = 300,
) -> LinearBaseline:
    """Fit and score a linear softmax classifier on raw (zero-centred) pixels.

    Args:
        train, test: the splits; images (N, 1, 28, 28) are flattened. The last
            fifth of train is the validation set that picks the L2 strength.
        l2_strengths: L2 penalties to try (on the weights, not the biases).
        max_iter: L-BFGS iterations per fit.

    Returns:
        A LinearBaseline.
    """
    mean = train.images.mean(dim=0)
    x = (train.images - mean).flatten(1).float().cpu()
    y = train.labels.cpu()
    x_test, y_test = (test.images - mean).flatten(1).float().cpu(), test.labels.cpu()
    n_fit = len(train) - int(len(train) * VALIDATION_FRACTION)
    validation = [
        (_accuracy(_fit_linear(x[:n_fit], y[:n_fit], l2, max_iter), x[n_fit:], y[n_fit:]), -l2)
        for l2 in l2_strengths
    ]
    chosen = -max(validation)[1]  # ties go to the stronger penalty
    test_scores = {
        l2: _accuracy(_fit_linear(x, y, l2, max_iter), x_test, y_test) for l2 in l2_strengths
    }
    return LinearBaseline(test_scores[chosen], chosen, max(test_scores.values()))
