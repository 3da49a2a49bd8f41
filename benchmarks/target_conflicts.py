"""Targets that contradict each other in the saved matrix: a national row that is exactly
the sum of a state group's rows, or two identical rows, whose values disagree (the same
quantity counted two ways, or two sources of one number). No weighting hits both."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from calibration_split import SplitProblem


def _row_key(indices: np.ndarray) -> bytes:
    return np.asarray(indices, dtype=np.int64).tobytes()


def conflicts(problem: SplitProblem, min_support: int = 20) -> list[dict[str, Any]]:
    """National rows equal to the sum of one state group's rows (the same quantity counted
    two ways) and identical rows (at least ``min_support`` households), where the targets'
    values disagree by more than 0.1%."""
    t = problem.targets.reset_index(drop=True)
    m = problem.matrix.tocsr()
    m.sort_indices()
    by_pattern: dict[bytes, list[int]] = {}
    for i in range(m.shape[0]):
        by_pattern.setdefault(_row_key(m.indices[m.indptr[i] : m.indptr[i + 1]]), []).append(i)

    def same(row: sp.csr_matrix, i: int) -> bool:
        data = m.data[m.indptr[i] : m.indptr[i + 1]]
        return bool(np.allclose(row.data, data, rtol=1e-6, atol=1e-9))

    out = []
    national = t["is_national"].to_numpy()
    for group, rows in t[~national].groupby("group").groups.items():
        rows = np.asarray(list(rows))
        total = sp.csr_matrix(m[rows].sum(axis=0))
        total.sort_indices()
        for i in by_pattern.get(_row_key(total.indices), []):
            if national[i] and same(total, i):
                state_sum = float(t.loc[rows, "value"].sum())
                out.append(
                    {
                        "kind": "national = sum of states",
                        "national": t.loc[i, "name"],
                        "state_group": group,
                        "states": len(rows),
                        "national_value": float(t.loc[i, "value"]),
                        "state_sum": state_sum,
                        "gap": state_sum / float(t.loc[i, "value"]) - 1,
                    }
                )
    for rows in by_pattern.values():
        if len(rows) < 2 or m.indptr[rows[0] + 1] - m.indptr[rows[0]] < min_support:
            continue
        first = rows[0]
        for i in rows[1:]:
            a, b = float(t.loc[first, "value"]), float(t.loc[i, "value"])
            if same(m[first], i) and abs(a - b) > 1e-3 * max(abs(a), abs(b)):
                out.append(
                    {
                        "kind": "identical rows",
                        "first": t.loc[first, "name"],
                        "second": t.loc[i, "name"],
                        "support": int(m.indptr[i + 1] - m.indptr[i]),
                        "first_value": a,
                        "second_value": b,
                        "gap": b / a - 1,
                    }
                )
    return out
