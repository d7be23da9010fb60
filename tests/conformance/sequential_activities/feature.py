from datetime import timedelta

from baton import activity, workflow


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}"


@activity.defn
async def farewell(name: str) -> str:
    return f"Goodbye, {name}"


@workflow.defn
class Greeting:
    @workflow.run
    async def run(self, name: str) -> list[str]:
        opts = {"start_to_close_timeout": timedelta(seconds=10)}
        hello = await workflow.execute_activity(greet, name, **opts)
        bye = await workflow.execute_activity(farewell, name, **opts)
        return [hello, bye]


workflows = [Greeting]
activities = [greet, farewell]
