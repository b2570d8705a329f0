"""``python -m elu_triton``: the environment report for bug reports."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import torch

from elu_triton import __version__, backends, environment


def _run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "elu_triton", *args],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert not result.stderr, result.stderr  # no warnings in a report
    return result.stdout


def test_report_names_versions_and_the_cpu_backend():
    text = _run()
    assert f"elu_triton         {__version__}" in text
    assert f"torch              {torch.__version__}" in text
    assert f"python             {sys.version.split()[0]}" in text
    cpu = backends.backend_for("cpu")  # the child inherits TRITON_INTERPRET, so it agrees
    assert f"backend {cpu.name!r}, {cpu.description}" in text


def test_json_report_is_data():
    report = json.loads(_run("--json"))
    assert report["versions"]["elu_triton"] == __version__
    assert report["versions"]["TRITON_INTERPRET"] == os.environ.get("TRITON_INTERPRET", "unset")
    (cpu,) = [d for d in report["devices"] if d["device"] == "cpu"]
    assert cpu["backend"] == backends.backend_for("cpu").name
    cuda = [d for d in report["devices"] if d["device"].startswith("cuda")]
    assert len(cuda) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_gpu_architecture_cuda_and_rocm(monkeypatch):
    # Without a GPU here: the device properties torch would report, for each vendor.
    served = SimpleNamespace(name="triton", description="Triton kernels")
    monkeypatch.setattr(backends, "backend_for", lambda device: served)
    h100 = SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: h100)
    monkeypatch.setattr(torch.version, "hip", None)
    assert environment._gpu_report(0) == environment.DeviceReport(
        "cuda:0", "NVIDIA H100 80GB HBM3", "sm_90", "triton", "Triton kernels"
    )
    mi300 = SimpleNamespace(name="AMD Instinct MI300X", gcnArchName="gfx942:sramecc+:xnack-")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: mi300)
    monkeypatch.setattr(torch.version, "hip", "6.4.0")
    assert environment._gpu_report(1).arch == "gfx942"
    assert environment.versions()["torch GPU runtime"] == "ROCm 6.4.0"
