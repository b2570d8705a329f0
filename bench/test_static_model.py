"""The static model: its SASS reading, its limits, and the CI's guard on its predictions."""

import json

import pytest

from . import sass, static_model, static_model_calibration, targets
from .gpus import GPUS
from .static_model import Constants, KernelCode, predict_kernel

# A hand-written sm_90 fragment: two loads issued together, the first use of
# one ends the trip; a third load, used at once, is a trip of its own.
SASS = """
        /*0000*/                   LDC R1, c[0x0][0x28] ;
        /*0010*/               @P1 LDG.E.128 R8, desc[UR4][R12.64] ;
        /*0020*/                   LDG.E R0, desc[UR4][R14.64] ;
        /*0030*/                   FMNMX R2, RZ, R3, PT ;
        /*0040*/                   SHF.L.U32 R12, R9, 0x10, RZ ;
        /*0050*/                   F2I.FTZ.FLOOR.NTZ R13, R13 ;
        /*0060*/                   NOP ;
        /*0070*/                   LDG.E.64 R4, desc[UR4][R2.64] ;
        /*0080*/                   FFMA R5, R5, R4, R0 ;
        /*0090*/                   STG.E.128 desc[UR4][R8.64], R4 ;
        /*00a0*/                   EXIT ;
        /*00b0*/                   BRA 0xb0;
"""


def test_sass_reading_counts_executed_instructions_by_pipe():
    code = sass.executed(SASS)
    assert [i.base for i in code][-1] == "EXIT"  # the BRA after it and the NOP are not run
    counts = sass.pipe_counts(code)
    assert counts["issue"] == 10
    assert (counts["alu"], counts["fma"], counts["xu"], counts["memory"]) == (2, 1, 1, 5)
    assert sass.conversions(code) == 1


def test_a_trip_ends_where_a_pending_loads_register_is_read():
    trips = sass.load_round_trips(sass.executed(SASS))
    # R9 (of R8..R11) is read at 0x40: the first two loads are one trip of 20 bytes.
    assert trips == sass.Trips(2, (20, 8))


def _code(**changes) -> KernelCode:
    base = dict(n_regs=32, shared_bytes=0, num_warps=8, programs=132 * 8 * 10, block_r=1,
                block_k=4096, counts={"issue": 16 * 20, "alu": 16 * 4, "xu": 16},
                conversions=16, trips=1, bytes_per_trip=(64,))  # fmt: skip
    return KernelCode(**{**base, **changes})


def test_occupancy_follows_registers_warps_and_shared_memory():
    h200 = GPUS["H200"]
    assert static_model.blocks_per_sm(_code(), h200) == 8  # 64 warps / 8
    assert static_model.blocks_per_sm(_code(n_regs=64), h200) == 4  # 65536 / (64*256)
    assert static_model.blocks_per_sm(_code(n_regs=65), h200) == 3  # 72 per thread allocated
    assert static_model.blocks_per_sm(_code(shared_bytes=100_000), h200) == 2


def test_each_limit_binds_where_it_is_largest():
    h200, constants = GPUS["H200"], Constants(1000.0, 4.0)
    bytes_moved = 132 * 8 * 10 * 4096 * 4
    fast = predict_kernel(_code(), bytes_moved, h200, constants)
    assert fast.limit == "bandwidth"
    assert fast.us >= fast.bandwidth_us
    busy = predict_kernel(_code(counts={"issue": 16 * 200}), bytes_moved, h200, constants)
    assert busy.limit == "issue" and busy.us > fast.us
    slow = predict_kernel(_code(trips=20), bytes_moved, h200, constants)
    assert slow.limit == "latency"
    # 10 waves of 20 trips of 1 us, and the other limits add a little (p = 4).
    assert slow.latency_us == pytest.approx(200.0)
    assert 200.0 < slow.us < 1.05 * 200.0


def test_targets_judge_large_cases_and_every_case_against_the_start():
    predicted = {
        "large/forward/bfloat16/channel_per_row": 0.91,
        "large/backward/float16/channel_per_row": 0.84,
        "bn_large/bn_dx/bfloat16/channel_per_row": 0.75,
        "bn_large/bn_reduce/float32/channel_per_column": 0.90,
        "conv/forward/float32/channel_per_row": 0.50,
    }
    start = dict(predicted, **{"conv/forward/float32/channel_per_row": 0.60})
    status = {t.name: t.status for t in targets.static_model(predicted, start)}
    assert status["model: 16-bit forward, large cases"] == "PASS"
    assert status["model: 16-bit backward, large cases"] == "FAIL"
    assert status["model: fused batch norm passes, bfloat16, large"] == "PASS"
    assert status["model: no case lower than at the start"] == "FAIL"


@pytest.mark.e2e
def test_no_case_is_predicted_2_points_below_its_landed_value():
    """The CI's regression guard: every case's H200 prediction under the installed
    Triton stays within 2 points of the file's (a guard on the code, not a GPU claim)."""
    landed = json.loads(static_model.LANDED.read_text())
    release = static_model.triton_release()
    if release not in landed:
        pytest.skip(f"no landed predictions for Triton {release}: python -m bench.static_model "
                    "--landed writes them")  # fmt: skip
    cases = static_model.model_cases()
    predicted = static_model.shares(
        static_model.predict_all(cases, GPUS["H200"], static_model.calibrated())
    )
    assert set(predicted) == set(landed[release]), "the model's cases changed: rerun --landed"
    lower = {k: (v, landed[release][k]) for k, v in predicted.items()
             if v < landed[release][k] - 0.02}  # fmt: skip
    assert not lower, f"predicted 2+ points below landed (now, landed): {lower}"


def test_a_new_runs_report_gets_todays_predictions_beside_its_measurements(tmp_path):
    """What the GPU check does after its report step: predict, compare, refit, store."""
    report = json.loads(static_model_calibration.REPORT.read_text())
    keep = {("large", "fp32", "fwd"), ("demo", "fp32", "fwd")}
    report["results"] = [r for r in report["results"]
                         if (r["case"], r["dtype"], r["mode"]) in keep]  # fmt: skip
    path = tmp_path / "report-cuda.json"
    path.write_text(json.dumps(report))
    assert static_model_calibration.judge_run(path) == 0
    judged = json.loads(path.read_text())["static_model"]
    assert judged["gpu"] == "NVIDIA H200"
    [row] = judged["cases"]  # demo is the host floor, not a case
    assert (row["case"], row["measured_us"]) == ("large", pytest.approx(254.464, abs=0.01))
    assert row["predicted_us"] == pytest.approx(row["measured_us"], rel=0.15)
    assert judged["refit"]["cases"][0]["error"] == pytest.approx(0.0, abs=0.05)


def test_the_report_names_the_gpu_whose_facts_the_model_takes():
    report = {"environment": {"device": "NVIDIA H100 80GB HBM3", "multiprocessors": 132},
              "copy_bandwidth": {"GBps": 3000.0}}  # fmt: skip
    gpu = static_model_calibration.gpu_of(report)
    assert (gpu.name, gpu.copy_gbps) == ("NVIDIA H100 SXM", 3000.0)
    report["environment"]["device"] = "NVIDIA A100-SXM4-80GB"
    with pytest.raises(ValueError, match="A100"):
        static_model_calibration.gpu_of(report)
