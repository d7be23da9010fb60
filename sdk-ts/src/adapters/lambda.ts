/**
 * AWS Lambda: function URLs and API Gateway HTTP API (v2) events, REST API
 * (v1) events too; base64 bodies. A handler made by `createHandler` is
 * called on the event's method, headers and body directly; any other fetch
 * handler through Request/Response.
 */
import { type FetchHandler, PUSH_HANDLER, type Platform } from "../core/handler.js";

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

/** The part of the Lambda context this adapter reads: the invocation's time left, which bounds inline activities (protocol.md §5.9). */
export interface LambdaContext {
  getRemainingTimeInMillis?: () => number;
}

/**
 * A Lambda handler for function URLs and API Gateway (HTTP API v2; REST API
 * v1 too). Inline activities stop in time for the invocation's own limit,
 * and attempts still running when a push is answered are abandoned (the
 * server retries them after their start-to-close timeout).
 */
export function toLambdaHandler(handler: FetchHandler): (event: LambdaHttpEvent, context?: LambdaContext) => Promise<LambdaHttpResult> {
  const push = handler[PUSH_HANDLER];
  return async (event, context) => {
    const method = event.requestContext?.http?.method ?? event.httpMethod ?? "GET";
    const headers = new Headers();
    for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers.set(k, v);
    let body: Uint8Array | undefined;
    if (method !== "GET" && method !== "HEAD" && event.body != null) {
      body = event.isBase64Encoded ? Buffer.from(event.body, "base64") : new TextEncoder().encode(event.body);
    }
    if (push !== undefined) {
      const remaining = context?.getRemainingTimeInMillis?.();
      const platform: Platform = { serverless: true, ...(remaining !== undefined ? { deadlineMs: Date.now() + remaining } : {}) };
      const answer = await push(method, headers, body ?? new Uint8Array(), platform);
      const out: Record<string, string> = answer.body === null ? {} : { "content-type": "application/json" };
      return { statusCode: answer.status, headers: out, body: answer.body ?? "", isBase64Encoded: false };
    }
    const host = event.requestContext?.domainName ?? headers.get("host") ?? "lambda.local";
    const path = event.rawPath ?? event.path ?? "/";
    const qs = event.rawQueryString ? `?${event.rawQueryString}` : "";
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = body as BufferSource;
    const response = await handler(new Request(`https://${host}${path}${qs}`, init));
    const out: Record<string, string> = {};
    response.headers.forEach((v, k) => (out[k] = v));
    return { statusCode: response.status, headers: out, body: await response.text(), isBase64Encoded: false };
  };
}
