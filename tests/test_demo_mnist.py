"""The MNIST IDX reader (elu_triton/demo/mnist.py), on small IDX files written here."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from elu_triton.demo import mnist


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """An IDX file's content: magic, sizes (big-endian uint32), then the bytes."""
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_split(
    folder: Path, split: str, images: np.ndarray, labels: np.ndarray, gz: bool = False
) -> None:
    images_name, labels_name = mnist.SPLIT_FILES[split]
    for name, data in (
        (images_name, idx_bytes(images, mnist.IMAGES_MAGIC)),
        (labels_name, idx_bytes(labels, mnist.LABELS_MAGIC)),
    ):
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def random_split(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8), rng.integers(
        0, 10, size=count, dtype=np.uint8
    )


@pytest.mark.parametrize("gz", [False, True])
def test_reads_both_splits(tmp_path, gz):
    train_images, train_labels = random_split(12, seed=0)
    test_images, test_labels = random_split(5, seed=1)
    write_split(tmp_path, "train", train_images, train_labels, gz)
    write_split(tmp_path, "test", test_images, test_labels, gz)
    train, test = mnist.load_mnist(tmp_path)
    assert train.images.shape == (12, 1, 28, 28) and train.images.dtype == torch.float32
    assert test.labels.tolist() == test_labels.tolist() and test.labels.dtype == torch.int64
    assert torch.equal(train.images[:, 0], torch.from_numpy(train_images).float() / 255)
    assert train.angles is None


def test_finds_dotted_names(tmp_path):
    images, labels = random_split(3, seed=2)
    (tmp_path / "t10k-images.idx3-ubyte").write_bytes(idx_bytes(images, mnist.IMAGES_MAGIC))
    (tmp_path / "t10k-labels.idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(labels, mnist.LABELS_MAGIC))
    )
    test = mnist.load_split(tmp_path, "test")
    assert test.labels.tolist() == labels.tolist()


def test_missing_file_names_what_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        mnist.load_mnist(tmp_path)


def test_wrong_magic_names_the_file(tmp_path):
    images, labels = random_split(4, seed=3)
    write_split(tmp_path, "train", images, labels)
    # Swap the files' roles: a labels file where the images should be.
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(labels, mnist.LABELS_MAGIC))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: wrong magic number 0x00000801"):
        mnist.load_split(tmp_path, "train")


@pytest.mark.parametrize("cut", [2, 10, 50])
def test_truncated_file_names_the_file(tmp_path, cut):
    images, labels = random_split(4, seed=4)
    write_split(tmp_path, "train", images, labels)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:cut] if cut < 16 else path.read_bytes()[:-cut])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: truncated"):
        mnist.load_split(tmp_path, "train")


def test_truncated_gzip_names_the_file(tmp_path):
    images, labels = random_split(40, seed=5)
    write_split(tmp_path, "train", images, labels, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: cannot read"):
        mnist.load_split(tmp_path, "train")


def test_trailing_bytes_are_an_error(tmp_path):
    images, labels = random_split(4, seed=6)
    write_split(tmp_path, "train", images, labels)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00\x01")
    with pytest.raises(
        ValueError, match=r"train-labels-idx1-ubyte: unexpected bytes after the data"
    ):
        mnist.load_split(tmp_path, "train")


def test_count_mismatch_names_both_files(tmp_path):
    images, labels = random_split(6, seed=7)
    write_split(tmp_path, "train", images, labels[:5])
    with pytest.raises(
        ValueError,
        match=r"train-labels-idx1-ubyte holds 5 labels but .*train-images-idx3-ubyte holds 6",
    ):
        mnist.load_split(tmp_path, "train")


def test_bad_image_size_and_labels(tmp_path):
    write_split(tmp_path, "test", np.zeros((2, 27, 28), np.uint8), np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: images must be 28x28"):
        mnist.load_split(tmp_path, "test")
    write_split(tmp_path, "test", np.zeros((2, 28, 28), np.uint8), np.array([3, 12], np.uint8))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: labels must be 0..9, found 12"):
        mnist.load_split(tmp_path, "test")
