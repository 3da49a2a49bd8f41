"""The carried real Forbes 400 and SCF top-tail records load, checked against SOURCES.json."""

from __future__ import annotations

import shutil

import pytest

from microplex_assets.sources import reference_microdata as ref


def test_forbes_400_is_the_real_2024_list():
    frame, provenance = ref.load_forbes_400()
    assert len(frame) == 400
    top = frame.sort_values("rank").iloc[0]
    assert top["name"] == "Elon Musk" and top["residence_state"] == "Texas"
    assert provenance["sha256"] == ref.carried_bytes(ref.FORBES_FILE)[1]["sha256"]


def test_scf_top_tail_holds_real_records_above_2_1m():
    frame, _ = ref.load_scf_top_tail()
    assert len(frame) == 6092
    assert frame["net_worth"].min() >= 2.1e6
    assert (frame["wgt"] > 0).all()


def test_altered_file_is_refused_with_its_path(tmp_path, monkeypatch):
    shutil.copytree(ref.DATA_DIR, tmp_path / "data")
    (tmp_path / "data" / ref.FORBES_FILE).write_text("[]")
    monkeypatch.setattr(ref, "DATA_DIR", tmp_path / "data")
    with pytest.raises(ref.ReferenceDataError, match=r"forbes_us_top_400.*sha256"):
        ref.load_forbes_400()
