"""The fused layers: BatchNorm{1,2,3}d followed by an activation, as one module.

``BatchNormActivation`` holds everything the layers share (BatchNorm's
state, the FX-wrapped forward); a layer is a subclass naming its row of
``activations.py`` and its constructor's arguments.
"""

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from ..routes import jit_tracing, jit_warnings_off, traced
from .activations import ACTIVATIONS, LEARNABLE_ELU, PRELU
from .function import batch_norm_activation


def check_input_dim(x: torch.Tensor, num_features: int) -> None:
    """Raise unless x is (N, C, *) with 2 to 5 dims and num_features channels.

    Raises:
        ValueError: x has another rank, or another channel count.
    """
    if x.dim() not in (2, 3, 4, 5):
        raise ValueError(f"expected 2D, 3D, 4D or 5D input (got {x.dim()}D input)")
    if x.shape[1] != num_features:
        raise ValueError(
            f"expected an input of {num_features} channels (dim 1), got shape {tuple(x.shape)}"
        )


def batch_norm_forward(
    x: torch.Tensor,
    num_features: int,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    num_batches_tracked: torch.Tensor | None,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    param: torch.Tensor,
    training: bool,
    track_running_stats: bool,
    momentum: float | None,
    eps: float,
    activation: str = "learnable_elu",
) -> torch.Tensor:
    """``BatchNormActivation.forward`` on the module's state: y, x's shape and memory format.

    param: the activation's parameter; activation: the name of its
    ``activations`` row (a name, which an FX graph can print).

    BatchNorm's forward (torch/nn/modules/batchnorm.py, _BatchNorm), word for
    word where it can be: the same momentum, counter and training choices.
    A function of its own so that torch.fx.symbolic_trace records it as one
    call (as it records F.batch_norm), instead of tracing into checks and a
    counter that branch on values.

    Raises:
        ValueError: as ``check_input_dim`` and ``checks.check_batch_norm_inputs``.
    """
    # The sizes checked become constants of a jit trace, as they should.
    # (traced first: dynamo cannot trace jit_tracing, and folds traced to True.)
    if not traced() and jit_tracing():
        with jit_warnings_off():
            check_input_dim(x, num_features)
    else:
        check_input_dim(x, num_features)
    factor = 0.0 if momentum is None else momentum
    if training and track_running_stats and num_batches_tracked is not None:
        num_batches_tracked.add_(1)
        if momentum is None:  # a cumulative moving average
            factor = 1.0 / float(num_batches_tracked)
    bn_training = training or (running_mean is None and running_var is None)
    use_running = not training or track_running_stats
    return batch_norm_activation(
        x,
        running_mean if use_running else None,
        running_var if use_running else None,
        weight,
        bias,
        param,
        bn_training,
        factor,
        eps,
        ACTIVATIONS[activation],
    )


torch.fx.wrap("batch_norm_forward")


_Proxy = torch.fx.Proxy


def _fx_module_call(layer: nn.Module, x: torch.fx.Proxy) -> torch.fx.Proxy | None:
    """The layer's call as torch.fx.symbolic_trace records nn.BatchNorm2d's: one module call.

    A call_module node reads the training flag when the traced graph runs,
    so ``.eval()`` on the traced model switches to the running statistics,
    as it does for the unfused pair (nn.BatchNorm2d is a leaf for FX). None
    for the traced root itself (or a module outside it), which is traced
    through into one ``batch_norm_forward`` call, its training flag fixed at
    trace time (a root nn.BatchNorm2d does not trace at all).
    """
    tracer = x.tracer
    try:
        path = tracer.path_of_module(layer)
    except NameError:  # not a submodule of the traced root
        return None
    return tracer.create_proxy("call_module", path, (x,), {}) if path else None


class BatchNormActivation(_NormBase):
    """BatchNorm's semantics with an activation fused into the normalize pass.

    A subclass sets ``activation`` (an ``activations`` row); its parameter is
    registered at top level under the row's ``parameter`` name. It derives
    from torch's ``_NormBase`` (BatchNorm's parameters, buffers, resets and
    checkpoint versioning), not from ``_BatchNorm``, so that
    ``nn.SyncBatchNorm.convert_sync_batchnorm`` does not mistake it for a
    plain BatchNorm and drop the activation's parameter.
    """

    activation = LEARNABLE_ELU

    def __init__(
        self,
        num_features: int,
        eps: float,
        momentum: float | None,
        affine: bool,
        track_running_stats: bool,
        *,
        num_parameters: int,
        init: float,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ):
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype
        )
        self.init = float(init)
        param = nn.Parameter(torch.empty(num_parameters, device=device, dtype=dtype))
        self.register_parameter(self.activation.parameter, param)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """BatchNorm's reset (running statistics, weight 1, bias 0), and the
        activation's parameter to ``init``."""
        super().reset_parameters()
        param = self._parameters.get(self.activation.parameter)
        if param is not None:  # (_NormBase's __init__ calls this first)
            nn.init.constant_(param, self.init)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_input_dim(x, self.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if type(x) is _Proxy and (call := _fx_module_call(self, x)) is not None:
            return call
        return batch_norm_forward(
            x, self.num_features, self.running_mean, self.running_var, self.num_batches_tracked,
            self.weight, self.bias, self._parameters[self.activation.parameter], self.training,
            self.track_running_stats, self.momentum, self.eps, self.activation.name,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, init={self.init}"


class BatchNormLearnableELU(BatchNormActivation):
    """``nn.BatchNorm{1,2,3}d(num_features, ...)`` then ``LearnableELU(num_features, init)``.

    BatchNorm's semantics, all of them (batch statistics in training, the
    running ones in eval, ``momentum=None`` for a cumulative average,
    ``track_running_stats=False``, ``affine=False``), with the activation
    fused into the normalize pass; autograd keeps x and per-channel vectors,
    never the normalized tensor or y. Its ``state_dict`` holds BatchNorm's
    keys plus ``alpha``.

    It derives from torch's ``_NormBase`` (through ``BatchNormActivation``),
    not from ``_BatchNorm``, so that
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

    activation = LEARNABLE_ELU

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        init: float = LEARNABLE_ELU.init,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats,
            num_parameters=num_features, init=init, device=device, dtype=dtype,
        )  # fmt: skip


class BatchNormPReLU(BatchNormActivation):
    """``nn.BatchNorm{1,2,3}d(num_features, ...)`` then ``nn.PReLU(num_parameters, init)``.

    y = z if z > 0 else prelu_weight[c] * z, with z the normalized and
    affined x: BatchNorm's semantics, all of them, with PReLU fused into the
    normalize pass, as ``BatchNormLearnableELU`` does for the learnable ELU
    (the same routes, custom ops, backends and promises: autograd keeps x
    and per-channel vectors; the parameters' gradients are fixed-order,
    atomic-free sums).

    PReLU's parameter is ``prelu_weight``: BatchNorm's affine weight is
    already ``weight``. Its ``state_dict`` holds BatchNorm's keys plus
    ``prelu_weight``; a checkpoint of the pair ``bn`` -> ``act``
    (``nn.PReLU``) maps as ``bn.weight``, ``bn.bias``, ``bn.running_mean``,
    ``bn.running_var``, ``bn.num_batches_tracked`` -> the same names, and
    ``act.weight`` -> ``prelu_weight`` (``fuse_batchnorm`` and
    ``fuse.checkpoints`` do it).

    Args:
        num_features: C, the channel count (dim 1 of the input).
        eps, momentum, affine, track_running_stats: as nn.BatchNorm2d's.
        num_parameters: 1 (one slope for every channel, nn.PReLU's default)
            or num_features.
        init: initial value of every slope (nn.PReLU's 0.25).
        device, dtype: of the parameters and buffers.

    Shape:
        input (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W), any
        memory format; output the same, in the input's memory format.

    Attributes:
        weight, bias: (C,) affine parameters (None without affine).
        prelu_weight: (num_parameters,) Parameter, nn.PReLU's weight.
        running_mean, running_var, num_batches_tracked: BatchNorm's buffers.

    Raises:
        ValueError: num_parameters is neither 1 nor num_features.
    """

    activation = PRELU

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        num_parameters: int = 1,
        init: float = PRELU.init,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        if num_parameters not in (1, num_features):
            raise ValueError(
                f"num_parameters must be 1 or num_features={num_features}, got {num_parameters}"
            )
        self.num_parameters = num_parameters
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats,
            num_parameters=num_parameters, init=init, device=device, dtype=dtype,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_parameters={self.num_parameters}"
