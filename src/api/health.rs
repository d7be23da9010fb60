//! `/healthz` (the process is up) and `/readyz` (it can reach its
//! database). Both are open even when an API key is set.

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
}

async fn healthz() -> AppJson<Value> {
    AppJson(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Result<AppJson<Value>, ApiError> {
    state
        .applier
        .store()
        .list_namespaces()
        .await
        .map_err(|e| ApiError::Unavailable(format!("database not ready: {e}")))?;
    Ok(AppJson(json!({ "status": "ready" })))
}
