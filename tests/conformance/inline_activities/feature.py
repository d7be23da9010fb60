"""The Python side of tests/conformance/inline_activities (sdk-ts: test/scenario_features.ts)."""

from datetime import timedelta

from baton import activity, workflow

STC = timedelta(seconds=10)


@activity.defn
async def conformance_inline_add(n: int) -> int:
    return n + 1


@activity.defn
async def conformance_pushed_add(n: int) -> int:
    return n + 10


@workflow.defn
class ConformanceInlineSteps:
    @workflow.run
    async def run(self, n: int) -> list[int]:
        seen: list[int] = []
        for _ in range(2):
            n = await workflow.execute_activity(
                conformance_inline_add, n, start_to_close_timeout=STC
            )
            seen.append(n)
        n = await workflow.execute_activity(
            conformance_pushed_add, n, start_to_close_timeout=STC, inline=False
        )
        seen.append(n)
        n = await workflow.execute_activity(conformance_inline_add, n, start_to_close_timeout=STC)
        seen.append(n)
        return seen


workflows = [ConformanceInlineSteps]
activities = [conformance_inline_add, conformance_pushed_add]
