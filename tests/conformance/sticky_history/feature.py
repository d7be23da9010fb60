"""The Python side of tests/conformance/sticky_history (sdk-ts: test/scenario_features.ts)."""

from datetime import timedelta

from baton import activity, workflow

STC = timedelta(seconds=10)


@activity.defn
async def conformance_sticky_pad(i: int) -> str:
    return f"{i}:" + "x" * 1500


@workflow.defn
class ConformanceStickyHistory:
    def __init__(self) -> None:
        self.steps = 0
        self.more = 0

    @workflow.signal
    def extra(self, k: int) -> None:
        self.more += k

    @workflow.query
    def progress(self) -> int:
        return self.steps

    @workflow.run
    async def run(self, n: int) -> list[int]:
        total = 0

        async def step() -> None:
            nonlocal total
            padded = await workflow.execute_activity(
                conformance_sticky_pad, self.steps, start_to_close_timeout=STC, inline=False
            )
            total += len(padded)
            self.steps += 1

        for _ in range(n):
            await step()
        await workflow.sleep(timedelta(hours=1))
        for _ in range(self.more):
            await step()
        return [self.steps, total]


workflows = [ConformanceStickyHistory]
activities = [conformance_sticky_pad]
