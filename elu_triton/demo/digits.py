"""The built-in data set: synthetic 28x28 digits rendered from stroke typefaces.

Like the digit set of the original walkthrough: ten classes, 28x28 grayscale,
each image one digit in one of four styles (``typefaces.py``), rotated by a
random angle in [-45, 45] degrees, with random size, position, stroke
thickness and brightness, a slight random aspect, slant and smooth warp of
the strokes, and three faint scratches in the background, as on a scanned
page. White strokes on black, values in [0, 1], as MNIST.

Why these ranges: the data must be hard for a linear classifier on the
pixels (below 90% test accuracy, see ``baseline.py``) and learnable by the
demo's one-conv-layer network. Rotation and position defeat a pixel template;
faint scratches cost a linear model accuracy too, while the network's
activation learns to cut them off. Thick strokes and mild shape jitter keep
digits recognisable to the network; thin strokes, strong slant and warp cost
the network about as much as the linear model (measured, see the README).

Rendering: each stroke is a chain of line segments; a pixel's value is
``clamp(w/2 + 1/2 - d, 0, 1)`` for its distance d to the nearest segment and
stroke width w, i.e. a thick line with a one-pixel anti-aliased edge. All
random draws come from numpy Generators seeded by a SeedSequence, the train
and test sets from two independent child streams, so a seed fixes both sets
and they never share a draw.
"""

from dataclasses import dataclass

import numpy as np
import torch

from .typefaces import TYPEFACES

IMAGE_SIZE = 28
NUM_CLASSES = 10
MAX_ANGLE_DEG = 45.0
DATA_SEED = 0  # the built-in set's seed: the same images whatever the training seed

# Ranges of the random draws, in pixels unless stated otherwise.
_GLYPH_BOX_PX = (18.0, 22.0)  # side of the glyph's unit box (the digit's size)
_SHIFT_PX = 1.7  # centre offset, each axis, uniform in [-shift, shift]
_STROKE_WIDTH_PX = (2.8, 3.8)
_BRIGHTNESS = (0.8, 1.0)  # of the digit's strokes
_ASPECT = (0.97, 1.03)  # width / height multiplier
_SLANT = (-0.02, 0.02)  # horizontal shear per unit height
_WARP_AMPLITUDE = 0.008  # of the unit box, per sinusoid of the smooth warp
_SCRATCHES = 3  # faint straight strokes per image, anywhere
_SCRATCH_LENGTH_PX = (4.0, 10.0)
_SCRATCH_WIDTH_PX = (1.0, 2.0)
_SCRATCH_BRIGHTNESS = (0.25, 0.4)


@dataclass(frozen=True)
class DigitSet:
    """Images and labels of one split.

    Attributes:
        images: (N, 1, 28, 28) float32 in [0, 1], white digit on black.
        labels: (N,) int64 in 0..9.
        angles: (N,) float32 rotation in degrees (counterclockwise), or None
            where unknown (MNIST).
    """

    images: torch.Tensor
    labels: torch.Tensor
    angles: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.labels.shape[0]

    def head(self, count: int | None) -> "DigitSet":
        """The first ``count`` images (all of them when count is None)."""
        if count is None:
            return self
        angles = None if self.angles is None else self.angles[:count]
        return DigitSet(self.images[:count], self.labels[:count], angles)


@dataclass(frozen=True)
class _GlyphTable:
    """Every (style, digit) glyph as vertices and segments, padded to equal counts."""

    vertices: np.ndarray  # (G, V, 2) unit-box coordinates; glyph g = style * 10 + digit
    segments: np.ndarray  # (G, S, 2) vertex indices of each segment's two ends


def _glyph_table() -> _GlyphTable:
    glyphs = [strokes for style in TYPEFACES.values() for strokes in style]
    max_vertices = max(sum(len(p) for p in g) for g in glyphs)
    max_segments = max(sum(len(p) - 1 for p in g) for g in glyphs)
    vertices = np.zeros((len(glyphs), max_vertices, 2))
    # Padding repeats segment 0, which changes no minimum distance.
    segments = np.zeros((len(glyphs), max_segments, 2), dtype=np.int64)
    for g, strokes in enumerate(glyphs):
        v = s = 0
        for poly in strokes:
            vertices[g, v : v + len(poly)] = poly
            ends = v + np.arange(len(poly) - 1)
            segments[g, s : s + len(ends)] = np.stack([ends, ends + 1], axis=1)
            v, s = v + len(poly), s + len(ends)
        segments[g, s:] = segments[g, 0]
    return _GlyphTable(vertices, segments)


_GLYPHS = _glyph_table()


def _warp(vertices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth random displacement of (N, V, 2) unit-box vertices: two low-frequency
    sinusoids per axis, so strokes bend like handwriting but stay connected."""
    n = vertices.shape[0]
    freq = rng.uniform(-2.0, 2.0, size=(n, 1, 2, 2, 2))  # (image, -, axis, term, xy)
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1, 2, 2))
    amp = rng.uniform(-_WARP_AMPLITUDE, _WARP_AMPLITUDE, size=(n, 1, 2, 2))
    arg = 2 * np.pi * (vertices[:, :, None, None, :] * freq).sum(axis=-1) + phase
    return vertices + (amp * np.sin(arg)).sum(axis=-1)


def _place(
    vertices: np.ndarray, box: np.ndarray, angles_deg: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Map (N, V, 2) unit-box vertices to pixel coordinates: slant and aspect,
    scale, rotation (counterclockwise on screen, y pointing down), shift."""
    n = vertices.shape[0]
    u = vertices - 0.5
    aspect = rng.uniform(*_ASPECT, size=(n, 1))
    slant = rng.uniform(*_SLANT, size=(n, 1))
    x = aspect * u[..., 0] - slant * u[..., 1]
    y = u[..., 1]
    theta = np.deg2rad(angles_deg)[:, None]
    cos, sin = np.cos(theta), np.sin(theta)
    xr = box[:, None] * (x * cos + y * sin)
    yr = box[:, None] * (-x * sin + y * cos)
    centre = (IMAGE_SIZE - 1) / 2 + rng.uniform(-_SHIFT_PX, _SHIFT_PX, size=(n, 2, 1))
    return np.stack([xr + centre[:, 0], yr + centre[:, 1]], axis=-1)


def _render(points: np.ndarray, segments: np.ndarray, width: np.ndarray) -> torch.Tensor:
    """Anti-aliased strokes: (N, V, 2) pixel-space vertices, (N, S, 2) segment
    vertex indices, (N,) stroke widths -> (N, 28, 28) float32 in [0, 1]."""
    n = points.shape[0]
    rows = np.arange(n)[:, None]
    a = torch.from_numpy(points[rows, segments[..., 0]]).float()  # (N, S, 2)
    b = torch.from_numpy(points[rows, segments[..., 1]]).float()
    coords = torch.arange(IMAGE_SIZE, dtype=torch.float32)
    py = coords.repeat_interleave(IMAGE_SIZE)[None]  # (1, 784), row-major pixels
    px = coords.repeat(IMAGE_SIZE)[None]
    nearest_sq = torch.full((n, IMAGE_SIZE * IMAGE_SIZE), float("inf"))
    for s in range(segments.shape[1]):
        ax, ay = a[:, s, 0:1], a[:, s, 1:2]
        dx, dy = b[:, s, 0:1] - ax, b[:, s, 1:2] - ay
        inv_len_sq = 1.0 / (dx * dx + dy * dy).clamp_min(1e-12)
        rx, ry = px - ax, py - ay
        t = ((rx * dx + ry * dy) * inv_len_sq).clamp_(0.0, 1.0)
        ex, ey = rx.sub_(t * dx), ry.sub_(t * dy)
        torch.minimum(nearest_sq, ex.mul_(ex).add_(ey.mul_(ey)), out=nearest_sq)
    half_width = torch.from_numpy(width).float()[:, None] / 2
    ink = (half_width + 0.5 - nearest_sq.sqrt_()).clamp_(0.0, 1.0)
    return ink.view(n, IMAGE_SIZE, IMAGE_SIZE)


def _scratches(count: int, rng: np.random.Generator) -> torch.Tensor:
    """(N, 28, 28) faint background strokes: _SCRATCHES random segments per image."""
    k = _SCRATCHES
    middle = rng.uniform(2.0, IMAGE_SIZE - 3.0, size=(count, k, 1, 2))
    direction = rng.uniform(0.0, np.pi, size=(count, k, 1))
    half_length = rng.uniform(*_SCRATCH_LENGTH_PX, size=(count, k, 1, 1)) / 2
    offset = np.stack([np.cos(direction), np.sin(direction)], axis=-1) * half_length
    points = np.concatenate([middle - offset, middle + offset], axis=2).reshape(count, 2 * k, 2)
    ends = np.arange(2 * k).reshape(k, 2)  # segment j joins vertices 2j and 2j + 1
    segments = np.broadcast_to(ends, (count, k, 2))
    width = rng.uniform(*_SCRATCH_WIDTH_PX, size=count)
    brightness = rng.uniform(*_SCRATCH_BRIGHTNESS, size=(count, 1, 1))
    return _render(points, segments, width) * torch.from_numpy(brightness).float()


def render_digits(count: int, rng: np.random.Generator) -> DigitSet:
    """Draw ``count`` random digits, the classes as balanced as count allows.

    Args:
        count: number of images, >= 0.
        rng: source of every random draw (consumed in a fixed order).

    Returns:
        A DigitSet with angles.
    """
    labels = rng.permutation(np.arange(count) % NUM_CLASSES)
    styles = rng.integers(0, len(TYPEFACES), size=count)
    glyph = styles * NUM_CLASSES + labels
    angles = rng.uniform(-MAX_ANGLE_DEG, MAX_ANGLE_DEG, size=count)
    vertices = _warp(_GLYPHS.vertices[glyph], rng)
    box = rng.uniform(*_GLYPH_BOX_PX, size=count)
    points = _place(vertices, box, angles, rng)
    width = rng.uniform(*_STROKE_WIDTH_PX, size=count)
    brightness = rng.uniform(*_BRIGHTNESS, size=(count, 1, 1))
    ink = _render(points, _GLYPHS.segments[glyph], width) * torch.from_numpy(brightness).float()
    images = torch.maximum(ink, _scratches(count, rng)).unsqueeze(1).contiguous()
    return DigitSet(images, torch.from_numpy(labels).long(), torch.from_numpy(angles).float())


def synthetic_digits(
    train_size: int = 5000, test_size: int = 5000, seed: int = DATA_SEED
) -> tuple[DigitSet, DigitSet]:
    """The built-in train and test sets (5,000 each by default).

    Deterministic for a seed; train and test come from independent random
    streams, so test_size never changes the training images and vice versa.

    Args:
        train_size, test_size: images per split, >= 0.
        seed: data seed (not the training seed).

    Returns:
        (train, test) DigitSets.

    Raises:
        ValueError: a negative size.
    """
    for name, size in (("train_size", train_size), ("test_size", test_size)):
        if size < 0:
            raise ValueError(f"{name} must be >= 0, got {size}")
    train_seq, test_seq = np.random.SeedSequence(seed).spawn(2)
    train = render_digits(train_size, np.random.default_rng(train_seq))
    test = render_digits(test_size, np.random.default_rng(test_seq))
    return train, test
