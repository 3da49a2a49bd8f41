import pytest

from microplex_assets.source_plan.plan import plan_sources
from tests.frames import tiny_scaffold


def test_real_source_beats_synthetic_and_reasons_are_given():
    real = tiny_scaffold(households=10)
    real.source, real.provenance = "real_one", {"kind": "real"}
    synthetic = tiny_scaffold(households=50)
    synthetic.source = "synthetic_one"
    plan = plan_sources({"real_one": real, "synthetic_one": synthetic})
    assert plan.scaffold == "real_one"
    assert plan.donors == ["synthetic_one"]
    assert any("kind=real" in reason for reason in plan.reasons)
    assert {"real_one", "synthetic_one"} <= set(plan.coverage.columns)


def test_a_source_without_weights_cannot_be_scaffold():
    frame = tiny_scaffold(households=5)
    frame.tables["household"] = frame.tables["household"].drop(columns="household_weight")
    with pytest.raises(ValueError, match="tiny: lacks household_weight"):
        plan_sources({"tiny": frame})
