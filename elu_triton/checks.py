"""Argument checks shared by the ops, the autograd Function and the module.

Every user error is raised here, on the host, before anything is allocated or
launched, with the expected and the given values in the message.
"""

import operator

import numpy as np
import torch


def channel_count(x: torch.Tensor, channel_dim: int = 1) -> int:
    """Channels of x: its size on channel_dim, or 1 for inputs of fewer than 2 dims (as nn.PReLU).

    Raises:
        ValueError: channel_dim is not a dim of x (of 2 or more dims).
    """
    if x.dim() < 2:
        return 1
    return x.shape[dim_of(channel_dim, x.dim())]


def check_channel_dim(channel_dim: int) -> int:
    """Return channel_dim as a plain int; raise unless it is an integer (bools are not).

    Raises:
        TypeError: channel_dim is a bool, or not an integer.
    """
    if isinstance(channel_dim, (bool, np.bool_)):
        raise TypeError(f"channel_dim must be an int, got {type(channel_dim).__name__}")
    try:
        return operator.index(channel_dim)
    except TypeError:
        raise TypeError(f"channel_dim must be an int, got {type(channel_dim).__name__}") from None


def dim_of(channel_dim: int, ndim: int) -> int:
    """channel_dim as a dim in [0, ndim) of a tensor of ndim >= 2 dims (-1: the last).

    Raises:
        TypeError: channel_dim is not an integer.
        ValueError: channel_dim is outside [-ndim, ndim).
    """
    # (type(...) is int: the common case skips the general check, on every features-last call)
    dim = channel_dim if type(channel_dim) is int else check_channel_dim(channel_dim)
    if not -ndim <= dim < ndim:
        raise ValueError(
            f"channel_dim must be in [-{ndim}, {ndim}) for x of {ndim} dims, got {channel_dim}"
        )
    return dim % ndim


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


def check_inputs(
    x: torch.Tensor, alpha: torch.Tensor, channel_dim: int = 1, name: str = "alpha"
) -> None:
    """Validate the (x, alpha) pair of the forward, with x's channels on channel_dim.

    alpha is 1-D with 1 or C elements, or 0-D (one alpha for all, as
    ``F.prelu``'s weight may be). name: what the messages call alpha (the
    fused batch norm's PReLU calls its parameter ``prelu_weight``).

    Raises:
        TypeError: x or alpha is not a strided (dense, not nested)
            floating-point tensor.
        ValueError: alpha is not 0-D or 1-D, has neither 1 nor C elements, or
            lives on another device than x.
    """
    # Valid inputs pass one expression; anything else is examined step by
    # step below, for the message. Sizes are compared with ==, never with
    # `in`: under dynamic shapes x's sizes are SymInts, and a static int is
    # not `in` a tuple holding an equal SymInt.
    try:
        num_alpha = alpha.numel()
        valid = (
            x.is_floating_point()
            and alpha.is_floating_point()
            and x.layout == alpha.layout == torch.strided
            and not (x.is_nested or alpha.is_nested)
            and alpha.ndim <= 1
            and (num_alpha == 1 or (x.ndim >= 2 and num_alpha == x.shape[channel_dim]))
            and x.device == alpha.device
        )
    except (AttributeError, TypeError, IndexError):  # not tensors, or no such dim
        valid = False
    if not valid:
        _raise_for_inputs(x, alpha, channel_dim, name)


def _raise_for_inputs(x: object, alpha: object, channel_dim: int, name: str) -> None:
    _check_float_tensor("x", x)
    _check_float_tensor(name, alpha)
    channels = channel_count(x, channel_dim)
    if alpha.dim() > 1:
        raise ValueError(
            f"{name} must be 1-D with 1 or C={channels} elements (or 0-D), "
            f"got shape {tuple(alpha.shape)}"
        )
    if alpha.numel() != 1 and alpha.numel() != channels:
        raise ValueError(
            f"{name} must have 1 or C={channels} elements (C: dim {channel_dim} of x, or 1 for x of fewer "
            f"than 2 dims; x has shape {tuple(x.shape)}), got {alpha.numel()}"
        )
    if x.device != alpha.device:
        raise ValueError(
            f"x and {name} must be on the same device, got x on {x.device} and {name} on {alpha.device}"
        )
    raise AssertionError("check_inputs: the fast check failed, but no error was found")


def explain_channels(
    x: torch.Tensor, alpha: torch.Tensor, channel_dim: int, sized_on: tuple[int, ...] | None
) -> None:
    """Raise a ValueError that names the channel dim, if x's size there does not fit alpha.

    For a module's error: when the last dim would fit (it has alpha's size,
    or kept its size since the input that sized a lazy alpha while the
    channel dim changed), the message suggests channel_dim=-1, the fix for
    features-last activations. Returns quietly when that is not the error.

    Args:
        sized_on: the shape of the input a LazyLearnableELU sized alpha on, or None.
    """
    if not (isinstance(x, torch.Tensor) and isinstance(alpha, torch.Tensor)) or x.dim() < 2:
        return
    try:
        dim = dim_of(channel_dim, x.dim())
    except (TypeError, ValueError):
        return
    num_alpha, size = alpha.numel(), x.shape[dim]
    if num_alpha == 1 or num_alpha == size:
        return
    message = (
        f"the layer has {num_alpha} alphas, one per channel on dim {dim} of its input, "
        f"but x of shape {tuple(x.shape)} has {size} there"
    )
    if sized_on is not None:
        message += f" (alpha was sized on the first input, of shape {sized_on})"
    last_fits = x.shape[-1] == num_alpha or (
        sized_on is not None and len(sized_on) == x.dim() and sized_on[-1] == x.shape[-1]
    )
    if dim != x.dim() - 1 and last_fits:
        message += (
            ". If the last dim holds the channels (features-last activations: ConvNeXt "
            "blocks, Swin, ViT MLPs), build the layer with channel_dim=-1"
        )
    raise ValueError(message) from None


def check_grad_output(dy: torch.Tensor, x: torch.Tensor) -> None:
    """Validate the upstream gradient of the backward against x."""
    _check_float_tensor("grad_output", dy)
    if dy.shape != x.shape:
        raise ValueError(f"grad_output must have x's shape {tuple(x.shape)}, got {tuple(dy.shape)}")
    if dy.device != x.device:
        raise ValueError(
            f"grad_output and x must be on the same device, got {dy.device} and {x.device}"
        )
