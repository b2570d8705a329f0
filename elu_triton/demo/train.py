"""The training loop, evaluation, and the pieces they take.

``train`` knows nothing about where its batches come from or what wraps the
model: it takes a model, an optimizer and a function that yields one epoch's
batches, so a DistributedDataParallel model with a per-rank batch source can
use it unchanged. Per-iteration loss and accuracy stay on the device until
the end (no host sync per step); the loop reads them back only for the
progress rows, every ``log_every`` iterations.
"""

import copy
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

Batch = tuple[torch.Tensor, torch.Tensor]  # images (B, 1, 28, 28), labels (B,)
BatchSource = Callable[[int], Iterable[Batch]]  # epoch (1-based) -> that epoch's batches


@dataclass(frozen=True)
class ProgressRow:
    """One line of the progress table."""

    epoch: int
    iteration: int
    seconds: float  # since the start of training
    loss: float  # of this mini-batch
    accuracy: float  # of this mini-batch, in [0, 1]
    learning_rate: float


@dataclass(frozen=True)
class TrainHistory:
    """What the loop measured: one loss and accuracy per iteration."""

    losses: list[float]
    accuracies: list[float]
    seconds: float  # wall time of the loop, device work included
    epochs: int

    @property
    def iterations(self) -> int:
        return len(self.losses)


def sgd(
    model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 1e-4
) -> torch.optim.SGD:
    """The original's solver: SGD with momentum and L2 regularization on every parameter."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def shuffled_batches(
    images: torch.Tensor, labels: torch.Tensor, batch_size: int, generator: torch.Generator
) -> BatchSource:
    """Batches of a fresh random permutation each epoch; the last partial batch is
    dropped (as the original: 5,000 images at 128 make 39 iterations an epoch).

    Args:
        images: (N, 1, 28, 28) on the training device; labels: (N,) there.
        batch_size: images per batch, 1..N.
        generator: CPU generator that draws the permutations (reproducible
            whatever the device).
    """
    count = labels.shape[0]
    assert 1 <= batch_size <= count, (batch_size, count)

    def epoch_batches(epoch: int) -> Iterator[Batch]:
        order = torch.randperm(count, generator=generator).to(labels.device)
        for start in range(0, count - batch_size + 1, batch_size):
            index = order[start : start + batch_size]
            yield images[index], labels[index]

    return epoch_batches


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: BatchSource,
    epochs: int,
    iterations_per_epoch: int,
    on_progress: Callable[[ProgressRow], None] | None = None,
    log_every: int = 50,
) -> TrainHistory:
    """Minimize softmax cross-entropy; report the first, every log_every-th and the last iteration.

    Args:
        model: maps (B, 1, 28, 28) to (B, 10) logits; put in training mode.
        optimizer: steps the model's parameters.
        batches: epoch -> that epoch's (images, labels) batches on the model's device.
        epochs: passes over the data, >= 0.
        iterations_per_epoch: batches per epoch (sizes the on-device history).
        on_progress: called with each reported ProgressRow.

    Returns:
        The TrainHistory.
    """
    device = next(model.parameters()).device
    total = epochs * iterations_per_epoch
    losses = torch.zeros(total, device=device)
    accuracies = torch.zeros(total, device=device)
    model.train()
    step = 0
    _synchronize(device)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        for images, labels in batches(epoch):
            logits = model(images)
            loss = nn.functional.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses[step] = loss.detach()
            accuracies[step] = (logits.detach().argmax(dim=1) == labels).sum() / labels.shape[0]
            step += 1
            if on_progress and (step == 1 or step % log_every == 0 or step == total):
                row = ProgressRow(
                    epoch,
                    step,
                    time.perf_counter() - start,
                    losses[step - 1].item(),
                    accuracies[step - 1].item(),
                    optimizer.param_groups[0]["lr"],
                )
                on_progress(row)
    _synchronize(device)
    seconds = time.perf_counter() - start
    assert step == total, (step, total)
    return TrainHistory(losses.tolist(), accuracies.tolist(), seconds, epochs)


def warm_up(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """One forward and backward pass on a copy of the model, so that kernel
    compilation and library start-up don't count as training time.

    The model, the optimizer and every RNG are left as they were. Returns seconds.
    """
    device = images.device
    _synchronize(device)
    start = time.perf_counter()
    twin = copy.deepcopy(model).train()
    nn.functional.cross_entropy(twin(images), labels).backward()
    _synchronize(device)
    return time.perf_counter() - start


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes (N,) int64 on the CPU for (N, 1, 28, 28) images, in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    chunks = [
        model(images[i : i + batch_size].to(device)).argmax(dim=1).cpu()
        for i in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.long)


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of predictions equal to labels (0.0 for none)."""
    if labels.numel() == 0:
        return 0.0
    return (predictions == labels.cpu()).float().mean().item()
