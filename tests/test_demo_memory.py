"""The demo's --fused-batchnorm: same network and training, one activation fewer kept."""

import json

import pytest
import torch

from elu_triton import BatchNormLearnableELU
from elu_triton.demo import main
from elu_triton.demo.memory import activation_bytes, fuse_and_report, unfused_state_dict
from elu_triton.demo.model import digit_net, learned_alphas

TINY = ["--train-size", "32", "--test-size", "24", "--batch-size", "16", "--epochs", "2"]


def test_fused_network_keeps_less_and_computes_the_same(capsys):
    torch.manual_seed(0)
    net = digit_net(torch.rand(1, 28, 28))
    images = torch.rand(8, 1, 28, 28)
    unfused_out = net(images)  # (training mode: batch statistics)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(0)
    fused = fuse_and_report(digit_net(torch.rand(1, 28, 28)), images)
    assert "fused BatchNorm -> LearnableELU: activation memory" in capsys.readouterr().out
    assert isinstance(fused.batchnorm, BatchNormLearnableELU)
    assert learned_alphas(fused) == learned_alphas(net)
    torch.testing.assert_close(fused(images), unfused_out, rtol=1e-5, atol=1e-5)
    # The probe ran on copies: the fused network's statistics were untouched before its call.
    assert unfused_state_dict(fused).keys() == before.keys()
    # One (8, 20, 24, 24) fp32 tensor fewer, the BatchNorm's output: both keep
    # the batch's mean and invstd, the fused layer also a (20,) copy of bias
    # (so that bias may change in place before the backward), and parameters
    # and buffers are not counted.
    kept = activation_bytes(digit_net(), images) - activation_bytes(fused, images)
    assert kept == 8 * 20 * 24 * 24 * 4 - 20 * 4


@pytest.mark.e2e
def test_demo_trains_fused_and_its_weights_load_unfused(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main([*TINY, "--device", "cpu", "--fused-batchnorm", "--no-figures", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "fused BatchNorm -> LearnableELU" in printed and "BatchNormLearnableELU" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["alphas"]) == 20
    assert main(["--load", str(out / "model.pt"), "--test-size", "24"]) == 0
    assert f"{summary['test_accuracy']:.4f}" in capsys.readouterr().out
