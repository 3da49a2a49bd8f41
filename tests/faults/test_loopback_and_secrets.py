"""The UI binds to loopback unless told otherwise, nothing unpickles a file a user hands
the build, and pinned inputs are verified by SHA256 before they are used."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

from microplex_assets.calibration.baselines import BaselinePinError, verify_pin
from microplex_assets.files import file_sha256
from microplex_assets.targets.carried import DATA_DIR as TARGET_DATA
from microplex_assets.targets.carried import CarriedTableError, carried_table

ROOT = Path(__file__).resolve().parents[2]
# Calls that run code from a file's bytes.
UNSAFE_CALLS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("pd", "read_pickle"),
    ("joblib", "load"),
    ("torch", "load"),
    ("dill", "load"),
    ("marshal", "loads"),
}


def ui_command(*overrides: str) -> str:
    dry = subprocess.run(
        ["make", "-n", "-W", ".venv/.installed", "ui", *overrides],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return next(line for line in dry.stdout.splitlines() if "dagster dev" in line)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_ui_binds_to_loopback_unless_configured() -> None:
    assert " -h 127.0.0.1 " in ui_command()
    assert " -h 0.0.0.0 " in ui_command("UI_HOST=0.0.0.0")


def test_no_module_unpickles_or_loads_pickled_arrays() -> None:
    """The IO manager's own storage is Dagster's; no build code unpickles anything, and
    no numpy load allows pickles (a published bundle's arrays come from users too)."""
    found = []
    for package in ("microplex_assets", "microplex_resources"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                named = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                if named and (func.value.id, func.attr) in UNSAFE_CALLS:
                    found.append(f"{path.name}:{node.lineno} {func.value.id}.{func.attr}")
                for keyword in node.keywords:
                    if keyword.arg == "allow_pickle" and not (
                        isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                    ):
                        found.append(f"{path.name}:{node.lineno} allow_pickle")
    assert not found, found


def test_a_baseline_without_a_sha256_pin_is_refused_with_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "ecps_2024.h5"
    path.write_bytes(b"not the trusted file")
    with pytest.raises(BaselinePinError, match=f"no SHA256 pin.*{file_sha256(path)}"):
        verify_pin({"path": str(path)})
    with pytest.raises(BaselinePinError, match="differs from the pinned"):
        verify_pin({"path": str(path), "sha256": "0" * 64})
    assert verify_pin({"path": str(path), "sha256": file_sha256(path)}) == file_sha256(path)


def test_an_altered_carried_table_is_refused_naming_it(tmp_path: Path) -> None:
    shutil.copytree(TARGET_DATA, tmp_path / "data")
    name = "snap_state.csv"
    table = tmp_path / "data" / name
    carried_table(name, (), tmp_path / "data")  # the carried copy verifies
    table.write_bytes(table.read_bytes().replace(b"1", b"2", 1))
    with pytest.raises(CarriedTableError, match=f"{name}: sha256 .* differs from SOURCES.json"):
        carried_table(name, (), tmp_path / "data")
