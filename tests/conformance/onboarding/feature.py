"""The Python side of tests/conformance/onboarding (sdk-ts: test/scenario_features.ts)."""

import asyncio
from datetime import timedelta
from typing import Any

from baton import activity, workflow

OPTS = {"start_to_close_timeout": timedelta(seconds=30)}


@activity.defn
async def create_account(user: dict[str, str]) -> str:
    return f"acct-{user['id']}"


@activity.defn
async def send_welcome_email(email: str) -> str:
    return f"welcome:{email}"


@activity.defn
async def provision_workspace(account: str) -> str:
    return f"workspace:{account}"


@activity.defn
async def check_in(account: str) -> str:
    return f"checked-in:{account}"


@workflow.defn
class ConformanceOnboarding:
    @workflow.run
    async def run(self, user: dict[str, str]) -> dict[str, Any]:
        account = await workflow.execute_activity(create_account, user, **OPTS)
        welcome, workspace = await asyncio.gather(
            workflow.execute_activity(send_welcome_email, user["email"], **OPTS),
            workflow.execute_activity(provision_workspace, account, **OPTS),
        )
        await workflow.sleep(timedelta(days=7))
        checked_in = await workflow.execute_activity(check_in, account, **OPTS)
        return {"account": account, "steps": [account, welcome, workspace, checked_in]}


workflows = [ConformanceOnboarding]
activities = [create_account, send_welcome_email, provision_workspace, check_in]
