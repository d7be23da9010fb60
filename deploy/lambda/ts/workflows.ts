/** The example's workflow: reserve, then charge (workflow type = export name). */
import { proxyActivities } from "@baton/sdk/workflow";
import type * as activities from "./activities.js";
import type { Order } from "./activities.js";

const { reserveStock, chargeCard } = proxyActivities<typeof activities>({
  startToCloseTimeout: "30s",
  retry: { maximumAttempts: 3 },
});

export async function processOrder(order: Order): Promise<{ reservation: string; charge: string }> {
  const reservation = await reserveStock(order);
  const charge = await chargeCard(order);
  return { reservation, charge };
}
