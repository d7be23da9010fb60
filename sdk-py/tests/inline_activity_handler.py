"""The handler process that test_inline_activities_kill.py SIGKILLs (and
that sees its server SIGKILLed): an app, inline activities on, with one
workflow of five sequential activities, served by uvicorn on the port given
as the first argument. Each attempt appends ``<pid> start <step>`` and
``<pid> end <step>`` to the file named by ``STEPS_LOG``, so the test sees
which process ran what, and when to kill."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

import uvicorn

from baton import App, activity, workflow
from baton.common import RetryPolicy
from tests.child_processes import log_step
from tests.conftest import SECRET

# The step the test kills in: long enough for a busy machine to see it start.
LONG_STEP = 3
# An attempt lost with its process (or whose result its server never got)
# times out after this and is retried, 200 ms later, as a pushed activity.
START_TO_CLOSE = timedelta(seconds=4)
RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200))


def _seconds(n: int) -> float:
    return 2.0 if n == LONG_STEP else 0.2


@activity.defn
async def step(n: int) -> int:
    log_step(f"start {n}")
    await asyncio.sleep(_seconds(n))
    log_step(f"end {n}")
    return n * 10


@workflow.defn
class FiveInlineSteps:
    """Five sequential activities of this app: one push runs them all
    inline, one checkpoint per step."""

    @workflow.run
    async def run(self) -> list[int]:
        results: list[int] = []
        for n in range(1, 6):
            results.append(
                await workflow.execute_activity(
                    step, n, start_to_close_timeout=START_TO_CLOSE, retry_policy=RETRY
                )
            )
        return results


app = App(workflows=[FiveInlineSteps], activities=[step], signing_secret=SECRET)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
