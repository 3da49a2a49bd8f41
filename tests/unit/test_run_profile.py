"""The run profile names every provider with its kind, so a synthetic stand-in never hides."""

from __future__ import annotations

import pytest

from microplex_assets.partitions import cell_from_partition_key
from microplex_assets.run_profile.profile import resolve_run_profile
from microplex_resources.build_settings import BuildSettings

US = cell_from_partition_key("US|national")


def settings(**overrides) -> dict:
    return {**BuildSettings().model_dump(), **overrides}


def test_default_profile_labels_each_embedded_source_real_or_synthetic():
    profile = resolve_run_profile(settings(), US)
    kinds = {p["source"]: (p["role"], p["kind"]) for p in profile["providers"]}
    assert kinds["cps_taxcalc"] == ("scaffold", "real")
    assert kinds["synthetic_puf"] == ("donor", "synthetic")
    assert kinds["forbes_400_2024"] == ("spine", "real")
    assert profile["donors"] == ["synthetic_puf"]
    assert profile["donor_integration"]["enabled"]
    assert not profile["donor_integration"]["ablation"]  # opt-in: one more simulation
    assert profile["donor_integration"]["self_employment"] == "donor"  # Schedule C losses
    assert profile["spine"] == {"enabled": True, "source": "forbes_400_2024"}


def test_configured_files_replace_the_embedded_ones():
    profile = resolve_run_profile(
        settings(
            puf_path="puf_2015.csv",
            top_wealth_list_path="forbes.csv",
            survey_files={"acs_pums": ["psam_p.csv", "psam_h.csv"]},
            donor_ablation=True,
            donor_imputes_self_employment=True,
        ),
        US,
    )
    kinds = {p["source"]: (p["role"], p["kind"]) for p in profile["providers"]}
    assert kinds["irs_puf"] == ("donor", "real")
    assert kinds["forbes_list"] == ("spine", "real")
    assert kinds["acs_pums"][1] == "real"
    assert profile["donors"] == ["irs_puf", "acs_pums"]
    assert profile["donor_integration"]["ablation"]
    assert profile["donor_integration"]["self_employment"] == "donor"


def test_self_employment_source_keeps_reported_amounts_only_with_the_donor():
    both = settings(donor_imputes_self_employment=True, donor_self_employment_keeps_reported=True)
    assert resolve_run_profile(both, US)["donor_integration"]["self_employment"] == (
        "donor_where_unreported"
    )
    scaffold = settings(donor_imputes_self_employment=False)
    assert resolve_run_profile(scaffold, US)["donor_integration"]["self_employment"] == "scaffold"
    alone = settings(donor_imputes_self_employment=False, donor_self_employment_keeps_reported=True)
    with pytest.raises(ValueError, match="donor_imputes_self_employment"):
        resolve_run_profile(alone, US)


def test_spine_off_drops_its_provider():
    profile = resolve_run_profile(settings(spine=False), US)
    assert all(p["role"] != "spine" for p in profile["providers"])
    assert profile["spine"]["enabled"] is False


def test_suite_slice_size_is_a_setting_and_must_be_positive():
    assert resolve_run_profile(settings(), US)["microsim_benchmarks"]["slice_households"] == 5_000
    small = resolve_run_profile(settings(microsim_slice_households=800), US)
    assert small["microsim_benchmarks"]["slice_households"] == 800
    with pytest.raises(ValueError, match="microsim_slice_households must be at least 1"):
        resolve_run_profile(settings(microsim_slice_households=0), US)
