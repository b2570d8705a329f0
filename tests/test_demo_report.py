"""The printed progress table and summary pieces (elu_triton/demo/report.py)."""

import io

from elu_triton.demo import report
from elu_triton.demo.train import ProgressRow


def test_rows_line_up_with_the_header():
    header = report.table_header().splitlines()
    row = report.table_row(ProgressRow(3, 1170, 37.5, 0.01234, 0.9921875, 0.01))
    assert len({len(line) for line in header + [row, report.table_footer()]}) == 1
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "3",
        "1170",
        "37.50",
        "0.0123",
        "99.22%",
        "0.0100",
    ]
    assert "Mini-batch" in header[1] and "Accuracy" in header[2]


def test_printer_writes_the_header_once():
    stream = io.StringIO()
    printer = report.progress_printer(stream)
    printer(ProgressRow(1, 1, 0.1, 2.3, 0.1, 0.01))
    printer(ProgressRow(2, 50, 2.0, 1.0, 0.5, 0.01))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6 and lines[0] == lines[3]
    assert lines[4].split("|")[2].strip() == "1" and lines[5].split("|")[2].strip() == "50"


def test_format_alphas():
    text = report.format_alphas([0.5] * 12, per_line=10)
    assert text.splitlines() == [
        "  ch  0- 9: " + " ".join([" 0.500"] * 10),
        "  ch 10-11: " + " ".join([" 0.500"] * 2),
    ]
