"""Shared fixtures: one PolicyEngine system per test session (its import costs ~25 s)."""

from __future__ import annotations

import pytest

from microplex_resources.policyengine_runtime import policyengine_system


@pytest.fixture(scope="session")
def pe_system():
    return policyengine_system()
