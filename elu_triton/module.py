"""LearnableELU: the nn.Module, following nn.PReLU's conventions."""

import torch
from torch import nn

from .checks import check_num_channels, check_parameter_dtype
from .function import learnable_elu


class LearnableELU(nn.Module):
    """ELU whose negative-side scale alpha is learned, one value per channel.

        y = x                     if x > 0
          = alpha[c] * expm1(x)   if x <= 0

    Args:
        num_channels: how many alphas to learn: 1 (one alpha shared by all
            channels) or the channel count C of the input (dim 1). Any
            integer ``operator.index`` takes (a NumPy integer, say).
        init: initial value of every alpha.
        inplace: accepted so that model factories calling
            ``act_layer(inplace=True)`` can build this layer, and ignored: the
            backward needs the input x, so the layer never overwrites it and
            always returns a new tensor.
        device, dtype: of the ``alpha`` parameter; dtype a floating-point one.

    Raises:
        TypeError: num_channels is not an integer (or is a bool), or dtype is
            not a floating-point dtype.
        ValueError: num_channels is below 1.

    Shape:
        input (N, C, *) or any shape of fewer than 2 dims; output the same.

    Attributes:
        alpha: Parameter of shape (num_channels,).

    Example:
        >>> act = LearnableELU(num_channels=64)
        >>> y = act(torch.randn(8, 64, 32, 32))
    """

    def __init__(
        self,
        num_channels: int = 1,
        init: float = 1.0,
        *,
        inplace: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        num_channels = check_num_channels(num_channels)
        check_parameter_dtype(dtype)
        super().__init__()
        # inplace is not stored and not shown by repr: it changes nothing.
        self.num_channels = num_channels
        self.init = float(init)
        self.alpha = nn.Parameter(torch.empty(num_channels, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set every alpha back to ``init``."""
        nn.init.constant_(self.alpha, self.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return learnable_elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"num_channels={self.num_channels}, init={self.init}"
