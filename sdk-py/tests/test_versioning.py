"""Worker versioning end to end, as Temporal users write it: an order
fulfillment workflow deployed in three code versions, each served by its own
``App`` registered as versions v1, v2 and v3 of ONE task queue. Runs stay
pinned to the version they started on and finish on their own code path;
``workflow.patched`` keeps a run replayable when an operator moves it to a
newer version; a change made without a patch is caught by the Replayer
against a history exported from a v1 run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from baton import App, activity, workflow
from baton.client import Client, WorkflowHandle
from baton.exceptions import NonDeterminismError
from baton.testing import AppServer, Replayer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton
QUEUE = "fulfillment"
S = timedelta(seconds=10)


@activity.defn
async def reserve_inventory(order_id: str) -> str:
    return f"reserved {order_id}"


@activity.defn
async def fraud_check(order_id: str) -> str:
    return f"fraud-checked {order_id}"


@activity.defn
async def ship_order(order_id: str) -> str:
    return f"shipped {order_id}"


@activity.defn
async def award_loyalty_points(order_id: str) -> str:
    return f"points for {order_id}"


async def step(fn: Any, order_id: str) -> str:
    return await workflow.execute_activity(fn, order_id, start_to_close_timeout=S)


class _Fulfillment:
    """Waits for payment confirmation (a signal) between reserving and
    shipping, so runs of every version are open when the next deploys."""

    def __init__(self) -> None:
        self.paid = False

    @workflow.signal
    def payment_confirmed(self) -> None:
        self.paid = True


@workflow.defn(name="OrderFulfillment")
class OrderFulfillmentV1(_Fulfillment):
    @workflow.run
    async def run(self, order_id: str) -> list[str]:
        steps = [await step(reserve_inventory, order_id)]
        await workflow.wait_condition(lambda: self.paid)
        steps.append(await step(ship_order, order_id))
        return steps


@workflow.defn(name="OrderFulfillment")
class OrderFulfillmentV2(_Fulfillment):
    @workflow.run
    async def run(self, order_id: str) -> list[str]:
        steps = [await step(reserve_inventory, order_id)]
        if workflow.patched("fraud-check-v2"):
            steps.append(await step(fraud_check, order_id))
        await workflow.wait_condition(lambda: self.paid)
        steps.append(await step(ship_order, order_id))
        return steps


@workflow.defn(name="OrderFulfillment")
class OrderFulfillmentV3(_Fulfillment):
    @workflow.run
    async def run(self, order_id: str) -> list[str]:
        steps = [await step(reserve_inventory, order_id)]
        if workflow.patched("fraud-check-v2"):
            steps.append(await step(fraud_check, order_id))
        await workflow.wait_condition(lambda: self.paid)
        steps.append(await step(ship_order, order_id))
        if workflow.patched("loyalty-points-v3"):
            steps.append(await step(award_loyalty_points, order_id))
        return steps


@workflow.defn(name="OrderFulfillment")
class OrderFulfillmentUnpatched(_Fulfillment):
    """v2's change made the wrong way: the fraud check without a patch."""

    @workflow.run
    async def run(self, order_id: str) -> list[str]:
        steps = [await step(reserve_inventory, order_id)]
        steps.append(await step(fraud_check, order_id))
        await workflow.wait_condition(lambda: self.paid)
        steps.append(await step(ship_order, order_id))
        return steps


ACTIVITIES = [reserve_inventory, fraud_check, ship_order, award_loyalty_points]


@pytest.fixture(scope="module")
def deployments() -> Iterator[dict[str, str]]:
    """Version -> URL: each code version served by its own App."""
    apps = {
        version: App(workflows=[wf], activities=ACTIVITIES, signing_secret=SECRET)
        for version, wf in [
            ("v1", OrderFulfillmentV1),
            ("v2", OrderFulfillmentV2),
            ("v3", OrderFulfillmentV3),
        ]
    }
    with AppServer(apps["v1"]) as v1, AppServer(apps["v2"]) as v2, AppServer(apps["v3"]) as v3:
        yield {"v1": v1.url, "v2": v2.url, "v3": v3.url}


async def deploy(env: WorkflowEnvironment, urls: dict[str, str], version: str) -> None:
    await env.register_endpoint(QUEUE, urls[version], SECRET, version=version)


async def start(client: Client, order_id: str) -> WorkflowHandle[Any]:
    return await client.start_workflow(
        OrderFulfillmentV1.run, order_id, id=f"order-{order_id}", task_queue=QUEUE
    )


async def wait_until_waiting(handle: WorkflowHandle[Any], activities: int) -> None:
    """Until the run has completed `activities` activities and has no task
    or activity in flight: it is blocked on the payment signal."""
    for _ in range(500):
        history = await handle.fetch_history()
        done = [e for e in history.events if e["event_type"] == "ActivityTaskCompleted"]
        d = await handle.describe()
        if len(done) == activities and not d.pending_activities and not d.pending_workflow_task:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{handle.id} never blocked on the signal")


async def versions(env: WorkflowEnvironment) -> dict[str, int]:
    resp = await env.client._call("GET", f"/endpoints/{QUEUE}/versions")
    return {v["version"]: v["open_runs"] for v in resp.json()["versions"]}


async def test_runs_finish_on_the_version_they_started_on(
    env: WorkflowEnvironment, deployments: dict[str, str]
) -> None:
    client = env.client
    await deploy(env, deployments, "v1")
    r1 = await start(client, "1")
    moved = await start(client, "4")
    await wait_until_waiting(r1, 1)
    await wait_until_waiting(moved, 1)

    await deploy(env, deployments, "v2")
    r2 = await start(client, "2")
    await wait_until_waiting(r2, 2)  # reserve + fraud check

    await deploy(env, deployments, "v3")
    r3 = await start(client, "3")
    await wait_until_waiting(r3, 2)
    assert [(await h.describe()).pinned_version for h in (r1, moved, r2, r3)] == [
        "v1",
        "v1",
        "v2",
        "v3",
    ]
    assert await versions(env) == {"v1": 2, "v2": 1, "v3": 1}

    # An operator moves one v1 run to v3 (audited). v3 replays its history:
    # patched("fraud-check-v2") is False there (no marker), so replay
    # matches, and the code after the move takes the v3 path.
    resp = await client._call(
        "POST",
        f"/endpoints/{QUEUE}/versions/v3/move-runs",
        {"from_version": "v1", "workflow_ids": ["order-4"], "reason": "retire v1 early"},
    )
    assert resp.json()["moved"] == 1
    assert await versions(env) == {"v1": 1, "v2": 1, "v3": 2}

    for h in (r1, r2, r3, moved):
        await h.signal(OrderFulfillmentV1.payment_confirmed)
    results = [await asyncio.wait_for(h.result(), 20) for h in (r1, r2, r3, moved)]
    assert results == [
        ["reserved 1", "shipped 1"],
        ["reserved 2", "fraud-checked 2", "shipped 2"],
        ["reserved 3", "fraud-checked 3", "shipped 3", "points for 3"],
        ["reserved 4", "shipped 4", "points for 4"],
    ]
    assert await versions(env) == {"v1": 0, "v2": 0, "v3": 0}

    history = await moved.fetch_history()
    [update] = [e for e in history.events if e["event_type"] == "WorkflowExecutionOptionsUpdated"]
    assert update["attributes"]["versioning_override"] == {"pinned_version": "v3"}
    assert update["attributes"]["previous_pinned_version"] == "v1"
    assert update["attributes"]["reason"] == "retire v1 early"
    failed = [e for e in history.events if e["event_type"] == "WorkflowTaskFailed"]
    assert failed == []

    # Every history replays on the newest code; a v1 history does not
    # replay on the unpatched change.
    v1_history = await r1.fetch_history()
    replayer = Replayer(workflows=[OrderFulfillmentV3])
    for h in (r1, r2, r3, moved):
        await replayer.replay_workflow(await h.fetch_history())
    with pytest.raises(NonDeterminismError) as info:
        await Replayer(workflows=[OrderFulfillmentUnpatched]).replay_workflow(v1_history)
    assert "fraud_check" in str(info.value)
