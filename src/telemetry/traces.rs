//! OpenTelemetry traces: the tracer provider (OTLP/HTTP protobuf export,
//! off unless `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set), the W3C Trace Context
//! propagation of the API and of pushes, and the two kinds of spans a node
//! makes: one per API request, one per push.
//!
//! The `tracing` spans become OpenTelemetry spans through
//! tracing-opentelemetry, whose layer is always installed on `serve` and
//! `dev` (see `logs`): without an exporter the provider records nothing,
//! but spans still get ids, so a run's pushes carry a `traceparent` in the
//! client's trace whether or not this node exports.
//!
//! The SDK reads the standard variables itself: `OTEL_SERVICE_NAME` /
//! `OTEL_RESOURCE_ATTRIBUTES` (the service name defaults to `baton` here),
//! `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`,
//! `OTEL_EXPORTER_OTLP_HEADERS` and the endpoints.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::engine::TraceContext;

use super::PushTarget;

/// The target of the spans this module makes, the only ones the
/// OpenTelemetry layer sees.
pub const TARGET: &str = "baton::trace";

const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Whether the environment asks for an OTLP exporter (read once).
pub fn exporting() -> bool {
    static EXPORTING: OnceLock<bool> = OnceLock::new();
    *EXPORTING.get_or_init(|| {
        ENDPOINT_VARS
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
    })
}

/// The process's tracer provider: batching to OTLP/HTTP when
/// [`exporting`], otherwise one with no processor (spans get ids and are
/// dropped). An exporter that cannot be built is reported and left out.
pub fn provider() -> SdkTracerProvider {
    let mut builder = SdkTracerProvider::builder().with_resource(resource());
    if exporting() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build();
        match exporter {
            Ok(e) => builder = builder.with_batch_exporter(e),
            Err(e) => eprintln!("warning: OTLP trace exporter not started: {e}"),
        }
    }
    builder.build()
}

/// The layer that turns `tracing` spans into `provider`'s spans (`logs`
/// filters it to [`TARGET`]).
pub fn layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
where
    S: tracing::Subscriber + for<'s> tracing_subscriber::registry::LookupSpan<'s>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("baton"))
}

/// The environment's resource, named `baton` unless the environment names
/// the service.
fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|s| !s.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|s| {
            s.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    let builder = Resource::builder();
    if named {
        builder.build()
    } else {
        builder.with_service_name("baton").build()
    }
}

/// The trace context headers of a request, if it has a `traceparent`.
fn incoming(headers: &HeaderMap) -> Option<TraceContext> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Some(TraceContext {
        traceparent: normalized(value("traceparent")?),
        tracestate: value("tracestate").map(str::to_owned),
    })
}

/// `traceparent` with the flags of version 00 other than `sampled`
/// cleared: W3C Trace Context level 2 adds the random-trace-id flag (the
/// Python SDK sets it), which the propagator here refuses as invalid.
fn normalized(traceparent: &str) -> String {
    let traceparent = traceparent.trim();
    if let Some(("00", rest)) = traceparent.split_once('-') {
        if let Some((ids, flags)) = rest.rsplit_once('-') {
            if let Ok(flags) = u8::from_str_radix(flags, 16) {
                return format!("00-{ids}-{:02x}", flags & 1);
            }
        }
    }
    traceparent.to_owned()
}

struct Stored<'a>(&'a TraceContext);

impl Extractor for Stored<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(&self.0.traceparent),
            "tracestate" => self.0.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The remote parent `traceparent` / `tracestate` name, if they are valid
/// W3C Trace Context (an invalid one is ignored, as the W3C spec asks:
/// the request is served in a new trace).
fn remote_parent(extractor: &dyn Extractor) -> Option<Context> {
    // Against an empty context: `extract` would fall back to the current
    // one (the span being served) when there is no header.
    let cx = TraceContextPropagator::new().extract_with_context(&Context::new(), extractor);
    let sc = cx.span().span_context().clone();
    (sc.is_valid() && sc.is_remote()).then_some(cx)
}

/// `span`'s own context as header values.
fn as_headers(span: &Span) -> Option<TraceContext> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut fields = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut fields);
    Some(TraceContext {
        traceparent: fields.remove("traceparent")?,
        tracestate: fields.remove("tracestate").filter(|s| !s.is_empty()),
    })
}

/// Gives `span` the remote parent (if any) and starts it, so its ids are
/// known from now on (JSON log lines show them).
fn adopt(span: &Span, parent: Option<Context>) {
    if let Some(parent) = parent {
        let _ = span.set_parent(parent);
    }
    let _ = span.context();
}

/// The span of one API request, in the trace of its `traceparent` header
/// when it has a valid one.
pub fn api_span(method: &str, route: &str, headers: &HeaderMap) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = incoming(headers).and_then(|t| remote_parent(&Stored(&t)));
    adopt(&span, parent);
    span
}

/// Records an API request's status on its span.
pub fn api_done(span: &Span, status: u16) {
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

/// The trace context a start request stores with its run: the current
/// (API request) span's, when the request came with a valid
/// `traceparent`, so the run's pushes stay in the client's trace as
/// children of the start call's span. `None` without one.
pub fn start_context(headers: &HeaderMap) -> Option<TraceContext> {
    let client = incoming(headers)?;
    remote_parent(&Stored(&client))?;
    as_headers(&Span::current())
}

/// The span of one push, a child of the run's stored trace context, and
/// the `traceparent` / `tracestate` to send with it (the push span's
/// own). A run without a trace context gets a root span and sends no
/// header unless this node exports traces.
pub fn push_span(
    target: &PushTarget<'_>,
    version: &str,
    stored: Option<&TraceContext>,
) -> (Span, Option<TraceContext>) {
    let span = tracing::info_span!(
        target: TARGET,
        "push",
        otel.name = %format_args!("push {}", target.kind.as_str()),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        namespace = %target.namespace,
        task_queue = %target.task_queue,
        kind = target.kind.as_str(),
        endpoint_version = %version,
        outcome = tracing::field::Empty,
    );
    let parent = stored.and_then(|t| remote_parent(&Stored(t)));
    let send = parent.is_some() || exporting();
    adopt(&span, parent);
    let headers = if send { as_headers(&span) } else { None };
    (span, headers)
}

/// Records a push's outcome on its span.
pub fn push_done(span: &Span, outcome: &'static str) {
    span.record("outcome", outcome);
    if outcome != "answered" {
        span.record("otel.status_code", "ERROR");
    }
}
