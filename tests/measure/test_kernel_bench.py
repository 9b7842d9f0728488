"""The benchmark's inputs, byte counts and checks, on tiny shapes through the interpreter."""
import pytest
import torch

from swimbench.measure import kernel_bench as kb

from ..helpers import REL_TOL, STATE_TOL


@pytest.mark.parametrize("kernel", kb.KERNELS)
def test_check_reports_errors_within_bounds(kernel):
    case = kb.Case(kernel, 2, 23, d_inner=37, d_state=5, experts=3, top_k=2, dtype="bf16")
    row = kb.check(case, "cpu")
    assert row["case"] == case.label
    assert row["y_vs_naive"] < REL_TOL[torch.bfloat16]
    assert row["state_vs_naive"] < STATE_TOL


def test_inputs_have_the_op_shapes_and_gates_are_convex():
    case = kb.Case("separated", 2, 7, d_inner=37, d_state=5, experts=5, top_k=2, dtype="fp16")
    x = kb.make_inputs(case, "cpu")
    assert x["dt"].shape == (2, 7, 5, 37) and x["A"].shape == (5, 37, 5) and x["u"].dtype == torch.float16
    assert torch.allclose(x["gates"].sum(-1), torch.ones(2, 7)) and ((x["gates"] > 0).sum(-1) == 2).all()
    assert (x["A"] < 0).all()


def test_min_bytes_counts_each_input_once_and_each_output_once():
    scan = kb.Case("dense", 2, 7, d_inner=37, d_state=5)
    x = kb.make_inputs(scan, "cpu")
    y = kb.ours(scan, x)
    assert kb.min_bytes(scan, x) == sum(t.nbytes for t in x.values()) + y.nbytes
    step = kb.Case("swimba-step", 3, 1, d_inner=37, d_state=5, experts=3, top_k=2)
    x = kb.make_inputs(step, "cpu")
    assert kb.min_bytes(step, x) == sum(t.nbytes for t in x.values()) + x["state"].nbytes + x["u"].nbytes


def test_case_rejects_unknown_kernels_and_bad_top_k():
    with pytest.raises(ValueError):
        kb.Case("dense-scan", 1, 8)
    with pytest.raises(ValueError):
        kb.Case("swimba", 1, 8, experts=2, top_k=3)
    assert kb.Case("dense-step", 4, 99).length == 1
