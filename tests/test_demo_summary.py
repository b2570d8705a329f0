"""The demo's run summary: summary.json's keys and their order (the run itself: test_demo_cli.py)."""

import dataclasses

from elu_triton.demo.summary import RunSummary

REQUIRED = dict(
    test_accuracy=0.9, train_seconds=1.0, seconds_per_iteration=0.1, warmup_seconds=0.5,
    epochs=1, iterations=10, batch_size=8, learning_rate=0.01, seed=0, device="cpu",
    device_name="CPU", activation_backend="eager PyTorch ops", compiled=False, data="digits",
    train_size=80, test_size=20, alphas=[1.0], torch_version="2.13", triton_version=None,
    initial_alphas=[1.0], example={"index": 0},
)  # fmt: skip


def test_optional_fields_are_left_out_until_filled():
    summary = RunSummary(**REQUIRED)
    written = summary.as_json()
    assert list(written) == [*REQUIRED, "figures"]  # the dataclass's order
    assert written["triton_version"] is None  # an absent Triton is reported, not dropped
    summary.linear_baseline_accuracy, summary.world_size = 0.8, 2
    assert {"linear_baseline_accuracy", "world_size"} <= summary.as_json().keys()
    assert "linear_baseline" not in summary.as_json()


def test_every_field_is_a_summary_key():
    names = [field.name for field in dataclasses.fields(RunSummary)]
    filled = RunSummary(
        **REQUIRED, world_size=2, parameters_identical_across_ranks=True,
        linear_baseline_accuracy=0.8, linear_baseline={"l2": 0.1}, figures=["a.png"],
    )  # fmt: skip
    assert list(filled.as_json()) == names
