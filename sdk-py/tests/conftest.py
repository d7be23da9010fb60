"""Fixtures shared by the end-to-end suites (test_e2e.py, test_conformance_e2e.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from baton.testing import WorkflowEnvironment, find_baton_binary

# The signing secret the end-to-end suites register their apps with.
SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

try:
    _binary: str | None = find_baton_binary()
except FileNotFoundError:
    _binary = None

# Marks a module that needs the server binary (``cargo build --bin baton``).
needs_baton = pytest.mark.skipif(_binary is None, reason="no baton binary: cargo build --bin baton")


@pytest.fixture(scope="module")
def env() -> Iterator[WorkflowEnvironment]:
    """A throwaway ``baton dev --time-skipping`` for one test module."""
    e = asyncio.run(WorkflowEnvironment.start_time_skipping(binary=find_baton_binary()))
    try:
        yield e
    finally:
        asyncio.run(e.shutdown())
