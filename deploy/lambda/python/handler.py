"""An example Baton handler: an order workflow and its two activities.

The same module is served three ways:

- AWS Lambda behind a function URL: ``handler.lambda_handler``
  (deploy/lambda/template.yaml);
- an ASGI app: ``uvicorn handler:app`` (deploy/handler/Dockerfile, run by
  deploy/compose.yaml and deploy/k8s/handler-deployment.yaml);
- in tests: test_handler.py pushes real Baton tasks through the Lambda
  adapter as function URL events.

The endpoint's signing secret comes from ``BATON_SIGNING_SECRET``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from baton import App, activity, workflow
from baton.common import RetryPolicy


@dataclass
class Order:
    id: str
    amount_cents: int
    # A durable pause between reserving and charging (0: none).
    hold_seconds: float = 0.0


@activity.defn
async def reserve_stock(order: Order) -> str:
    return f"reservation-{order.id}"


@activity.defn
async def charge_card(order: Order) -> str:
    return f"charge-{order.id}-{order.amount_cents}"


@workflow.defn
class ProcessOrder:
    @workflow.run
    async def run(self, order: Order) -> dict[str, str]:
        opts = {
            "start_to_close_timeout": timedelta(seconds=30),
            "retry_policy": RetryPolicy(maximum_attempts=3),
        }
        reservation = await workflow.execute_activity(reserve_stock, order, **opts)
        if order.hold_seconds > 0:
            await workflow.sleep(timedelta(seconds=order.hold_seconds))
        charge = await workflow.execute_activity(charge_card, order, **opts)
        return {"reservation": reservation, "charge": charge}


app = App(workflows=[ProcessOrder], activities=[reserve_stock, charge_card])

# The Lambda entry point (function URL or API Gateway HTTP API events).
lambda_handler = app.lambda_handler
