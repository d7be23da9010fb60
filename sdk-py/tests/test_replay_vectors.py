"""The replay contract's vectors (../tests/replay, docs/protocol.md §14):
each vector's neutral workflow script, interpreted with the public workflow
API, replayed over the vector's history by the SDK's real workflow-task
handler, must answer exactly the vector's commands or non-determinism
error. The vectors are generated and checked by the Rust engine tests and
run by sdk-ts too, so the three cannot drift apart."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from baton import workflow
from baton._workflow_instance import handle_workflow_task
from baton.common import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributeUpdate,
)
from baton.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
    TimeoutError,
    WorkflowAlreadyStartedError,
)
from baton.workflow import ActivityCancellationType, _definitions

VECTORS = sorted((Path(__file__).resolve().parents[2] / "tests" / "replay").glob("*.json"))


def _label(err: BaseException | None) -> str | None:
    if err is None:
        return None
    for cls, name in (
        (ActivityError, "ActivityError"),
        (ChildWorkflowError, "ChildWorkflowError"),
        (WorkflowAlreadyStartedError, "WorkflowAlreadyStarted"),
        (ApplicationError, "ApplicationError"),
        (TimeoutError, "TimeoutError"),
        (TerminatedError, "TerminatedError"),
        (CancelledError, "CancelledError"),
        (asyncio.CancelledError, "CancelledError"),
    ):
        if isinstance(err, cls):
            return name
    return type(err).__name__


def _error(err: BaseException) -> dict[str, Any]:
    return {"error": _label(err), "cause": _label(err.__cause__)}


class _Interpreter:
    """Runs one script (tests/replay/README.md) as workflow code."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.script = script
        self.vars: dict[str, Any] = {}
        self.log: list[str] = []
        self.signals: dict[str, list[Any]] = {}
        self.handles: dict[str, asyncio.Task[Any]] = {}

    def value(self, v: Any) -> Any:
        if isinstance(v, dict):
            if set(v) == {"$"}:
                return list(self.log) if v["$"] == "log" else self.vars.get(v["$"])
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        return v

    async def steps(self, steps: list[dict[str, Any]]) -> Any:
        for s in steps:
            if "return" in s:
                return self.value(s["return"])
            await self.step(s)
        return None

    def begin(self, s: dict[str, Any]) -> asyncio.Task[Any]:
        """Starts a step that can run in the background."""
        if "activity" in s:
            return workflow.start_activity(
                s["activity"],
                args=self.value(s.get("input", [])),
                activity_id=s.get("id"),
                start_to_close_timeout=timedelta(seconds=10),
                schedule_to_close_timeout=_duration(s["schedule_to_close"])
                if "schedule_to_close" in s
                else None,
                cancellation_type=ActivityCancellationType[s.get("cancellation", "TRY_CANCEL")],
            )
        if "local_activity" in s:
            return workflow.start_local_activity(
                s["local_activity"],
                args=self.value(s.get("input", [])),
                start_to_close_timeout=timedelta(seconds=10),
            )
        return asyncio.ensure_future(self.run_one(s))

    async def run_one(self, s: dict[str, Any]) -> Any:
        if "activity" in s or "local_activity" in s:
            return await self.begin(s)
        if "timer" in s:
            await workflow.sleep(_duration(s["timer"]))
            return None
        if "child" in s:
            c = s["child"]
            return await workflow.execute_child_workflow(
                c["workflow_type"], args=self.value(c.get("input", [])), id=c["workflow_id"]
            )
        if "signal_external" in s:
            x = s["signal_external"]
            h = workflow.get_external_workflow_handle(x["workflow_id"])
            await h.signal(x["signal"], args=self.value(x.get("input", [])))
            return None
        if "cancel_external" in s:
            await workflow.get_external_workflow_handle(
                s["cancel_external"]["workflow_id"]
            ).cancel()
            return None
        if "wait_signal" in s:
            name = s["wait_signal"]
            await workflow.wait_condition(lambda: bool(self.signals.get(name)))
            return self.signals[name].pop(0)
        if "gather" in s:
            return list(await asyncio.gather(*(self.run_one(b) for b in s["gather"])))
        raise AssertionError(f"unknown step {s}")

    async def step(self, s: dict[str, Any]) -> None:
        if "complete" in s:
            raise _Done(self.value(s["complete"]))
        if "fail" in s:
            raise ApplicationError(s["fail"], type="ScriptFailure", non_retryable=True)
        if "continue_as_new" in s:
            workflow.continue_as_new(args=self.value(s["continue_as_new"].get("input", [])))
        if "log" in s:
            self.log.append(s["log"])
            return
        if "patched" in s:
            branch = s["then"] if workflow.patched(s["patched"]) else s["else"]
            await self.steps(branch)
            return
        if "deprecate_patch" in s:
            workflow.deprecate_patch(s["deprecate_patch"])
            return
        if "upsert" in s:
            updates: list[SearchAttributeUpdate[Any]] = []
            for name, typed in s["upsert"].items():
                kind = SearchAttributeIndexedValueType.from_wire(typed["type"])
                assert kind is not None, typed
                key: SearchAttributeKey[Any] = SearchAttributeKey(name, kind)
                value = typed["value"]
                updates.append(
                    key.value_unset() if value is None else key.value_set(key.from_wire(value))
                )
            workflow.upsert_search_attributes(updates)
            return
        if "start" in s:
            self.handles[s["name"]] = self.begin(s["start"])
            return
        if "cancel" in s:
            self.handles[s["cancel"]].cancel()
            # Task.cancel() only asks; let the cancellation reach the
            # awaited activity/timer/child before the next step (README).
            await asyncio.sleep(0)
            return
        if "wait" in s:
            try:
                result: Any = await self.handles[s["wait"]]
            except BaseException as err:  # the outcome is the value
                result = _error(err)
            if "as" in s:
                self.vars[s["as"]] = result
            return
        try:
            result = await self.run_one(s)
        except (
            ApplicationError,
            ActivityError,
            ChildWorkflowError,
            WorkflowAlreadyStartedError,
        ) as err:
            if not s.get("catch"):
                raise
            result = _error(err)
        if "as" in s:
            self.vars[s["as"]] = result


class _Done(Exception):
    def __init__(self, value: Any) -> None:
        super().__init__("done")
        self.value = value


def _duration(text: str) -> timedelta:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            return timedelta(seconds=float(text[: -len(unit)]) * units[unit])
    raise AssertionError(f"bad duration {text}")


def _definition(script: dict[str, Any]) -> Any:
    declared = set(script.get("signals", []))
    updates: dict[str, list[dict[str, Any]]] = script.get("updates", {})

    @workflow.defn(name="Order")
    class ScriptWorkflow:
        def __init__(self) -> None:
            self.i = _Interpreter(script)

        @workflow.run
        async def run(self, *_input: Any) -> Any:
            try:
                await self.i.steps(script["main"])
            except _Done as done:
                return done.value
            return None

        @workflow.signal(dynamic=True)
        def on_signal(self, name: str, *args: Any) -> None:
            if name in declared:
                self.i.log.append(f"signal:{name}")
                self.i.signals.setdefault(name, []).append(args[0] if args else None)

        @workflow.update(dynamic=True)
        async def on_update(self, name: str, *args: Any) -> Any:
            self.i.log.append(f"update:{name}")
            return await self.i.steps(updates[name])

    return _definitions([ScriptWorkflow])["Order"]


def _strip(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stack traces are the language's own: not part of the contract."""
    out = json.loads(json.dumps(commands))
    for c in out:
        f = c["attributes"].get("failure")
        if isinstance(f, dict):
            f.pop("stack_trace", None)
    return out


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_replay_vector(path: Path) -> None:
    vector = json.loads(path.read_text())
    answer = handle_workflow_task(_definition(vector["script"]), vector["workflow_task"])
    expect = vector["expect"]
    if "commands" in expect:
        assert "failure" not in answer, answer.get("failure")
        assert _strip(answer["commands"]) == expect["commands"]
    else:
        nd = expect["non_determinism"]
        failure = answer.get("failure")
        assert failure is not None, f"expected non-determinism, got {answer}"
        assert failure["cause"] == "NON_DETERMINISTIC_ERROR"
        assert failure["failure"]["type"] == "NonDeterminismError"
        assert failure["failure"]["message"] == nd["message"]


def test_there_are_vectors() -> None:
    assert len(VECTORS) >= 60
