"""The built-in synthetic digits (elu_triton/demo/digits.py, typefaces.py)."""

import numpy as np
import pytest
import torch

from elu_triton.demo import digits
from elu_triton.demo.typefaces import TYPEFACES


@pytest.fixture(scope="module")
def small_sets():
    return digits.synthetic_digits(train_size=300, test_size=200, seed=3)


def test_shapes_dtypes_and_ranges(small_sets):
    train, test = small_sets
    for split, n in ((train, 300), (test, 200)):
        assert split.images.shape == (n, 1, 28, 28) and split.images.dtype == torch.float32
        assert split.labels.shape == (n,) and split.labels.dtype == torch.int64
        assert split.angles.shape == (n,) and split.angles.dtype == torch.float32
        assert split.images.min() >= 0.0 and split.images.max() <= 1.0
        assert split.angles.abs().max() <= digits.MAX_ANGLE_DEG
        # Every image has ink, and a black border region (a digit, not noise).
        ink = split.images.flatten(1).sum(dim=1)
        assert ink.min() > 10.0
        assert (split.images.flatten(1) == 0).float().mean(dim=1).min() > 0.4


def test_angles_cover_the_range(small_sets):
    angles = small_sets[0].angles
    assert angles.min() < -35 and angles.max() > 35


@pytest.mark.parametrize("count", [200, 205, 7])
def test_labels_are_balanced(count):
    train, _ = digits.synthetic_digits(train_size=count, test_size=0)
    per_class = torch.bincount(train.labels, minlength=10)
    assert per_class.max() - per_class.min() <= 1
    assert per_class.sum() == count


def test_deterministic_for_a_seed(small_sets):
    train, test = digits.synthetic_digits(train_size=300, test_size=200, seed=3)
    assert torch.equal(train.images, small_sets[0].images)
    assert torch.equal(test.images, small_sets[1].images)
    assert torch.equal(test.labels, small_sets[1].labels)
    other, _ = digits.synthetic_digits(train_size=300, test_size=0, seed=4)
    assert not torch.equal(other.images, train.images)


def test_split_sizes_do_not_change_the_other_split(small_sets):
    train, test = digits.synthetic_digits(train_size=50, test_size=200, seed=3)
    assert torch.equal(test.images, small_sets[1].images)
    train, test = digits.synthetic_digits(train_size=300, test_size=20, seed=3)
    assert torch.equal(train.images, small_sets[0].images)


def test_train_and_test_are_disjoint(small_sets):
    train, test = small_sets
    # No test image equals, or nearly equals, a training image.
    distances = torch.cdist(test.images.flatten(1), train.images.flatten(1))
    assert distances.min() > 1.0


def test_negative_size_raises():
    with pytest.raises(ValueError, match="train_size must be >= 0, got -1"):
        digits.synthetic_digits(train_size=-1)


def test_head(small_sets):
    train = small_sets[0]
    first = train.head(10)
    assert len(first) == 10 and torch.equal(first.angles, train.angles[:10])
    assert train.head(None) is train


def test_every_glyph_renders_inside_the_box():
    table = digits._GLYPHS
    assert table.vertices.shape[0] == len(TYPEFACES) * digits.NUM_CLASSES
    assert table.vertices.min() >= 0.0 and table.vertices.max() <= 1.0
    count = table.vertices.shape[0]
    points = (table.vertices - 0.5) * 20 + 13.5  # upright, 20 px box, centred
    ink = digits._render(points, table.segments, np.full(count, 2.0))
    assert ink.shape == (count, 28, 28)
    assert ink.flatten(1).sum(dim=1).min() > 20.0
    # Glyphs differ from each other within each style.
    flat = ink.flatten(1)
    for style in range(len(TYPEFACES)):
        block = flat[style * 10 : style * 10 + 10]
        distances = torch.cdist(block, block) + torch.eye(10) * 1e9
        assert distances.min() > 2.0
