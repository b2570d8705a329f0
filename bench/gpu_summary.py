"""The summary of a GPU check (``bench.gpu_check``): one screen, written as summary.md.

Each step's outcome, the tests' last line, the demo's accuracy and time,
every target of ``targets.py``, judged from the files the steps left in DIR,
and the tables some steps hand over (the per-kernel times, the tuning
candidates side by side).
"""

import json
import tarfile
import time
from pathlib import Path

from . import targets


def load(path: Path) -> dict | None:
    """A step's JSON, or None where it wrote none (failed, skipped, out of time)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _tests_line(path: Path) -> str:
    """pytest's last line ('12 passed, 3 skipped in 4.0s'), or why there is none."""
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return "no tests.txt"
    return lines[-1].strip("= ") if lines else "tests.txt is empty"


def _demo_line(path: Path) -> str:
    """The demo's test accuracy and training time, from the summary.json in demo.tar.gz."""
    try:
        with tarfile.open(path) as tar:
            demo = json.load(tar.extractfile("demo/summary.json"))
    except (OSError, KeyError, ValueError, tarfile.TarError):
        return "no demo summary"
    return (
        f"test accuracy {demo['test_accuracy']:.4f} after {demo['epochs']} epochs; training "
        f"{demo['train_seconds']:.2f} s ({1e3 * demo['seconds_per_iteration']:.2f} ms per "
        f"iteration), warm-up {demo['warmup_seconds']:.2f} s, on {demo['device_name']}"
    )


def summary(args, outcomes: list[dict], total_s: float) -> str:
    """One screen: each step's outcome, then each target of targets.py."""
    report = load(args.out / f"report-{args.kind}.json")
    found = targets.evaluate(report) if report and "results" in report else []
    found += targets.training(load(args.out / f"training-{args.kind}.json"))
    found += targets.host_overhead(load(args.out / f"host-overhead-{args.kind}.json"))
    found += [target for outcome in outcomes for target in outcome["targets"]]
    lines = [
        f"# gpu_check{' --smoke' if args.smoke else ''}: {args.device_name}",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.versions}; "
        f"{total_s:.0f} s in all",
        "",
        "| step | outcome | seconds | file |",
        "| --- | --- | --- | --- |",
        *(
            f"| {o['step']} | {o['status']} | {o['seconds']:.0f} | {o['output']} |"
            for o in outcomes
        ),
        "",
        f"tests: {_tests_line(args.out / 'tests.txt')}",
        "",
        f"demo: {_demo_line(args.out / 'demo.tar.gz')}",
        "",
        "| target | status | detail |",
        "| --- | --- | --- |",
        *(f"| {t.name} | {t.status} | {t.detail} |" for t in found),
    ]
    for outcome in outcomes:  # the steps' own tables (gpu_check.TABLES_IN_SCRATCH)
        if outcome.get("table"):
            lines += ["", *outcome["table"]]
    if args.smoke:
        lines += [
            "",
            "Smoke run: CPU, tiny sizes; CUDA-graph rows skipped (no GPU); timings mean nothing.",
        ]
    return "\n".join(lines) + "\n"
