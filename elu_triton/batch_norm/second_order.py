"""Second-order gradients of the fused layer: differentiate the composite again.

A backward under create_graph=True must record a graph of its gradients.
The fused passes record none, so it recomputes z from x (the batch
statistics included, in training: they depend on x), applies the
activation, and lets autograd differentiate that with create_graph=True.
Only second-order use pays for it.

The activation is its row's ``differentiable`` (``activations.py``): for
the learnable ELU the package's ``learnable_elu``, not the reference
composite: its first-order backward then records the activation's own
second-order formula (``elu_triton/second_order.py``), so that both layers
have one second-order strategy for the activation, the cheaper one
(``bench/RESULTS.md``, "Second order"). Autograd's batched gradients reach the
activation's batched route in the same way.
"""

import torch
import torch.nn.functional as F

from .checks import check_backward_inputs


def _normalized(x, mean, var, weight, bias, training, eps):
    """z of the forward, differentiable in x and the parameters (for second order)."""
    if training:  # the batch statistics depend on x
        return F.batch_norm(x, None, None, weight, bias, True, 0.0, eps)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    invstd = torch.rsqrt(var + eps)
    z = (x - mean.reshape(shape).to(x.dtype)) * invstd.reshape(shape).to(x.dtype)
    if weight is not None:
        z = z * weight.reshape(shape)
    if bias is not None:
        z = z + bias.reshape(shape)
    return z


def composite_grads(
    dy, x, mean, var, weight, bias, param, training, eps, needs, activation, bias_input=None
):
    """(dx, dweight, dbias, dparam) of the composite at the forward's point, recorded.

    For a backward under create_graph=True: the graph of these gradients
    reaches dy, x and the parameters, so a further backward works.
    activation: the ``activations`` row.

    bias: the forward's values of bias (the saved copy); bias_input: the
    bias the forward took, which the graph reaches and dbias is taken
    against (None: bias itself).

    Raises:
        TypeError, ValueError: as ``checks.check_backward_inputs``.
    """
    check_backward_inputs(dy, x, weight, bias, param)
    if bias_input is not None:
        # The copy's values on bias_input's graph: b - b is exactly 0 for any
        # finite b, and its derivative the identity.
        bias, bias_wrt = bias + (bias_input - bias_input.detach()), bias_input
    else:
        bias_wrt = bias
    inputs = [t for t, need in zip((x, weight, bias_wrt, param), needs) if need]
    z = _normalized(x, mean, var, weight, bias, training, eps)
    y = activation.differentiable(z, param)
    found = iter(torch.autograd.grad(y, inputs, dy, create_graph=True, allow_unused=True))
    return tuple(next(found) if need else None for need in needs)
