"""bench.codegen_identity's comparison, on hand-made compiled cases."""

from .codegen_identity import compare


def _item(activation: str | None, asm: str) -> dict:
    case = {"target": "sm_90", "kernel": "bn_forward", "dtype": "float32",
            "layout": "channel_per_row", "compute_dalpha": True}  # fmt: skip
    if activation:
        case["activation"] = activation
    return {"case": case, "asm": asm, "n_regs": 40, "local_bytes": 0, "accesses": []}


def test_each_activations_case_is_compared_with_its_own_twin():
    base = [_item("learnable_elu", "ex2"), _item("prelu", "mul")]
    head = [_item("learnable_elu", "ex2"), _item("prelu", "mul")]
    counts, differences = compare(base, head)
    assert counts == {"sm_90": [2, 0, 0, 0]} and differences == []


def test_a_checkout_from_before_the_activation_parameter_twins_the_learnable_elu():
    counts, differences = compare([_item(None, "ex2")], [_item("learnable_elu", "ex2"),
                                                         _item("prelu", "mul")])  # fmt: skip
    assert counts == {"sm_90": [1, 0, 1, 0]} and differences == []
