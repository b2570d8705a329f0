"""The demo command (elu_triton/demo/cli.py): end to end, --load, bad arguments.

Runs are tiny, so they stay quick on the Triton interpreter (CI sets
TRITON_INTERPRET=1) as on the PyTorch path.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from elu_triton.demo import main, run

TINY = [
    "--train-size",
    "32",
    "--test-size",
    "24",
    "--batch-size",
    "16",
    "--epochs",
    "2",
    "--device",
    "cpu",
]
SUMMARY_KEYS = {
    "test_accuracy",
    "train_seconds",
    "epochs",
    "iterations",
    "device",
    "alphas",
    "torch_version",
    "triton_version",
}


@pytest.mark.e2e
def test_end_to_end_then_load_reproduces_the_accuracy(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TINY, "--out", str(out), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert summary["epochs"] == 2 and summary["iterations"] == 4 and summary["device"] == "cpu"
    assert len(summary["alphas"]) == 20 and summary["alphas"] != summary["initial_alphas"]
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 4
    for text in (
        "Mini-batch",
        "test accuracy:",
        "learned alpha",
        "training time:",
        "test image 0: predicted",
    ):
        assert text in printed

    assert main([*TINY, "--load", str(out / run.WEIGHTS_FILE)]) == 0
    reloaded = capsys.readouterr().out
    assert f"{summary['test_accuracy']:.4f} on 24 test images" in reloaded


@pytest.mark.e2e
def test_same_seed_same_accuracy(tmp_path, capsys):
    runs = []
    for name in ("a", "b"):
        main([*TINY, "--seed", "3", "--out", str(tmp_path / name), "--no-figures"])
        runs.append(json.loads((tmp_path / name / "summary.json").read_text()))
    assert runs[0]["test_accuracy"] == runs[1]["test_accuracy"]
    assert runs[0]["alphas"] == runs[1]["alphas"]


@pytest.mark.e2e
def test_figures_and_baseline(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert main([*TINY, "--epochs", "1", "--out", str(out), "--baseline"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["figures"] == [
        "activations.png",
        "training.png",
        "predictions.png",
        "alphas.png",
    ]
    assert all((out / name).is_file() for name in summary["figures"])
    assert 0.0 <= summary["linear_baseline_accuracy"] <= 1.0
    assert "linear softmax on raw pixels" in capsys.readouterr().out


@pytest.mark.e2e
def test_says_once_that_figures_are_skipped(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main([*TINY, "--epochs", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("figures skipped") == 1 and "pip install" in printed
    assert json.loads((tmp_path / "summary.json").read_text())["figures"] == []


@pytest.mark.e2e
def test_mnist_from_a_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split, count in (("train", 20), ("test", 10)):
        for name, magic, data in (
            (
                f"{'t10k' if split == 'test' else 'train'}-images-idx3-ubyte",
                0x803,
                rng.integers(0, 256, (count, 28, 28)),
            ),
            (
                f"{'t10k' if split == 'test' else 'train'}-labels-idx1-ubyte",
                0x801,
                rng.integers(0, 10, count),
            ),
        ):
            header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in data.shape)
            (tmp_path / name).write_bytes(header + data.astype(np.uint8).tobytes())
    out = tmp_path / "run"
    args = ["--data", "mnist", "--data-dir", str(tmp_path), "--batch-size", "10", "--epochs", "1"]
    assert main([*args, "--device", "cpu", "--out", str(out), "--no-figures"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["train_size"] == 20
        and summary["test_size"] == 10
        and summary["data"].startswith("MNIST")
    )
    assert "example" in summary and "angle_degrees" not in summary["example"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--device", "meta"], "unsupported device 'meta'"),
        (["--device", "cuda:99"], "cuda:99"),
        (["--epochs", "-1"], "--epochs must be >= 0, got -1"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--lr", "0"], "--lr must be > 0"),
        (["--train-size", "0"], "--train-size must be >= 1"),
        (["--data", "mnist"], "--data mnist needs --data-dir"),
        (
            ["--data", "mnist", "--data-dir", "/no/such/dir"],
            "--data-dir /no/such/dir: no such directory",
        ),
        (["--load", "/no/such/model.pt"], "--load /no/such/model.pt: no such file"),
        (["--epochs", "x"], "invalid int value"),
        (
            ["--train-size", "8", "--batch-size", "16"],
            "--batch-size 16 exceeds the 8 training images",
        ),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--test-size", "4", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "error:" in err


def test_bad_data_files_and_weights_exit_2(tmp_path, capsys):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + b"\x00" * 8)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"")
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", "mnist", "--data-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "train-images-idx3-ubyte: wrong magic number" in capsys.readouterr().err

    weights = tmp_path / "not_weights.pt"
    weights.write_text("hello")
    with pytest.raises(SystemExit) as exit_info:
        main(["--test-size", "4", "--load", str(weights)])
    assert exit_info.value.code == 2
    assert "not weights of this network" in capsys.readouterr().err


def _console_script() -> list[str]:
    """The installed ``elu-triton-demo`` next to this Python, else ``python -m``."""
    script = Path(sys.executable).parent / "elu-triton-demo"
    if script.is_file():
        return [str(script)]
    found = shutil.which("elu-triton-demo")
    return [found] if found else [sys.executable, "-m", "elu_triton.demo"]


@pytest.mark.e2e
def test_console_script_end_to_end_and_a_bad_argument(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [*_console_script(), *TINY, "--epochs", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    assert "test accuracy:" in done.stdout
    assert {"summary.json", "history.json", run.WEIGHTS_FILE} <= {p.name for p in out.iterdir()}

    bad = subprocess.run(
        [*_console_script(), "--device", "tpu"], capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 2
    assert "unknown device 'tpu'" in bad.stderr and "Traceback" not in bad.stderr
