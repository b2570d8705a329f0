"""Every layer's backward runs on the backend its forward ran on (tests/layers.py's layers).

use_backend is a thread's choice for a block; autograd runs the backward
after the block, and on its own threads. The forward's choice must reach it
rather than the backward choosing again.
"""

import torch

from elu_triton import backends


def test_backward_runs_on_the_forwards_backend(layer, device):
    """use_backend reaches the backward even when it runs after the block (or on autograd's threads).

    Each backend that serves the device is forced in turn, spied on: the
    backward must be its pass, not the default's (the Triton kernels under
    TRITON_INTERPRET=1) nor any other's, which the spy would not record.
    """
    module = layer.build(device=device)
    for forced in [b for b in backends.available() if b.serves(torch.device(device).type)]:
        ran = []
        x = layer.sample(module, (2, 3, 4), device=device).requires_grad_()
        with backends.use_backend(layer.spy_backward(forced, ran)):
            y = module(x)
        assert ran == []
        y.sum().backward()
        assert ran == [forced.name]
