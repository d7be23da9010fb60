/**
 * Standard Webhooks signing and verification (docs/protocol.md §3): with
 * `node:crypto`'s synchronous HMAC where the runtime has it (a push is
 * verified without a trip through Web Crypto's job queue), else with Web
 * Crypto, so it runs unchanged on Node 18+, Deno, Bun and Cloudflare
 * Workers. Decoded secrets and Web Crypto keys are cached per secret.
 *
 * {@link postSigned} makes the handler's own calls to the server routes
 * that take the endpoint's push secret instead of an API key: checkpoints
 * (§5.9) and history pages (§5.10).
 */
import { nodeBuiltin } from "./builtins.js";
import { type HttpAnswer, HttpCallError, httpCall } from "./http.js";

type NodeCrypto = { createHmac(algorithm: "sha256", key: Uint8Array): { update(data: Uint8Array): { digest(): Uint8Array } } };

const nodeCrypto = nodeBuiltin<NodeCrypto>("node:crypto");

/** Signatures older or newer than this (seconds) are refused. */
export const TOLERANCE_SECONDS = 300;

const encoder = new TextEncoder();

function base64ToBytes(b64: string): Uint8Array {
  const clean = b64.replace(/=+$/, "");
  const padded = clean + "=".repeat((4 - (clean.length % 4)) % 4);
  const bin = atob(padded);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesToBase64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** The raw key bytes of a `whsec_<base64>` secret (prefix and padding optional). */
export function decodeSecret(secret: string): Uint8Array {
  const body = secret.startsWith("whsec_") ? secret.slice(6) : secret;
  const key = base64ToBytes(body);
  if (key.length === 0) throw new Error("signing secret is empty");
  return key;
}

const decoded = new Map<string, Uint8Array>();
const webKeys = new Map<string, Promise<CryptoKey>>();

async function hmac(secret: string, content: Uint8Array): Promise<Uint8Array> {
  let key = decoded.get(secret);
  if (key === undefined) {
    key = decodeSecret(secret);
    decoded.set(secret, key);
  }
  if (nodeCrypto !== undefined) return nodeCrypto.createHmac("sha256", key).update(content).digest();
  let webKey = webKeys.get(secret);
  if (webKey === undefined) {
    webKey = crypto.subtle.importKey("raw", key as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    webKeys.set(secret, webKey);
  }
  return new Uint8Array(await crypto.subtle.sign("HMAC", await webKey, content as BufferSource));
}

function signedContent(msgId: string, timestamp: number | string, body: Uint8Array): Uint8Array {
  const prefix = encoder.encode(`${msgId}.${timestamp}.`);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
}

function asBytes(body: Uint8Array | string): Uint8Array {
  return typeof body === "string" ? encoder.encode(body) : body;
}

/** The `webhook-signature` header value: one `v1,<base64>` entry per secret. */
export async function sign(
  secrets: readonly string[],
  msgId: string,
  timestamp: number,
  body: Uint8Array | string,
): Promise<string> {
  const content = signedContent(msgId, timestamp, asBytes(body));
  const entries: string[] = [];
  for (const s of secrets) entries.push(`v1,${bytesToBase64(await hmac(s, content))}`);
  return entries.join(" ");
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/** Verifies a push's headers against any of `secrets` (protocol.md §3.3). */
export async function verify(
  secrets: readonly string[],
  headers: { get(name: string): string | null },
  body: Uint8Array | string,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): Promise<VerifyResult> {
  const id = headers.get("webhook-id");
  const ts = headers.get("webhook-timestamp");
  const sig = headers.get("webhook-signature");
  if (!id || !ts || !sig) return { ok: false, reason: "missing signature headers" };
  if (!/^[0-9]+$/.test(ts)) return { ok: false, reason: "bad timestamp" };
  const t = Number(ts);
  if (nowSeconds - t > TOLERANCE_SECONDS) return { ok: false, reason: "timestamp too old" };
  if (t - nowSeconds > TOLERANCE_SECONDS) return { ok: false, reason: "timestamp too new" };
  const given: Uint8Array[] = [];
  for (const entry of sig.split(" ")) {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") continue;
    try {
      const bytes = base64ToBytes(entry.slice(comma + 1));
      if (bytes.length === 32) given.push(bytes);
    } catch {
      // not base64: ignored
    }
  }
  const content = signedContent(id, ts, asBytes(body));
  let ok = false;
  for (const s of secrets) {
    const expected = await hmac(s, content);
    for (const g of given) if (constantTimeEqual(g, expected)) ok = true;
  }
  return ok ? { ok: true } : { ok: false, reason: "no matching signature" };
}

/** A signed call's error: no answer came, or one with a status other than 200. */
class SignedCallError extends Error {
  override readonly name = "SignedCallError";
}

/** `url` on the base (scheme, host, port) `base`, when given: a handler that reaches the server under another address than the URLs in its pushes. */
export function onBase(url: string, base: string | undefined): string {
  if (base === undefined) return url;
  const u = new URL(url);
  return `${base.replace(/\/+$/, "")}${u.pathname}${u.search}`;
}

const CALL_TIMEOUT_MS = 10_000;
const CALL_TRIES = 3;

/** A fresh `webhook-id`: `randomUUID` draws from a pooled entropy buffer (a `getRandomValues` call per id cost a synchronous trip to the OS each). */
function randomId(): string {
  return `msg_${crypto.randomUUID().replaceAll("-", "")}`;
}

/**
 * POSTs `body` as JSON to `url`, signed with `secrets` exactly as Baton
 * signs pushes, and returns the JSON of its `200` answer. Tried again
 * (three tries in all) on a `503` or a call that cannot have reached the
 * server, which applied nothing; a timeout (10 s, or `deadlineMs` if sooner)
 * may have, and is thrown. `what` names the call in errors.
 */
export async function postSigned<T>(what: string, url: string, secrets: readonly string[], body: unknown, deadlineMs: number = Date.now() + CALL_TIMEOUT_MS): Promise<T> {
  const text = encoder.encode(JSON.stringify(body));
  let last: SignedCallError | undefined;
  for (let attempt = 0; attempt < CALL_TRIES; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 100 * attempt));
    const id = randomId();
    const ts = Math.floor(Date.now() / 1000);
    const headers = {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(ts),
      "webhook-signature": await sign(secrets, id, ts, text),
    };
    let answer: HttpAnswer;
    try {
      answer = await httpCall("POST", url, headers, text, Math.max(1, Math.min(CALL_TIMEOUT_MS, deadlineMs - Date.now())));
    } catch (err) {
      last = new SignedCallError(`${what}: ${String(err)}`);
      if (err instanceof HttpCallError && err.notSent) continue;
      throw last;
    }
    if (answer.status === 200) return JSON.parse(answer.text) as T;
    last = new SignedCallError(`${what}: HTTP ${answer.status}: ${answer.text}`);
    if (answer.status !== 503) throw last;
  }
  throw last ?? new SignedCallError(`${what} failed`);
}
