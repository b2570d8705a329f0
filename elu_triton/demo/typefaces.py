"""Stroke "typefaces" for the synthetic digits: each digit as centre lines.

No font files: every glyph is a few polylines in a unit box (x to the right,
y downwards, the digit filling roughly x in [0.2, 0.8] and y in [0.08, 0.92]).
The renderer (``digits.py``) thickens the centre lines into anti-aliased
strokes after a random warp and affine transform, so one polyline here
stands for a whole family of handwritten-looking images.

Four styles, chosen to differ where people's digits differ: a plain sans
(open 4, curved 2), a typewriter face with serifs (closed 4, flag and foot
on the 1), a one-stroke script (crossed 7, open 4, looped 2, straight-stemmed
9) and a blocky seven-segment face with straight strokes only.
"""

import numpy as np

Polyline = np.ndarray  # (P, 2) float64 vertices in the unit box, P >= 2


def arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float) -> Polyline:
    """Elliptic arc from angle ``start`` to ``stop`` (degrees, counterclockwise as seen
    on screen, 0 = right, 90 = up), as a polyline with a vertex every 20 degrees or less."""
    steps = max(2, int(np.ceil(abs(stop - start) / 20.0)))
    angles = np.deg2rad(np.linspace(start, stop, steps + 1))
    return np.stack([cx + rx * np.cos(angles), cy - ry * np.sin(angles)], axis=1)


def line(*points: tuple[float, float]) -> Polyline:
    """Polyline through the given (x, y) points."""
    return np.asarray(points, dtype=np.float64)


def path(*pieces: Polyline) -> Polyline:
    """One connected stroke: the pieces joined end to start, in order."""
    return np.concatenate(pieces, axis=0)


def _sans() -> list[list[Polyline]]:
    return [
        [arc(0.5, 0.5, 0.28, 0.42, 90, 450)],
        [line((0.4, 0.2), (0.55, 0.08), (0.55, 0.92))],
        [path(arc(0.5, 0.3, 0.27, 0.22, 160, -30), line((0.22, 0.92), (0.8, 0.92)))],
        [arc(0.5, 0.29, 0.25, 0.21, 150, -90), arc(0.5, 0.71, 0.28, 0.21, 90, -150)],
        [line((0.66, 0.92), (0.66, 0.08), (0.2, 0.66), (0.82, 0.66))],
        [path(line((0.76, 0.08), (0.31, 0.08)), arc(0.5, 0.66, 0.28, 0.26, 130, -150))],
        [path(arc(0.64, 0.6, 0.42, 0.52, 100, 180), arc(0.5, 0.68, 0.28, 0.24, 180, 540))],
        [line((0.2, 0.08), (0.8, 0.08), (0.4, 0.92))],
        [arc(0.5, 0.28, 0.22, 0.2, -90, 270), arc(0.5, 0.71, 0.27, 0.22, 90, 450)],
        [path(arc(0.5, 0.32, 0.27, 0.24, 0, 360), arc(0.36, 0.4, 0.42, 0.52, 0, -80))],
    ]


def _typewriter() -> list[list[Polyline]]:
    return [
        [arc(0.5, 0.5, 0.24, 0.42, 90, 450)],
        [line((0.3, 0.2), (0.52, 0.08), (0.52, 0.92)), line((0.3, 0.92), (0.74, 0.92))],
        [
            path(
                arc(0.5, 0.3, 0.26, 0.22, 170, -20),
                arc(0.22, 0.375, 0.524, 0.545, 0, -90),
                line((0.8, 0.92), (0.8, 0.8)),
            )
        ],
        [
            path(
                line((0.25, 0.08), (0.74, 0.08), (0.46, 0.4)), arc(0.5, 0.66, 0.28, 0.26, 100, -150)
            )
        ],
        [
            line((0.62, 0.92), (0.62, 0.08), (0.18, 0.68), (0.84, 0.68)),
            line((0.48, 0.92), (0.76, 0.92)),
        ],
        [
            path(
                line((0.74, 0.02), (0.74, 0.08), (0.3, 0.08), (0.27, 0.44)),
                arc(0.5, 0.65, 0.29, 0.27, 135, -150),
            )
        ],
        [line((0.72, 0.08), (0.3, 0.58)), arc(0.5, 0.7, 0.26, 0.22, 0, 360)],
        [line((0.2, 0.2), (0.2, 0.08), (0.8, 0.08), (0.46, 0.92))],
        [arc(0.5, 0.27, 0.2, 0.19, -90, 270), arc(0.5, 0.7, 0.26, 0.23, 90, 450)],
        [arc(0.5, 0.3, 0.26, 0.22, 0, 360), line((0.76, 0.3), (0.7, 0.92))],
    ]


def _figure_eight() -> Polyline:
    # One stroke crossing itself in the middle: (sin 2t, -cos t) traces an 8.
    t = np.linspace(0.0, 2.0 * np.pi, 37)
    return np.stack([0.5 + 0.24 * np.sin(2 * t), 0.5 - 0.42 * np.cos(t)], axis=1)


def _script() -> list[list[Polyline]]:
    return [
        [arc(0.52, 0.5, 0.3, 0.42, 80, 440)],
        [line((0.56, 0.08), (0.44, 0.92))],
        [
            path(
                arc(0.48, 0.3, 0.26, 0.22, 150, -20),
                line((0.3, 0.86)),
                arc(0.36, 0.84, 0.08, 0.08, 180, 450),
                line((0.82, 0.9)),
            )
        ],
        [
            path(
                arc(0.48, 0.28, 0.24, 0.2, 160, -90),
                line((0.42, 0.5)),
                arc(0.48, 0.71, 0.28, 0.21, 90, -160),
            )
        ],
        [line((0.3, 0.08), (0.2, 0.58), (0.82, 0.56)), line((0.66, 0.22), (0.62, 0.92))],
        [
            line((0.34, 0.08), (0.3, 0.44)),
            path(arc(0.5, 0.66, 0.28, 0.26, 140, -160)),
            line((0.33, 0.09), (0.78, 0.06)),
        ],
        [path(arc(0.66, 0.6, 0.42, 0.52, 80, 190), arc(0.5, 0.7, 0.26, 0.22, 190, 520))],
        [line((0.22, 0.12), (0.78, 0.1), (0.42, 0.92)), line((0.36, 0.52), (0.72, 0.5))],
        [_figure_eight()],
        [arc(0.48, 0.3, 0.25, 0.22, 10, 370), line((0.73, 0.26), (0.68, 0.92))],
    ]


# Seven-segment strokes: a top, b upper right, c lower right, d bottom,
# e lower left, f upper left, g middle; corners at x = 0.25 / 0.75.
_SEGMENT_ENDS = {
    "a": ((0.25, 0.1), (0.75, 0.1)), "b": ((0.75, 0.1), (0.75, 0.5)),
    "c": ((0.75, 0.5), (0.75, 0.9)), "d": ((0.25, 0.9), (0.75, 0.9)),
    "e": ((0.25, 0.5), (0.25, 0.9)), "f": ((0.25, 0.1), (0.25, 0.5)),
    "g": ((0.25, 0.5), (0.75, 0.5)),
}  # fmt: skip
_SEGMENTS_PER_DIGIT = [
    "abcdef",
    "",
    "abged",
    "abgcd",
    "fgbc",
    "afgcd",
    "afgedc",
    "abc",
    "abcdefg",
    "abfgcd",
]


def _segment(name: str, gap: float = 0.05) -> Polyline:
    # Shortened at both ends, as on a display: the segments never merge into a blob.
    (x0, y0), (x1, y1) = _SEGMENT_ENDS[name]
    dx, dy = np.sign(x1 - x0) * gap, np.sign(y1 - y0) * gap
    return line((x0 + dx, y0 + dy), (x1 - dx, y1 - dy))


def _blocky() -> list[list[Polyline]]:
    glyphs = [[_segment(s) for s in segments] for segments in _SEGMENTS_PER_DIGIT]
    glyphs[1] = [line((0.34, 0.26), (0.55, 0.1), (0.55, 0.9))]  # a centred 1, not segments b+c
    return glyphs


TYPEFACES: dict[str, list[list[Polyline]]] = {
    "sans": _sans(),
    "typewriter": _typewriter(),
    "script": _script(),
    "blocky": _blocky(),
}
"""Style name -> ten glyphs (digits 0..9), each a list of polylines."""
