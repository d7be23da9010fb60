import asyncio
from datetime import timedelta

from baton import workflow


@workflow.defn(name="Checkout")
class Recorded:
    """The code that wrote the history (used to generate case.json)."""

    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity(
            "charge", start_to_close_timeout=timedelta(seconds=10)
        )
        await asyncio.sleep(60)
        return "done"


@workflow.defn(name="Checkout")
class Current:
    """The code deployed now: a timer first."""

    @workflow.run
    async def run(self) -> str:
        await asyncio.sleep(60)
        await workflow.execute_activity(
            "charge", start_to_close_timeout=timedelta(seconds=10)
        )
        return "done"


workflows = [Current]
activities: list[object] = []
