"""python -m bench.gpu_check --smoke end to end: every step runs, and DIR holds what a GPU run would.

About 2 minutes on a 2-core CPU. It runs as a child process with
TRITON_INTERPRET unset (gpu_check unsets it for its own children too), so it
also runs under ``TRITON_INTERPRET=1 pytest bench``.
"""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # runs the whole GPU check (smoke sizes) in a subprocess

ROOT = Path(__file__).resolve().parents[1]
EXPECTED_FILES = {
    "tests.txt", "report-cpu.json", "training-cpu.json", "profile.txt",
    "host-overhead-cpu.json", "demo.tar.gz", "log.txt", "summary.md",
}  # fmt: skip


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gpu_check")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--smoke", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return out


def test_writes_the_eight_files_and_no_folder(smoke_dir):
    assert {p.name for p in smoke_dir.iterdir()} == EXPECTED_FILES
    assert all(p.is_file() for p in smoke_dir.iterdir())


def test_summary_lists_every_step_ok_and_every_target(smoke_dir):
    from . import gpu_check

    text = (smoke_dir / "summary.md").read_text()
    for step in gpu_check.STEPS:
        assert f"| {step.name} | ok |" in text, text
    assert "training bench: every configuration's loss falls" in text
    assert "host cost, forward+backward" in text
    assert "demo: test accuracy" in text
    assert "| fused batch norm: activation memory <= 0.55x the pair's | PASS |" in text
    assert "passed" in (smoke_dir / "tests.txt").read_text()


def test_summary_holds_the_per_kernel_table_and_the_candidates_side_by_side(smoke_dir):
    from . import candidates

    text = (smoke_dir / "summary.md").read_text()
    assert "### Per kernel, the model's gaps" in text
    assert "| conv_cl | fp32 | bwd |" in text and "| mlp | bf16 | bwd |" in text
    assert "## Per kernel: our kernel, the dalpha finish" in (smoke_dir / "profile.txt").read_text()
    assert "### Tuning candidates against the defaults" in text
    header = next(
        line for line in text.splitlines() if line.startswith("| case | dtype | mode | provider |")
    )
    for index, setting in enumerate(candidates.SETTINGS):
        if setting.compiled:
            continue
        ran = f"| {setting.name} |" in header
        # The first three at least; on a loaded machine the budget may leave later ones out.
        assert ran or (index > 2 and f"{setting.name}: not run, time budget spent" in text), header
    assert "compiled, triton_op backward: not run, needs a GPU" in text
    assert "error" not in text.split("### Tuning candidates")[1]


def test_training_rows_trained_and_graphs_are_marked_skipped(smoke_dir):
    result = json.loads((smoke_dir / "training-cpu.json").read_text())
    assert {"date", "device", "torch", "triton"} <= result["environment"].keys()
    rows = result["rows"]
    eager = [r for r in rows if r["mode"] == "eager"]
    assert {r["network"] for r in eager} == {"resnet18", "demo", "mlp"}
    assert {r["activation"] for r in eager} == {"elu_triton", "prelu", "elu_fixed", "bn_fused"}
    for row in eager:
        assert row["ms"] > 0 and row["ms_spread"] >= 0, row
        assert row["loss_last"] < row["loss_first"], row
    graphed = [r for r in rows if r["mode"] == "cuda graph"]
    assert graphed and all(r["ms"] is None and "skipped" in r["error"] for r in graphed)


def test_report_profile_host_and_demo_hold_their_results(smoke_dir):
    report = json.loads((smoke_dir / "report-cpu.json").read_text())
    timed = [r for r in report["results"] if r.get("ms") is not None]
    assert any(r["provider"] == "elu_triton" for r in timed), report["results"]
    profile = (smoke_dir / "profile.txt").read_text()
    assert "## demo" in profile and "host synchronization" in profile
    host = json.loads((smoke_dir / "host-overhead-cpu.json").read_text())
    assert host["stub"] and host["us"]["min"]["forward+backward"]["elu_triton"] > 0
    with tarfile.open(smoke_dir / "demo.tar.gz") as tar:
        names = tar.getnames()
    assert "demo/summary.json" in names and "demo/history.json" in names
