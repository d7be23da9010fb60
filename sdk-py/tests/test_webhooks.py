"""Inbound webhook sources end to end (``Client.create_webhook_source``,
``list_webhook_sources``, ``describe_webhook_source``,
``list_webhook_deliveries``, ``replay_webhook_delivery``,
``delete_webhook_source``) against a real ``baton dev``, whose workflows
an App on loopback runs: a Stripe-signed ``payment_intent.succeeded``
delivered three times and replayed signals the waiting workflow once; a
Standard Webhooks event signed by the official ``standardwebhooks``
package starts-and-signals a workflow, and a forged one is refused and
logged without its body.

Needs the server binary (``cargo build --bin baton``); skipped without it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from baton import App, workflow
from baton.client import Client
from baton.exceptions import RPCError
from baton.testing import AppServer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton

STRIPE_SECRET = "whsec_py_stripe"
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@workflow.defn
class OrderWorkflow:
    def __init__(self) -> None:
        self.payments: list[dict[str, Any]] = []
        self.shipped = False

    @workflow.signal
    def paid(self, payment: dict[str, Any]) -> None:
        self.payments.append(payment)

    @workflow.signal
    def ship(self) -> None:
        self.shipped = True

    @workflow.run
    async def run(self) -> list[dict[str, Any]]:
        await workflow.wait_condition(lambda: self.shipped)
        return self.payments


@pytest.fixture(scope="module")
def served(env: WorkflowEnvironment) -> Iterator[tuple[Client, str]]:
    app = App(workflows=[OrderWorkflow], signing_secret=SECRET, server_url=env.target)
    with AppServer(app) as server:
        asyncio.run(env.register_endpoint("orders", server.url, SECRET))
        yield env.client, env.target


def _post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def _deliver(
    target: str, source: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, Any]]:
    url = f"{target}/api/v1/namespaces/default/webhooks/{source}"
    return await asyncio.to_thread(
        _post, url, {"content-type": "application/json", **headers}, body
    )


def _stripe_signature(body: bytes, t: int) -> str:
    mac = hmac.new(STRIPE_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def test_a_stripe_payment_signals_the_waiting_workflow_once(served: tuple[Client, str]) -> None:
    client, target = served

    async def go() -> None:
        handle = await client.start_workflow(
            OrderWorkflow.run, id="order-pi_42", task_queue="orders"
        )
        source = await client.create_webhook_source(
            "stripe",
            "stripe",
            ["whsec_previous", STRIPE_SECRET],
            rules=[
                {
                    "name": "paid",
                    "events": ["payment_intent.succeeded"],
                    "action": {
                        "type": "signal",
                        "workflow_id": "order-{/data/object/id}",
                        "signal": "paid",
                        "input": "{/data/object}",
                    },
                }
            ],
        )
        assert (source["secret_count"], source["url"]) == (
            2,
            "/api/v1/namespaces/default/webhooks/stripe",
        )
        assert [s["source_id"] for s in await client.list_webhook_sources()] == ["stripe"]
        assert (await client.describe_webhook_source("stripe"))["rules"][0]["name"] == "paid"

        event = {
            "id": "evt_42",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_42", "amount": 990}},
        }
        body = json.dumps(event).encode()
        for i in range(3):
            status, answer = await _deliver(
                target,
                "stripe",
                {"stripe-signature": _stripe_signature(body, int(time.time()) - i)},
                body,
            )
            assert (status, answer["outcome"]) == (200, "acted"), answer
        forged = body.replace(b"990", b"1")
        status, answer = await _deliver(
            target,
            "stripe",
            {"stripe-signature": _stripe_signature(body, int(time.time()))},
            forged,
        )
        assert (status, answer["code"]) == (401, "signature_invalid")

        log = [d async for d in client.list_webhook_deliveries("stripe", page_size=2)]
        assert [d["outcome"] for d in log] == ["refused", "acted", "acted", "acted"]
        replayed = await client.replay_webhook_delivery("stripe", log[-1]["delivery"])
        assert (replayed["outcome"], replayed["replay_of"]) == ("acted", log[-1]["delivery"])

        await handle.signal(OrderWorkflow.ship)
        # Three deliveries and a replay: the workflow saw the payment once.
        assert await handle.result() == [{"id": "pi_42", "amount": 990}]

        await client.delete_webhook_source("stripe")
        with pytest.raises(RPCError) as err:
            await client.describe_webhook_source("stripe")
        assert err.value.status == 404

    asyncio.run(go())


def test_a_standard_webhooks_event_signed_by_the_official_library(
    served: tuple[Client, str],
) -> None:
    client, target = served

    async def go() -> None:
        await client.create_webhook_source(
            "partner",
            "standard_webhooks",
            [SW_SECRET],
            rules=[
                {
                    "name": "order",
                    "events": ["order.paid"],
                    "action": {
                        "type": "signal_with_start",
                        "workflow_id": "order-{/data/order}",
                        "signal": "paid",
                        "input": "{/data}",
                        "workflow_type": "OrderWorkflow",
                        "task_queue": "orders",
                        "workflow_input": [],
                    },
                }
            ],
        )
        payload = json.dumps({"type": "order.paid", "data": {"order": "sw-1", "amount": 5}})
        now = datetime.now(timezone.utc)
        headers = {
            "webhook-id": "msg_py_1",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(SW_SECRET).sign("msg_py_1", now, payload),
        }
        status, answer = await _deliver(target, "partner", headers, payload.encode())
        assert (status, answer["action"], answer["delivery_id"]) == (
            200,
            "signal_with_start",
            "standard_webhooks:msg_py_1",
        )
        status, _ = await _deliver(target, "partner", headers, payload.replace("5", "50").encode())
        assert status == 401

        handle = client.get_workflow_handle("order-sw-1")
        await handle.signal(OrderWorkflow.ship)
        assert await handle.result() == [{"order": "sw-1", "amount": 5}]
        log = [d async for d in client.list_webhook_deliveries("partner")]
        assert [d["outcome"] for d in log] == ["refused", "acted"]
        assert "delivery_id" not in log[0]

    asyncio.run(go())
