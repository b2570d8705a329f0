"""LazyLearnableELU: a LearnableELU that takes its channel count from its first input.

It follows torch.nn's lazy modules (``nn.LazyLinear``, ``nn.LazyConv2d``):
``alpha`` starts as an ``UninitializedParameter``; the first forward gives it
its shape and then turns the module into a plain ``LearnableELU``
(``cls_to_become``), with no lazy hooks left, so that ``torch.compile``, DDP,
``deepcopy`` and pickling see an ordinary module. ``LazyModuleMixin`` also
lets ``load_state_dict`` size alpha from a checkpoint before any forward.
"""

import torch
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from .checks import channel_count
from .module import LearnableELU


class LazyLearnableELU(LazyModuleMixin, LearnableELU):
    """LearnableELU with one alpha per channel, C taken from the first input.

    For model code that takes an activation class and calls it without the
    channel count, as ``act_layer()`` or ``act_layer(inplace=True)``.

    Args:
        init: initial value of every alpha.
        channel_dim: the dim of the input whose size gives C (and that holds
            the channels from then on): 1, or -1 for features-last
            activations (ConvNeXt blocks, Swin, ViT MLPs).
        inplace: accepted for model factories and ignored, as by
            ``LearnableELU``: the backward needs x, so x is never overwritten.
        device, dtype: of ``alpha``; dtype a floating-point one.

    Raises:
        TypeError: channel_dim is not an integer, or dtype is not a
            floating-point dtype.

    After the first forward, on x with C on channel_dim (C = 1 for x of fewer
    than 2 dims), the module is a ``LearnableELU(C, init, channel_dim=...)``;
    a later input of another size there gets an error that names the dim
    (and suggests ``channel_dim=-1`` when the last dim kept its size). Until then
    ``num_channels`` is 0 (as ``nn.LazyLinear``'s ``in_features``), and
    ``alpha`` can't go into an optimizer, DDP or ``torch.compile``: run one
    forward first (a dry run under ``torch.no_grad()`` will do). Loading a
    state dict before that gives alpha the checkpoint's shape, (C,) or (1,).

    Example:
        >>> act = LazyLearnableELU(init=0.5)
        >>> y = act(torch.randn(8, 64, 32, 32))
        >>> type(act).__name__, act.alpha.shape
        ('LearnableELU', torch.Size([64]))
    """

    cls_to_become = LearnableELU
    alpha: UninitializedParameter

    def __init__(
        self,
        init: float = 1.0,
        *,
        channel_dim: int = 1,
        inplace: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        # LearnableELU checks dtype and builds a one-element alpha, replaced
        # at once, as nn.LazyLinear builds a Linear(0, 0) and replaces its weight.
        super().__init__(
            1, init, channel_dim=channel_dim, inplace=inplace, device=device, dtype=dtype
        )
        self.alpha = UninitializedParameter(device=device, dtype=dtype)
        self.num_channels = 0

    def reset_parameters(self) -> None:
        """Set every alpha back to ``init``; nothing to do while alpha has no shape."""
        if not self.has_uninitialized_params():
            super().reset_parameters()

    def initialize_parameters(self, x: torch.Tensor) -> None:  # type: ignore[override]
        """Give alpha the shape (C,) of x's channel count, filled with ``init``.

        Called by the forward pre-hook of ``LazyModuleMixin`` before the first
        forward. If a checkpoint was loaded first, alpha keeps its shape.
        """
        if self.has_uninitialized_params():
            with torch.no_grad():
                self.alpha.materialize((channel_count(x, self.channel_dim),))
                self.reset_parameters()
            self.sized_on = tuple(x.shape)
        self.num_channels = self.alpha.numel()

    def extra_repr(self) -> str:
        # This class's own arguments: after the first forward, LearnableELU's repr.
        dim = "" if self.channel_dim == 1 else f", channel_dim={self.channel_dim}"
        return f"init={self.init}{dim}"
