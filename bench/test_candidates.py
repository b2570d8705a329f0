"""bench.candidates: the child's records and the side-by-side table, without a GPU.

The whole step (every setting in its own child, under the interpreter) runs
in the GPU check's smoke run (``test_gpu_check.py``); here one child's work
runs in this process, and the table is rendered from records made by hand.
"""

import argparse

import pytest

candidates = pytest.importorskip("bench.candidates")


def test_a_child_measures_every_case_dtype_and_mode_checked():
    args = argparse.Namespace(child="default", device="cpu", smoke=True)
    records = candidates.run_child(args)
    expected = {(c, d, m) for c, m in candidates.MEASURED for d in candidates.SMOKE_DTYPES}
    assert {(r["case"], r["dtype"], r["mode"]) for r in records} == expected
    for record in records:
        assert "error" not in record, record
        assert record["ms"] > 0 and record["same_as_default"] and "warps" in record["launch"]


def _record(setting, ms, same=False, provider="elu_triton", mode="bwd"):
    return {"setting": setting, "case": "large_cl", "dtype": "bf16", "mode": mode,
            "provider": provider, "launch": "32x128, 8 warps, partials 256x16384",
            "same_as_default": same, "ms": ms, "pct_copy": None if ms is None else 40.0}  # fmt: skip


def test_table_sets_each_setting_beside_the_default():
    records = [
        _record("default", 0.5),
        _record("finish by mv", 0.4),
        _record("16-bit tiles of 2048", None, same=True),
        {**_record("8 rows per column tile", None), "error": "AssertionError: dalpha off"},
        _record("compiled, triton_op backward", 0.3, provider="elu_triton compiled",
                mode="fwd+bwd"),
        _record("compiled, triton_op backward", 0.6, provider="compiled", mode="fwd+bwd"),
        {"setting": "whole rows up to 1024", "not_run": "time budget spent"},
    ]  # fmt: skip
    table = "\n".join(candidates.render(records))
    assert "| large_cl | bf16 | bwd | elu_triton | 0.5 ms, 40% | 0.4 ms, 40% (0.80x) |" in table
    assert "= default" in table and "error: AssertionError: dalpha off" in table
    # The compiled candidate against the compiled composite measured beside it.
    assert "| elu_triton compiled |  |  |  |  | 0.3 ms, 40% (0.50x) |" in table
    assert "- whole rows up to 1024: not run, time budget spent" in table


def test_children_get_the_settings_switches_and_no_others(monkeypatch):
    monkeypatch.setenv("ELU_TRITON_TUNING", "num_warps=2")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    setting = candidates.BY_NAME["finish by mv"]
    env = candidates._child_env(setting, smoke=False)
    assert env["ELU_TRITON_DALPHA_FINISH"] == "mv"
    assert "ELU_TRITON_TUNING" not in env and "TRITON_INTERPRET" not in env
    assert candidates._child_env(setting, smoke=True)["TRITON_INTERPRET"] == "1"
