"""The PNG figures (elu_triton/demo/figures.py)."""

import sys

import pytest

from elu_triton.demo import digits, figures
from elu_triton.demo.train import TrainHistory


def _results() -> figures.RunResults:
    _, test = digits.synthetic_digits(train_size=0, test_size=12, seed=1)
    history = TrainHistory(
        losses=[2.3, 1.5, 0.9, 0.7], accuracies=[0.1, 0.4, 0.7, 0.8], seconds=1.0, epochs=2
    )
    predictions = test.labels.clone()
    predictions[0] = (predictions[0] + 1) % 10  # one mistake, drawn in red
    return figures.RunResults(
        history, test, predictions, alphas=[0.3] * 20, initial_alphas=[0.5] * 20
    )


def test_writes_four_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    paths = figures.save_figures(tmp_path, _results())
    assert [p.name for p in paths] == [
        "activations.png",
        "training.png",
        "predictions.png",
        "alphas.png",
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_returns_none(tmp_path, monkeypatch):
    monkeypatch.setitem(
        sys.modules, "matplotlib", None
    )  # `import matplotlib` now raises ImportError
    assert figures.save_figures(tmp_path, _results()) is None
    assert list(tmp_path.iterdir()) == []
    assert "elu_triton[figures]" in figures.INSTALL_HINT
