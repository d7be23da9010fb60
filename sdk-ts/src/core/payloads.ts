/**
 * Payloads by reference (protocol.md §9.1): the server stores a payload
 * larger than its `--payload-reference-bytes` apart from the history, and
 * the event (or activity task field) that carries it holds a *reference*
 * instead, `{"$baton_payload": {"sha256": …, "size_bytes": …}}`. A handler
 * that lists the feature `payload_references` is sent references; it puts
 * the payloads back in place before workflow or activity code runs, from
 * the push's (page's, checkpoint answer's) `payloads` member, sha256 →
 * payload, and fetches the rest from the signed payload route, at most 100
 * digests a call, asking again for those an answer left out (it carries at
 * most 8 MiB).
 *
 * Only the positions replay reads are put in place ({@link READ_POSITIONS});
 * references elsewhere (ActivityTaskScheduled `input`, a completion's
 * `result`…) stay as they are: replay matches commands to events by ids
 * and names, never by payload. Values are replaced in place: the events
 * are the handler's own parse of a push or an answer.
 */
import type { HistoryEvent } from "../common.js";
import type * as wire from "../generated/openapi.js";
import { onBase, postSigned } from "./signing.js";

/** The feature a handler's description lists to be sent references (§1.5). */
export const PAYLOAD_REFERENCES = "payload_references";

/** The one member of a reference. */
export const REFERENCE_MEMBER = "$baton_payload";

/** The payload route takes at most this many digests a call. */
export const MAX_DIGESTS_PER_CALL = 100;

/** Payloads by the lowercase hex SHA-256 of their compact JSON: a push's `payloads`, the payload route's answer. */
export type Payloads = wire.InlinedPayloads;

/**
 * Fetches some of `digests` (at most {@link MAX_DIGESTS_PER_CALL}): an
 * answer may leave some out, never all.
 */
export type FetchPayloads = (digests: string[]) => Promise<Payloads>;

/** The event attribute that replay reads and that may hold a reference, by event type (the table of §9.1). */
export const READ_POSITIONS: Readonly<Record<string, string>> = {
  WorkflowExecutionStarted: "input",
  ActivityTaskCompleted: "result",
  WorkflowExecutionSignaled: "input",
  WorkflowExecutionUpdateAdmitted: "input",
  MarkerRecorded: "details",
  ChildWorkflowExecutionCompleted: "result",
};

/** An activity task push's members that may hold a reference (§6.1). */
export const ACTIVITY_POSITIONS = ["input", "heartbeat_details"] as const;

const DIGEST = /^[0-9a-f]{64}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * The digest `value` refers to, if it is a reference: an object whose only
 * member is `$baton_payload`, itself an object with a 64-hex `sha256`. (A
 * payload that holds such a member anywhere is stored by reference
 * whatever its size, so this shape in a payload position is always the
 * server's.)
 */
export function referenceDigest(value: unknown): string | undefined {
  if (!isObject(value)) return undefined;
  for (const k in value) if (k !== REFERENCE_MEMBER) return undefined;
  const inner = (value as Partial<wire.PayloadReference>)[REFERENCE_MEMBER];
  if (!isObject(inner) || typeof inner.sha256 !== "string" || !DIGEST.test(inner.sha256)) return undefined;
  return inner.sha256;
}

/** Where a reference may sit: an object and its member. */
export type Position = readonly [holder: Record<string, unknown>, member: string];

/** The read positions of `events` (the attributes of the event types in {@link READ_POSITIONS}). */
export function eventPositions(events: readonly HistoryEvent[]): Position[] {
  const out: Position[] = [];
  for (const e of events) {
    const member = READ_POSITIONS[e.event_type];
    if (member !== undefined && isObject(e.attributes)) out.push([e.attributes, member]);
  }
  return out;
}

/** The distinct digests referred to at `positions`, in order of appearance. */
export function digestsAt(positions: readonly Position[]): string[] {
  const seen = new Set<string>();
  for (const [holder, member] of positions) {
    const d = referenceDigest(holder[member]);
    if (d !== undefined) seen.add(d);
  }
  return [...seen];
}

/**
 * The payloads of `digests`, fetched by `fetch` in calls of at most
 * {@link MAX_DIGESTS_PER_CALL}, each asking again for what the previous
 * answer left out. Throws when an answer brings none of what it was asked.
 */
export async function fetchAll(digests: readonly string[], fetch: FetchPayloads): Promise<Map<string, unknown>> {
  const got = new Map<string, unknown>();
  let rest = [...new Set(digests)];
  while (rest.length > 0) {
    const asked = rest.slice(0, MAX_DIGESTS_PER_CALL);
    const answer = await fetch(asked);
    for (const d of asked) if (isObject(answer) && Object.hasOwn(answer, d)) got.set(d, answer[d]);
    const left = rest.filter((d) => !got.has(d));
    if (left.length === rest.length) throw new Error(`the payload route answered none of the ${asked.length} payloads asked for (${asked[0]}${asked.length > 1 ? ", …" : ""})`);
    rest = left;
  }
  return got;
}

/**
 * Puts in place every reference at `positions`: from `inlined` (a push's
 * `payloads`) where it has the payload, the rest fetched in batches by the
 * fetcher `source` makes (called only when something is missing, so a push
 * that carries all it refers to needs no URL). Returns how many were put in
 * place.
 */
export async function resolvePositions(positions: readonly Position[], inlined: unknown, source: () => FetchPayloads): Promise<number> {
  const digests = digestsAt(positions);
  if (digests.length === 0) return 0;
  const have = new Map<string, unknown>();
  if (isObject(inlined)) for (const d of digests) if (Object.hasOwn(inlined, d)) have.set(d, inlined[d]);
  const missing = digests.filter((d) => !have.has(d));
  if (missing.length > 0) for (const [d, v] of await fetchAll(missing, source())) have.set(d, v);
  let n = 0;
  for (const [holder, member] of positions) {
    const d = referenceDigest(holder[member]);
    if (d === undefined) continue;
    holder[member] = have.get(d);
    n++;
  }
  return n;
}

/** {@link resolvePositions} at the read positions of `events`. */
export function resolveEvents(events: readonly HistoryEvent[], inlined: unknown, source: () => FetchPayloads): Promise<number> {
  return resolvePositions(eventPositions(events), inlined, source);
}

/** True when a read position of `events` still holds a reference (a history exported raw over REST). */
export function holdsReferences(events: readonly HistoryEvent[]): boolean {
  return digestsAt(eventPositions(events)).length > 0;
}

/**
 * The namespace's payload route, `…/namespaces/{ns}/payloads`, next to
 * the page route (`…/namespaces/{ns}/workflow-tasks/history`) or the
 * checkpoint route (`…/workflow-tasks/checkpoint`) a push names, on `base`
 * when given (the handler's `checkpointBaseUrl`).
 */
export function payloadsUrlBeside(routeUrl: string, base: string | undefined): string {
  const u = new URL(onBase(routeUrl, base));
  const at = u.pathname.lastIndexOf("/workflow-tasks/");
  if (at < 0) throw new Error(`${routeUrl} is not a workflow-tasks route of a namespace`);
  u.pathname = `${u.pathname.slice(0, at)}/payloads`;
  u.search = "";
  return u.toString();
}

/** The payload route of `namespace` on the server at `base` (scheme, host, port). */
export function payloadsUrlOn(base: string, namespace: string): string {
  return `${base.replace(/\/+$/, "")}/api/v1/namespaces/${encodeURIComponent(namespace)}/payloads`;
}

/**
 * A fetcher from the signed payload route at `url`, for the references of
 * run `runId`: signed with the endpoint's push secret as history pages are
 * (§5.10). `onCall` is called once per call made.
 */
export function signedFetcher(url: string, secrets: readonly string[], runId: string, onCall: () => void, deadlineMs?: number): FetchPayloads {
  return async (digests) => {
    const body: wire.PayloadsRequest = { run_id: runId, sha256: digests };
    const answer = await postSigned<wire.PayloadsResponse>("payloads", url, secrets, body, deadlineMs);
    onCall();
    if (!isObject(answer) || !isObject(answer.payloads)) throw new Error("payloads: the answer has no payloads object");
    return answer.payloads;
  };
}

/**
 * A fetcher from a route that serves one payload a call (the client's
 * `GET …/runs/{run_id}/payloads/{sha256}`): `concurrency` calls at a time.
 */
export function oneAtATime(fetchOne: (digest: string) => Promise<unknown>, concurrency = 8): FetchPayloads {
  return async (digests) => {
    const out: Payloads = {};
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < digests.length) {
        const d = digests[next++]!;
        out[d] = await fetchOne(d);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, digests.length) }, worker));
    return out;
  };
}
