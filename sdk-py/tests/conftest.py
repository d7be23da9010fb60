"""Fixtures shared by the end-to-end suites (test_e2e.py, test_conformance_e2e.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from baton.testing import WorkflowEnvironment, find_baton_binary


@pytest.fixture(scope="module")
def env() -> Iterator[WorkflowEnvironment]:
    """A throwaway ``baton dev --time-skipping`` for one test module."""
    e = asyncio.run(WorkflowEnvironment.start_time_skipping(binary=find_baton_binary()))
    try:
        yield e
    finally:
        asyncio.run(e.shutdown())
