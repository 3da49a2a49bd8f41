"""Restrict and concatenate PolicyEngine-US H5s in the time-period layout.

State shards are built and checked one at a time, then published as one national file
(``concatenate_h5``); a slice of a large file is what a reviewer, a test or a sliced
simulation can afford to load (``restrict_h5``). Both keep every variable aligned with its
entity's id array, never renumber ids within a file, and write atomically through
``write_atomic``: a reader sees the previous file or the complete new one, never a
half-written H5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import h5py
import numpy as np

from microplex_assets.entities.bundle import ENTITIES, GROUP_ENTITIES, ID_VARIABLES
from microplex_assets.files import write_atomic

EntityOf = Callable[[str], str]
# The entity each id array lies on, and the entity whose ids it holds.
ID_ON: dict[str, str] = {
    "person_id": "person",
    **{f"{e}_id": e for e in GROUP_ENTITIES},
    **{f"person_{e}_id": "person" for e in GROUP_ENTITIES},
}
ID_OF: dict[str, str] = {
    "person_id": "person",
    **{f"{e}_id": e for e in GROUP_ENTITIES},
    **{f"person_{e}_id": e for e in GROUP_ENTITIES},
}
OWN_IDS: dict[str, str] = {"person": "person_id", **{e: f"{e}_id" for e in GROUP_ENTITIES}}


def _layout(h5: h5py.File, path: Path) -> dict[str, list[str]]:
    """Variable -> its years; refuses files not in the one-group-per-variable layout."""
    layout = {}
    for name, item in h5.items():
        if not isinstance(item, h5py.Group):
            raise ValueError(f"{path}: {name!r} is not a group (not the time-period layout)")
        layout[name] = list(item)
    return layout


def _years(layout: dict[str, list[str]]) -> list[str]:
    return sorted({year for years in layout.values() for year in years})


def _ids(h5: h5py.File, path: Path, year: str) -> dict[str, np.ndarray]:
    """The id arrays of one year; without all of them no entity can be filtered safely."""
    missing = [n for n in ID_VARIABLES if n not in h5 or year not in h5[n]]
    if missing:
        raise KeyError(f"{path}: year {year} lacks id arrays {missing}")
    ids = {n: h5[n][year][:] for n in ID_VARIABLES}
    persons = len(ids["person_id"])
    wrong = [f"person_{e}_id" for e in GROUP_ENTITIES if len(ids[f"person_{e}_id"]) != persons]
    if wrong:
        raise ValueError(f"{path}: year {year}: {wrong} do not have one value per person")
    return ids


def _counts(ids: dict[str, np.ndarray]) -> dict[str, int]:
    return {entity: int(len(ids[OWN_IDS[entity]])) for entity in ENTITIES}


def _entity(
    name: str, length: int, counts: dict[str, int], entity_of: EntityOf | None, where: str
) -> str:
    """A variable's entity: ``entity_of`` when given (checked against the array's length),
    else the only entity with that many records; equal counts make length ambiguous."""
    if name in ID_ON:
        return ID_ON[name]
    if entity_of is not None:
        entity = entity_of(name)
        if counts.get(entity) != length:
            raise ValueError(
                f"{where}: {name} has {length} values but its entity {entity!r} has "
                f"{counts.get(entity)} records"
            )
        return entity
    matches = [entity for entity, n in counts.items() if n == length]
    if len(matches) != 1:
        raise ValueError(
            f"{where}: cannot tell the entity of {name} from its length {length} "
            f"(entities with that many records: {matches}); pass entity_of"
        )
    return matches[0]


def _write_h5(destination: Path, fill: Callable[[h5py.File], None]) -> None:
    """Build the H5 in a temporary sibling and rename it into place only when complete."""

    def write(handle: IO) -> None:
        with h5py.File(handle, "w") as out:
            fill(out)

    write_atomic(Path(destination), write, mode="w+b")


def restrict_h5(
    source: Path,
    destination: Path,
    household_ids: np.ndarray | Sequence[int],
    year: int | str | None = None,
    entity_of: EntityOf | None = None,
) -> dict[str, Any]:
    """Write the given households of ``source`` to ``destination``, ids unchanged.

    Keeps the households asked for, their persons, and each group entity's records the
    kept persons belong to; every variable of every year (only ``year`` when given) is
    filtered by its entity. Raises, naming the file, on a household id it lacks.
    """
    source, destination = Path(source), Path(destination)
    wanted = np.unique(np.asarray(household_ids, dtype=np.int64))
    report: dict[str, Any] = {
        "source": str(source),
        "destination": str(destination),
        "households_asked": int(wanted.size),
        "record_counts": {},
        "household_weight_total": {},
    }
    with h5py.File(source, "r") as src:
        layout = _layout(src, source)
        years = _years(layout)
        if year is not None and str(year) not in years:
            raise ValueError(f"{source}: no year {year} (years in the file: {years})")
        years = [str(year)] if year is not None else years

        def fill(out: h5py.File) -> None:
            for y in years:
                ids = _ids(src, source, y)
                absent = np.setdiff1d(wanted, ids["household_id"])
                if absent.size:
                    raise ValueError(
                        f"{source}: year {y} has no household_id {absent[:10].tolist()}"
                        f"{' ...' if absent.size > 10 else ''} ({absent.size} missing)"
                    )
                person = np.isin(ids["person_household_id"], wanted)
                masks = {"person": person, "household": np.isin(ids["household_id"], wanted)}
                for e in GROUP_ENTITIES[1:]:
                    masks[e] = np.isin(ids[f"{e}_id"], ids[f"person_{e}_id"][person])
                counts = _counts(ids)
                for name, name_years in layout.items():
                    if y not in name_years:
                        continue
                    values = src[name][y][:]
                    entity = _entity(name, len(values), counts, entity_of, f"{source} {y}")
                    out.require_group(name).create_dataset(y, data=values[masks[entity]])
                report["record_counts"][y] = {e: int(m.sum()) for e, m in masks.items()}
                if "household_weight" in out and y in out["household_weight"]:
                    total = float(out["household_weight"][y][:].astype(np.float64).sum())
                    report["household_weight_total"][y] = total

        _write_h5(destination, fill)
    return report


def restrict_to_sample(
    source: Path,
    destination: Path,
    households: int,
    year: int,
    entity_of: EntityOf | None = None,
    seed: int = 0,
) -> np.ndarray:
    """``households`` households of ``source`` drawn at random (``seed``) and written to
    ``destination`` by ``restrict_h5``; their ids back, sorted. For benchmarks that need a
    PolicyEngine simulation of a cheap, unbiased part of a published file."""
    with h5py.File(source, "r") as h5:
        ids = h5["household_id"][str(year)][...].astype(np.int64)
    if households > ids.size:
        raise ValueError(f"{source}: {households} households asked, the file has {ids.size}")
    chosen = np.sort(np.random.default_rng(seed).choice(ids, households, replace=False))
    restrict_h5(source, destination, chosen, year, entity_of)
    return chosen


def concatenate_h5(
    sources: Sequence[Path],
    destination: Path,
    entity_of: EntityOf,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Concatenate H5s (e.g. state shards) into one, records in source order.

    Each source after the first has its ids (own and membership) shifted past the
    running maximum of that entity's ids, one offset per source and entity for every
    year, so ids stay unique and memberships still point at the right records. A
    numeric variable a source lacks is filled with zeros (reported); a non-numeric one,
    or a year only some sources have, is an error naming it.
    """
    paths = [Path(p) for p in sources]
    labels = [str(p) for p in paths] if labels is None else list(labels)
    if not paths or len(labels) != len(paths) or len(set(labels)) != len(labels):
        raise ValueError(f"need at least one source and one unique label each, got {labels}")
    with ExitStack() as stack:
        files = [stack.enter_context(h5py.File(p, "r")) for p in paths]
        layouts = [_layout(h5, p) for h5, p in zip(files, paths, strict=True)]
        source_years = [set(_years(layout)) for layout in layouts]
        years = sorted(set().union(*source_years))
        for y in years:
            lacking = [lab for lab, ys in zip(labels, source_years, strict=True) if y not in ys]
            if lacking:
                raise ValueError(f"year {y} is in some sources but not in {lacking}")
        ids = [{y: _ids(h5, p, y) for y in years} for h5, p in zip(files, paths, strict=True)]
        counts = [{y: _counts(per_year[y]) for y in years} for per_year in ids]
        offsets: list[dict[str, int]] = []
        running: dict[str, int] = {}
        for k, per_year in enumerate(ids):
            offset = {e: 0 if k == 0 else running[e] + 1 for e in ENTITIES}
            for e, own in OWN_IDS.items():
                top = max(int(per_year[y][own].max(initial=-1)) for y in years)
                running[e] = max(running.get(e, -1), top + offset[e])
            offsets.append(offset)
        filled: dict[str, list[str]] = {}
        totals: dict[str, dict[str, int]] = {}
        weight: dict[str, float] = {}

        def fill(out: h5py.File) -> None:
            for y in years:
                names = sorted({n for layout in layouts for n, ys in layout.items() if y in ys})
                for name in names:
                    present = [k for k, layout in enumerate(layouts) if y in layout.get(name, ())]
                    dtype = files[present[0]][name][y].dtype
                    parts = []
                    for k, (h5, label) in enumerate(zip(files, labels, strict=True)):
                        if k in present:
                            values = h5[name][y][:]
                            _entity(name, len(values), counts[k][y], entity_of, f"{label} {y}")
                            if name in ID_OF:
                                values = values + values.dtype.type(offsets[k][ID_OF[name]])
                        elif dtype.kind in "biuf":
                            values = np.zeros(counts[k][y][entity_of(name)], dtype=dtype)
                            filled.setdefault(name, [])
                            if label not in filled[name]:
                                filled[name].append(label)
                        else:
                            raise ValueError(
                                f"{name} ({dtype}) is missing from source {label} in year {y} "
                                "and has no neutral fill value"
                            )
                        parts.append(values)
                    data = np.concatenate(parts)
                    if name in OWN_IDS.values() and np.unique(data).size != data.size:
                        raise ValueError(f"{name}: duplicate ids after offsetting (year {y})")
                    out.require_group(name).create_dataset(y, data=data)
                totals[y] = {e: sum(c[y][e] for c in counts) for e in ENTITIES}
                if "household_weight" in out and y in out["household_weight"]:
                    weight[y] = float(out["household_weight"][y][:].astype(np.float64).sum())

        _write_h5(destination, fill)
    return {
        "destination": str(destination),
        "years": years,
        "sources": {
            label: {"path": str(p), "record_counts": c, "id_offsets": off}
            for label, p, c, off in zip(labels, paths, counts, offsets, strict=True)
        },
        "record_counts": totals,
        "filled": filled,
        "household_weight_total": weight,
    }


def overwrite_household_weights(path: Path, year: int, weights: np.ndarray) -> None:
    """Replace ``household_weight/<year>`` of a work-folder H5 (same length and dtype), e.g.
    the fan-in's concatenation reweighted by the joint local-rich fit."""
    with h5py.File(path, "r+") as h5:
        dataset = h5["household_weight"][str(year)]
        if dataset.shape != (len(weights),):
            raise ValueError(
                f"{path}: household_weight/{year} has {dataset.shape[0]} rows, "
                f"{len(weights)} weights given"
            )
        dataset[...] = np.asarray(weights, dtype=dataset.dtype)
