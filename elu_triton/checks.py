"""Argument checks shared by the ops, the autograd Function and the module.

Every user error is raised here, on the host, before anything is allocated or
launched, with the expected and the given values in the message.
"""

import operator

import numpy as np
import torch


def channel_count(x: torch.Tensor) -> int:
    """Channels of x: dim 1, or 1 for inputs of fewer than 2 dims (as nn.PReLU)."""
    return x.shape[1] if x.dim() >= 2 else 1


def check_num_channels(num_channels: int) -> int:
    """Return num_channels as a plain int; raise unless it is a positive integer.

    Like nn.PReLU's num_parameters, any integer that ``operator.index`` accepts
    passes (a NumPy or 0-d torch integer, say), so that sizes computed with
    NumPy need no cast; bools do not, although ``operator.index(True)`` is 1.

    Raises:
        TypeError: num_channels is a bool, or not an integer.
        ValueError: num_channels is below 1.
    """
    if isinstance(num_channels, (bool, np.bool_)):
        raise TypeError(f"num_channels must be an int, got {type(num_channels).__name__}")
    try:
        count = operator.index(num_channels)
    except TypeError:
        raise TypeError(f"num_channels must be an int, got {type(num_channels).__name__}") from None
    if count < 1:
        raise ValueError(f"num_channels must be at least 1, got {count}")
    return count


def check_parameter_dtype(dtype: torch.dtype | None) -> None:
    """Raise unless dtype is None (the default dtype) or a floating-point torch.dtype.

    alpha's dtype, checked at construction: nn.Parameter itself would refuse an
    integer dtype only with a RuntimeError about gradients, and would accept a
    complex one that the forward then refuses.

    Raises:
        TypeError: dtype is not a floating-point torch.dtype.
    """
    if dtype is None:
        return
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"alpha's dtype must be a floating-point torch.dtype or None, got {dtype!r}"
        )


def _check_float_tensor(name: str, t: object) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {t.dtype}")
    if t.layout != torch.strided or t.is_nested:
        kind = "a nested tensor" if t.is_nested else f"layout {t.layout}"
        raise TypeError(f"{name} must be a dense (strided) tensor, got {kind}")


def check_inputs(x: torch.Tensor, alpha: torch.Tensor) -> None:
    """Validate the (x, alpha) pair of the forward.

    Raises:
        TypeError: x or alpha is not a strided (dense, not nested)
            floating-point tensor.
        ValueError: alpha is not 1-D, has neither 1 nor C elements, or lives on
            another device than x.
    """
    # Valid inputs pass one expression; anything else is examined step by
    # step below, for the message.
    try:
        valid = (
            x.is_floating_point()
            and alpha.is_floating_point()
            and x.layout == alpha.layout == torch.strided
            and not (x.is_nested or alpha.is_nested)
            and alpha.ndim == 1
            and alpha.shape[0] in (1, x.shape[1] if x.ndim >= 2 else 1)  # channel_count, inlined
            and x.device == alpha.device
        )
    except (AttributeError, TypeError):  # not tensors
        valid = False
    if not valid:
        _raise_for_inputs(x, alpha)


def _raise_for_inputs(x: object, alpha: object) -> None:
    _check_float_tensor("x", x)
    _check_float_tensor("alpha", alpha)
    channels = channel_count(x)
    if alpha.dim() != 1:
        raise ValueError(
            f"alpha must be 1-D with 1 or C={channels} elements, got shape {tuple(alpha.shape)}"
        )
    if alpha.numel() not in (1, channels):
        raise ValueError(
            f"alpha must have 1 or C={channels} elements (C: dim 1 of x, or 1 for x of fewer "
            f"than 2 dims; x has shape {tuple(x.shape)}), got {alpha.numel()}"
        )
    if x.device != alpha.device:
        raise ValueError(
            f"x and alpha must be on the same device, got x on {x.device} and alpha on {alpha.device}"
        )
    raise AssertionError("check_inputs: the fast check failed, but no error was found")


def check_grad_output(dy: torch.Tensor, x: torch.Tensor) -> None:
    """Validate the upstream gradient of the backward against x."""
    _check_float_tensor("grad_output", dy)
    if dy.shape != x.shape:
        raise ValueError(f"grad_output must have x's shape {tuple(x.shape)}, got {tuple(dy.shape)}")
    if dy.device != x.device:
        raise ValueError(
            f"grad_output and x must be on the same device, got {dy.device} and {x.device}"
        )
