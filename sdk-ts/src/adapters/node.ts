/**
 * Node's `http` server (and Express): the push handler called on the
 * request's method, headers and body bytes (no fetch Request or Response is
 * built per push), or any other fetch handler through Request/Response.
 * The process is long-lived: the handler keeps workflow instances for
 * sticky pushes (its `maxCachedWorkflows`, protocol.md §5.10).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { type FetchHandler, PUSH_HANDLER, type Platform, type PushAnswer } from "../core/handler.js";

const LONG_LIVED: Platform = { longLived: true };

function headerLookup(headers: IncomingHttpHeaders): { get(name: string): string | null } {
  return {
    get(name) {
      const v = headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(", ") : (v ?? null);
    },
  };
}

async function viaFetch(handler: FetchHandler, req: IncomingMessage, body: Buffer): Promise<{ answer: PushAnswer; headers: [string, string][] }> {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (Array.isArray(v)) for (const x of v) headers.append(k, x);
    else if (v !== undefined) headers.set(k, v);
  }
  const method = req.method ?? "GET";
  const init: RequestInit = { method, headers };
  if (method !== "GET" && method !== "HEAD") init.body = body as BufferSource;
  const response = await handler(new Request(`http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, init));
  const out: [string, string][] = [];
  response.headers.forEach((v, k) => out.push([k, v]));
  return { answer: { status: response.status, body: await response.text() }, headers: out };
}

/** A `(req, res)` listener for `http.createServer` or Express (mount it with no body parser in front). */
export function toNodeListener(handler: FetchHandler): (req: IncomingMessage, res: ServerResponse) => void {
  const push = handler[PUSH_HANDLER];
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", () => {
      res.statusCode = 400;
      res.end();
    });
    req.on("end", () => {
      void (async () => {
        try {
          const body = Buffer.concat(chunks);
          if (push !== undefined) {
            const answer = await push(req.method ?? "GET", headerLookup(req.headers), body, LONG_LIVED);
            res.statusCode = answer.status;
            if (answer.body !== null) res.setHeader("content-type", "application/json");
            res.end(answer.body ?? undefined);
            return;
          }
          const { answer, headers } = await viaFetch(handler, req, body);
          res.statusCode = answer.status;
          for (const [k, v] of headers) res.setHeader(k, v);
          res.end(answer.body);
        } catch (err) {
          res.statusCode = 500;
          res.end(String(err));
        }
      })();
    });
  };
}
