"""The Python side of tests/conformance/child_workflows (sdk-ts: test/scenario_features.ts)."""

import asyncio
from datetime import timedelta

from baton import activity, workflow


@activity.defn
async def pack_line(line: str) -> str:
    return f"packed {line}"


@workflow.defn
class ConformanceChild:
    @workflow.run
    async def run(self, line: str) -> str:
        return await workflow.execute_activity(
            pack_line, line, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn
class ConformanceParent:
    @workflow.run
    async def run(self, lines: list[str]) -> list[str]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_child_workflow(
                        ConformanceChild.run, line, id=f"conformance-child-{line}"
                    )
                    for line in lines
                )
            )
        )


workflows = [ConformanceParent, ConformanceChild]
activities = [pack_line]
