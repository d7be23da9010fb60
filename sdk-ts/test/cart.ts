/** A shopping cart with updates, shared by the update tests (updates.test.ts, e2e.test.ts). */
import { ApplicationFailure, condition, defineUpdate, proxyActivities, setHandler } from "../src/workflow.js";

export const addItem = defineUpdate<number, [string, number]>("add_item");
export const checkout = defineUpdate<string>("checkout");

export const cartActivities = {
  async reserve_items(items: string[]): Promise<string> {
    return `reserved ${items.length} items`;
  },
};
const { reserve_items } = proxyActivities<typeof cartActivities>({ startToCloseTimeout: "10s" });

/** How many times validators ran (they never run on replay). */
export const validatorRuns = { count: 0 };

/**
 * `add_item` is validated (quantity > 0) and answers the item count;
 * `checkout` reserves the items (an activity) and closes the cart, or fails
 * the update if the cart is empty.
 */
export async function ShoppingCart(): Promise<string[]> {
  const items: string[] = [];
  let checkedOut = false;
  setHandler(
    addItem,
    (sku, qty) => {
      for (let i = 0; i < qty; i++) items.push(sku);
      return items.length;
    },
    {
      validator: (_sku, qty) => {
        validatorRuns.count++;
        if (qty <= 0) throw ApplicationFailure.nonRetryable(`quantity must be positive, got ${qty}`, "InvalidQuantity");
      },
    },
  );
  setHandler(checkout, async () => {
    if (items.length === 0) throw ApplicationFailure.create({ message: "the cart is empty", type: "EmptyCart" });
    const reservation = await reserve_items(items);
    checkedOut = true;
    return reservation;
  });
  await condition(() => checkedOut);
  return items;
}
