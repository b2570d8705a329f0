"""MNIST from the standard IDX files in a local directory; nothing is downloaded.

IDX layout (big-endian): two zero bytes, a type code (0x08 = unsigned byte),
the number of dims d, then d uint32 sizes, then the data in row-major order.
MNIST's images are (N, 28, 28) (magic 0x00000803) and its labels (N,)
(magic 0x00000801). Files may be gzipped (``.gz``), and are found under the
usual names, e.g. ``train-images-idx3-ubyte`` or ``train-images.idx3-ubyte``.
Any file that does not hold what it should raises a ValueError naming it.
"""

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from .digits import IMAGE_SIZE, NUM_CLASSES, DigitSet

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dims
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dim
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as e:  # truncated or corrupt gzip stream
        raise ValueError(f"{path}: cannot read ({e})") from None


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """One IDX file (gzipped or not) as a uint8 array of the shape its header gives.

    Raises:
        ValueError: naming the file, when the magic number is not
            ``expected_magic``, the header or the data is truncated, or data
            follow the last element.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != expected_magic:
        raise ValueError(
            f"{path}: wrong magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            "(not an MNIST IDX file of this kind)"
        )
    ndim = magic & 0xFF
    header_bytes = 4 + 4 * ndim
    if len(raw) < header_bytes:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} of {header_bytes} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header_bytes])
    expected = int(np.prod(shape, dtype=np.int64))
    found = len(raw) - header_bytes
    if found != expected:
        what = "truncated data" if found < expected else "unexpected bytes after the data"
        raise ValueError(f"{path}: {what}: shape {shape} needs {expected} bytes, found {found}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_bytes).reshape(shape)


def find_idx_file(data_dir: Path, name: str) -> Path:
    """The file for ``name`` in data_dir: plain or .gz, '-' or '.' before 'idx'.

    Raises:
        FileNotFoundError: none of the candidate names exists.
    """
    stems = [name, name.replace("-idx", ".idx")]
    candidates = [Path(data_dir) / (stem + ext) for stem in stems for ext in ("", ".gz")]
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(p.name for p in candidates)
    raise FileNotFoundError(f"no MNIST file {name} in {data_dir} (looked for {tried})")


def load_split(data_dir: Path, split: str) -> DigitSet:
    """The 'train' or 'test' split as a DigitSet: images /255 as float32, no angles.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: a file is malformed, the images are not 28x28, a label is
            not a digit, or the image and label counts differ.
    """
    images_name, labels_name = SPLIT_FILES[split]
    images_path = find_idx_file(data_dir, images_name)
    labels_path = find_idx_file(data_dir, labels_name)
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"{images_path}: images must be {IMAGE_SIZE}x{IMAGE_SIZE}, got {images.shape[1:]}"
        )
    if labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{labels_path} holds {labels.shape[0]} labels but {images_path} holds "
            f"{images.shape[0]} images"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise ValueError(f"{labels_path}: labels must be 0..9, found {int(labels.max())}")
    pixels = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return DigitSet(pixels, torch.from_numpy(labels.astype(np.int64)))


def load_mnist(data_dir: Path) -> tuple[DigitSet, DigitSet]:
    """(train, test) from the four MNIST IDX files in data_dir. Raises as load_split."""
    return load_split(Path(data_dir), "train"), load_split(Path(data_dir), "test")
