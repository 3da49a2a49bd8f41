"""The readiness dashboard renders every indexed cell, its gate cells and its history."""

import re

from microplex_assets.release.dashboard import write_dashboard
from microplex_assets.release.index import rebuild
from microplex_assets.release.pointer import promote
from tests.release.bundles import gate, loss_record, make_bundle


def test_dashboard_shows_cells_gates_current_and_history(tmp_path):
    root = tmp_path / "artifacts"
    national, state = root / "national" / "US", root / "local" / "CA"
    make_bundle(national, "20261201T000000Z-aaaa", record=loss_record(train=0.6))
    promote(national, "20261201T000000Z-aaaa", "national", "US")
    failing = loss_record(train=0.4, gates=[gate("protected_families_hold", passed=False)])
    make_bundle(national, "20261202T000000Z-bbbb", record=failing)
    make_bundle(state, "s1", record=loss_record("local", "CA", benchmarks={"skipped": "n/a"}))
    fan_in = [{"method": m, "level": "all", "targets": 9, "train": t, "held_out": t, "all": t}
              for m, t in (("local|US", 0.25), ("national|US", 0.75))]  # fmt: skip
    make_bundle(root / "local" / "US", "f1", derived=True, scores=fan_in)
    index = tmp_path / "i.duckdb"
    rebuild(index, root)
    html = write_dashboard(index, tmp_path / "readiness.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html and "http://" not in html
    headings = re.findall(r"<h2 id='[^']+'>([^<]+)</h2>", html)
    assert headings == ["national|US", "local|CA", "local|US"]
    national_part = html.split("<h2")[1]
    assert "current: <span class='cur'>20261201T000000Z-aaaa</span>" in national_part
    assert "latest candidate: <b>20261202T000000Z-bbbb</b>" in national_part
    # the latest run failed protected_families_hold and did not measure the older gate
    assert "<td class='fail'>fail</td>" in national_part
    assert "<td class='unmeasured'>unmeasured</td>" in national_part
    assert "<td class='pass'>pass</td>" in national_part  # microsim gates
    assert "<th class='l'>source</th><th>verdict</th>" in national_part
    assert "<th>threshold</th><th class='l'>summary</th>" in national_part
    # train, validation and test of both runs; each run labelled, the current one bold
    assert "<polyline" in national_part and national_part.count("<circle") == 6
    assert "font-weight='bold'>aaaa (current)</text>" in national_part
    assert "text-anchor='middle'>bbbb</text>" in national_part
    assert "budget impact" in national_part and "soi_agi" in national_part
    fan_in_part = html.split("<h2")[3]
    assert "no gates recorded" in fan_in_part
    assert "<td class='l'>local|US</td><td class=''>0.25</td>" in fan_in_part
    assert "<td class='l'>national|US</td><td class=''>0.75</td>" in fan_in_part


def test_counts_read_as_numbers_not_exponents():
    """The index hands the page numpy scalars: a 40,400-household bundle's ESS of
    13,412.3 read "1.341e+04" and numpy.int64 counts lost their thousands separators."""
    import numpy as np

    from microplex_assets.release.dashboard import _fmt

    assert _fmt(np.int64(40_400)) == "40,400"
    assert _fmt(np.float64(13_412.3)) == "13,412"
    assert _fmt(np.int64(1_539)) == "1539"
    assert _fmt(np.float64(0.001847)) == "0.001847"
    assert _fmt(np.float64("nan")) == "–" and _fmt(None) == "–"
    assert _fmt(np.bool_(True)) == "True"


def test_design_weights_bundle_says_its_gates_were_not_enforced(tmp_path):
    """A `calibration_backend: none` build publishes design weights with WARN gates; the
    page said only "warn" and not why, so the weights' label is a fact of the bundle."""
    root = tmp_path / "artifacts"
    cell = root / "local" / "VT"
    record = loss_record("local", "VT", gates=[gate("target_loss_below_baseline", False, "WARN")])
    record["calibration"] = {"backend": "none", "label": "design weights (not calibrated)"}
    make_bundle(cell, "r1", record=record)
    calibrated = loss_record("local", "VT")
    calibrated["calibration"] = {"backend": "microplex", "label": "calibrated (microplex)"}
    make_bundle(root / "local" / "CA", "r1", record=calibrated)
    index = tmp_path / "i.duckdb"
    rebuild(index, root)
    html = write_dashboard(index, tmp_path / "readiness.html").read_text()
    ca, vt = html.split("<h2")[1:]  # national|US first, then by product and geography
    assert "local|VT" in vt and "<td class='warn'>warn</td>" in vt
    assert "design weights (not calibrated): gates reported, not enforced" in vt
    assert "<td class='l'>weights</td><td class=''>calibrated (microplex)</td>" in ca
    assert "not enforced" not in ca


def test_history_of_a_cell_without_test_split_plots_validation(tmp_path):
    """A local shard has no test split: the plot drew its train line alone under a legend
    naming "test"; it now draws train and validation and names only those."""
    root = tmp_path / "artifacts"
    cell = root / "local" / "VT"
    for key, train in (("20261202T132111Z-b350563c", 0.29), ("20261202T132829Z-9355f5d0", 0.12)):
        record = loss_record("local", "VT", train=train)
        for losses in record["losses"].values():
            losses.pop("test")
        make_bundle(cell, key, record=record)
    promote(cell, "20261202T132111Z-b350563c", "local", "VT")
    index = tmp_path / "i.duckdb"
    rebuild(index, root)
    svg = write_dashboard(index, tmp_path / "r.html").read_text().split("<svg")[1]
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 4
    assert ">train</tspan> <tspan fill='#2ca02c'>validation</tspan>;" in svg
    assert ">test</tspan>" not in svg
    assert "b350563c (current)</text>" in svg and ">9355f5d0</text>" in svg
