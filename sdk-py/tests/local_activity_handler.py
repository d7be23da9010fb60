"""The handler process that test_local_activities_kill.py SIGKILLs: an app
with one workflow of five sequential local activities, served by uvicorn on
the port given as the first argument. Each attempt appends ``<pid> start
<step>`` and ``<pid> end <step>`` to the file named by ``STEPS_LOG``, so the
test sees which process ran what, and when to kill."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

import uvicorn

from baton import App, activity, workflow
from tests.child_processes import log_step
from tests.conftest import SECRET


def _seconds(n: int) -> float:
    """How long a step runs: the test kills the handler inside step 4, so
    that one is long enough for a busy machine to see it start."""
    return 2.0 if n == 4 else 0.2


@activity.defn
async def step(n: int) -> int:
    log_step(f"start {n}")
    await asyncio.sleep(_seconds(n))
    log_step(f"end {n}")
    return n * 10


@workflow.defn
class FiveLocalSteps:
    """Steps 1 and 2, then a durable timer (the task answers: their markers
    are committed), then steps 3, 4 and 5 in the next task."""

    @workflow.run
    async def run(self) -> list[int]:
        results = []
        for n in range(1, 6):
            if n == 3:
                await workflow.sleep(timedelta(milliseconds=100))
            results.append(
                await workflow.execute_local_activity(
                    step, n, start_to_close_timeout=timedelta(seconds=5)
                )
            )
        return results


app = App(workflows=[FiveLocalSteps], activities=[step], signing_secret=SECRET)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
