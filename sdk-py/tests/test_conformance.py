"""Runs the language-neutral cases of tests/conformance against the SDK
(see tests/conformance/README.md for the format)."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import pytest

from baton import App
from baton._signing import sign

CASES = Path(__file__).resolve().parents[2] / "tests" / "conformance"
CASE_DIRS = (
    sorted(p for p in CASES.glob("*") if (p / "case.json").exists()) if CASES.exists() else []
)


def load_feature(case_dir: Path) -> Any:
    """Imports the folder's feature.py (its `workflows` and `activities`)."""
    spec = importlib.util.spec_from_file_location(
        f"conformance_{case_dir.name}", case_dir / "feature.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _without_stack_traces(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_stack_traces(v) for k, v in value.items() if k != "stack_trace"}
    if isinstance(value, list):
        return [_without_stack_traces(v) for v in value]
    return value


def _is_subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _is_subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(map(_is_subset, expected, actual))
        )
    return bool(expected == actual)


@pytest.mark.skipif(not CASE_DIRS, reason="no tests/conformance cases next to sdk-py")
@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
async def test_conformance_case(case_dir: Path) -> None:
    case = json.loads((case_dir / "case.json").read_text())
    feature = load_feature(case_dir)
    app = App(
        workflows=feature.workflows, activities=feature.activities, signing_secret=case["secret"]
    )
    assert case["steps"], "a case needs steps"
    for i, step in enumerate(case["steps"]):
        req, want = step["request"], step["response"]
        body = json.dumps(req["body"], separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"content-type": "application/json"}
        if req.get("sign", True):
            ts = int(time.time()) + int(req.get("timestamp_offset", 0))
            secret = req.get("secret", case["secret"])
            headers |= {
                "webhook-id": f"msg_conformance_{i}",
                "webhook-timestamp": str(ts),
                "webhook-signature": sign([secret], f"msg_conformance_{i}", ts, body),
            }
        response = await app.handle("POST", headers, body)
        assert response.status == want["status"], f"step {i}: {response.body!r}"
        if want.get("body") is None:
            continue
        got = _without_stack_traces(json.loads(response.body))
        if want.get("match", "exact") == "subset":
            assert _is_subset(want["body"], got), f"step {i}: {got}"
        else:
            assert got == want["body"], f"step {i}"
