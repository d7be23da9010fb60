/**
 * History pages (protocol.md §5.10): a workflow task, query or update
 * validation push whose `history` starts past event 1 carries
 * `history_first_event_id`, `history_reference` and `history_url`. Before
 * a replay the handler pages in the older events from the server's page
 * route, signed with the endpoint's push secret as checkpoints are (§5.9),
 * following `next_first_event_id` until it reaches the push's first event.
 * A page carries, as a push does, the payloads its events refer to
 * (`payloads`, §9.1): they join the push's own, for the handler to put in
 * place once the history is whole.
 */
import type { HistoryEvent } from "../common.js";
import type * as wire from "../generated/openapi.js";
import { onBase, postSigned } from "./signing.js";

/** What a push that may carry only its newest events says about the rest. */
export interface PartialHistory {
  history: HistoryEvent[];
  history_first_event_id?: number;
  history_reference?: string;
  history_url?: string;
  /** Payloads beside the references of `history` (§9.1). */
  payloads?: wire.InlinedPayloads;
}

/** Where and how the handler pages in. */
export interface PageConfig {
  secrets: readonly string[];
  /** Replaces the base of `history_url` (the handler's `checkpointBaseUrl`). */
  baseUrl?: string;
  /** Called once per page fetched. */
  onPage(): void;
}

/** The push's `history` does not start at event 1. */
export function isPartial(request: PartialHistory): boolean {
  return (request.history_first_event_id ?? 1) > 1;
}

/**
 * `request` with its whole history: itself when it has it, else a copy
 * whose `history` is the paged-in events followed by its own. Throws when
 * the page route answers anything but pages that join up (an expired
 * reference is `409`, a run deleted by retention `404`, a rejected
 * signature `401`).
 */
export async function withWholeHistory<T extends PartialHistory>(request: T, config: PageConfig, deadlineMs?: number): Promise<T> {
  if (!isPartial(request)) return request;
  const end = request.history_first_event_id!;
  if (typeof request.history_reference !== "string" || typeof request.history_url !== "string") {
    throw new Error(`the push's history starts at event ${end} but it has no history_reference and history_url to page in the rest`);
  }
  if (request.history[0]?.event_id !== end) throw new Error(`the push's history does not start at its history_first_event_id ${end}`);
  const url = onBase(request.history_url, config.baseUrl);
  const older: HistoryEvent[] = [];
  let payloads: wire.InlinedPayloads | undefined;
  let next = 1;
  while (next < end) {
    const body: wire.WorkflowTaskHistoryRequest = { history_reference: request.history_reference, first_event_id: next };
    const page = await postSigned<wire.WorkflowTaskHistoryResponse>("history page", url, config.secrets, body, deadlineMs);
    config.onPage();
    const events = (Array.isArray(page.events) ? page.events : []) as HistoryEvent[];
    for (const [i, e] of events.entries()) {
      if (e.event_id !== next + i) throw new Error(`history page from event ${next}: event ${i} has id ${e.event_id}`);
    }
    if (events.length === 0 || page.next_first_event_id !== next + events.length || page.next_first_event_id > end) {
      throw new Error(`history page from event ${next}: ${events.length} events and next_first_event_id ${page.next_first_event_id} (the push starts at ${end})`);
    }
    older.push(...events);
    if (page.payloads !== null && typeof page.payloads === "object") {
      payloads ??= { ...request.payloads };
      Object.assign(payloads, page.payloads);
    }
    next = page.next_first_event_id;
  }
  return { ...request, history: [...older, ...request.history], ...(payloads !== undefined ? { payloads } : {}) };
}
