//! The REST API (axum). The only module that knows HTTP status codes and
//! JSON shapes of the public API; handlers are thin: parse, authorise, call
//! `apply` or the store. `openapi/openapi.yaml` describes every route here
//! (tests/openapi.rs fails when they differ).

mod activities;
mod batches;
mod dev;
mod endpoints;
mod error;
mod extract;
mod health;
mod namespaces;
mod schedules;
mod search_attributes;
mod workflows;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use subtle::ConstantTimeEq;

use crate::apply::Applier;
use crate::dispatch::Querier;
use crate::time::SkippingClock;

pub use error::ApiError;
pub use namespaces::parse_namespace;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
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

/// Who may call the API. Today one optional server-wide bearer key; the
/// check is one function so namespace-scoped keys can replace it.
#[derive(Debug, Default)]
pub struct Access {
    pub api_key: Option<String>,
}

impl Access {
    fn allows(&self, authorization: Option<&str>) -> bool {
        let Some(key) = &self.api_key else {
            return true;
        };
        let presented = authorization.and_then(bearer_token).unwrap_or("");
        // Constant time in the key's content; the length is not secret.
        presented.as_bytes().ct_eq(key.as_bytes()).into()
    }
}

/// The token of an `Authorization: Bearer <token>` header. RFC 9110
/// §11.1: the scheme is case-insensitive and one or more spaces separate it
/// from the credentials.
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
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
        .merge(schedules::router())
        .merge(batches::router())
        .merge(dev::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .merge(api)
        .merge(health::router())
        .fallback(not_found)
        // After the merges: it applies to the routes that exist by now.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(limit_uri))
        .layer(middleware::from_fn(measure))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !state.access.allows(header) {
        return ApiError::Unauthorized.into_response();
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
/// paths); requests no route matched count as `unmatched`.
async fn measure(req: Request, next: Next) -> Response {
    let begun = std::time::Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let response = next.run(req).await;
    let seconds = begun.elapsed().as_secs_f64();
    crate::telemetry::api_request(method.as_str(), &route, response.status().as_u16(), seconds);
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
