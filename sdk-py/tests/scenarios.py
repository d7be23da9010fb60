"""Workflows and activities shared by the unit and end-to-end tests, written
the way Temporal users write them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum

from baton import activity, workflow
from baton.common import RetryPolicy
from baton.exceptions import ActivityError, ApplicationError


class Plan(str, Enum):
    FREE = "free"
    PRO = "pro"


@dataclass
class User:
    id: str
    email: str
    plan: Plan = Plan.FREE


@dataclass
class OnboardingResult:
    account: str
    steps: list[str] = field(default_factory=list)


# --- activities (the e2e tests serve these over HTTP) -------------------------------------


@activity.defn
async def create_account(user: User) -> str:
    return f"acct-{user.id}"


@activity.defn
def send_welcome_email(user: User) -> str:
    return f"welcome:{user.email}"


@activity.defn
async def provision_workspace(account: str) -> str:
    return f"workspace:{account}"


@activity.defn(name="check_in")
async def check_in_activity(account: str) -> str:
    return f"checked-in:{account}"


# --- workflows ---------------------------------------------------------------------------

ONBOARDING_SLEEP = timedelta(days=7)


@workflow.defn
class Onboarding:
    """One activity, two in parallel, then a long durable sleep."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    @workflow.run
    async def run(self, user: User) -> OnboardingResult:
        opts = {"start_to_close_timeout": timedelta(seconds=30)}
        account = await workflow.execute_activity(create_account, user, **opts)
        self.steps.append(account)
        email, workspace = await asyncio.gather(
            workflow.execute_activity(send_welcome_email, user, **opts),
            workflow.execute_activity(provision_workspace, account, **opts),
        )
        self.steps += [email, workspace]
        await workflow.sleep(ONBOARDING_SLEEP)
        check = await workflow.execute_activity(check_in_activity, account, **opts)
        self.steps.append(check)
        return OnboardingResult(account=account, steps=self.steps)


@workflow.defn(name="Onboarding")
class OnboardingReordered:
    """A deploy that swapped the first two steps: not replay-safe."""

    @workflow.run
    async def run(self, user: User) -> OnboardingResult:
        opts = {"start_to_close_timeout": timedelta(seconds=30)}
        await workflow.execute_activity(send_welcome_email, user, **opts)
        account = await workflow.execute_activity(create_account, user, **opts)
        return OnboardingResult(account=account)


@workflow.defn(name="Onboarding")
class OnboardingWithoutSleep:
    """A deploy that dropped the sleep: the timer in history has no command."""

    @workflow.run
    async def run(self, user: User) -> OnboardingResult:
        opts = {"start_to_close_timeout": timedelta(seconds=30)}
        account = await workflow.execute_activity(create_account, user, **opts)
        email, workspace = await asyncio.gather(
            workflow.execute_activity(send_welcome_email, user, **opts),
            workflow.execute_activity(provision_workspace, account, **opts),
        )
        check = await workflow.execute_activity(check_in_activity, account, **opts)
        return OnboardingResult(account=account, steps=[email, workspace, check])


@workflow.defn(name="Onboarding")
class OnboardingPatched:
    """The replay-safe way to add a step: behind workflow.patched."""

    @workflow.run
    async def run(self, user: User) -> OnboardingResult:
        opts = {"start_to_close_timeout": timedelta(seconds=30)}
        account = await workflow.execute_activity(create_account, user, **opts)
        steps = [account]
        if workflow.patched("audit-step"):
            steps.append(await workflow.execute_activity("audit", account, **opts))
        email, workspace = await asyncio.gather(
            workflow.execute_activity(send_welcome_email, user, **opts),
            workflow.execute_activity(provision_workspace, account, **opts),
        )
        steps += [email, workspace]
        await workflow.sleep(ONBOARDING_SLEEP)
        steps.append(await workflow.execute_activity(check_in_activity, account, **opts))
        return OnboardingResult(account=account, steps=steps)


# --- orders: retries and non-retryable errors ------------------------------------------

PAYMENT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=100),
    backoff_coefficient=2.0,
    maximum_attempts=5,
    non_retryable_error_types=["CardDeclined"],
)


@dataclass
class Order:
    id: str
    amount_cents: int
    card: str = "4242"


@activity.defn
async def charge_payment(order: Order) -> str:
    info = activity.info()
    if order.card == "declined":
        raise ApplicationError("card declined", {"order": order.id}, type="CardDeclined")
    if order.card == "flaky" and info.attempt < 3:
        raise ConnectionError(f"bank unreachable (attempt {info.attempt})")
    return f"charge-{order.id}-attempt-{info.attempt}"


@workflow.defn
class OrderWorkflow:
    @workflow.run
    async def run(self, order: Order) -> str:
        return await workflow.execute_activity(
            charge_payment,
            order,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=PAYMENT_RETRY,
        )


@workflow.defn
class OrderWithFallback:
    """Catches the activity's failure and inspects the cause chain."""

    @workflow.run
    async def run(self, order: Order) -> str:
        try:
            return await workflow.execute_activity(
                charge_payment,
                order,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=PAYMENT_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            assert isinstance(cause, ApplicationError)
            return f"fallback:{cause.type}:{cause.message}:{list(cause.details)}"


# --- trial expiry: consecutive durable timers --------------------------------------------


@activity.defn
async def notify(message: str) -> str:
    return f"sent:{message}"


@workflow.defn
class TrialExpiry:
    @workflow.run
    async def run(self, reminders: list[float]) -> list[str]:
        sent: list[str] = []
        for i, seconds in enumerate(reminders):
            await asyncio.sleep(seconds)
            sent.append(
                await workflow.execute_activity(
                    notify, f"reminder {i + 1}", start_to_close_timeout=timedelta(seconds=10)
                )
            )
        return sent


# --- heartbeats and async completion --------------------------------------------------------


@workflow.defn
class Download:
    @workflow.run
    async def run(self, total: int) -> dict[str, int]:
        return await workflow.execute_activity(
            "download",
            total,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=1),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
            result_type=dict,
        )


@workflow.defn
class Approval:
    @workflow.run
    async def run(self, request: str) -> str:
        return await workflow.execute_activity(
            "request_approval", request, start_to_close_timeout=timedelta(hours=1)
        )


# --- signals and cancellation ----------------------------------------------------------------

APPROVAL_WINDOW = timedelta(hours=48)


@dataclass
class Decision:
    approved: bool
    approver: str
    comment: str = ""


@activity.defn
async def notify_approver(po_id: str) -> str:
    return f"notified:{po_id}"


@activity.defn
async def submit_order(po_id: str) -> str:
    return f"submitted:{po_id}"


@workflow.defn
class PurchaseOrderApproval:
    """Asks for approval and waits two days for an ``approve`` signal."""

    def __init__(self) -> None:
        self.decision: Decision | None = None
        self.status = "starting"

    @workflow.signal
    def approve(self, decision: Decision) -> None:
        if self.decision is None:
            self.decision = decision

    @workflow.query
    def get_status(self) -> str:
        return self.status

    @workflow.query
    def get_decision(self) -> Decision | None:
        return self.decision

    @workflow.run
    async def run(self, po_id: str) -> str:
        await workflow.execute_activity(
            notify_approver, po_id, start_to_close_timeout=timedelta(seconds=30)
        )
        self.status = "awaiting approval"
        try:
            await workflow.wait_condition(
                lambda: self.decision is not None, timeout=APPROVAL_WINDOW
            )
        except asyncio.TimeoutError:
            self.status = "expired"
            return "expired"
        assert self.decision is not None
        if not self.decision.approved:
            self.status = "rejected"
            return "rejected"
        self.status = "submitting"
        await workflow.execute_activity(
            submit_order, po_id, start_to_close_timeout=timedelta(seconds=30)
        )
        self.status = "submitted"
        return "submitted"


@activity.defn
async def reserve_stock(order_id: str) -> str:
    return f"reserved:{order_id}"


@activity.defn
async def release_stock(order_id: str) -> str:
    return f"released:{order_id}"


@workflow.defn
class HoldReservation:
    """Holds stock for a day; a cancellation releases it (a compensation)."""

    @workflow.run
    async def run(self, order_id: str) -> str:
        await workflow.execute_activity(
            reserve_stock, order_id, start_to_close_timeout=timedelta(seconds=30)
        )
        try:
            await workflow.sleep(timedelta(days=1))
        except asyncio.CancelledError:
            await workflow.execute_activity(
                release_stock, order_id, start_to_close_timeout=timedelta(seconds=30)
            )
            raise
        return "held"
