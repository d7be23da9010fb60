/** The example's activities: plain async functions (activity type = export name). */
export interface Order {
  id: string;
  amountCents: number;
}

export async function reserveStock(order: Order): Promise<string> {
  return `reservation-${order.id}`;
}

export async function chargeCard(order: Order): Promise<string> {
  return `charge-${order.id}-${order.amountCents}`;
}
