"""Stage-2 SCF source: the Federal Reserve's SCF summary extract as household implicates.

Format. The Fed publishes the summary extract (``SCFP2022.csv`` in ``scfp2022excel.zip``) as
a comma-separated file with upper-case headers (the Stata/SAS versions use lower case; both
are matched), one row per household *implicate*:

* ``YY1`` is the household (case) id, ``Y1 = 10 x YY1 + implicate`` with implicate 1..5:
  missing answers are multiply imputed five times, so every household has five rows;
* ``WGT`` is the Fed bulletin macro's ``X42001 / 5``: the full-sample weight already divided
  by five, so the sum of ``WGT`` over all rows (all implicates) is the number of US
  households, and one implicate alone needs ``5 x WGT``;
* dollar amounts are in the survey year's dollars; income (``INCOME``, ``WAGEINC``,
  ``BUSSEFARMINC``, ``INTDIVINC``, ``KGINC``, ``SSRETINC``, ``TRANSFOTHINC``) is for the
  calendar year before the survey, balance sheet (``NETWORTH = ASSET - DEBT``, ``FIN``,
  ``NFIN``, ``HOUSES``) at interview;
* ``AGE`` is the reference person's age, ``HHSEX`` 1 male / 2 female, ``MARRIED`` 1 married
  or living with a partner / 2 neither, ``KIDS`` the number of children in the household;
* there is no geography: the SCF has no state, so this source has no state_fips and cannot
  be a scaffold, only a donor of wealth variables.

Mapping: one household-table row per implicate, ``household_id = Y1``, with ``scf_case_id``
(YY1), ``implicate``, ``household_weight = WGT``; ``NETWORTH`` -> net_worth (the
policyengine-us household input); the other amounts keep descriptive household-level names
(the policyengine-us income inputs are person variables and the SCF does not split income
between household members).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from microplex_assets.sources.frame import ObservationFrame, SourceFormatError
from microplex_assets.sources.readers import ColumnSpec, file_provenance, read_columns

SOURCE = "scf"
IMPLICATES = (1, 2, 3, 4, 5)
AMOUNTS: dict[str, str] = {
    "INCOME": "total_income",
    "WAGEINC": "wage_income",
    "BUSSEFARMINC": "business_farm_income",
    "INTDIVINC": "interest_dividend_income",
    "KGINC": "capital_gains_income",
    "SSRETINC": "social_security_retirement_income",
    "TRANSFOTHINC": "transfer_other_income",
    "NETWORTH": "net_worth",
    "ASSET": "assets",
    "DEBT": "debt",
    "FIN": "financial_assets",
    "NFIN": "nonfinancial_assets",
    "HOUSES": "primary_residence_value",
}
COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("YY1", "int", non_negative=True),
    ColumnSpec("Y1", "int", non_negative=True),
    ColumnSpec("WGT", non_negative=True),
    ColumnSpec("AGE", "int", non_negative=True),
    ColumnSpec("HHSEX", "int", allowed=(1, 2)),
    ColumnSpec("MARRIED", "int", allowed=(1, 2)),
    ColumnSpec("KIDS", "int", non_negative=True),
    *(ColumnSpec(column) for column in AMOUNTS),
)


def _fail(path: Path, message: str) -> SourceFormatError:
    return SourceFormatError(f"{SOURCE}: {path} {message}")


def survey_year(path: Path, year: int | None) -> int:
    """The survey year: given, or read from the file name (``SCFP2022`` -> 2022)."""
    if year is not None:
        return int(year)
    match = re.search(r"scfp(\d{4})", path.name, flags=re.IGNORECASE)
    if match is None:
        raise _fail(path, "does not name its year (expected 'SCFPYYYY...'); pass year=")
    return int(match.group(1))


def _check_implicates(scf: pd.DataFrame, path: Path) -> None:
    """Y1 must be 10 x YY1 + 1..5, and every household must have each implicate once."""
    for column in ("YY1", "Y1", "WGT"):
        if scf[column].isna().any():
            raise _fail(path, f"column '{column}' has {int(scf[column].isna().sum())} blanks")
    implicate = scf["Y1"] - 10 * scf["YY1"]
    bad = ~implicate.isin(IMPLICATES)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(
            path,
            f"column 'Y1' holds {scf['Y1'].iloc[row]} for YY1={scf['YY1'].iloc[row]} at row "
            f"{row + 1}; expected Y1 = 10 x YY1 + implicate (1-5)",
        )
    duplicated = scf["Y1"].duplicated()
    if duplicated.any():
        first = int(scf.loc[duplicated, "Y1"].iloc[0])
        raise _fail(
            path,
            f"column 'Y1' repeats {int(duplicated.sum())} implicate ids (first: Y1={first}, "
            f"YY1={first // 10}); expected each household's implicates 1-5 once",
        )
    counts = scf.groupby("YY1").size()
    short = counts[counts != len(IMPLICATES)]
    if len(short):
        case = int(short.index[0])
        present = sorted(int(i) for i in implicate[scf["YY1"] == case])
        raise _fail(
            path,
            f"has {len(short)} households (column 'YY1') without all {len(IMPLICATES)} "
            f"implicates (first: YY1={case} has implicates {present})",
        )


def load_scf(path: Path | str, year: int | None = None) -> ObservationFrame:
    """Load the SCF summary extract as one household row per implicate, weighted by WGT."""
    path = Path(path)
    data_year = survey_year(path, year)
    scf = read_columns(path, COLUMNS, SOURCE, upper_case_header=True)
    _check_implicates(scf, path)
    for column in ("AGE", *AMOUNTS):
        if scf[column].isna().any():
            raise _fail(path, f"column '{column}' has {int(scf[column].isna().sum())} blanks")
    scf = scf.sort_values("Y1").reset_index(drop=True)
    household = pd.DataFrame(
        {
            "household_id": scf["Y1"].to_numpy(dtype=np.int64),
            "scf_case_id": scf["YY1"].to_numpy(dtype=np.int64),
            "implicate": (scf["Y1"] - 10 * scf["YY1"]).to_numpy(dtype=np.int64),
            "household_weight": scf["WGT"].to_numpy(dtype=float),
            "age_head": scf["AGE"].to_numpy(dtype=np.int64),
            "is_female_head": scf["HHSEX"].to_numpy() == 2,
            "is_married": scf["MARRIED"].to_numpy() == 1,
            "children": scf["KIDS"].to_numpy(dtype=np.int64),
            **{name: scf[column].to_numpy(dtype=float) for column, name in AMOUNTS.items()},
        }
    )
    frame = ObservationFrame(
        source=SOURCE,
        year=data_year,
        tables={"household": household},
        links={},
        provenance={
            "kind": "real",
            "files": {"scf": file_provenance(path)},
            "year": data_year,
            "income_year": data_year - 1,
            "households": int(household["scf_case_id"].nunique()),
            "implicate_rows": len(household),
            "weighted_households": float(household["household_weight"].sum()),
            "has_geography": False,
            "notes": [
                "one row per implicate; household_weight = WGT = X42001/5, so summing over "
                "all implicates estimates the population (use 5 x WGT for one implicate)",
                "income amounts refer to the year before the survey; balance sheet at "
                "interview; all in survey-year dollars as published",
                "no state or other geography in the SCF: not usable as a scaffold",
            ],
        },
    )
    frame.validate()
    return frame
