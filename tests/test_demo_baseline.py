"""The linear-softmax yardstick of the data's difficulty (elu_triton/demo/baseline.py)."""

import torch

from elu_triton.demo import digits
from elu_triton.demo.baseline import linear_softmax_accuracy


def test_separable_toy_data_is_solved():
    # Two classes told apart by one pixel: a linear model must get them all.
    images = torch.zeros(40, 1, 28, 28)
    labels = torch.arange(40) % 2
    images[labels == 1, 0, 5, 5] = 1.0
    train = digits.DigitSet(images, labels)
    result = linear_softmax_accuracy(train, train, l2_strengths=(1e-3,), max_iter=50)
    assert result.test_accuracy == result.best_test_accuracy == 1.0 and result.l2 == 1e-3


def test_built_in_set_is_hard_for_a_linear_classifier():
    # The honesty bar: raw-pixel softmax stays below 90% on the default set,
    # while being far above chance (the digits are learnable at all).
    train, test = digits.synthetic_digits()
    result = linear_softmax_accuracy(train, test)
    assert 0.6 < result.test_accuracy < 0.9
    assert result.test_accuracy <= result.best_test_accuracy < 0.9
