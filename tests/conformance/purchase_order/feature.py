"""The Python side of tests/conformance/purchase_order (sdk-ts: test/scenario_features.ts)."""

import asyncio
from datetime import timedelta
from typing import Any

from baton import activity, workflow

OPTS = {"start_to_close_timeout": timedelta(seconds=30)}


@activity.defn
async def notify_approver(po: str) -> str:
    return f"notified:{po}"


@activity.defn
async def submit_order(po: str) -> str:
    return f"submitted:{po}"


@workflow.defn
class ConformancePurchaseOrder:
    def __init__(self) -> None:
        self.state = "starting"
        self.approver: str | None = None
        self.reason: str | None = None

    @workflow.signal
    def approve(self, approver: str) -> None:
        if self.approver is None and self.reason is None:
            self.approver = approver

    @workflow.signal
    def reject(self, reason: str) -> None:
        if self.approver is None and self.reason is None:
            self.reason = reason

    @workflow.query
    def status(self) -> str:
        return self.state

    @workflow.run
    async def run(self, po: str) -> dict[str, Any]:
        await workflow.execute_activity(notify_approver, po, **OPTS)
        self.state = "awaiting approval"
        try:
            await workflow.wait_condition(
                lambda: self.approver is not None or self.reason is not None,
                timeout=timedelta(hours=48),
            )
        except asyncio.TimeoutError:
            self.state = "expired"
            return {"po": po, "outcome": "expired"}
        if self.reason is not None:
            self.state = "rejected"
            return {"po": po, "outcome": "rejected", "reason": self.reason}
        submission = await workflow.execute_activity(submit_order, po, **OPTS)
        self.state = "approved"
        return {"po": po, "outcome": "approved", "by": self.approver, "submission": submission}


workflows = [ConformancePurchaseOrder]
activities = [notify_approver, submit_order]
