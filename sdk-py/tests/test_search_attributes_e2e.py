"""End to end: custom search attributes set at start by the client and
upserted by workflow code (replayed on the next task), found by list
queries and shown by describe, against a real ``baton dev`` server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from baton import App, activity, workflow
from baton.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from baton.exceptions import RPCError
from baton.testing import AppServer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton

CUSTOMER = SearchAttributeKey.for_keyword("CustomerId")
PRIORITY = SearchAttributeKey.for_int("Priority")
TAGS = SearchAttributeKey.for_keyword_list("Tags")
DUE = SearchAttributeKey.for_datetime("DueAt")


@activity.defn(name="sa_times_ten")
async def times_ten(n: int) -> int:
    return n * 10


@workflow.defn
class Tagged:
    @workflow.run
    async def run(self, n: int) -> dict[str, Any]:
        customer = workflow.info().typed_search_attributes.get(CUSTOMER)
        workflow.upsert_search_attributes([PRIORITY.value_set(n), TAGS.value_set(["py", f"n{n}"])])
        bigger = await workflow.execute_activity(
            times_ten, n, start_to_close_timeout=timedelta(seconds=10)
        )
        updates = [PRIORITY.value_set(bigger)]
        if n == 0:
            updates.append(CUSTOMER.value_unset())
        workflow.upsert_search_attributes(updates)
        now = workflow.info().typed_search_attributes
        return {
            "customer": customer,
            "priority": now.get(PRIORITY),
            "has_customer": CUSTOMER in now,
        }


@workflow.defn
class Leaf:
    @workflow.run
    async def run(self) -> list[str]:
        return sorted(p.key.name for p in workflow.info().typed_search_attributes)


@workflow.defn
class Chained:
    @workflow.run
    async def run(self, step: int) -> dict[str, Any]:
        if step == 0:
            workflow.continue_as_new(1)  # the attributes are carried over
        if step == 1:
            workflow.continue_as_new(
                2, search_attributes=TypedSearchAttributes([SearchAttributePair(PRIORITY, 99)])
            )
        child = await workflow.execute_child_workflow(
            Leaf.run,
            id=f"{workflow.info().workflow_id}-leaf",
            search_attributes=TypedSearchAttributes([SearchAttributePair(CUSTOMER, "leafy")]),
        )
        attributes = workflow.info().typed_search_attributes
        return {"step": step, "priority": attributes.get(PRIORITY), "child": child}


@pytest.fixture(scope="module")
def queue(env: WorkflowEnvironment) -> Iterator[str]:
    """The ``sa`` queue served by an app, and the attributes registered."""
    app = App(
        workflows=[Tagged, Leaf, Chained],
        activities=[times_ten],
        signing_secret=SECRET,
        server_url=env.target,
    )
    with AppServer(app) as server:
        asyncio.run(env.register_endpoint("sa", server.url, SECRET))
        asyncio.run(
            env.client._call(  # pyright: ignore[reportPrivateUsage]
                "POST",
                "/search-attributes",
                {
                    "search_attributes": {
                        "CustomerId": "Keyword",
                        "Priority": "Int",
                        "Tags": "KeywordList",
                        "DueAt": "Datetime",
                    }
                },
            )
        )
        yield "sa"


async def test_attributes_set_at_start_and_upserted_are_queryable(
    env: WorkflowEnvironment, queue: str
) -> None:
    client = env.client
    due = datetime(2026, 11, 1, 12, 30, tzinfo=timezone.utc)
    results = []
    for n in range(3):
        results.append(
            await client.execute_workflow(
                Tagged.run,
                n,
                id=f"tagged-{n}",
                task_queue=queue,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(CUSTOMER, f"c{n % 2}"), SearchAttributePair(DUE, due)]
                ),
            )
        )
    assert results == [
        {"customer": "c0", "priority": 0, "has_customer": False},
        {"customer": "c1", "priority": 10, "has_customer": True},
        {"customer": "c0", "priority": 20, "has_customer": True},
    ]

    async def ids(query: str) -> list[str]:
        return [w.id async for w in client.list_workflows(query, page_size=1)]

    assert await ids("CustomerId = 'c0'") == ["tagged-2"]
    assert await ids("Priority >= 10 ORDER BY Priority DESC") == ["tagged-2", "tagged-1"]
    assert sorted(await ids("Tags = 'py' AND WorkflowType = 'Tagged'")) == [
        "tagged-0",
        "tagged-1",
        "tagged-2",
    ]
    assert await ids("Tags = 'n1'") == ["tagged-1"]
    assert len(await ids("DueAt = '2026-11-01T13:30:00+01:00'")) == 3

    d = await client.get_workflow_handle("tagged-2").describe()
    assert d.typed_search_attributes[PRIORITY] == 20
    assert d.typed_search_attributes[DUE] == due
    assert list(d.typed_search_attributes[TAGS]) == ["py", "n2"]
    assert (
        CUSTOMER
        not in (await client.get_workflow_handle("tagged-0").describe()).typed_search_attributes
    )

    with pytest.raises(RPCError) as bad:
        await client.start_workflow(
            Tagged.run,
            5,
            id="tagged-bad",
            task_queue=queue,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(SearchAttributeKey.for_int("CustomerId"), 5)]
            ),
        )
    assert bad.value.status == 400 and "CustomerId" in str(bad.value)
    with pytest.raises(RPCError) as query:
        await ids("Nope = 'x'")
    assert query.value.status == 400 and "Nope" in str(query.value)


async def test_continue_as_new_carries_them_and_children_inherit_none(
    env: WorkflowEnvironment, queue: str
) -> None:
    client = env.client
    result = await client.execute_workflow(
        Chained.run,
        0,
        id="chained",
        task_queue=queue,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(CUSTOMER, "c-chain"), SearchAttributePair(PRIORITY, 1)]
        ),
    )
    assert result == {"step": 2, "priority": 99, "child": ["CustomerId"]}
    assert [w.id async for w in client.list_workflows("CustomerId = 'leafy'")] == ["chained-leaf"]
    # The first two runs of the chain had the start's attributes.
    assert [w.id async for w in client.list_workflows("CustomerId = 'c-chain'")] == [
        "chained",
        "chained",
    ]
    assert [
        w.id async for w in client.list_workflows("WorkflowId = 'chained' AND Priority = 99")
    ] == ["chained"]
