"""Argument checks of the fused batch norm + learnable ELU, raised before any work.

Messages follow ``F.batch_norm``'s where it has one (the batch-size check is
its, word for word); the others name the expected and the given values.
"""

import torch

from ..checks import channel_count, check_grad_output, check_inputs
from .statistics import elements_per_channel


def _check_vector(name: str, t: torch.Tensor | None, x: torch.Tensor) -> None:
    if t is None:
        return
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor or None, got {t!r:.60}")
    if t.shape != (channel_count(x),):
        raise ValueError(
            f"{name} must have shape ({channel_count(x)},) for x of shape {tuple(x.shape)} "
            f"(channels: dim 1), got {tuple(t.shape)}"
        )
    if t.device != x.device:
        raise ValueError(f"{name} must be on x's device {x.device}, got {t.device}")


def check_eps(eps: float, training: bool) -> None:
    """F.batch_norm's rule for eps, in torch 2.13's words, on every supported torch.

    Raises:
        ValueError: eps <= 0 in training (a constant channel would divide by
            zero), or eps < 0 in evaluation.
    """
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")


def check_batch_norm_inputs(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    alpha: torch.Tensor,
    training: bool,
    eps: float,
    param_name: str = "alpha",
) -> None:
    """Validate the functional's arguments; alpha is the activation's parameter, param_name its name.

    Raises:
        TypeError: a tensor is not a strided floating-point tensor.
        ValueError: x has fewer than 2 dims, a vector's shape is not (C,)
            (alpha: (C,), (1,) or 0-D), tensors on different devices, only one of
            the running statistics given, none given in eval, or one value
            per channel in training; eps as ``check_eps``.
    """
    check_eps(eps, training)
    check_inputs(x, alpha, name=param_name)  # x and alpha as the activation takes them
    if x.dim() < 2:
        raise ValueError(f"x must be (N, C, *) with at least 2 dims, got shape {tuple(x.shape)}")
    for name, t in (
        ("running_mean", running_mean), ("running_var", running_var),
        ("weight", weight), ("bias", bias),
    ):  # fmt: skip
        _check_vector(name, t, x)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must both be tensors or both be None")
    if not training and running_mean is None:
        raise ValueError("running_mean and running_var must be given in evaluation mode")
    if training and elements_per_channel(x) == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {x.size()}"
        )


def check_backward_inputs(
    dy: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    alpha: torch.Tensor,
    param_name: str = "alpha",
) -> None:
    """Validate the backward's arguments before anything reads them (param_name: alpha's name).

    autograd hands over a dy of y's shape, but ``grad_fn.apply(dy)`` need
    not; and weight.data, bias.data or alpha.data may have been resized
    since the forward: the kernels would read past a short one.

    Raises:
        TypeError, ValueError: as ``check_grad_output`` for dy, as
            ``check_batch_norm_inputs`` for the per-channel vectors.
    """
    check_grad_output(dy, x)
    check_inputs(x, alpha, name=param_name)
    _check_vector("weight", weight, x)
    _check_vector("bias", bias, x)
