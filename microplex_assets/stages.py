"""The nine stage contracts: one record per stage, the single source for groups and docs.

Every asset belongs to exactly one stage group; tests hold each asset to its stage's
contract (group name, description, the diagnostic metadata keys it must attach).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageContract:
    """What a stage consumes and produces, the diagnostics it owns, and how it fails."""

    number: int
    group: str
    title: str
    consumes: tuple[str, ...]
    produces: tuple[str, ...]
    diagnostics: tuple[str, ...]
    artifacts: tuple[str, ...]
    failure_modes: tuple[str, ...]

    @property
    def description(self) -> str:
        return f"Stage {self.number} ({self.group}): {self.title}"


STAGES: tuple[StageContract, ...] = (
    StageContract(
        1, "run_profile", "resolved run configuration and source query plan",
        consumes=("build_settings resource", "partition cell"),
        produces=("run_profile",),
        diagnostics=("stage", "year", "product", "geography", "providers"),
        artifacts=("run_profile.json",),
        failure_modes=("cell not built yet", "unknown product or geography"),
    ),
    StageContract(
        2, "sources", "one validated ObservationFrame per source",
        consumes=("source files", "carried SOI tables", "published top-wealth aggregates",
                  "carried published SCF tables and SCF top-tail records"),
        produces=("cps_source_frame", "tax_donor_frame", "asset_donor_frame",
                  "top_wealth_frame", "survey_source_frames"),
        diagnostics=("stage", "row_counts", "link_validity", "provenance"),
        artifacts=(),
        failure_modes=("missing file", "missing or malformed column", "broken link"),
    ),
    StageContract(
        3, "source_plan", "scaffold choice, donors and the variable coverage map",
        consumes=("run_profile", "source frames"),
        produces=("source_plan",),
        diagnostics=("stage", "scaffold", "coverage"),
        artifacts=(),
        failure_modes=("no source can serve as scaffold",),
    ),
    StageContract(
        4, "seed", "seed frame in canonical schema, sampled, donor variables integrated",
        consumes=("source_plan", "scaffold frame", "tax_donor_frame", "asset_donor_frame"),
        produces=("seed_frame", "integrated_seed"),
        diagnostics=("stage", "row_counts"),
        artifacts=("seed_income_brackets.png", "donor_totals.png"),
        failure_modes=("sample size larger than the scaffold", "donor breaks its contract"),
    ),
    StageContract(
        5, "candidate", "candidate population before calibration, fixed spine appended",
        consumes=("integrated_seed", "top_wealth_frame"),
        produces=("candidate_population",),
        diagnostics=("stage", "backend", "support_enforcement", "spine", "row_counts"),
        artifacts=(),
        failure_modes=("a geography without support", "malformed top-wealth list"),
    ),
    StageContract(
        6, "entities", "PolicyEngine entity bundle (six entity tables)",
        consumes=("candidate_population", "run_profile (seed for county assignment)"),
        produces=("entity_bundle",),
        diagnostics=("stage", "row_counts", "pe_inputs"),
        artifacts=(),
        failure_modes=("broken id links",),
    ),
    StageContract(
        7, "calibration", "target registry, target matrix, calibrated weights and the gates",
        consumes=("entity_bundle", "run_profile", "policyengine-us calibration parameters",
                  "carried public target tables"),
        produces=("calibration_targets", "target_matrix", "ecps_baseline_weights",
                  "calibrated_weights", "pinned_baseline_scores", "calibration_scorecard",
                  "donor_ablation"),
        diagnostics=("stage", "target_counts", "loss", "weight_diagnostics", "gates"),
        artifacts=("target_matrix.npz", "target_ledger.csv", "loss_curves.png",
                   "target_wins_losses.md"),
        failure_modes=("weights collapse", "non-finite weights", "held-out group absent",
                       "candidate loses to the eCPS-method baseline", "pinned H5 hash differs"),
    ),
    StageContract(
        8, "publication", "policyengine_us_<year>.h5 and manifest, published atomically",
        consumes=("entity_bundle", "calibrated_weights", "run_profile"),
        produces=("published_dataset",),
        diagnostics=("stage", "path", "row_counts", "exported_variables", "size_bytes"),
        artifacts=("policyengine_us_<year>.h5", "capital_gains_lots_<year>.parquet",
                   "manifest.json", "loss_record.json", "RUN.json", "SHA256SUMS"),
        failure_modes=("H5 fails the schema gate", "a release gate fails",
                       "loss record breaks its schema"),
    ),
    StageContract(
        9, "validation", "microsimulation benchmark suite, validation evidence and aggregates",
        consumes=("dataset_h5", "calibrated_weights", "ecps_baseline_weights",
                  "published_dataset"),
        produces=("microsim_benchmarks", "national_aggregates_report", "current_release",
                  "run_index", "readiness_dashboard"),
        diagnostics=("stage",),
        artifacts=("microsim_benchmarks.json", "microsim_deciles.png", "aggregates.json",
                   "_release/run_index.duckdb", "_release/readiness.html"),
        failure_modes=("Microsimulation fails on the H5", "bundle incomplete",
                       "a reform's result moves beyond max(5%, $5bn) unexplained",
                       "suite runtime or H5 size over budget"),
    ),
)  # fmt: skip

STAGE_BY_GROUP: dict[str, StageContract] = {stage.group: stage for stage in STAGES}


def stage(group: str) -> StageContract:
    """The contract of a stage group; KeyError names the unknown group."""
    try:
        return STAGE_BY_GROUP[group]
    except KeyError:
        raise KeyError(
            f"no stage group '{group}'; expected one of {list(STAGE_BY_GROUP)}"
        ) from None
