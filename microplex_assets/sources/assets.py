"""Stage 2 assets: validated ObservationFrames, one per source.

Sources are not partitioned: the CPS frame is the same for every product and
geography, so a local backfill reads it once instead of 51 times.
"""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, MetadataValue

from microplex_assets.code_version import SOURCES_CODE_VERSION
from microplex_assets.sources.acs_pums import load_acs_pums
from microplex_assets.sources.cps_asec import load_cps_asec
from microplex_assets.sources.cps_taxcalc import load_taxcalc_cps
from microplex_assets.sources.forbes import load_forbes_list, real_top_wealth_list
from microplex_assets.sources.frame import ObservationFrame
from microplex_assets.sources.puf import load_puf
from microplex_assets.sources.scf import load_scf
from microplex_assets.sources.scf_published import cell_reproduction, synthesize_asset_donor
from microplex_assets.sources.sipp import load_sipp
from microplex_assets.sources.synthetic_puf import synthesize_tax_records
from microplex_assets.sources.synthetic_puf_evidence import soi_reproduction
from microplex_assets.sources.tax_records import validate_tax_records
from microplex_assets.sources.top_tail_income import (
    income_totals,
    published_comparison,
    with_scf_income,
)
from microplex_assets.stage_asset import stage_asset, stage_metadata, table_metadata
from microplex_assets.uprating import uprating_factors
from microplex_resources.build_settings import BuildSettings
from microplex_resources.policyengine_runtime import PolicyEngineRuntime


@stage_asset("sources", code_version=SOURCES_CODE_VERSION)
def cps_source_frame(
    context: AssetExecutionContext,
    build_settings: BuildSettings,
    policyengine: PolicyEngineRuntime,
) -> ObservationFrame:
    """Real CPS-derived tax units from taxcalc, rebuilt into households, tax units and persons.

    Amounts are uprated to the build year with PolicyEngine's own uprating indices.
    """
    started = time.perf_counter()
    context.log.info("loading taxcalc CPS (280,005 tax units) and rebuilding persons")
    frame = load_taxcalc_cps(
        year=build_settings.year,
        seed=build_settings.seed,
        system=policyengine.system(),
        cps_path=Path(build_settings.cps_path) if build_settings.cps_path else None,
        weights_path=Path(build_settings.cps_weights_path)
        if build_settings.cps_weights_path
        else None,
        allow_s006=build_settings.cps_weights_allow_s006,
    )
    if frame.provenance.get("weight_fallback"):
        context.log.warning(f"CPS weights: {frame.provenance['weight_fallback']}")
    seconds = time.perf_counter() - started
    counts = {entity: len(table) for entity, table in frame.tables.items()}
    context.log.info(f"CPS frame ready in {seconds:.1f}s: {counts}")
    context.add_output_metadata(frame_metadata(frame, seconds))
    return frame


def frame_metadata(frame: ObservationFrame, seconds: float, **extra: Any) -> dict[str, Any]:
    """The diagnostics every source frame shows: counts, links, provenance, coverage."""
    return stage_metadata(
        "sources",
        row_counts=MetadataValue.json({entity: len(t) for entity, t in frame.tables.items()}),
        link_validity=MetadataValue.json(frame.link_report()),
        provenance=MetadataValue.json(frame.provenance),
        kind=frame.provenance.get("kind", "unknown"),
        coverage=table_metadata(frame.coverage(), max_rows=200),
        seconds=round(seconds, 1),
        **extra,
    )


def record_uprater(system: Any) -> Callable[[str, int, int], float]:
    """factor(variable, from_year, to_year) with PolicyEngine's own per-record indices."""

    def factor(variable: str, from_year: int, to_year: int) -> float:
        return uprating_factors(system, variable, [from_year], to_year)[1][from_year]

    return factor


@stage_asset("sources", code_version=SOURCES_CODE_VERSION)
def tax_donor_frame(
    context: AssetExecutionContext,
    build_settings: BuildSettings,
    policyengine: PolicyEngineRuntime,
) -> ObservationFrame:
    """Tax-record donor: the IRS SOI PUF when configured, else a PUF-like donor synthesized
    so its AGI-band x filing-status counts and amounts reproduce the carried SOI tables
    (labelled synthetic: it is not tax data)."""
    started = time.perf_counter()
    year = build_settings.year
    if build_settings.puf_path:
        context.log.info(f"loading the IRS SOI PUF from {build_settings.puf_path}")
        frame = load_puf(
            Path(build_settings.puf_path),
            year,
            system=policyengine.system(),
            demographics_path=Path(build_settings.puf_demographics_path)
            if build_settings.puf_demographics_path
            else None,
        )
        extra: dict[str, Any] = {}
    else:
        records = build_settings.synthetic_donor_records
        context.log.info(f"no PUF configured: synthesizing {records:,} PUF-like records (SOI)")
        frame = synthesize_tax_records(
            year,
            records=records,
            seed=build_settings.seed,
            uprate=record_uprater(policyengine.system()),
        )
        reproduction = soi_reproduction(frame, frame.provenance["soi_year"])
        extra = {"soi_reproduction": table_metadata(reproduction, max_rows=120)}
    validate_tax_records(frame)
    seconds = time.perf_counter() - started
    context.log.info(f"tax donor {frame.source} ({frame.provenance['kind']}) in {seconds:.1f}s")
    context.add_output_metadata(frame_metadata(frame, seconds, **extra))
    return frame


@stage_asset("sources", code_version=SOURCES_CODE_VERSION)
def asset_donor_frame(
    context: AssetExecutionContext,
    build_settings: BuildSettings,
    policyengine: PolicyEngineRuntime,
) -> ObservationFrame:
    """Asset donor for bank, stock and bond assets and net worth: families synthesized from
    the Federal Reserve's published SCF tables below $2.1m of net worth (labelled synthetic)
    and the 6,092 real SCF 2022 top-tail records above, amounts uprated by CPI-U."""
    started = time.perf_counter()
    frame = synthesize_asset_donor(
        build_settings.year, seed=build_settings.seed, uprate=record_uprater(policyengine.system())
    )
    reproduction = cell_reproduction(frame)
    seconds = time.perf_counter() - started
    household = frame.tables["household"]
    worth = household["household_weight"] @ household["net_worth"]
    context.log.info(f"asset donor: {len(household):,} records, net worth ${worth / 1e12:.1f}tn")
    context.add_output_metadata(
        frame_metadata(
            frame,
            seconds,
            net_worth_total_bn=float(worth / 1e9),
            holding_rate_reproduction=table_metadata(reproduction, max_rows=160),
            holding_rate_max_abs_error=float(
                (reproduction["donor_rate"] - reproduction["table_rate"]).abs().max()
            ),
        )
    )
    return frame


@stage_asset("sources", code_version=SOURCES_CODE_VERSION)
def top_wealth_frame(
    context: AssetExecutionContext, build_settings: BuildSettings
) -> ObservationFrame:
    """Top-wealth units for the fixed spine: the real Forbes 400 (2024-09-01), or a
    Forbes-style CSV when ``top_wealth_list_path`` is set; each member's income drawn
    from a real SCF 2022 top-tail donor (``sources/top_tail_income.py``)."""
    started = time.perf_counter()
    if build_settings.top_wealth_list_path:
        frame = load_forbes_list(Path(build_settings.top_wealth_list_path), build_settings.year)
    else:
        frame = real_top_wealth_list(build_settings.year, build_settings.seed)
    frame = with_scf_income(frame, build_settings.seed)
    seconds = time.perf_counter() - started
    household = frame.tables["household"]
    worth = household["net_worth"]
    comparison = published_comparison(household)
    context.log.info(
        f"top-wealth list: {len(worth)} units, ${worth.sum() / 1e12:.2f}tn, income "
        f"${comparison['spine'].iloc[0]:.0f}bn from SCF donors"
    )
    context.add_output_metadata(
        frame_metadata(
            frame,
            seconds,
            net_worth_total_bn=float(worth.sum() / 1e9),
            income_totals=table_metadata(income_totals(household)),
            income_vs_published=table_metadata(comparison),
            donor_matches=MetadataValue.json(frame.provenance["income"]["matches"]),
        )
    )
    return frame


SURVEY_LOADERS: dict[str, Callable[..., ObservationFrame]] = {
    "cps_asec": lambda paths, year: load_cps_asec(*map(Path, paths), year=year),
    "acs_pums": lambda paths, year: load_acs_pums(*map(Path, paths), year=year),
    "sipp": lambda paths, year: load_sipp(Path(paths[0]), year=year),
    "scf": lambda paths, year: load_scf(Path(paths[0]), year=year),
}


def load_survey_files(files: dict[str, list[str]], year: int) -> dict[str, ObservationFrame]:
    """Load every configured survey source; an unknown source name lists the known ones."""
    unknown = sorted(set(files) - set(SURVEY_LOADERS))
    if unknown:
        raise ValueError(f"survey_files names {unknown}; expected some of {list(SURVEY_LOADERS)}")
    return {name: SURVEY_LOADERS[name](paths, year) for name, paths in files.items()}


@stage_asset("sources", code_version=SOURCES_CODE_VERSION)
def survey_source_frames(
    context: AssetExecutionContext, build_settings: BuildSettings
) -> dict[str, ObservationFrame]:
    """Optional real survey files (CPS ASEC, ACS PUMS, SIPP, SCF), each validated with
    SHA256 provenance when the run profile points at it; none by default."""
    started = time.perf_counter()
    frames = load_survey_files(build_settings.survey_files or {}, build_settings.year)
    seconds = time.perf_counter() - started
    context.log.info(f"survey sources loaded: {list(frames) or 'none configured'}")
    context.add_output_metadata(
        stage_metadata(
            "sources",
            row_counts=MetadataValue.json(
                {name: {e: len(t) for e, t in f.tables.items()} for name, f in frames.items()}
            ),
            link_validity=MetadataValue.json({n: f.link_report() for n, f in frames.items()}),
            provenance=MetadataValue.json({n: f.provenance for n, f in frames.items()}),
            seconds=round(seconds, 1),
        )
    )
    return frames
