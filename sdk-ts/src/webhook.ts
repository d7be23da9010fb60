/**
 * Inbound webhook sources (`client.webhook`): configure a public URL whose
 * deliveries (Stripe, GitHub, Standard Webhooks, Slack, Shopify, a generic
 * HMAC) the server verifies and routes to signals, starts and updates; read
 * a source's delivery log and replay a delivery. Sources and rules are the
 * generated wire types (the REST API's shapes, snake_case), as the server
 * documents them in openapi.yaml.
 */
import type { Connection } from "./client.js";
import type * as wire from "./generated/openapi.js";

export type WebhookScheme = wire.WebhookScheme;
export type WebhookRule = wire.WebhookRule;
export type WebhookSource = wire.WebhookSource;
export type WebhookDelivery = wire.WebhookDelivery;

export interface WebhookSourceOptions {
  sourceId: string;
  /** A scheme's name (`"stripe"`, `"github"`, …) or a full scheme (a generic HMAC). */
  scheme: WebhookScheme["type"] | WebhookScheme;
  /** Every secret that may have signed a delivery (several while one is rotated). */
  secrets: string[];
  /** Tried in order; the first that matches acts. */
  rules?: WebhookRule[];
  /** How far a signed timestamp may be from now (default 300 s). */
  toleranceSeconds?: number;
  description?: string;
}

/** `client.webhook`: the webhook sources of the client's namespace. */
export class WebhookClient {
  constructor(
    private readonly conn: Connection,
    private readonly namespace: string,
  ) {}

  private path(rest = ""): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/webhooks${rest}`;
  }

  /**
   * Creates a source; it answers senders at `url` (no API key: their
   * signatures authenticate them). Never shows the secrets again. A
   * {@link ServiceError} (400, naming the field, e.g.
   * `rules/0/action/workflow_id`) for a source the server refuses.
   */
  async create(options: WebhookSourceOptions): Promise<WebhookSource> {
    const body: wire.CreateWebhookSourceRequest = {
      source_id: options.sourceId,
      scheme: typeof options.scheme === "string" ? { type: options.scheme } : options.scheme,
      secrets: options.secrets,
      rules: options.rules ?? [],
    };
    if (options.toleranceSeconds !== undefined) body.tolerance_seconds = options.toleranceSeconds;
    if (options.description !== undefined) body.description = options.description;
    const { json } = await this.conn.call("POST", this.path(), body);
    return json as WebhookSource;
  }

  /** The namespace's sources, by id. */
  async list(): Promise<WebhookSource[]> {
    const { json } = await this.conn.call("GET", this.path());
    return (json as wire.WebhookSourceList).sources;
  }

  /** A source and its rules; a {@link ServiceError} (`not_found`) if there is none. */
  async describe(sourceId: string): Promise<WebhookSource> {
    const { json } = await this.conn.call("GET", this.path(`/${encodeURIComponent(sourceId)}`));
    return json as WebhookSource;
  }

  /** Deletes a source and its delivery log. */
  async delete(sourceId: string): Promise<void> {
    await this.conn.call("DELETE", this.path(`/${encodeURIComponent(sourceId)}`));
  }

  /** A source's delivery log, newest first: each delivery's outcome, rule, action, run and error. */
  async *deliveries(sourceId: string, options: { pageSize?: number } = {}): AsyncIterable<WebhookDelivery> {
    let before: string | undefined;
    do {
      const q = new URLSearchParams();
      if (options.pageSize) q.set("page_size", String(options.pageSize));
      if (before) q.set("before", before);
      const { json } = await this.conn.call("GET", `${this.path(`/${encodeURIComponent(sourceId)}/deliveries`)}?${q.toString()}`);
      const page = json as wire.WebhookDeliveryList;
      for (const d of page.deliveries) yield d;
      before = page.next_before;
    } while (before);
  }

  /**
   * Routes a logged, verified delivery again under the source's current
   * rules with the same request id (an action already taken is not
   * repeated); returns the new log entry (`replay_of` set).
   */
  async replay(sourceId: string, delivery: string): Promise<WebhookDelivery> {
    const path = this.path(`/${encodeURIComponent(sourceId)}/deliveries/${encodeURIComponent(delivery)}/replay`);
    const { json } = await this.conn.call("POST", path);
    return json as WebhookDelivery;
  }
}
