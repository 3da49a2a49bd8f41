import json

import pytest

from microplex_assets.publication import publish
from microplex_assets.publication.publish import publish_bundle


def _files(tmp_path, tag):
    src = tmp_path / f"src_{tag}"
    src.mkdir()
    (src / "data.h5").write_text(f"h5 {tag}")
    (src / "manifest.json").write_text(json.dumps({"tag": tag}))
    return {"data.h5": src / "data.h5", "manifest.json": src / "manifest.json"}


def test_publish_replaces_the_bundle_and_leaves_no_temporaries(tmp_path):
    destination = tmp_path / "artifacts" / "national" / "US"
    publish_bundle(_files(tmp_path, "one"), destination)
    paths = publish_bundle(_files(tmp_path, "two"), destination)
    assert paths["data.h5"].read_text() == "h5 two"
    assert sorted(p.name for p in destination.parent.iterdir()) == ["US"]


def test_failure_midway_keeps_the_old_bundle(tmp_path, monkeypatch):
    destination = tmp_path / "bundle"
    publish_bundle(_files(tmp_path, "old"), destination)
    calls = {"n": 0}
    real_copy = publish.shutil.copyfile

    def flaky_copy(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_copy(src, dst)

    monkeypatch.setattr(publish.shutil, "copyfile", flaky_copy)
    with pytest.raises(OSError, match="disk full"):
        publish_bundle(_files(tmp_path, "new"), destination)
    assert (destination / "data.h5").read_text() == "h5 old"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_missing_source_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot publish 'x.h5'"):
        publish_bundle({"x.h5": tmp_path / "nope.h5"}, tmp_path / "bundle")
