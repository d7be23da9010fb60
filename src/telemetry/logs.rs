//! The process's `tracing` subscriber: log lines on stderr, as text or as
//! one JSON object per line (`--log-format`), filtered by `RUST_LOG`; and,
//! on `serve` and `dev`, the OpenTelemetry layer (`traces`), which only
//! sees the API request and push spans (target [`traces::TARGET`]),
//! whatever `RUST_LOG` says.
//!
//! A JSON line logged while a request or a push is served carries the
//! top-level `trace_id` and `span_id` of that request's or push's span,
//! and the fields of the innermost span under `span`.

use std::fmt;

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OtelData;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

use super::traces;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Keeps the tracer provider; [`Guard::shutdown`] flushes the spans not
/// yet exported.
pub struct Guard(Option<SdkTracerProvider>);

impl Guard {
    /// Exports what is still batched (blocking: the exporter's client is a
    /// blocking one, so this runs off the async workers).
    pub async fn shutdown(self) {
        if let Some(provider) = self.0 {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Installs the subscriber. `server`: a node (`serve`, `dev`): `info` by
/// default and spans for OpenTelemetry; otherwise `warn` and logs only.
pub fn init(server: bool, format: LogFormat) -> Guard {
    let default = if server { "info" } else { "warn" };
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    if server {
        // The request and push spans, so that lines logged in them have
        // their ids whatever the level asked for.
        if let Ok(spans) = format!("{}=info", traces::TARGET).parse() {
            filter = filter.add_directive(spans);
        }
    }
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt
            .json()
            .event_format(WithTraceIds(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ))
            .boxed(),
    };
    // `RUST_LOG` filters globally (a per-layer EnvFilter beside the
    // OpenTelemetry layer's own filter left request spans out of some
    // events' scopes); the OpenTelemetry layer then keeps only its spans.
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    if !server {
        let _ = registry.try_init();
        return Guard(None);
    }
    let provider = traces::provider();
    let spans = Targets::new().with_target(traces::TARGET, tracing::Level::INFO);
    let _ = registry
        .with(traces::layer(&provider).with_filter(spans))
        .try_init();
    Guard(Some(provider))
}

/// A JSON event format with the ids of the OpenTelemetry span the event
/// happened in (the nearest one up the span scope) added at the top level.
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let ids = ctx.event_scope().and_then(|scope| {
            scope.into_iter().find_map(|span| {
                let extensions = span.extensions();
                let data = extensions.get::<OtelData>()?;
                Some((data.trace_id()?, data.span_id()?))
            })
        });
        let parsed = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line);
        match (ids, parsed) {
            (Some((trace_id, span_id)), Ok(mut object)) => {
                object.insert("trace_id".into(), trace_id.to_string().into());
                object.insert("span_id".into(), span_id.to_string().into());
                writeln!(writer, "{}", serde_json::Value::Object(object))
            }
            _ => writer.write_str(&line),
        }
    }
}
