"""End to end: the schemas an app publishes from its type hints (a
dataclass argument, a signal's and an update's hints, a pydantic model
when pydantic is installed) are registered with the endpoint and make a
real ``baton dev`` refuse bad payloads before it writes anything."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest

from baton import App, activity, workflow
from baton._schema import args_schema
from baton.exceptions import RPCError
from baton.testing import AppServer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton


@dataclass
class Order:
    amount: int
    sku: str = "none"
    tags: list[str] = field(default_factory=lambda: [])


@activity.defn(name="schema_charge")
async def charge(order: Order, note: Optional[str]) -> int:
    return order.amount


@workflow.defn(name="SchemaOrder")
class OrderWorkflow:
    def __init__(self) -> None:
        self.approved: bool | None = None
        self.size = 0

    @workflow.run
    async def run(self, order: Order) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self.approved is not None)
        return {"amount": order.amount, "approved": self.approved, "size": self.size}

    @workflow.signal
    def approve(self, yes: bool) -> None:
        self.approved = yes

    @workflow.update
    def resize(self, size: int) -> int:
        self.size = size
        return size

    @workflow.query
    def status(self) -> bool | None:
        return self.approved


def test_hints_become_schemas_of_the_argument_array() -> None:
    schema = args_schema(OrderWorkflow.run)
    assert schema is not None
    order = schema["then"]["prefixItems"][0]
    assert order == {
        "type": "object",
        "properties": {
            "amount": {"type": "integer"},
            "sku": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["amount"],
    }
    assert schema["then"]["minItems"] == 1
    # A bare (non-array) payload is the first argument, as the converter reads it.
    assert schema["else"] == order
    note = args_schema(charge)
    assert note is not None
    assert note["then"]["prefixItems"][1] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    # Nothing to check: no schema.
    assert args_schema(OrderWorkflow.status) is None


def test_pydantic_models_publish_their_own_schema() -> None:
    pydantic = pytest.importorskip("pydantic")
    # Module-level names: the annotations are strings resolved from there.
    global Line, Cart

    class Line(pydantic.BaseModel):  # type: ignore[no-redef]
        qty: int

    class Cart(pydantic.BaseModel):  # type: ignore[no-redef]
        lines: list[Line]

    async def checkout(cart: Cart) -> None:
        del cart

    schema = args_schema(checkout)
    assert schema is not None
    assert schema["then"]["prefixItems"][0]["properties"]["lines"]["items"] == {
        "$ref": "#/$defs/Line"
    }
    assert schema["$defs"]["Line"]["properties"]["qty"]["type"] == "integer"


def test_the_description_publishes_the_schemas() -> None:
    app = App(workflows=[OrderWorkflow], activities=[charge], signing_secret=SECRET)
    schemas = app.describe()["schemas"]
    wf = schemas["workflows"]["SchemaOrder"]
    assert set(wf) == {"input", "signals", "updates"}
    assert wf["signals"]["approve"]["then"]["prefixItems"] == [{"type": "boolean"}]
    assert wf["updates"]["resize"]["then"]["prefixItems"] == [{"type": "integer"}]
    assert schemas["activities"]["schema_charge"]["input"]["then"]["minItems"] == 2


@pytest.fixture(scope="module")
def queue(env: WorkflowEnvironment) -> Iterator[str]:
    app = App(
        workflows=[OrderWorkflow],
        activities=[charge],
        signing_secret=SECRET,
        server_url=env.target,
    )
    with AppServer(app) as server:
        asyncio.run(env.register_endpoint("schemas", server.url, SECRET))
        yield "schemas"


def _pointers(err: RPCError) -> list[str]:
    assert err.status == 400
    assert err.code == "invalid_input"
    assert err.problem is not None
    return [e["pointer"] for e in err.problem["errors"]]


async def test_bad_payloads_are_refused_and_nothing_is_written(
    env: WorkflowEnvironment, queue: str
) -> None:
    client = env.client
    # The start input, as a client would send it by hand: amount is a string.
    with pytest.raises(RPCError) as refused:
        await client.start_workflow(
            "SchemaOrder", {"amount": "ten"}, id="schema-bad", task_queue=queue
        )
    assert _pointers(refused.value) == ["/0/amount"]
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle("schema-bad").describe()
    assert missing.value.status == 404

    handle = await client.start_workflow(
        OrderWorkflow.run, Order(amount=10), id="schema-good", task_queue=queue
    )
    assert await handle.query(OrderWorkflow.status) is None
    with pytest.raises(RPCError) as bad_signal:
        await handle.signal("approve", "yes")
    assert _pointers(bad_signal.value) == ["/0"]
    with pytest.raises(RPCError) as bad_update:
        await handle.execute_update("resize", "big")
    assert _pointers(bad_update.value) == ["/0"]
    history = await handle.fetch_history()
    kinds = {e["event_type"] for e in history.events}
    assert "WorkflowExecutionSignaled" not in kinds
    assert not any(k.startswith("WorkflowExecutionUpdate") for k in kinds)

    assert await handle.execute_update(OrderWorkflow.resize, 3) == 3
    await handle.signal(OrderWorkflow.approve, True)
    assert await handle.result() == {"amount": 10, "approved": True, "size": 3}
