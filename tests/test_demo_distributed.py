"""Data-parallel demo training (elu_triton/demo/distributed.py) on 2 CPU ranks.

Runs `torchrun --nproc-per-node 2 -m elu_triton.demo --distributed` for a
few iterations (gloo) and checks that the ranks end with identical weights,
and that those match one process stepping on the same global batches with
the same per-shard batch norm (the CPU has no SyncBatchNorm).
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from elu_triton.demo import cli, digits, distributed, model, run, train

RANKS = 2
SEED = 3
TRAIN_SIZE, BATCH, EPOCHS = 64, 16, 2  # 8 iterations, 8 images per rank per step


@pytest.fixture(scope="module")
def distributed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    command = [
        # --standalone: a local rendezvous on a free port that torchrun picks itself.
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(RANKS),
        "-m", "elu_triton.demo", "--distributed", "--device", "cpu", "--seed", str(SEED),
        "--train-size", str(TRAIN_SIZE), "--test-size", "16", "--batch-size", str(BATCH),
        "--epochs", str(EPOCHS), "--out", str(out), "--no-figures",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, done.stdout


@pytest.mark.e2e
def test_ranks_end_identical(distributed_run):
    out, printed = distributed_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == RANKS and summary["parameters_identical_across_ranks"] is True
    assert summary["iterations"] == EPOCHS * TRAIN_SIZE // BATCH
    assert f"parameters identical on all {RANKS} ranks: True" in printed
    assert printed.count("test accuracy:") == 1  # only rank 0 reports


@pytest.mark.e2e
def test_matches_one_process_on_the_same_global_batches(distributed_run):
    out, _ = distributed_run
    train_set, _ = digits.synthetic_digits(TRAIN_SIZE, 16)
    torch.manual_seed(SEED)
    net = model.digit_net(train_set.images.mean(dim=0))
    optimizer = train.sgd(net, 0.01)
    batches = train.shuffled_batches(
        train_set.images, train_set.labels, BATCH, torch.Generator().manual_seed(SEED)
    )
    net.train()
    for epoch in range(1, EPOCHS + 1):
        for batch in batches(epoch):
            distributed.ghost_batch_step(net, optimizer, batch, RANKS)
    trained = torch.load(out / run.WEIGHTS_FILE, weights_only=True)
    expected = dict(net.named_parameters())
    for name, tensor in expected.items():
        # All-reduce sums in another order than one process's accumulation:
        # a few fp32 roundings per step, over 8 steps.
        torch.testing.assert_close(trained[name], tensor.detach(), rtol=1e-4, atol=1e-5, msg=name)


def test_needs_torchrun(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--distributed", "--device", "cpu", "--train-size", "16", "--test-size", "8"])
    assert exit_info.value.code == 2
    assert "--distributed needs torchrun" in capsys.readouterr().err
