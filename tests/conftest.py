"""Shared fixtures."""

import pytest


@pytest.fixture(scope="session")
def small_overrides() -> list[str]:
    """Overrides for a run small enough for a test: 300 clients, 8 weeks, no progress bar."""
    return ["market.n_clients=300", "steps=8", "progress=false"]
