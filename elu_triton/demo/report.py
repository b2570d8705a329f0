"""What the demo prints: the progress table and the closing summary.

The table follows the verbose output of the original walkthrough's trainer
(one row on the first iteration, every 50th and the last), with the elapsed
time in seconds, since a whole run takes well under a minute.
"""

from collections.abc import Callable
from typing import TextIO

from .train import ProgressRow

_COLUMNS = [  # (heading line 1, heading line 2, width)
    ("Epoch", "", 7),
    ("Iteration", "", 11),
    ("Time Elapsed", "(seconds)", 14),
    ("Mini-batch", "Loss", 12),
    ("Mini-batch", "Accuracy", 12),
    ("Base Learning", "Rate", 15),
]


def _rule(char: str) -> str:
    return "|" + char * (sum(w + 2 for _, _, w in _COLUMNS) + len(_COLUMNS) - 1) + "|"


def table_header() -> str:
    """The heading lines of the progress table, framed by rules."""
    line1 = "|".join(f" {h:^{w}} " for h, _, w in _COLUMNS)
    line2 = "|".join(f" {h:^{w}} " for _, h, w in _COLUMNS)
    return "\n".join([_rule("="), f"|{line1}|", f"|{line2}|", _rule("=")])


def table_row(row: ProgressRow) -> str:
    """One progress line, e.g. ``|       1 |           1 |  0.05 | 2.3026 | 10.16% | 0.0100 |``."""
    cells = [
        f"{row.epoch:d}",
        f"{row.iteration:d}",
        f"{row.seconds:.2f}",
        f"{row.loss:.4f}",
        f"{100 * row.accuracy:.2f}%",
        f"{row.learning_rate:.4f}",
    ]
    return "|" + "|".join(f" {c:>{w}} " for c, (_, _, w) in zip(cells, _COLUMNS)) + "|"


def table_footer() -> str:
    """The closing rule of the table."""
    return _rule("=")


def progress_printer(stream: TextIO | None = None) -> Callable[[ProgressRow], None]:
    """A train() callback that prints the header before the first row, then each row."""
    started = False

    def on_progress(row: ProgressRow) -> None:
        nonlocal started
        if not started:
            print(table_header(), file=stream, flush=True)
            started = True
        print(table_row(row), file=stream, flush=True)

    return on_progress


def format_alphas(alphas: list[float], per_line: int = 10) -> str:
    """Alphas as indented lines of ``per_line`` values with 3 decimals."""
    lines = []
    for start in range(0, len(alphas), per_line):
        chunk = alphas[start : start + per_line]
        lines.append(
            f"  ch {start:2d}-{start + len(chunk) - 1:2d}: " + " ".join(f"{a:6.3f}" for a in chunk)
        )
    return "\n".join(lines)
