from baton import activity
from baton.exceptions import ApplicationError


@activity.defn
async def charge(amount_cents: int) -> dict[str, object]:
    if amount_cents < 0:
        raise ApplicationError(
            "card declined",
            {"decline_code": "insufficient_funds"},
            type="CardDeclined",
            non_retryable=True,
        )
    if amount_cents == 0:
        raise ConnectionError("bank unreachable")
    return {"charged": amount_cents, "attempt": activity.info().attempt}


@activity.defn
async def approve(request: str) -> None:
    activity.raise_complete_async()


workflows: list[type] = []
activities = [charge, approve]
