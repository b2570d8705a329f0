"""The training loop and evaluation (elu_triton/demo/train.py), and training
through each LearnableELU path.

In-process tests run whichever path the environment selects (the Triton
interpreter under TRITON_INTERPRET=1, as in CI; the PyTorch ops otherwise), so
they keep LearnableELU work tiny. Tests that need a given path run the demo in
a subprocess whose environment sets or clears TRITON_INTERPRET before import.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from elu_triton.demo import digits
from elu_triton.demo.model import digit_net, learned_alphas
from elu_triton.demo.train import accuracy, predict, sgd, shuffled_batches, train, warm_up


@pytest.fixture(scope="module")
def tiny_sets():
    return digits.synthetic_digits(train_size=40, test_size=20, seed=5)


def test_batches_drop_the_partial_batch_and_reshuffle():
    images = torch.arange(10.0).view(10, 1, 1, 1)
    labels = torch.arange(10)
    batches = shuffled_batches(images, labels, 4, torch.Generator().manual_seed(0))
    epochs = [[y.tolist() for _, y in batches(e)] for e in (1, 2)]
    for epoch in epochs:
        assert [len(b) for b in epoch] == [4, 4]
        flat = sum(epoch, [])
        assert len(set(flat)) == 8
    assert epochs[0] != epochs[1]
    again = shuffled_batches(images, labels, 4, torch.Generator().manual_seed(0))
    assert [y.tolist() for _, y in again(1)] == epochs[0]
    x, y = next(iter(again(1)))
    assert torch.equal(x.view(-1), y.float())  # images stay paired with their labels


def test_loop_reports_first_every_nth_and_last_iteration(tiny_sets):
    train_set, _ = tiny_sets
    torch.manual_seed(0)
    net = digit_net(
        train_set.images.mean(dim=0), activation="elu"
    )  # loop logic only: plain ELU is fastest
    rows = []
    batches = shuffled_batches(
        train_set.images, train_set.labels, 8, torch.Generator().manual_seed(0)
    )
    history = train(
        net,
        sgd(net, 0.01),
        batches,
        epochs=3,
        iterations_per_epoch=5,
        on_progress=rows.append,
        log_every=4,
    )
    assert history.iterations == 15 and history.epochs == 3 and history.seconds > 0
    assert [r.iteration for r in rows] == [1, 4, 8, 12, 15]
    assert [r.epoch for r in rows] == [1, 1, 2, 3, 3]
    assert rows[-1].loss == pytest.approx(history.losses[-1])
    assert all(0.0 <= a <= 1.0 for a in history.accuracies)
    assert rows[0].learning_rate == 0.01


def _train_tiny(train_set, seed):
    torch.manual_seed(seed)
    net = digit_net(train_set.images.mean(dim=0))
    batches = shuffled_batches(
        train_set.images, train_set.labels, 10, torch.Generator().manual_seed(seed)
    )
    history = train(net, sgd(net, 0.01), batches, epochs=1, iterations_per_epoch=4)
    return net, history


def test_same_seed_same_run(tiny_sets):
    train_set, test_set = tiny_sets
    net_a, history_a = _train_tiny(train_set, seed=7)
    net_b, history_b = _train_tiny(train_set, seed=7)
    assert history_a.losses == history_b.losses
    assert learned_alphas(net_a) == learned_alphas(net_b)
    assert torch.equal(predict(net_a, test_set.images), predict(net_b, test_set.images))


def test_alpha_is_trained(tiny_sets):
    train_set, _ = tiny_sets
    torch.manual_seed(3)
    initial = learned_alphas(digit_net())
    net, _ = _train_tiny(train_set, seed=3)
    assert learned_alphas(net) != initial


def test_warm_up_changes_nothing(tiny_sets):
    train_set, _ = tiny_sets
    torch.manual_seed(0)
    net = digit_net(train_set.images.mean(dim=0))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng_state = torch.get_rng_state()
    assert warm_up(net, train_set.images[:4], train_set.labels[:4]) >= 0.0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert all(p.grad is None for p in net.parameters())


def test_predict_and_accuracy():
    net = digit_net(activation="elu")
    predictions = predict(net, torch.rand(7, 1, 28, 28), batch_size=3)
    assert predictions.shape == (7,) and predictions.dtype == torch.int64
    assert not net.training
    assert accuracy(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 0, 4])) == 0.75
    assert accuracy(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)) == 0.0


def run_demo(tmp_path, args, interpret: bool) -> tuple[dict, dict]:
    """Run ``python -m elu_triton.demo`` on the CPU with TRITON_INTERPRET set or
    cleared before import; returns (summary.json, history.json)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    out = tmp_path / ("interpreter" if interpret else "pytorch")
    command = [
        sys.executable,
        "-m",
        "elu_triton.demo",
        "--device",
        "cpu",
        "--no-figures",
        "--out",
        str(out),
        *args,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "summary.json").read_text()), json.loads(
        (out / "history.json").read_text()
    )


@pytest.mark.e2e
def test_short_training_on_the_default_cpu_path_learns(tmp_path):
    args = ["--train-size", "500", "--test-size", "500", "--batch-size", "50", "--epochs", "5"]
    summary, history = run_demo(tmp_path, args, interpret=False)
    assert summary["activation_backend"] == "eager PyTorch ops"
    assert summary["iterations"] == 50
    # Chance is 0.10; five epochs on 500 images reach about 0.8 (0.814 measured).
    assert summary["test_accuracy"] >= 0.6
    losses = history["loss"]
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:5]) / 5


@pytest.mark.e2e
def test_triton_kernels_and_pytorch_path_train_alike(tmp_path):
    # The first iterations through the Triton kernels (in the interpreter) and
    # through the PyTorch ops: the same losses and the same alpha updates.
    args = ["--train-size", "48", "--test-size", "16", "--batch-size", "16", "--epochs", "2"]
    triton_summary, triton_history = run_demo(tmp_path, args, interpret=True)
    torch_summary, torch_history = run_demo(tmp_path, args, interpret=False)
    assert triton_summary["activation_backend"] == "Triton kernels in the interpreter"
    assert torch_summary["activation_backend"] == "eager PyTorch ops"
    assert triton_summary["initial_alphas"] == torch_summary["initial_alphas"]
    assert len(triton_history["loss"]) == 6
    assert triton_history["loss"] == pytest.approx(torch_history["loss"], rel=1e-4)
    initial = torch.tensor(torch_summary["initial_alphas"])
    step_triton = torch.tensor(triton_summary["alphas"]) - initial
    step_torch = torch.tensor(torch_summary["alphas"]) - initial
    assert step_torch.abs().max() > 1e-4  # alpha did move
    torch.testing.assert_close(step_triton, step_torch, rtol=1e-3, atol=1e-6)


@pytest.mark.e2e
def test_compile_flag_trains_like_eager(tmp_path):
    # --compile trains the network under torch.compile, where the layer is the
    # reference composite: the same losses as eager, to fp32 rounding.
    args = ["--train-size", "48", "--test-size", "16", "--batch-size", "16", "--epochs", "1"]
    eager_summary, eager_history = run_demo(tmp_path / "eager", args, interpret=False)
    compiled_summary, compiled_history = run_demo(
        tmp_path / "compiled", [*args, "--compile"], interpret=False
    )
    assert compiled_summary["compiled"] and not eager_summary["compiled"]
    assert "torch.compile" in compiled_summary["activation_backend"]
    assert compiled_history["loss"] == pytest.approx(eager_history["loss"], rel=1e-4)
