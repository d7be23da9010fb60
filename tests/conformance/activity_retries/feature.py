"""The Python side of tests/conformance/activity_retries (sdk-ts: test/scenario_features.ts)."""

from datetime import timedelta
from typing import Any

from baton import activity, workflow
from baton.common import RetryPolicy
from baton.exceptions import ActivityError, ApplicationError

RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0, maximum_attempts=5
)


@activity.defn
async def flaky_charge() -> str:
    attempt = activity.info().attempt
    if attempt < 3:
        raise ConnectionError(f"bank unreachable on attempt {attempt}")
    return f"charged on attempt {attempt}"


@activity.defn
async def declined_charge() -> str:
    raise ApplicationError("card declined", {"code": 51}, type="CardDeclined", non_retryable=True)


@workflow.defn
class ConformanceRetries:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "start_to_close_timeout": timedelta(seconds=10),
            "retry_policy": RETRY,
        }
        first = await workflow.execute_activity(flaky_charge, **opts)
        try:
            await workflow.execute_activity(declined_charge, **opts)
            return {"first": first, "declined": None}
        except ActivityError as err:
            cause = err.cause
            assert isinstance(cause, ApplicationError)
            declined = {
                "type": cause.type,
                "message": cause.message,
                "non_retryable": cause.non_retryable,
                "details": list(cause.details),
                "retry_state": err.retry_state.value if err.retry_state else None,
            }
            return {"first": first, "declined": declined}


workflows = [ConformanceRetries]
activities = [flaky_charge, declined_charge]
