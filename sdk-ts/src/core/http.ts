/**
 * The SDK's own HTTP calls to the server: the client's REST calls, a
 * handler's checkpoints and history pages, activity heartbeats.
 *
 * Where the runtime has `node:http` (Node, Bun, Deno), calls go through it
 * on kept-alive connections (one agent per scheme, idle sockets `unref`ed so
 * they never hold the process open); elsewhere (Cloudflare Workers, Vercel
 * Edge) through `fetch`. On Node 20 a `fetch` of a checkpoint-sized JSON
 * body costs about four times the CPU of the same call through `node:http`
 * (undici builds a `Request`, a `Response`, their streams and an
 * `AbortSignal` per call; figures in bench/README.md, from
 * `node dist/bench/http_cost.js`), and an inline workflow makes one such
 * call per step.
 */
import type * as NodeHttp from "node:http";
import { nodeBuiltin } from "./builtins.js";

/** A call's answer: its status and its body as text. */
export interface HttpAnswer {
  status: number;
  text: string;
}

/**
 * A call that got no answer. `notSent` is true when the request cannot have
 * reached the server (the connection was refused or never made), so trying
 * again applies it at most once; a timeout or a reset mid-call may have been
 * applied. (A kept-alive connection that the server had closed, reset before
 * any answer, is not an error: the call is made again on a new connection.)
 */
export class HttpCallError extends Error {
  override readonly name = "HttpCallError";
  constructor(
    message: string,
    readonly notSent: boolean,
  ) {
    super(message);
  }
}

export type Transport = "node" | "fetch";

type HttpModule = Pick<typeof NodeHttp, "request" | "Agent">;

const modules: Partial<Record<"http:" | "https:", HttpModule>> = {};
const agents: Partial<Record<"http:" | "https:", NodeHttp.Agent>> = {};
for (const scheme of ["http:", "https:"] as const) {
  const mod = nodeBuiltin<HttpModule>(`node:${scheme.slice(0, -1)}`);
  if (mod?.request !== undefined && mod.Agent !== undefined) {
    modules[scheme] = mod;
    agents[scheme] = new mod.Agent({ keepAlive: true });
  }
}

/** What this runtime uses: `node:http` where it has it. */
export const TRANSPORT: Transport = modules["http:"] !== undefined ? "node" : "fetch";

const encoder = new TextEncoder();

/** Error codes of a connection that was never made. */
const NOT_CONNECTED = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/** A kept-alive connection the server had closed, reset before any answer: the call is made again on a new one. */
const STALE = Symbol("stale connection");

async function viaNode(method: string, url: string, headers: Record<string, string>, body: Uint8Array | string | undefined, timeoutMs: number | undefined): Promise<HttpAnswer> {
  try {
    return await viaNodeOnce(method, url, headers, body, timeoutMs);
  } catch (err) {
    if (err !== STALE) throw err;
  }
  try {
    return await viaNodeOnce(method, url, headers, body, timeoutMs);
  } catch (err) {
    if (err !== STALE) throw err;
    throw new HttpCallError(`${method} ${url}: the connection was reset twice before an answer`, false);
  }
}

function viaNodeOnce(method: string, url: string, headers: Record<string, string>, body: Uint8Array | string | undefined, timeoutMs: number | undefined): Promise<HttpAnswer> {
  const u = new URL(url);
  const scheme = u.protocol === "https:" ? "https:" : "http:";
  const mod = modules[scheme];
  if (mod === undefined) return viaFetch(method, url, headers, body, timeoutMs);
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const h: Record<string, string | number> = { ...headers };
  if (bytes !== undefined) h["content-length"] = bytes.byteLength;
  return new Promise<HttpAnswer>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    let answered = false;
    const failed = (err: unknown, notSent: boolean): void => {
      clearTimeout(timer);
      reject(new HttpCallError(`${method} ${url}: ${timedOut ? `timed out after ${timeoutMs} ms` : String(err)}`, notSent && !timedOut));
    };
    const req = mod.request(u, { method, headers: h, agent: agents[scheme] }, (res) => {
      answered = true;
      const decoder = new TextDecoder();
      let text = "";
      res.on("data", (c: Uint8Array) => (text += decoder.decode(c, { stream: true })));
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: text + decoder.decode() });
      });
      res.on("error", (err) => failed(err, false));
    });
    req.on("error", (err: Error & { code?: string }) => {
      const code = err.code ?? "";
      if (req.reusedSocket && code === "ECONNRESET" && !answered && !timedOut) {
        clearTimeout(timer);
        return reject(STALE);
      }
      failed(err, NOT_CONNECTED.has(code));
    });
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        req.destroy();
      }, timeoutMs);
    }
    req.end(bytes);
  });
}

async function viaFetch(method: string, url: string, headers: Record<string, string>, body: Uint8Array | string | undefined, timeoutMs: number | undefined): Promise<HttpAnswer> {
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = body as BodyInit;
  if (timeoutMs !== undefined) init.signal = AbortSignal.timeout(timeoutMs);
  let status = 0;
  try {
    const resp = await fetch(url, init);
    status = resp.status;
    return { status, text: await resp.text() };
  } catch (err) {
    // fetch rejects with a TypeError when no answer came (the connection
    // failed before one), with an AbortError/TimeoutError on the timeout,
    // and reading the body fails like it when the answer breaks off.
    const timeout = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    throw new HttpCallError(`${method} ${url}: ${timeout ? `timed out after ${timeoutMs} ms` : String(err)}`, status === 0 && err instanceof TypeError);
  }
}

/**
 * One HTTP call; `timeoutMs` bounds it from start to the end of the answer.
 * Rejects with {@link HttpCallError} when no answer came.
 */
export function httpCall(method: string, url: string, headers: Record<string, string>, body?: Uint8Array | string, timeoutMs?: number): Promise<HttpAnswer> {
  return httpCallVia(TRANSPORT, method, url, headers, body, timeoutMs);
}

/** {@link httpCall} through a given transport (the tests run both). */
export function httpCallVia(transport: Transport, method: string, url: string, headers: Record<string, string>, body?: Uint8Array | string, timeoutMs?: number): Promise<HttpAnswer> {
  return transport === "node" ? viaNode(method, url, headers, body, timeoutMs) : viaFetch(method, url, headers, body, timeoutMs);
}
