"""Schedules end to end with temporalio's names (``baton.client``'s
``create_schedule``, ``get_schedule_handle``, ``list_schedules`` and the
``Schedule*`` types) against a real ``baton dev --time-skipping``, whose
started workflows an App on loopback runs.

Needs the server binary (``cargo build --bin baton``); skipped without it.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest

from baton import App, workflow
from baton.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleListActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from baton.exceptions import RPCError
from baton.testing import AppServer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton


@workflow.defn
class RevenueReportWorkflow:
    @workflow.run
    async def run(self, period: str) -> str:
        return f"{period} revenue report for {workflow.info().workflow_id}"


@pytest.fixture(scope="module")
def served(env: WorkflowEnvironment) -> Iterator[Client]:
    app = App(workflows=[RevenueReportWorkflow], signing_secret=SECRET, server_url=env.target)
    with AppServer(app) as server:
        asyncio.run(env.register_endpoint("analytics", server.url, SECRET))
        yield env.client


async def _until(
    handle: ScheduleHandle, done: Callable[[ScheduleDescription], bool]
) -> ScheduleDescription:
    deadline = time.monotonic() + 20
    while True:
        desc = await handle.describe()
        if done(desc):
            return desc
        if time.monotonic() > deadline:
            raise AssertionError(f"{handle.id}: condition not met; info {desc.info}")
        await asyncio.sleep(0.05)


def _workflow_ids(desc: ScheduleDescription) -> list[str]:
    ids: list[str] = []
    for r in desc.info.recent_actions:
        assert isinstance(r.action, ScheduleActionExecutionStartWorkflow)
        ids.append(r.action.workflow_id)
    return ids


async def test_the_issue_example_runs_as_written(served: Client) -> None:
    client = served
    # --- the code from issue 11, imports changed ---------------------------------------
    await client.create_schedule(
        "daily-revenue-report",
        Schedule(
            action=ScheduleActionStartWorkflow(
                RevenueReportWorkflow.run,
                args=["daily"],
                id="daily-revenue-report",
                task_queue="analytics",
            ),
            spec=ScheduleSpec(cron_expressions=["0 9 * * 1-5"], jitter=timedelta(minutes=5)),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            state=ScheduleState(note="weekdays 9am UTC"),
        ),
    )
    handle = client.get_schedule_handle("daily-revenue-report")
    await handle.pause(note="Q2 close")
    await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    await handle.backfill(
        ScheduleBackfill(
            start_at=datetime(2025, 1, 5, tzinfo=timezone.utc),
            end_at=datetime(2025, 1, 12, tzinfo=timezone.utc),
            overlap=ScheduleOverlapPolicy.ALLOW_ALL,
        )
    )
    await handle.unpause(note="done")
    # --- what it did ---------------------------------------------------------------------
    desc = await _until(handle, lambda d: d.info.num_actions == 6)
    assert desc.id == "daily-revenue-report"
    assert desc.schedule.spec.cron_expressions == ["0 9 * * 1-5"]
    assert desc.schedule.spec.jitter == timedelta(minutes=5)
    assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert desc.schedule.state.paused is False
    assert desc.schedule.state.note == "done"
    action = desc.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.args, action.id, action.task_queue) == (
        "RevenueReportWorkflow",
        ["daily"],
        "daily-revenue-report",
        "analytics",
    )
    ids = _workflow_ids(desc)
    # The trigger's run is named by its time (now); the backfill's by their
    # nominal times: Monday to Friday of that week, 9:00.
    backfilled = sorted(i for i in ids if "2025-01" in i)
    assert backfilled == [f"daily-revenue-report-2025-01-{d:02d}T09:00:00Z" for d in range(6, 11)]
    assert len(set(ids)) == 6
    for r in desc.info.recent_actions:
        if "2025-01" in r.action.workflow_id:  # type: ignore[attr-defined]
            # Jitter delays the scheduled time by less than 5 minutes.
            nominal = r.scheduled_at.replace(minute=0, second=0, microsecond=0)
            assert timedelta(0) <= r.scheduled_at - nominal < timedelta(minutes=5)
    # Unpaused: the next ten times are weekdays between 9:00 and 9:05 UTC.
    assert len(desc.info.next_action_times) == 10
    for t in desc.info.next_action_times:
        assert t.weekday() < 5 and t.hour == 9 and t.minute < 5, t
    # The runs the schedule started ran on the App and name the schedule.
    for wid in ids:
        wf = client.get_workflow_handle(wid)
        assert await wf.result() == f"daily revenue report for {wid}"
        memo = (await wf.describe()).memo
        assert memo["TemporalScheduledById"] == "daily-revenue-report"
    await handle.delete()


async def test_pause_shows_in_describe_and_list(served: Client) -> None:
    handle = await served.create_schedule(
        "paused-report",
        Schedule(
            action=ScheduleActionStartWorkflow(
                RevenueReportWorkflow.run, "weekly", id="paused-report", task_queue="analytics"
            ),
            spec=ScheduleSpec(cron_expressions=["0 9 * * 1"]),
        ),
    )
    await handle.pause(note="Q2 close")
    desc = await handle.describe()
    assert desc.schedule.state.paused and desc.schedule.state.note == "Q2 close"
    assert desc.info.next_action_times == []
    # temporalio's form: list_schedules is awaited, then iterated.
    rows = [s async for s in await served.list_schedules(id_prefix="paused-")]
    assert [r.id for r in rows] == ["paused-report"]
    assert rows[0].schedule.state.paused and rows[0].schedule.state.note == "Q2 close"
    assert rows[0].schedule.action == ScheduleListActionStartWorkflow("RevenueReportWorkflow")
    assert rows[0].schedule.spec.cron_expressions == ["0 9 * * 1"]
    await handle.unpause()
    desc = await handle.describe()
    assert not desc.schedule.state.paused and len(desc.info.next_action_times) == 10
    await handle.delete()


def _full_schedule() -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "RevenueReportWorkflow",
            "hourly",
            id="hourly-report",
            task_queue="analytics",
            execution_timeout=timedelta(hours=1),
            run_timeout=timedelta(minutes=30),
            task_timeout=timedelta(seconds=10),
            memo={"team": "finance"},
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=(ScheduleRange(8, 18, 2),),
                    day_of_week=(ScheduleRange(1, 5),),
                    comment="office hours",
                )
            ],
            intervals=[
                ScheduleIntervalSpec(every=timedelta(hours=6), offset=timedelta(minutes=15))
            ],
            skip=[
                ScheduleCalendarSpec(month=(ScheduleRange(12),), day_of_month=(ScheduleRange(25),))
            ],
            start_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
            end_at=datetime(2035, 1, 1, tzinfo=timezone.utc),
            jitter=timedelta(seconds=30),
            time_zone_name="Europe/Paris",
        ),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.BUFFER_ONE,
            catchup_window=timedelta(minutes=10),
            pause_on_failure=True,
        ),
        state=ScheduleState(note="every field", limited_actions=True, remaining_actions=3),
    )


async def test_describe_returns_what_was_created(served: Client) -> None:
    schedule = _full_schedule()
    handle = await served.create_schedule("hourly-report", schedule)
    desc = await handle.describe()
    assert desc.schedule == schedule
    assert desc.info.num_actions == 0 and desc.info.running_actions == []
    assert desc.info.created_at <= datetime.now(timezone.utc) + timedelta(seconds=1)
    assert desc.info.last_updated_at is None
    with pytest.raises(ScheduleAlreadyRunningError):
        await served.create_schedule("hourly-report", schedule)
    await handle.delete()


async def test_update_uses_the_conflict_token(served: Client) -> None:
    handle = await served.create_schedule(
        "updated-report",
        Schedule(
            action=ScheduleActionStartWorkflow(
                RevenueReportWorkflow.run, "daily", id="updated-report", task_queue="analytics"
            ),
            spec=ScheduleSpec(cron_expressions=["0 9 * * 1-5"]),
        ),
    )
    seen: list[ScheduleUpdateInput] = []

    async def to_hourly(input: ScheduleUpdateInput) -> ScheduleUpdate:
        seen.append(input)
        if len(seen) == 1:
            # Another client changes the schedule between our describe and
            # our update: the update is refused and the updater called again
            # with a fresh description.
            await served.get_schedule_handle(handle.id).pause(note="by another client")
        s = input.description.schedule
        s.spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))])
        return ScheduleUpdate(schedule=s)

    await handle.update(to_hourly)
    assert len(seen) == 2
    assert not seen[0].description.schedule.state.paused
    assert seen[1].description.schedule.state.paused
    desc = await handle.describe()
    assert desc.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(hours=1))]
    assert desc.schedule.spec.cron_expressions == []
    assert desc.schedule.state.note == "by another client"
    assert desc.info.last_updated_at is not None
    times = desc.info.next_action_times
    assert times == []  # paused by the other client

    # A plain function works too; one returning None changes nothing.
    def unpause_hourly(input: ScheduleUpdateInput) -> ScheduleUpdate:
        s = input.description.schedule
        s.state = ScheduleState(note="hourly now")
        return ScheduleUpdate(schedule=s)

    await handle.update(unpause_hourly)
    before = await handle.describe()
    await handle.update(lambda _: None)
    after = await handle.describe()
    assert after.schedule == before.schedule
    assert after.info.last_updated_at == before.info.last_updated_at
    assert after.schedule.state.note == "hourly now"
    times = after.info.next_action_times
    assert len(times) == 10
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(times))
    await handle.delete()


async def test_list_filters_and_pages(served: Client) -> None:
    ids = [f"listed-{i:02d}" for i in range(5)]
    for i, sid in enumerate(ids):
        h = await served.create_schedule(
            sid,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    "RevenueReportWorkflow", "x", id=sid, task_queue="analytics"
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(days=1))]),
                state=ScheduleState(paused=i % 2 == 1, note=f"n{i}"),
            ),
        )
        assert h.id == sid
    rows = [s async for s in served.list_schedules(id_prefix="listed-", page_size=2)]
    assert [r.id for r in rows] == ids
    assert [r.schedule.state.note for r in rows] == [f"n{i}" for i in range(5)]
    assert all(
        len(r.info.next_action_times) == (0 if r.schedule.state.paused else 10) for r in rows
    )
    paused = [s.id async for s in served.list_schedules(id_prefix="listed-", paused=True)]
    assert paused == ["listed-01", "listed-03"]
    for sid in ids:
        await served.get_schedule_handle(sid).delete()
    assert [s async for s in served.list_schedules(id_prefix="listed-")] == []
    with pytest.raises(RPCError) as err:
        await served.get_schedule_handle("listed-00").describe()
    assert err.value.status == 404


async def test_bad_input_is_refused_naming_the_field(served: Client) -> None:
    def with_spec(spec: ScheduleSpec) -> Schedule:
        return Schedule(
            action=ScheduleActionStartWorkflow(
                "RevenueReportWorkflow", id="bad", task_queue="analytics"
            ),
            spec=spec,
        )

    for spec, field in [
        (ScheduleSpec(cron_expressions=["0 9 * *"]), "spec.cron_expressions[0]"),
        (ScheduleSpec(cron_expressions=["@daily"], time_zone_name="Mars/Base"), "spec.time_zone"),
        (
            ScheduleSpec(
                intervals=[ScheduleIntervalSpec(every=timedelta(minutes=1))],
                jitter=timedelta(minutes=2),
            ),
            "spec.jitter",
        ),
    ]:
        with pytest.raises(RPCError) as err:
            await served.create_schedule("bad", with_spec(spec))
        assert err.value.status == 400 and field in (err.value.detail or ""), err.value
    assert [s async for s in served.list_schedules(id_prefix="bad")] == []
    handle = await served.create_schedule(
        "bad", with_spec(ScheduleSpec(cron_expressions=["@daily"]))
    )
    with pytest.raises(RPCError) as err:
        await handle.backfill(
            ScheduleBackfill(
                start_at=datetime(2025, 1, 12, tzinfo=timezone.utc),
                end_at=datetime(2025, 1, 5, tzinfo=timezone.utc),
            )
        )
    assert err.value.status == 400 and "backfills[0].end_time" in (err.value.detail or "")
    with pytest.raises(ValueError):
        await handle.backfill()
    with pytest.raises(ValueError):
        ScheduleCalendarSpec(hour=())._to_wire()
    await handle.delete()


async def test_time_skipping_moves_the_schedule(served: Client, env: WorkflowEnvironment) -> None:
    handle = await served.create_schedule(
        "every-hour",
        Schedule(
            action=ScheduleActionStartWorkflow(
                RevenueReportWorkflow.run, "hourly", id="every-hour", task_queue="analytics"
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL),
        ),
        trigger_immediately=True,
    )
    await _until(handle, lambda d: d.info.num_actions == 1)
    await env.skip_time(timedelta(hours=3))
    desc = await _until(handle, lambda d: d.info.num_actions == 4)
    scheduled = sorted(
        r.scheduled_at
        for r in desc.info.recent_actions
        if re.search(r"T\d\d:00:00Z$", r.action.workflow_id)  # type: ignore[attr-defined]
    )
    assert len(scheduled) == 3
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(scheduled))
    for wid in _workflow_ids(desc):
        assert (await served.get_workflow_handle(wid).result()).startswith("hourly revenue report")
    await handle.delete()
