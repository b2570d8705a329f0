"""LearnableELU: the nn.Module, following nn.PReLU's conventions."""

import torch
from torch import nn

from .checks import check_channel_dim, check_num_channels, check_parameter_dtype, explain_channels
from .function import learnable_elu

# torch.fx.symbolic_trace records each call as one call_function node, as it
# records F.prelu, instead of tracing into the checks (which branch on sizes).
torch.fx.wrap("learnable_elu")


class LearnableELU(nn.Module):
    """ELU whose negative-side scale alpha is learned, one value per channel.

        y = x                     if x > 0
          = alpha[c] * expm1(x)   if x <= 0

    Args:
        num_channels: how many alphas to learn: 1 (one alpha shared by all
            channels) or the channel count C of the input (on channel_dim). Any
            integer ``operator.index`` takes (a NumPy integer, say).
        init: initial value of every alpha.
        channel_dim: the dim of the input that holds the channels: 1 (as
            ``nn.PReLU``), or -1 for features-last activations ((B, H, W, C)
            in ConvNeXt blocks and Swin, (B, N, D) in ViT MLPs), served with
            no copy. Inputs of fewer than 2 dims have one channel.
        inplace: accepted so that model factories calling
            ``act_layer(inplace=True)`` can build this layer, and ignored: the
            backward needs the input x, so the layer never overwrites it and
            always returns a new tensor.
        device, dtype: of the ``alpha`` parameter; dtype a floating-point one.

    Raises:
        TypeError: num_channels or channel_dim is not an integer (or is a
            bool), or dtype is not a floating-point dtype.
        ValueError: num_channels is below 1.

    Shape:
        input (N, C, *) (C on channel_dim) or any shape of fewer than 2 dims;
        output the same.

    Attributes:
        alpha: Parameter of shape (num_channels,).

    Example:
        >>> act = LearnableELU(num_channels=64)
        >>> y = act(torch.randn(8, 64, 32, 32))
    """

    # Class defaults, for modules pickled before these existed. sized_on: the
    # shape of the input a LazyLearnableELU sized alpha on, for forward's error.
    channel_dim: int = 1
    sized_on: tuple[int, ...] | None = None

    def __init__(
        self,
        num_channels: int = 1,
        init: float = 1.0,
        *,
        channel_dim: int = 1,
        inplace: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        num_channels = check_num_channels(num_channels)
        channel_dim = check_channel_dim(channel_dim)
        check_parameter_dtype(dtype)
        super().__init__()
        # inplace is not stored and not shown by repr: it changes nothing.
        self.num_channels = num_channels
        self.init = float(init)
        self.channel_dim = channel_dim
        self.alpha = nn.Parameter(torch.empty(num_channels, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set every alpha back to ``init``."""
        nn.init.constant_(self.alpha, self.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return learnable_elu(x, self.alpha, channel_dim=self.channel_dim)
        except ValueError:
            explain_channels(x, self.alpha, self.channel_dim, self.sized_on)  # when that is it
            raise

    def extra_repr(self) -> str:
        dim = "" if self.channel_dim == 1 else f", channel_dim={self.channel_dim}"
        return f"num_channels={self.num_channels}, init={self.init}{dim}"
