/**
 * W3C Trace Context through the optional `@opentelemetry/api` package (a
 * peer dependency, imported dynamically on first use; nothing happens when
 * it is absent). The client sends the active span context as
 * `traceparent` / `tracestate`; the handler runs each push inside the
 * context the server sent with it (the server's push span), in a span of
 * its own when a tracer provider is registered, so activity and user spans
 * join the trace the run was started in.
 *
 * Only the API's context and span-context functions are used, and the
 * header is written and parsed here: no propagator needs registering.
 */

/** The parts of `@opentelemetry/api` this module uses. */
interface SpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
  traceState?: { serialize(): string };
}
interface Span {
  end(): void;
}
interface OtelApi {
  context: { active(): unknown; with<R>(ctx: unknown, fn: () => R): R };
  trace: {
    getSpanContext(ctx: unknown): SpanContext | undefined;
    setSpanContext(ctx: unknown, sc: SpanContext): unknown;
    getTracer(name: string): { startActiveSpan<R>(name: string, options: { kind: number }, ctx: unknown, fn: (span: Span) => R): R };
  };
  createTraceState?: (raw: string) => { serialize(): string };
  SpanKind: { SERVER: number };
}

// In a variable, so bundlers and tsc leave the optional package alone.
const PACKAGE = "@opentelemetry/api";
let loaded: Promise<OtelApi | undefined> | undefined;

function otel(): Promise<OtelApi | undefined> {
  loaded ??= import(PACKAGE).then(
    (m: unknown) => {
      const api = ((m as { default?: unknown }).default ?? m) as Partial<OtelApi>;
      return api.trace && api.context ? (api as OtelApi) : undefined;
    },
    () => undefined,
  );
  return loaded;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** Adds `traceparent` (and `tracestate`) of the active span context, if any. */
export async function injectTrace(headers: Record<string, string>): Promise<void> {
  const api = await otel();
  const sc = api?.trace.getSpanContext(api.context.active());
  if (!sc || /^0+$/.test(sc.traceId) || /^0+$/.test(sc.spanId)) return;
  headers.traceparent = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
  const state = sc.traceState?.serialize();
  if (state) headers.tracestate = state;
}

/** Runs `fn` in the context `traceparent` names (a no-op without the API or a valid header). */
export async function continueTrace<R>(
  headers: { get(name: string): string | null },
  name: string,
  fn: () => Promise<R>,
): Promise<R> {
  const raw = headers.get("traceparent");
  const m = raw ? TRACEPARENT.exec(raw.trim().toLowerCase()) : null;
  if (!m || m[1] === "ff" || /^0+$/.test(m[2] ?? "") || /^0+$/.test(m[3] ?? "")) return fn();
  const api = await otel();
  if (!api) return fn();
  const sc: SpanContext = { traceId: m[2] ?? "", spanId: m[3] ?? "", traceFlags: parseInt(m[4] ?? "0", 16), isRemote: true };
  const state = headers.get("tracestate");
  if (state && api.createTraceState) sc.traceState = api.createTraceState(state);
  const parent = api.trace.setSpanContext(api.context.active(), sc);
  return api.trace.getTracer("baton").startActiveSpan(name, { kind: api.SpanKind.SERVER }, parent, async (span) => {
    try {
      return await fn();
    } finally {
      span.end();
    }
  });
}
