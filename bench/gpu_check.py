"""Everything a GPU session measures, in one command, into one flat folder.

    pip install --no-deps --no-build-isolation -e .    # torch and triton already installed
    python -m bench.gpu_check --out DIR                # the first GPU; about 7 minutes
    python -m bench.gpu_check --smoke --out DIR        # the same steps on the CPU, tiny sizes

The install builds with the environment's setuptools: 77 to 81 beside torch
2.11 (bench/README.md); an older one stops with a message naming both.

Steps (``STEPS``), in order, each a child process from the repository root
under its own time limit (a step that fails, crashes or runs out of time
leaves the others running). The full run's limits sum to at most 420 s, so
that a run, a short confirmation and the machine's start-up fit in 15 minutes.

DIR receives at most 8 files, no folders, so that the result copies back in
one step: ``tests.txt``, ``report-<dev>.json``, ``training-<dev>.json``,
``profile.txt``, ``host-overhead-<dev>.json``, ``demo.tar.gz``, ``log.txt``
(every other step's output) and ``summary.md`` (each step's outcome, each
target of ``targets.py``, the profile's per-kernel times of the model's gaps
and the tuning candidates side by side). ``--smoke`` runs every step on the
CPU at tiny sizes (a handful of tests; no CUDA graphs, marked skipped; the
candidates in Triton's interpreter), in under 3 minutes on a 2-core machine.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import targets
from .gpu_summary import load, summary

# The children run as python -m bench.<script>: from the root, where bench is importable.
ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
# The layer's tests that reach the GPU (-k cuda: their CUDA cases): kernels, the op
# and module, graphs, autocast, the contracts every layer keeps.
GPU_TESTS = [
    "tests/test_kernels.py", "tests/test_triton_backend.py", "tests/test_function.py",
    "tests/test_module.py", "tests/test_cuda_graphs.py", "tests/test_autocast.py",
    "tests/test_channels.py", "tests/test_batch_norm.py", "tests/test_batch_norm_ops.py",
    "tests/test_fuse.py", "tests/test_contract_backends.py",
    "tests/test_contract_backward_inputs.py", "tests/test_contract_batched_gradients.py",
    "tests/test_contract_tracing.py", "tests/test_contract_compile.py",
    "tests/test_compiled_backward.py",
]  # fmt: skip
SMOKE_TESTS = [
    "tests/test_module.py",
    "-k",
    "conventions or defaults or device_and_dtype or learns",
]


@dataclass
class Step:
    name: str
    limit_s: int  # full run
    smoke_limit_s: int
    output: str  # the file it leaves in DIR ("" for log.txt only)


# The candidates step took its 60 s from the others: tests 70 -> 60, report
# 90 -> 75, training 75 -> 60, host overhead 20 -> 15, demo 45 -> 30, batch
# norm 25 -> 20, fusion 60 -> 55; the profile's per-kernel table, 20 -> 30.
# The static model's 20 s: report 75 -> 70, fusion 55 -> 50, candidates 60 -> 50.
STEPS = (
    Step("tests", 60, 60, "tests.txt"),
    Step("report", 70, 40, "report-{dev}.json"),
    # Today's kernels compiled on the machine's CPUs, predicted beside the report's
    # measurements and refitted: into report-<dev>.json ("static_model") and the summary.
    Step("static model", 20, 10, ""),
    Step("training", 60, 60, "training-{dev}.json"),
    # Its per-kernel table of the model's gaps: in profile.txt, and in the summary.
    Step("profile", 30, 30, "profile.txt"),
    Step("host overhead", 15, 20, "host-overhead-{dev}.json"),
    Step("demo", 30, 35, "demo.tar.gz"),  # 30 epochs: 2.9 s on an H200 (NOTES.md)
    Step("batch norm", 20, 20, ""),  # (JUDGED_IN_SCRATCH; its table in log.txt)
    Step("second order", 15, 20, ""),  # bench/second_order.py's table, in log.txt
    # IResNet-50 fused against unfused eager and compiled (one compile: ~40 s guessed).
    Step("fusion", 50, 45, ""),
    # The tuning candidates against the defaults, a child per setting (bench/candidates.py):
    # the table in log.txt and the summary; the settings the budget leaves out are marked.
    Step("candidates", 50, 40, ""),
)
FULL_LIMITS_S = [s.limit_s for s in STEPS]
assert sum(FULL_LIMITS_S) <= 420, "a full run must fit 7 minutes"
# bench/test_gpu_check.py gives the smoke run 400 s; the machine's probe and
# the summary need a few.
assert sum(s.smoke_limit_s for s in STEPS) <= 380, "the smoke run must fit its test's timeout"


# Each step's sizes: (full run, --smoke). A budget ends before the step's limit.
SIZES = {
    "report": (
        ["--budget-s", "53"],
        "--cases demo --dtypes fp32 --no-extras --budget-s 15 --threads 1".split(),
    ),
    "training": (
        ["--budget-s", "44", "--min-steps", "10", "--min-seconds", "0.5"],
        "--smoke --dtypes fp32 --min-steps 3 --min-seconds 0 --threads 1 "
        "--compile-backend aot_eager".split(),
    ),
    "profile": ([], ["--cases", "demo", "--kernel-cases", "conv_cl:bwd,mlp:bwd,demo:fwd"]),
    "host overhead": ([], ["--stub", "--rounds", "3", "--calls", "20"]),
    "demo": ([], ["--epochs", "1", "--train-size", "256", "--test-size", "256"]),
    "batch norm": ([], ["--shape", "4", "8", "12", "12"]),
    "second order": ([], ["--shapes", "4,8,12,12", "--runs", "2", "--no-rss"]),
    "fusion": (
        ["--only", "IResNet-50 (nn.PReLU)", "--batch", "32", "--runs", "5", "--compiled"],
        ["--smoke", "--only", "IResNet-50 (nn.PReLU)", "--runs", "1", "--threads", "1"],
    ),
    "candidates": (["--budget-s", "43"], ["--smoke", "--budget-s", "35"]),
    # On the CPU: the CPU's times against H200 predictions, only to run the step's code.
    "static model": ([], ["--gpu", "H200"]),
}


# Steps whose JSON stays in the scratch folder, read into the summary's
# targets: the module that writes it, the targets.py function that judges it.
JUDGED_IN_SCRATCH = {
    "batch norm": ("bench.batch_norm", targets.batch_norm),
    "fusion": ("bench.fusion", targets.fusion),
}


# Steps whose JSON in the scratch folder carries a markdown table for the
# summary (its "table" lines): the per-kernel times, the candidates side by side.
TABLES_IN_SCRATCH = {
    "static model": "The static model's predictions beside the report's measurements",
    "profile": "Per kernel, the model's gaps (profile.txt has each kernel)",
    "candidates": "Tuning candidates against the defaults (launches in log.txt)",
}


def _scratch_json(step: str, work: Path) -> Path:
    return work / f"{step.replace(' ', '-')}.json"


def command(step: str, args, work: Path) -> list[str]:
    """The child command of a step, on args.device, writing into DIR or the scratch folder."""
    if step == "tests":
        tests = SMOKE_TESTS if args.smoke else [*GPU_TESTS, "-k", "cuda"]
        return [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    sizes = SIZES[step][args.smoke]
    dtypes = ["--dtypes", args.dtypes] if args.dtypes and not args.smoke else []
    on = ["--device", args.device]
    if step == "report":
        out = ["--out", str(work / "report"), "--results-md", ""]
        return [PY, "-m", "bench.report", *on, *out, *sizes, *dtypes]
    if step == "training":
        return [PY, "-m", "bench.training_cuda", *on, "--out", str(args.out), *sizes, *dtypes]
    if step == "profile":
        json_path = str(_scratch_json(step, work))
        return [PY, "-m", "bench.profile_step", *on, "--out", str(args.out), "--json", json_path,
                *sizes]  # fmt: skip
    if step == "static model":
        report = str(args.out / f"report-{args.kind}.json")
        return [PY, "-m", "bench.static_model_calibration", "--report", report,
                "--summary-json", str(_scratch_json(step, work)), *sizes]  # fmt: skip
    if step == "candidates":
        return [PY, "-m", "bench.candidates", *on, "--json", str(_scratch_json(step, work)), *sizes]
    if step == "host overhead":
        json_path = str(args.out / f"host-overhead-{args.kind}.json")
        return [PY, "-m", "bench.host_overhead", *on, "--json", json_path, *sizes]
    if step in JUDGED_IN_SCRATCH:
        module = JUDGED_IN_SCRATCH[step][0]
        return [PY, "-m", module, *on, "--json", str(_scratch_json(step, work)), *sizes]
    if step == "second order":
        return [PY, "-m", "bench.second_order", *on, *sizes]
    return [PY, "-m", "elu_triton.demo", *on, "--out", str(work / "demo"), *sizes]


def run_child(command: list[str], limit_s: float, log) -> str:
    """Run one child in its own process group; 'ok', 'exit N', 'crashed (signal)' or 'timed out'."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    log.write(f"\n$ {' '.join(command)}\n")
    log.flush()
    child = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        rc = child.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        return f"timed out after {limit_s:.0f} s"
    if rc < 0:
        return f"crashed ({signal.Signals(-rc).name})"
    return "ok" if rc == 0 else f"exit {rc}"


def scratch_table(step: Step, work: Path) -> list[str]:
    """The summary's table from a TABLES_IN_SCRATCH step's JSON: a title and its lines."""
    if step.name not in TABLES_IN_SCRATCH:
        return []
    found = load(_scratch_json(step.name, work)) or {}
    lines = found.get("table") or ["(no table: the step wrote none)"]
    return [f"### {TABLES_IN_SCRATCH[step.name]}", "", *lines]


def collect(step: Step, args, work: Path) -> list:
    """Move what the step wrote in the scratch folder into DIR; the targets it measured, if any."""
    if step.name == "report":
        found = work / "report" / f"report-{args.kind}.json"
        if found.exists():
            shutil.copy(found, args.out / found.name)
    if step.name == "demo" and (work / "demo").is_dir():
        with tarfile.open(args.out / "demo.tar.gz", "w:gz") as tar:
            for path in sorted((work / "demo").iterdir()):
                if path.suffix in (".json", ".png"):  # not the weights
                    tar.add(path, arcname=f"demo/{path.name}")
    if step.name in JUDGED_IN_SCRATCH:  # no file of its own: DIR holds 8 at most
        return JUDGED_IN_SCRATCH[step.name][1](load(_scratch_json(step.name, work)))
    return []


def run_steps(args) -> list[dict]:
    outcomes = []
    with tempfile.TemporaryDirectory() as scratch, open(args.out / "log.txt", "w") as log:
        work = Path(scratch)
        for step in STEPS:
            limit = step.smoke_limit_s if args.smoke else step.limit_s
            start = time.perf_counter()
            print(f"[{step.name}] up to {limit} s", flush=True)
            if step.name == "tests":
                with open(args.out / "tests.txt", "w") as tests_log:
                    status = run_child(command(step.name, args, work), limit, tests_log)
            else:
                status = run_child(command(step.name, args, work), limit, log)
            measured = collect(step, args, work)
            seconds = time.perf_counter() - start
            output = step.output.format(dev=args.kind)
            exists = output and (args.out / output).exists()
            written = "log.txt" if not output else output if exists else "none"
            outcomes.append({"step": step.name, "status": status, "seconds": seconds,
                             "output": written, "targets": measured,
                             "table": scratch_table(step, work)})  # fmt: skip
            print(f"[{step.name}] {status} in {seconds:.0f} s", flush=True)
    return outcomes


def _describe_machine(args) -> None:
    """The device's name and the versions, asked of a child (this process imports no torch)."""
    probe = (
        "import sys, torch, triton\n"
        "from bench import matrix, timing\n"
        "d = matrix.resolve_device(sys.argv[1])\n"
        "print(d.type); print(timing.device_name(d))\n"
        "print(f'torch {torch.__version__}, triton {triton.__version__}')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [PY, "-c", probe, args.device], cwd=ROOT, capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        sys.exit(f"cannot use device {args.device!r}:\n{done.stderr.strip()[-2000:]}")
    args.kind, args.device_name, args.versions = done.stdout.strip().splitlines()[:3]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name}", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the 8 result files")
    parser.add_argument("--device", default="auto", help="auto (the first GPU), cuda:N or cpu")
    parser.add_argument("--dtypes", default="", help="report and training dtypes (default all)")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, under 3 minutes")
    args = parser.parse_args(argv)
    if args.smoke:
        args.device = "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    _describe_machine(args)
    start = time.perf_counter()
    outcomes = run_steps(args)
    text = summary(args, outcomes, time.perf_counter() - start)
    (args.out / "summary.md").write_text(text)
    print("\n" + text)
    return 0 if all(o["status"] == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
