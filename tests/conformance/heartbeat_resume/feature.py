"""The Python side of tests/conformance/heartbeat_resume (sdk-ts: test/scenario_features.ts)."""

from datetime import timedelta
from typing import Any

from baton import activity, workflow
from baton.common import RetryPolicy


@activity.defn
async def resumable_download(total: int) -> dict[str, Any]:
    info = activity.info()
    start = int(info.heartbeat_details[0]) if info.heartbeat_details else 0
    if info.attempt == 1:
        for done in range(start, total // 2 + 1, 10):
            activity.heartbeat(done)
        raise ConnectionError("connection reset halfway")
    return {"attempt": info.attempt, "resumed_from": start, "total": total}


@workflow.defn
class ConformanceResume:
    @workflow.run
    async def run(self, total: int) -> dict[str, Any]:
        return await workflow.execute_activity(
            resumable_download,
            total,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100), maximum_attempts=3
            ),
        )


workflows = [ConformanceResume]
activities = [resumable_download]
