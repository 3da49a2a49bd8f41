"""Build-wide settings shared by every stage, set through Dagster resource config."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from microplex_assets.constants import ECPS_L0_LAMBDA, SUITE_SLICE_HOUSEHOLDS


class BuildSettings(ConfigurableResource):
    """What a build is asked to produce; the run profile resolves it per partition.

    Kept as one resource so the UI launchpad, the Makefile and the tests all set the
    same fields (`resources.build_settings.config`).
    """

    year: int = Field(default=2024, description="Dataset year: amounts are uprated to it.")
    national_households: int = Field(
        default=40_000, description="Households in the national sample (eCPS scale)."
    )
    seed: int = Field(default=1456, description="Seed for every random draw in the build.")
    synthesis_backend: str = Field(
        default="seed_passthrough", description="Stage-5 backend that makes the candidate."
    )
    calibration_backend: str = Field(
        default="microplex",
        description="Calibration backend: 'microplex' (torch solver, epoch chosen by held-out "
        "loss) or 'none' (publish the sample's design weights, labelled not calibrated).",
    )
    held_out_groups: list[str] | None = Field(
        default=None,
        description="Target groups held out of the fit (whole groups); default: the "
        "registry's DEFAULT_HELD_OUT_GROUPS (one state-level, one income/program group).",
    )
    test_groups: list[str] | None = Field(
        default=None,
        description="Target groups of the test split (whole families, never shown to a "
        "solver; the held-out gates judge them); default: the registry's DEFAULT_TEST_GROUPS "
        "(EITC and Medicaid enrollment) for national cells, none for local shards.",
    )
    l0_lambda: float | None = Field(
        default=None,
        description="Hard-concrete L0 penalty; 0 means no gates at all. Default: 0 for "
        f"national cells (gates lost on test loss there), {ECPS_L0_LAMBDA:g} (the eCPS "
        "value, nearly every gate open) for local shards.",
    )
    max_weight_ratio: float | None = Field(
        default=50.0,
        description="National solver: each final weight stays within [w0 / r, r * w0] of its "
        "design weight w0 (a smooth bound on the log-ratio); null = unbounded.",
    )
    calibration_method: str = Field(
        default="chi_square",
        description="National solver: 'chi_square' (the train loss plus a chi-square pull to "
        "the raked design, solved to its optimum for a path of pulls, validation choosing; "
        "calibration/chi_square.py) or 'adam' (the torch solver with the KL pull below, the "
        "default until the sixteenth session). Local shards always use the torch solver.",
    )
    household_count_boost: float = Field(
        default=1000.0,
        description="National solver: the national household count's fit multiplier on top "
        "of its family's (one target among the population family's ~950).",
    )
    kl_penalty: float = Field(
        default=1.0,
        description="National solver, method 'adam': penalty on the KL divergence of the "
        "weights from the design weights (keeps the effective sample size up); 0 = none.",
    )
    balance_families: bool = Field(
        default=True,
        description="National solver: every target family weighs alike in the fitted "
        "objective (not in reported losses), however many targets it has.",
    )
    scale_to_household_count: bool = Field(
        default=True,
        description="National solver: scale the design weights to the Census household "
        "count before fitting (post-stratification), so the weight penalties hold shares.",
    )
    rake_design_to_age: bool = Field(
        default=True,
        description="National solver: start from, and pull towards, the household-count-"
        "scaled design raked to the national population of each age group (the sums of the "
        "state-by-age targets); the ratio bound stays relative to the scaled design.",
    )
    protected_boost: float = Field(
        default=10.0,
        description="National solver: the protected families' terms in the fitted objective "
        "count this many times more (1 = as any other family).",
    )
    population_boost: float = Field(
        default=10.0,
        description="National solver: the population family's terms (household count, "
        "population by state and age) count this many times more in the fitted objective "
        "(10 = as much as a protected family; 1 = as any other family).",
    )
    ess_penalty: float = Field(
        default=0.0,
        description="National solver, method 'adam': penalty mu x n / (Kish ESS) on weight "
        "concentration; 0 = none.",
    )
    family_limit_rounds: int = Field(
        default=4,
        description="National solver: refits that raise the fit boost of each protected "
        "family whose train loss is above the eCPS method's train loss + the "
        "protected-families gate's tolerance; 0 = one fit.",
    )
    weights_healthy_min_ess_share: float = Field(
        default=0.25,
        description="weights_healthy (national|US): Kish ESS of the free (non-spine) "
        "households at least this share of them.",
    )
    weights_healthy_max_ratio: float = Field(
        default=50.0,
        description="weights_healthy (national|US): largest final / design weight ratio.",
    )
    protected_family_max_dropped_share: float = Field(
        default=0.25,
        description="targets_kept check: a protected family may lose at most this share of "
        "its registry targets to drops (unsupported, no support, spine overshoot).",
    )
    target_loss_tolerance: float = Field(
        default=0.0,
        description="target_loss_below_baseline: the candidate's loss on all kept targets "
        "must be below the baseline's times (1 + this); 0 is DESIGN.md's strict rule.",
    )
    calibration_epochs: int | None = Field(
        default=None, description="Solver epochs; default: the solver's own default."
    )
    calibration_device: str = Field(
        default="auto", description="torch device for the solver: auto, cpu or cuda."
    )
    baseline_h5_path: str | None = Field(
        default=None, description="Optional pinned external H5 (e.g. the real eCPS) to compare."
    )
    baseline_h5_sha256: str | None = Field(
        default=None, description="Expected SHA256 of the pinned baseline H5."
    )
    baseline_h5_versions: dict[str, str] | None = Field(
        default=None,
        description="Package versions the pinned baseline H5 was built with (recorded).",
    )
    cps_path: str | None = Field(
        default=None, description="taxcalc-format cps.csv.gz; default: the file taxcalc ships."
    )
    cps_weights_path: str | None = Field(
        default=None, description="taxcalc-format cps_weights.csv.gz; default: taxcalc's."
    )
    cps_weights_allow_s006: bool = Field(
        default=False,
        description="Without WT<year> in the weights file, use the CPS's own s006 (survey-year "
        "weights; recorded in provenance and logged) instead of failing.",
    )
    puf_path: str | None = Field(
        default=None,
        description="IRS SOI PUF CSV (puf_2015.csv style); default: the embedded synthetic "
        "PUF-like donor synthesized from the carried SOI tables (labelled synthetic).",
    )
    puf_demographics_path: str | None = Field(
        default=None, description="The PUF's demographics file (demographics_2015.csv)."
    )
    synthetic_donor_records: int = Field(
        default=50_000, description="Records of the embedded synthetic PUF-like donor."
    )
    donor_integration: bool = Field(
        default=True, description="Impute the tax donor's variables onto the seed (QRF)."
    )
    top_wealth_list_path: str | None = Field(
        default=None,
        description="Forbes-style top-wealth CSV for the fixed spine; default: the real "
        "Forbes 400 of 2024-09-01 carried in sources/data (provenance real).",
    )
    spine: bool = Field(default=True, description="Append the fixed top-tail spine.")
    donor_ablation: bool = Field(
        default=False,
        description="Also calibrate the candidate without donor integration, so the loss "
        "record shows held-out loss and top-tail aggregates before and after (one more "
        "PolicyEngine simulation of the candidate, ~270-470 s at 40k households: opt-in).",
    )
    donor_imputes_self_employment: bool = Field(
        default=True,
        description="Draw self-employment income (Schedule C profits and losses) from the "
        "tax donor instead of keeping the CPS's: the CPS holds 5% of SOI's loss returns "
        "(seed/donor_inputs.py imputing_self_employment; the head/spouse split is lost).",
    )
    donor_self_employment_keeps_reported: bool = Field(
        default=False,
        description="With donor_imputes_self_employment: keep the CPS's self-employment "
        "amounts (and their head/spouse split) wherever its tax unit reports one; the donor "
        "fills only the units that report none.",
    )
    microsim_benchmarks: bool | None = Field(
        default=None,
        description="Run the frozen reform suite (stage 9) and its gates before publishing; "
        "default: on for national|US, off for other cells.",
    )
    microsim_relative_tolerance: float = Field(
        default=0.05,
        description="microsim_benchmarks_hold: a reform's budget or net-income delta between "
        "the candidate and the eCPS method may be this share of the baseline's estimate ...",
    )
    microsim_absolute_tolerance_bn: float = Field(
        default=5.0,
        description="... or this many $bn, whichever is larger (the release rule: 5%, $5bn).",
    )
    microsim_slice_households: int = Field(
        default=SUITE_SLICE_HOUSEHOLDS,
        description="Households per reform simulation in the suite: slices run two at a time "
        "in forked children, so this sets the suite's peak memory (each slice's simulation "
        "is its own); households are independent, so the results do not depend on it.",
    )
    survey_files: dict[str, list[str]] | None = Field(
        default=None,
        description="Optional real survey files by source: cps_asec [person, household, "
        "family], acs_pums [person, housing], sipp [file], scf [file]. Loaded, validated and "
        "mapped in the source plan's coverage.",
    )
    local_households: int = Field(
        default=2_000,
        description="Households sampled from a state's scaffold records for its local shard "
        "(all of them when the state has fewer).",
    )
    local_held_out_groups: list[str] | None = Field(
        default=None,
        description="Target groups a local shard holds out of its fit; default: the state's "
        "returns by AGI band (irs_soi/returns_by_state), so overfitting AGI amounts shows.",
    )
    local_min_support: int = Field(
        default=20,
        description="Fewest sampled tax units a local shard needs in each state AGI band with "
        "a target (and SNAP households); short bands borrow records from similar states.",
    )
