"""The Python side of tests/conformance/update_validator (sdk-ts: test/scenario_features.ts)."""

from datetime import timedelta

from baton import activity, workflow
from baton.exceptions import ApplicationError


@activity.defn
async def reserve_items(items: list[str]) -> str:
    return f"reserved {len(items)} items"


@workflow.defn
class ConformanceCart:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.checked_out = False

    @workflow.update
    def add_item(self, sku: str, qty: int) -> int:
        self.items.extend([sku] * qty)
        return len(self.items)

    @add_item.validator
    def validate_add_item(self, sku: str, qty: int) -> None:
        if qty <= 0:
            raise ApplicationError(
                f"quantity must be positive, got {qty}", type="InvalidQuantity", non_retryable=True
            )

    @workflow.update
    async def checkout(self) -> str:
        reservation = await workflow.execute_activity(
            reserve_items, self.items, start_to_close_timeout=timedelta(seconds=10)
        )
        self.checked_out = True
        return reservation

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.checked_out)
        return self.items


workflows = [ConformanceCart]
activities = [reserve_items]
