//! The REST API (axum). The only module that knows HTTP status codes and
//! JSON shapes of the public API; handlers are thin: parse, call `apply` or
//! the store. `access` authorises every request, in one place, before any
//! handler runs. `openapi/openapi.yaml` describes every route here
//! (tests/openapi.rs fails when they differ).

mod access;
mod activities;
mod apikeys;
mod batches;
mod checkpoint;
mod dev;
mod endpoints;
mod error;
mod extract;
mod health;
mod history_pages;
mod namespaces;
mod payloads;
mod schedules;
mod search_attributes;
mod signed;
mod webhooks;
mod workflows;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tracing::Instrument as _;

use crate::apply::Applier;
use crate::dispatch::Querier;
use crate::telemetry::traces;
use crate::time::SkippingClock;

pub use access::Access;
pub use error::ApiError;
pub use namespaces::parse_namespace;

/// Shared by every handler; cheap to clone (one reference count), as axum
/// clones it for every request and middleware.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What an [`AppState`] holds.
pub struct Shared {
    pub applier: Applier,
    pub access: Arc<Access>,
    /// Sends queries to workflow endpoints.
    pub querier: Querier,
    /// Wakes this node's schedule loop after a schedule changed.
    pub schedules: crate::scheduler::Handle,
    /// Wakes this node's batch loop after a job was started.
    pub batches: crate::batch::runner::Handle,
    /// The server's cap on a batch job's runs per second.
    pub batch_max_rps: f64,
    /// Set on `baton dev --time-skipping` nodes: the clock the dev routes move.
    pub time_skipping: Option<Arc<SkippingClock>>,
}

/// Largest accepted request body, in bytes.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(namespaces::router())
        .merge(search_attributes::router())
        .merge(endpoints::router())
        .merge(workflows::router())
        .merge(activities::router())
        .merge(checkpoint::router())
        .merge(history_pages::router())
        .merge(payloads::router())
        .merge(schedules::router())
        .merge(batches::router())
        .merge(apikeys::router())
        .merge(webhooks::router())
        .merge(dev::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            access::authorize,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_draining,
        ));
    Router::new()
        .merge(api)
        .merge(health::router())
        .fallback(not_found)
        // After the merges: it applies to the routes that exist by now.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(limit_uri))
        // 5xx answers are counted and on the request span already; a
        // draining node's 503s are expected: no error line for each.
        .layer(
            tower_http::trace::TraceLayer::new_for_http().on_failure(
                tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
            ),
        )
        // Outermost: the request's span encloses everything logged for it.
        .layer(middleware::from_fn(measure))
        .with_state(state)
}

/// A shutting-down node answers health routes only: the rest get a 503
/// problem, which clients retry (on another node, behind a load balancer).
async fn refuse_draining(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.applier.readiness().is_draining() {
        return ApiError::Unavailable(
            "the node is shutting down; retry the request (another node will serve it)".into(),
        )
        .into_response();
    }
    next.run(req).await
}

/// Longest accepted request target (path and query), in bytes. Longer ones
/// get a 414 problem here; a request line well past it never reaches hyper
/// (which would answer a target over 64 KiB with an empty 414): the
/// connection guard in `server` answers it with the same problem.
pub const MAX_URI_BYTES: usize = 16 * 1024;

async fn limit_uri(req: Request, next: Next) -> Response {
    let len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if len > MAX_URI_BYTES {
        return ApiError::UriTooLong(format!(
            "the request target is {len} bytes; at most {MAX_URI_BYTES} are accepted"
        ))
        .into_response();
    }
    next.run(req).await
}

/// Counts and times every answer by its route template (bounded, unlike
/// paths); requests no route matched count as `unmatched`. Each request
/// runs in its span, in the caller's trace when it sent a `traceparent`.
async fn measure(req: Request, next: Next) -> Response {
    let begun = std::time::Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let span = traces::api_span(method.as_str(), &route, req.headers());
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    traces::api_done(&span, status);
    let seconds = begun.elapsed().as_secs_f64();
    crate::telemetry::api_request(method.as_str(), &route, status, seconds);
    response
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

/// A known path with a method it does not serve (axum adds `Allow`).
async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        req.method(),
        req.uri().path()
    ))
}
