"""A channel dim other than 1: the channels moved to dim 1 as a view, and back.

Everything below ``learnable_elu`` (the checks, the ops, the kernels) sees
the channels on dim 1, as ``nn.PReLU`` does. A caller with features-last
activations ((B, H, W, C) in ConvNeXt blocks and Swin, (B, N, D) in ViT MLPs)
passes ``channel_dim=-1``: ``x.movedim(-1, 1)`` is a view whose dim 1 has
stride 1, which the kernels read with the channel per column, in place, and
y comes back in that layout, so moving its dim back gives x's layout again.
No copy either way.
"""

from collections.abc import Callable

import torch

from .checks import check_inputs, dim_of

ELU = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def on_channel_dim(
    elu: ELU, x: torch.Tensor, alpha: torch.Tensor, channel_dim: int
) -> torch.Tensor:
    """elu(x, alpha) with x's channels on channel_dim, where elu takes them on dim 1.

    x of fewer than 2 dims has one channel, whatever channel_dim says.

    Raises:
        TypeError: channel_dim is not an integer; or as ``check_inputs``.
        ValueError: channel_dim is not a dim of x; or as ``check_inputs``,
            with the message naming channel_dim.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        return elu(x, alpha)
    dim = dim_of(channel_dim, x.dim())
    if dim == 1:
        return elu(x, alpha)
    try:
        y = elu(x.movedim(dim, 1), alpha)
    except ValueError:
        check_inputs(x, alpha, dim)  # the message for x as the caller sees it, if that is it
        raise
    return y.movedim(1, dim)
