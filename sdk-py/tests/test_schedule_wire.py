"""The schedule types' JSON (what ``baton.client`` sends to and reads from
``/api/v1/namespaces/{ns}/schedules…``), without a server: Temporal's
defaults and normalisations, and what the server leaves out on the way
back. test_schedules.py runs the same types against a real server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from baton import workflow
from baton.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)
from baton.common import RetryPolicy


@workflow.defn(name="Report")
class ReportWorkflow:
    @workflow.run
    async def run(self, period: str) -> str:
        return period


def test_ranges_normalise_as_temporal_s() -> None:
    assert ScheduleRange(5) == ScheduleRange(5, 5, 1)
    assert ScheduleRange(5, 2) == ScheduleRange(5, 5, 1)
    assert ScheduleRange(1, 9, 2)._to_wire() == {"start": 1, "end": 9, "step": 2}


def test_a_schedule_is_sent_whole_with_the_server_s_names() -> None:
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ReportWorkflow.run,
            "daily",
            id="report",
            task_queue="analytics",
            run_timeout=timedelta(minutes=30),
            retry_policy=RetryPolicy(maximum_attempts=3),
            memo={"team": "finance"},
        ),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=(ScheduleRange(9),), comment="9am")],
            intervals=[
                ScheduleIntervalSpec(every=timedelta(hours=6), offset=timedelta(minutes=15))
            ],
            skip=[
                ScheduleCalendarSpec(month=(ScheduleRange(12),), day_of_month=(ScheduleRange(25),))
            ],
            start_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
            jitter=timedelta(seconds=90),
            time_zone_name="America/New_York",
        ),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.BUFFER_ALL, catchup_window=timedelta(0, 600)
        ),
        state=ScheduleState(paused=True, limited_actions=True, remaining_actions=2),
    )
    wire = schedule._to_wire()
    start = wire["action"]["start_workflow"]
    assert (start["workflow_type"], start["workflow_id"], start["input"]) == (
        "Report",
        "report",
        ["daily"],
    )
    assert start["workflow_run_timeout"] == "1800s"
    assert start["retry_policy"]["maximum_attempts"] == 3
    assert wire["spec"]["calendars"][0]["hour"] == [{"start": 9, "end": 9, "step": 1}]
    assert wire["spec"]["calendars"][0]["day_of_week"] == [{"start": 0, "end": 6, "step": 1}]
    assert "year" not in wire["spec"]["calendars"][0]
    assert wire["spec"]["intervals"] == [{"every": "21600s", "offset": "900s"}]
    assert wire["spec"]["exclude_calendars"][0]["month"] == [{"start": 12, "end": 12, "step": 1}]
    assert wire["spec"]["start_time"] == "2025-01-01T00:00:00.000Z"
    assert (wire["spec"]["jitter"], wire["spec"]["time_zone"]) == ("90s", "America/New_York")
    assert wire["policies"] == {
        "overlap_policy": "BUFFER_ALL",
        "catchup_window": "600s",
        "pause_on_failure": False,
    }
    assert wire["state"] == {
        "note": "",
        "paused": True,
        "limited_actions": True,
        "remaining_actions": 2,
    }
    assert Schedule._from_wire(wire) == schedule


def test_absent_calendar_fields_read_back_as_temporal_s_defaults() -> None:
    spec = ScheduleSpec._from_wire({"calendars": [{"hour": [{"start": 9, "end": 9, "step": 1}]}]})
    assert spec.calendars == [ScheduleCalendarSpec(hour=(ScheduleRange(9),))]
    with pytest.raises(ValueError, match="minute"):
        ScheduleCalendarSpec(minute=[])._to_wire()


def test_backfill_and_overlap_names() -> None:
    b = ScheduleBackfill(
        start_at=datetime(2025, 1, 5, tzinfo=timezone.utc),
        end_at=datetime(2025, 1, 12, tzinfo=timezone.utc),
        overlap=ScheduleOverlapPolicy.ALLOW_ALL,
    )
    assert b._to_wire() == {
        "start_time": "2025-01-05T00:00:00.000Z",
        "end_time": "2025-01-12T00:00:00.000Z",
        "overlap_policy": "ALLOW_ALL",
    }
    assert [p.value for p in ScheduleOverlapPolicy] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError):
        ScheduleActionStartWorkflow("Report", id="", task_queue="q")
