"""BatchNormLearnableELU: BatchNorm{1,2,3}d followed by LearnableELU, as one module."""

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from .function import batch_norm_learnable_elu


class BatchNormLearnableELU(_NormBase):
    """``nn.BatchNorm{1,2,3}d(num_features, ...)`` then ``LearnableELU(num_features, init)``.

    BatchNorm's semantics, all of them (batch statistics in training, the
    running ones in eval, ``momentum=None`` for a cumulative average,
    ``track_running_stats=False``, ``affine=False``), with the activation
    fused into the normalize pass; autograd keeps x and per-channel vectors,
    never the normalized tensor or y. Its ``state_dict`` holds BatchNorm's
    keys plus ``alpha``.

    It derives from torch's ``_NormBase`` (BatchNorm's parameters, buffers,
    resets and checkpoint versioning), not from ``_BatchNorm``, so that
    ``nn.SyncBatchNorm.convert_sync_batchnorm`` does not mistake it for a
    plain BatchNorm and drop alpha.

    Args:
        num_features: C, the channel count (dim 1 of the input).
        eps, momentum, affine, track_running_stats: as nn.BatchNorm2d's.
        init: initial value of every alpha.
        device, dtype: of the parameters and buffers.

    Shape:
        input (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W), any
        memory format; output the same, in the input's memory format.

    Attributes:
        weight, bias: (C,) affine parameters (None without affine).
        alpha: (C,) Parameter (a shared (1,) one after ``fuse_batchnorm``).
        running_mean, running_var, num_batches_tracked: BatchNorm's buffers.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        init: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype
        )
        self.init = float(init)
        self.alpha = nn.Parameter(torch.empty(num_features, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """BatchNorm's reset (running statistics, weight 1, bias 0), and alpha to ``init``."""
        super().reset_parameters()
        if getattr(self, "alpha", None) is not None:  # (_NormBase's __init__ calls this first)
            nn.init.constant_(self.alpha, self.init)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3, 4, 5):
            raise ValueError(f"expected 2D, 3D, 4D or 5D input (got {x.dim()}D input)")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"expected an input of {self.num_features} channels (dim 1), "
                f"got shape {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BatchNorm's forward (torch/nn/modules/batchnorm.py, _BatchNorm), word for word
        # where it can be: the same momentum, counter and training choices.
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # a cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_running = not self.training or self.track_running_stats
        return batch_norm_learnable_elu(
            x,
            self.running_mean if use_running else None,
            self.running_var if use_running else None,
            self.weight,
            self.bias,
            self.alpha,
            bn_training,
            factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, init={self.init}"
