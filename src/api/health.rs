//! `/healthz` (the process is up), `/readyz` (it can commit: the last
//! write probe of `readiness` succeeded) and `/metrics` (Prometheus
//! exposition of `telemetry`). All are open even when an API key is set.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::AppJson;
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn metrics() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::render(),
    )
}

async fn healthz() -> AppJson<Value> {
    AppJson(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Result<AppJson<Value>, ApiError> {
    if state.applier.readiness().is_draining() {
        return Err(ApiError::Unavailable(
            "not ready: the node is shutting down".into(),
        ));
    }
    if !state.applier.readiness().is_ready() {
        return Err(ApiError::Unavailable(
            "not ready: the last write probe of the database failed".into(),
        ));
    }
    Ok(AppJson(json!({ "status": "ready" })))
}
