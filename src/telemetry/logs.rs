//! The process's `tracing` subscriber: log lines on stderr, as text or as
//! one JSON object per line (`--log-format`), filtered by `RUST_LOG`; and,
//! on `serve` and `dev`, the OpenTelemetry layer (`traces`), which only
//! sees the API request and push spans (target [`traces::TARGET`]),
//! whatever `RUST_LOG` says.
//!
//! JSON lines carry the fields of the span they were logged in under
//! `span`, so a line logged while serving a request or sending a push has
//! `span.trace_id` and `span.span_id`.

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(fmt.with_filter(filter));
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
