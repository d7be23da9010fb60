/**
 * Thin adapters from a fetch handler to Node's `http` server (and Express)
 * and to AWS Lambda (function URLs, API Gateway v2 and v1 events).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FetchHandler } from "./handler.js";

/** A `(req, res)` listener for `http.createServer` or Express (mount it with no body parser in front). */
export function toNodeListener(handler: FetchHandler): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (c: Uint8Array) => chunks.push(c));
    req.on("error", () => {
      res.statusCode = 400;
      res.end();
    });
    req.on("end", () => {
      void (async () => {
        try {
          const headers = new Headers();
          for (const [k, v] of Object.entries(req.headers)) {
            if (Array.isArray(v)) for (const x of v) headers.append(k, x);
            else if (v !== undefined) headers.set(k, v);
          }
          const method = req.method ?? "GET";
          const host = req.headers.host ?? "localhost";
          const init: RequestInit = { method, headers };
          if (method !== "GET" && method !== "HEAD") init.body = Buffer.concat(chunks);
          const response = await handler(new Request(`http://${host}${req.url ?? "/"}`, init));
          res.statusCode = response.status;
          response.headers.forEach((v, k) => res.setHeader(k, v));
          res.end(Buffer.from(await response.arrayBuffer()));
        } catch (err) {
          res.statusCode = 500;
          res.end(String(err));
        }
      })();
    });
  };
}

/** The parts of Lambda HTTP events this adapter reads. */
export interface LambdaHttpEvent {
  version?: string;
  rawPath?: string;
  rawQueryString?: string;
  path?: string;
  httpMethod?: string;
  headers?: Record<string, string | undefined> | null;
  body?: string | null;
  isBase64Encoded?: boolean;
  requestContext?: { http?: { method?: string }; domainName?: string };
}

export interface LambdaHttpResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded: boolean;
}

/** A Lambda handler for function URLs and API Gateway (HTTP API v2; REST API v1 too). */
export function toLambdaHandler(handler: FetchHandler): (event: LambdaHttpEvent) => Promise<LambdaHttpResult> {
  return async (event) => {
    const method = event.requestContext?.http?.method ?? event.httpMethod ?? "GET";
    const headers = new Headers();
    for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers.set(k, v);
    const host = event.requestContext?.domainName ?? headers.get("host") ?? "lambda.local";
    const path = event.rawPath ?? event.path ?? "/";
    const qs = event.rawQueryString ? `?${event.rawQueryString}` : "";
    const init: RequestInit = { method, headers };
    if (method !== "GET" && method !== "HEAD" && event.body != null) {
      init.body = event.isBase64Encoded ? Buffer.from(event.body, "base64") : event.body;
    }
    const response = await handler(new Request(`https://${host}${path}${qs}`, init));
    const out: Record<string, string> = {};
    response.headers.forEach((v, k) => (out[k] = v));
    return { statusCode: response.status, headers: out, body: await response.text(), isBase64Encoded: false };
  };
}
