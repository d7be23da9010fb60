// The REST API client of the web UI: the public API only, the key (when the
// server has one) from sessionStorage as a bearer token, problems turned into
// ApiError with the problem's fields.

/** @typedef {import("../../sdk-ts/src/generated/openapi.ts").Problem} Problem */

const KEY = "baton.apiKey";

/** The API key this browser tab logged in with, if any. */
export function apiKey() {
  return sessionStorage.getItem(KEY) ?? "";
}

/** @param {string} key */
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/** An answer that is not 2xx; `problem` is the server's problem+json when it sent one. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {Partial<Problem>} problem
   */
  constructor(status, message, problem) {
    super(message);
    this.status = status;
    this.problem = problem;
  }
}

/** Called when the server answers 401: the UI goes back to the login. */
/** @type {() => void} */
let onUnauthorized = () => {};
/** @param {() => void} f */
export function setOnUnauthorized(f) {
  onUnauthorized = f;
}

/**
 * Calls the API. `path` starts after `/api/v1`.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function call(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  const key = apiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const init = /** @type {RequestInit} */ ({ method, headers });
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(`/api/v1${path}`, init);
  const text = await r.text();
  /** @type {any} */
  let json = undefined;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  if (!r.ok) {
    const problem = json && typeof json === "object" ? json : {};
    if (r.status === 401) onUnauthorized();
    throw new ApiError(r.status, problem.detail ?? `HTTP ${r.status}`, problem);
  }
  return json;
}

/** @param {string} s */
export const enc = encodeURIComponent;

/**
 * `?a=1&b=2` from the defined, non-empty entries.
 * @param {Record<string, string | number | boolean | undefined | null>} params
 */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : "";
}

/**
 * Every page of a run's history, with its payloads stored by reference put
 * back in place.
 * @param {string} ns
 * @param {string} workflowId
 * @param {string} [runId]
 * @returns {Promise<{run_id: string, events: import("../../sdk-ts/src/generated/openapi.ts").Event[]}>}
 */
export async function fullHistory(ns, workflowId, runId) {
  /** @type {import("../../sdk-ts/src/generated/openapi.ts").Event[]} */
  const events = [];
  /** @type {string | undefined} */
  let token = undefined;
  let run = runId ?? "";
  for (;;) {
    /** @type {import("../../sdk-ts/src/generated/openapi.ts").HistoryPage} */
    const page = await call(
      "GET",
      `/namespaces/${enc(ns)}/workflows/${enc(workflowId)}/history${qs({ run_id: run, page_size: 10000, next_page_token: token })}`,
    );
    run = page.run_id;
    events.push(...page.events);
    token = page.next_page_token;
    if (!token) break;
  }
  await putPayloadsInPlace(ns, workflowId, run, events);
  return { run_id: run, events };
}

/**
 * The digest of a payload stored by reference (docs/protocol.md §9.1): an
 * object whose only member is `$baton_payload`.
 * @param {unknown} value
 * @returns {string | undefined}
 */
export function referenceDigest(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] !== "$baton_payload") return undefined;
  const inner = /** @type {{ $baton_payload: { sha256?: unknown } }} */ (value).$baton_payload;
  return typeof inner?.sha256 === "string" && /^[0-9a-f]{64}$/.test(inner.sha256) ? inner.sha256 : undefined;
}

/**
 * Puts back, in the events' attributes, the payloads the history holds by
 * reference, fetched (8 at a time, each digest once) from the run's payload
 * route: what is shown and downloaded is the history as the SDKs replay it.
 * @param {string} ns
 * @param {string} workflowId
 * @param {string} runId
 * @param {import("../../sdk-ts/src/generated/openapi.ts").Event[]} events
 */
async function putPayloadsInPlace(ns, workflowId, runId, events) {
  /** @type {[Record<string, unknown>, string, string][]} */
  const places = [];
  for (const e of events) {
    const attributes = /** @type {Record<string, unknown>} */ (e.attributes);
    for (const [name, value] of Object.entries(attributes)) {
      const digest = referenceDigest(value);
      if (digest) places.push([attributes, name, digest]);
    }
  }
  const digests = [...new Set(places.map((p) => p[2]))];
  /** @type {Map<string, unknown>} */
  const payloads = new Map();
  const fetchNext = async () => {
    for (let d = digests.pop(); d !== undefined; d = digests.pop()) {
      /** @type {import("../../sdk-ts/src/generated/openapi.ts").PayloadView} */
      const view = await call("GET", `/namespaces/${enc(ns)}/workflows/${enc(workflowId)}/runs/${enc(runId)}/payloads/${d}`);
      payloads.set(d, view.value);
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, digests.length) }, fetchNext));
  for (const [attributes, name, digest] of places) attributes[name] = payloads.get(digest);
}
