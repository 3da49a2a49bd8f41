"""Every real-format loader with a good set of small files (written by its own tests'
writers, in the exact public format) and the columns the faults aim at.

A fault edits one file of a good set: cut it short, empty it, drop a column, or put text,
``inf``, ``nan`` or a negative weight into one cell. The suite then loads the set and
expects a ``SourceFormatError`` naming the file (and the column, where there is one).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from microplex_assets.sources.acs_pums import load_acs_pums
from microplex_assets.sources.cps_asec import load_cps_asec
from microplex_assets.sources.forbes import load_forbes_list
from microplex_assets.sources.puf import load_puf
from microplex_assets.sources.scf import load_scf
from microplex_assets.sources.sipp import load_sipp
from tests.sources import test_acs_pums as acs
from tests.sources import test_cps_asec as asec
from tests.sources import test_forbes as forbes
from tests.sources import test_puf as puf
from tests.sources import test_scf as scf
from tests.sources import test_sipp as sipp


@dataclass(frozen=True)
class LoaderCase:
    """A loader, how to write its good files, and which file/columns the faults edit."""

    name: str
    write: Callable[[Path], dict[str, Path]]  # folder -> role -> path
    load: Callable[[dict[str, Path]], object]
    target: str  # the role of the file the faults edit
    amount: str  # a numeric column of it
    weight: str  # its weight (or another non-negative) column
    sep: str = ","


def _asec(folder: Path) -> dict[str, Path]:
    person, household, family = asec.write_files(folder)
    return {"person": person, "household": household, "family": family}


def _puf(folder: Path) -> dict[str, Path]:
    return {
        "puf": puf.write(puf.puf_file(), folder / "puf_2015.csv"),
        "demographics": puf.write(puf.demographics_file(), folder / "demographics_2015.csv"),
    }


def _acs(folder: Path) -> dict[str, Path]:
    return {
        "person": acs._write(folder / "psam_p06.csv", acs.PERSON_HEADER, acs.PERSON_ROWS),
        "housing": acs._write(folder / "psam_h06.csv", acs.HOUSING_HEADER, acs.HOUSING_ROWS),
    }


CASES: tuple[LoaderCase, ...] = (
    LoaderCase(
        "cps_asec",
        _asec,
        lambda p: load_cps_asec(p["person"], p["household"], p["family"], year=2024),
        "person",
        "WSAL_VAL",
        "MARSUPWT",
    ),
    LoaderCase(
        "puf",
        _puf,
        lambda p: load_puf(p["puf"], year=2024, demographics_path=p["demographics"]),
        "puf",
        "E00200",
        "S006",
    ),
    LoaderCase(
        "acs_pums",
        _acs,
        lambda p: load_acs_pums(p["person"], p["housing"], year=2022),
        "person",
        "WAGP",
        "PWGTP",
    ),
    LoaderCase(
        "sipp",
        lambda f: {"file": sipp._write(f / "pu2023.csv", sipp._rows())},
        lambda p: load_sipp(p["file"], year=2022),
        "file",
        "TPTOTINC",
        "WPFINWGT",
        sep="|",
    ),
    LoaderCase(
        "scf",
        lambda f: {"file": scf._write(f / "SCFP2022.csv", scf._rows())},
        lambda p: load_scf(p["file"], year=2022),
        "file",
        "INCOME",
        "WGT",
    ),
    LoaderCase(
        "forbes",
        lambda f: {"file": forbes._write(f / "forbes_400.csv", forbes.ROWS)},
        lambda p: load_forbes_list(p["file"], 2024),
        "file",
        "net_worth",
        "rank",
    ),
)


def read_table(path: Path, sep: str) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle, delimiter=sep))


def write_table(path: Path, rows: list[list[str]], sep: str) -> None:
    with path.open("w", newline="") as handle:
        csv.writer(handle, delimiter=sep, lineterminator="\n").writerows(rows)


def set_cell(path: Path, sep: str, column: str, value: str, row: int = 0) -> None:
    """Put ``value`` into ``column`` of data row ``row`` (header matched case-insensitively)."""
    rows = read_table(path, sep)
    index = [h.upper() for h in rows[0]].index(column.upper())
    rows[row + 1][index] = value
    write_table(path, rows, sep)


def drop_column(path: Path, sep: str, column: str) -> None:
    rows = read_table(path, sep)
    index = [h.upper() for h in rows[0]].index(column.upper())
    write_table(path, [r[:index] + r[index + 1 :] for r in rows], sep)


def truncate(path: Path) -> None:
    """Cut the file inside its last data line, as an interrupted download leaves it."""
    data = path.read_bytes().rstrip(b"\n")
    last_line = data.rfind(b"\n")
    path.write_bytes(data[: last_line + 1 + max(1, (len(data) - last_line) // 3)])


def empty(path: Path) -> None:
    path.write_bytes(b"")


# fault name -> (edit of the target file, the column the message must name or None)
FAULTS: dict[str, Callable[[LoaderCase], tuple[Callable[[Path], None], str | None]]] = {
    "truncated": lambda c: (truncate, None),
    "empty": lambda c: (empty, None),
    "missing_column": lambda c: (lambda p: drop_column(p, c.sep, c.amount), c.amount),
    "text_in_numeric": lambda c: (lambda p: set_cell(p, c.sep, c.amount, "n/a"), c.amount),
    "inf_value": lambda c: (lambda p: set_cell(p, c.sep, c.amount, "inf"), c.amount),
    "nan_value": lambda c: (lambda p: set_cell(p, c.sep, c.amount, "nan"), c.amount),
    "negative_weight": lambda c: (lambda p: set_cell(p, c.sep, c.weight, "-5"), c.weight),
}
