"""bench.fusion at small sizes: every pair found and fused, and the IResNet-50 memory target.

CI runs it (``pytest bench --benchmark-disable``) on the PyTorch backend.
"""

import copy

import torch

from elu_triton import LearnableELU, batchnorm_fusion_plan, fuse_batchnorm
from elu_triton.backends import use_backend

from . import fusion
from .networks import iresnet


def test_smoke_run_fuses_every_pair_it_has_a_fused_layer_for():
    rows = {r["network"]: r for r in fusion.main(["--smoke", "--runs", "0"])}
    for network in fusion.NETWORKS:
        row = rows[network.name]
        assert row["candidates"] == network.pairs, network.name  # the tracer finds them all
        assert row["fused"] == network.pairs, network.name
        assert row["ratio"] < 1, network.name


def test_iresnet50_forward_meets_its_memory_target():
    """Full size, batch 2: a forward only (no backward), on the PyTorch backend."""
    with use_backend("torch"):
        row = fusion.measure(fusion.NETWORKS[0], smoke=False, batch=2, runs=0)
    assert row["pairs"] == row["candidates"] == row["fused"] == 25
    assert row["ratio"] <= fusion.IRESNET_TARGET, fusion.render([row])


def test_iresnet_fuses_with_learnable_elu_in_prelus_place():
    """The same structure with LearnableELU: its 25 pairs fuse today, through the tracer."""
    model = iresnet(width=4, image_size=16, activation=LearnableELU)
    twin = copy.deepcopy(model)
    fuse_batchnorm(model)
    x = torch.randn(2, 3, 16, 16)
    with use_backend("torch"), torch.no_grad():
        torch.testing.assert_close(model.eval()(x), twin.eval()(x), rtol=1e-4, atol=1e-5)
    assert sum(c.fuses for c in batchnorm_fusion_plan(twin)) == 25
