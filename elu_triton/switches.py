"""Tuning candidates as switches: environment variables, read once when this module is imported.

The one GPU run so far left gaps that a static model of the kernels cannot
explain (``bench/NOTES.md``): the channel-per-column backward and the
forward of 14x14 maps. Each candidate that might close one is a switch
here, so that a GPU run measures the defaults and the candidates side by
side (``python -m bench.candidates``, a step of ``bench.gpu_check``) before
any of them becomes the default. Unset, a switch leaves today's launches,
code path and results as they are.

| variable | values | what it changes |
| --- | --- | --- |
| ``ELU_TRITON_TUNING`` | ``[SIZE:]field=value,...`` entries joined by ``;`` | fields of the ``triton_config.Tuning`` rows, for inputs of SIZE-byte elements (every size without SIZE): ``tile_elements``, ``tile_max_bytes``, ``num_warps``, ``column_min_rows``, ``whole_row_max`` |
| ``ELU_TRITON_DALPHA_FINISH`` | ``sum`` (default), ``mv`` | how the activation's backward sums its dalpha partials: ``partials.sum(1)``, or ``torch.mv(partials, ones)`` (a GEMV) |
| ``ELU_TRITON_COMPILED_BACKWARD`` | ``composite`` (default), ``triton_op`` | under ``torch.compile``, the backward: the reference composite's, or the fused Triton backward kernel as a ``torch.library.triton_op`` |

They are read here and nowhere else, once: the host path of a call never
asks the environment. Set them before ``import elu_triton``; one process
measures one setting (``bench.candidates`` starts a child per setting). A
malformed value raises ValueError at import, naming the variable.
"""

import os
from collections.abc import Mapping

# The Tuning fields ELU_TRITON_TUNING may set, each with the least value it takes.
TUNING_FIELDS = {
    "tile_elements": 1,
    "tile_max_bytes": 1,
    "num_warps": 1,
    "column_min_rows": 1,
    "whole_row_max": 0,
}
# Fields whose values index tl.arange blocks or warps: powers of two only.
_POWERS_OF_TWO = ("tile_elements", "tile_max_bytes", "num_warps", "column_min_rows")
ELEMENT_SIZES = (1, 2, 4, 8)
DALPHA_FINISHES = ("sum", "mv")
COMPILED_BACKWARDS = ("composite", "triton_op")


def parse_tuning(text: str) -> dict[int | None, dict[str, int]]:
    """ELU_TRITON_TUNING's overrides: {element size or None (every size): {field: value}}.

    "2:num_warps=4,tile_elements=2048;column_min_rows=64" gives
    {2: {"num_warps": 4, "tile_elements": 2048}, None: {"column_min_rows": 64}}.

    Raises:
        ValueError: an unknown field or size, a value that is not an integer,
            below the field's least or not a power of two.
    """
    overrides: dict[int | None, dict[str, int]] = {}
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        size_text, _, fields_text = entry.rpartition(":")
        size = _element_size(size_text.strip()) if size_text else None
        fields = overrides.setdefault(size, {})
        for item in filter(None, (i.strip() for i in fields_text.split(","))):
            name, _, value = (part.strip() for part in item.partition("="))
            fields[name] = _field_value(name, value)
    return overrides


def _element_size(text: str) -> int:
    if not text.isdigit() or int(text) not in ELEMENT_SIZES:
        raise ValueError(
            f"ELU_TRITON_TUNING: element size {text!r} is not one of {ELEMENT_SIZES} (bytes)"
        )
    return int(text)


def _field_value(name: str, text: str) -> int:
    if name not in TUNING_FIELDS:
        raise ValueError(
            f"ELU_TRITON_TUNING: unknown field {name!r}; fields: {list(TUNING_FIELDS)}"
        )
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"ELU_TRITON_TUNING: {name}={text!r} is not an integer") from None
    if value < TUNING_FIELDS[name] or (name in _POWERS_OF_TWO and value & (value - 1)):
        least = TUNING_FIELDS[name]
        kind = "a power of two" if name in _POWERS_OF_TWO else f"an integer >= {least}"
        raise ValueError(f"ELU_TRITON_TUNING: {name}={value} must be {kind}")
    return value


def tuning_overrides(
    overrides: Mapping[int | None, Mapping[str, int]], element_size: int
) -> dict[str, int]:
    """The fields set for element_size: those for every size, then the size's own over them."""
    return {**overrides.get(None, {}), **overrides.get(element_size, {})}


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """The variable's value, or the first choice (the default) where it is unset or empty."""
    value = environ.get(name, "").strip() or choices[0]
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {list(choices)}")
    return value


VARIABLES = ("ELU_TRITON_TUNING", "ELU_TRITON_DALPHA_FINISH", "ELU_TRITON_COMPILED_BACKWARD")
# The switches set in this process, as given, read once: for reports ({} by default).
SET = {name: os.environ[name] for name in VARIABLES if os.environ.get(name, "").strip()}

TUNING = parse_tuning(SET.get("ELU_TRITON_TUNING", ""))
DALPHA_FINISH = _choice(SET, "ELU_TRITON_DALPHA_FINISH", DALPHA_FINISHES)
COMPILED_BACKWARD = _choice(SET, "ELU_TRITON_COMPILED_BACKWARD", COMPILED_BACKWARDS)
