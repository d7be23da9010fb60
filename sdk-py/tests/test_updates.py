"""Updates end to end, written as a Temporal user would: a shopping cart
whose ``add_item`` update is validated (a rejection leaves no history),
whose handlers may await activities, and whose run waits with
``wait_condition`` for a ``checkout`` update. A real ``baton dev`` server
pushes to the app served by uvicorn; no mocks between the two."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from baton import App, activity, workflow
from baton._workflow_instance import handle_update_validation
from baton.client import Client, WorkflowHandle, WorkflowUpdateStage
from baton.exceptions import (
    ApplicationError,
    WorkflowAlreadyCompletedError,
    WorkflowNotFoundError,
    WorkflowUpdateFailedError,
)
from baton.testing import AppServer, Replayer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton
from tests.fakeserver import FakeServer


@dataclass
class Item:
    sku: str
    qty: int


@activity.defn
async def reserve_stock(sku: str) -> str:
    return f"reserved {sku}"


@workflow.defn
class ShoppingCart:
    def __init__(self) -> None:
        self.items: list[Item] = []
        self.checked_out = False

    @workflow.run
    async def run(self) -> list[str]:
        try:
            await workflow.wait_condition(lambda: self.checked_out, timeout=timedelta(days=1))
        except asyncio.TimeoutError:
            return ["abandoned"]
        return [f"{i.qty} x {i.sku}" for i in self.items]

    @workflow.update
    def add_item(self, item: Item) -> int:
        self.items.append(item)
        return len(self.items)

    @add_item.validator
    def validate_add_item(self, item: Item) -> None:
        if item.qty <= 0:
            raise ApplicationError(f"quantity must be positive, got {item.qty}")

    @workflow.update
    async def reserve(self, sku: str) -> str:
        if not any(i.sku == sku for i in self.items):
            raise ApplicationError(f"{sku} is not in the cart", type="NotInCart")
        return await workflow.execute_activity(
            reserve_stock, sku, start_to_close_timeout=timedelta(seconds=10)
        )

    @workflow.update
    def checkout(self) -> int:
        self.checked_out = True
        return len(self.items)


@pytest.fixture(scope="module")
def queue(env: WorkflowEnvironment) -> Iterator[str]:
    app = App(
        workflows=[ShoppingCart],
        activities=[reserve_stock],
        signing_secret=SECRET,
        server_url=env.target,
    )
    with AppServer(app) as server:
        asyncio.run(env.register_endpoint("carts", server.url, SECRET))
        yield "carts"


@pytest.fixture
async def client(env: WorkflowEnvironment, queue: str) -> AsyncIterator[Client]:
    del queue
    yield env.client


async def start_cart(client: Client, cart_id: str) -> WorkflowHandle[Any]:
    return await client.start_workflow(ShoppingCart.run, id=cart_id, task_queue="carts")


async def updates_in(handle: WorkflowHandle[Any]) -> list[str]:
    events = (await handle.fetch_history()).events
    return [
        e["event_type"] for e in events if e["event_type"].startswith("WorkflowExecutionUpdate")
    ]


@needs_baton
async def test_a_validator_rejects_bad_input_and_leaves_no_history(client: Client) -> None:
    handle = await start_cart(client, "cart-validate")
    assert await handle.execute_update(ShoppingCart.add_item, Item("A-17", 2)) == 1
    before = (await handle.fetch_history()).events
    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await handle.execute_update(ShoppingCart.add_item, Item("B-2", 0))
    assert isinstance(rejected.value.cause, ApplicationError)
    assert "quantity must be positive, got 0" in str(rejected.value.cause)
    assert (await handle.fetch_history()).events == before
    assert await handle.execute_update(ShoppingCart.add_item, Item("B-2", 1)) == 2
    await handle.terminate(reason="test done")


@needs_baton
async def test_a_duplicate_update_id_returns_the_first_result(client: Client) -> None:
    handle = await start_cart(client, "cart-dedupe")
    first = await handle.execute_update(ShoppingCart.add_item, Item("A-17", 1), id="add-a17")
    again = await handle.execute_update(ShoppingCart.add_item, Item("C-3", 5), id="add-a17")
    assert (first, again) == (1, 1)
    assert await updates_in(handle) == [
        "WorkflowExecutionUpdateAdmitted",
        "WorkflowExecutionUpdateAccepted",
        "WorkflowExecutionUpdateCompleted",
    ]
    assert await handle.get_update_handle("add-a17", result_type=int).result() == 1
    await handle.terminate(reason="test done")


@needs_baton
async def test_a_handler_awaits_an_activity_and_can_fail(client: Client) -> None:
    handle = await start_cart(client, "cart-reserve")
    await handle.execute_update(ShoppingCart.add_item, Item("A-17", 1))
    update = await handle.start_update(
        ShoppingCart.reserve, "A-17", wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    assert update.name == "reserve"
    assert await update.result() == "reserved A-17"
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(ShoppingCart.reserve, "Z-9")
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "NotInCart"
    types = await updates_in(handle)
    # The failing handler ran: a handler's failure is recorded, a
    # validator's rejection is not.
    assert types.count("WorkflowExecutionUpdateCompleted") == 3
    await handle.terminate(reason="test done")


@needs_baton
async def test_wait_condition_wakes_on_an_update_and_the_history_replays(client: Client) -> None:
    handle = await start_cart(client, "cart-checkout")
    await handle.execute_update(ShoppingCart.add_item, Item("A-17", 2))
    await handle.execute_update(ShoppingCart.add_item, Item("B-2", 1))
    assert await handle.execute_update(ShoppingCart.checkout) == 2
    assert await asyncio.wait_for(handle.result(), 20) == ["2 x A-17", "1 x B-2"]
    # A closed run answers known update ids and refuses new updates.
    with pytest.raises(WorkflowAlreadyCompletedError):
        await handle.execute_update(ShoppingCart.add_item, Item("C-3", 1))
    await Replayer(workflows=[ShoppingCart]).replay_workflow(await handle.fetch_history())


@needs_baton
async def test_a_cart_without_checkout_is_abandoned_after_a_day(
    client: Client, env: WorkflowEnvironment
) -> None:
    handle = await start_cart(client, "cart-abandoned")
    await handle.execute_update(ShoppingCart.add_item, Item("A-17", 1))
    await env.sleep(timedelta(days=1))
    assert await asyncio.wait_for(handle.result(), 20) == ["abandoned"]


@needs_baton
async def test_an_update_to_an_unknown_workflow_or_update_id(client: Client) -> None:
    with pytest.raises(WorkflowNotFoundError):
        await client.get_workflow_handle("cart-nobody").execute_update(
            ShoppingCart.add_item, Item("A-17", 1)
        )
    handle = await start_cart(client, "cart-unknown-update")
    with pytest.raises(WorkflowNotFoundError):
        await handle.get_update_handle("never-sent").result()
    with pytest.raises(WorkflowUpdateFailedError) as unknown:
        await handle.execute_update("remove_item", "A-17")
    assert "remove_item" in str(unknown.value.cause)
    await handle.terminate(reason="test done")


# --- against recorded histories (no server) ---------------------------------------------------------


def validation(server: FakeServer, name: str, *args: Any) -> dict[str, Any]:
    push = server.request(list(server.history))
    push.update(type="update_validation", update_id="v", update_name=name, update_args=list(args))
    return handle_update_validation(server.defn, push)


def test_validation_replays_the_history_and_runs_the_validator_only() -> None:
    server = FakeServer(ShoppingCart)
    server.workflow_task()
    before = json.dumps(server.history)
    assert validation(server, "add_item", {"sku": "A-17", "qty": 1}) == {"accepted": True}
    rejected = validation(server, "add_item", {"sku": "A-17", "qty": 0})
    assert rejected["failure"]["message"] == "quantity must be positive, got 0"
    assert rejected["failure"]["type"] == "ApplicationError"
    unknown = validation(server, "remove_item", "A-17")
    assert "known updates: [add_item checkout reserve]" in unknown["failure"]["message"]
    bad_args = validation(server, "add_item", "not an item")
    assert "cannot decode the arguments" in bad_args["failure"]["message"]
    assert json.dumps(server.history) == before


def test_recorded_updates_run_their_handlers_without_the_validator() -> None:
    # The validator would reject this input now; an admitted update is run
    # all the same, on every replay (validators never run on replay).
    server = FakeServer(ShoppingCart)
    server.workflow_task()
    server.update("add_item", {"sku": "A-17", "qty": 0}, update_id="u1")
    answer = server.workflow_task()
    assert answer["commands"] == [
        {"command_type": "CompleteWorkflowUpdate", "attributes": {"update_id": "u1", "result": 1}}
    ]
    server.update("checkout", update_id="u2")
    answer = server.workflow_task()
    assert [c["command_type"] for c in answer["commands"]] == [
        "CompleteWorkflowUpdate",
        "CancelTimer",  # the wait_condition's timeout
        "CompleteWorkflowExecution",
    ]
    assert answer["commands"][-1]["attributes"]["result"] == ["0 x A-17"]


@workflow.defn
class Fragile:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update
    def lookup(self, key: str) -> str:
        return {"a": "b"}[key]


def test_a_handler_bug_fails_the_workflow_task_and_bad_input_fails_the_update() -> None:
    server = FakeServer(Fragile)
    server.workflow_task()
    server.update("lookup", "zz", update_id="u1")
    answer = server.workflow_task()
    # A KeyError is a bug to fix and redeploy, as in Temporal: the task
    # fails and is retried; the update waits.
    assert answer["failure"]["cause"] == "WORKFLOW_WORKER_UNHANDLED_FAILURE"
    server = FakeServer(Fragile)
    server.workflow_task()
    server.update("lookup", ["not", "a", "key"], update_id="u1")
    answer = server.workflow_task()
    assert answer["commands"][0]["attributes"]["failure"]["message"].startswith(
        "cannot decode the arguments of update 'lookup'"
    )
