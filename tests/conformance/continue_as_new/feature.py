"""The Python side of tests/conformance/continue_as_new (sdk-ts: test/scenario_features.ts)."""

from datetime import timedelta

from baton import activity, workflow


@activity.defn
async def count_up(n: int) -> int:
    return n + 1


@workflow.defn
class ConformanceCounter:
    @workflow.run
    async def run(self, count: int, target: int) -> dict[str, int]:
        for _ in range(3):
            if count >= target:
                break
            count = await workflow.execute_activity(
                count_up, count, start_to_close_timeout=timedelta(seconds=10)
            )
        if count < target:
            workflow.continue_as_new(args=[count, target])
        return {"count": count}


workflows = [ConformanceCounter]
activities = [count_up]
