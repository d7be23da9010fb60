//! `/api/v1/namespaces`: create, list, describe.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::ids::Namespace;
use crate::store::NamespaceRecord;

use super::error::ApiError;
use super::extract::{null_as_default, AppJson, AppPath, Body};
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/namespaces",
            get(list_namespaces).post(create_namespace),
        )
        .route("/api/v1/namespaces/{namespace}", get(describe_namespace))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateNamespace {
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    description: String,
}

impl Body for CreateNamespace {
    const PAYLOADS: &'static [&'static str] = &[];
}

#[derive(Serialize)]
struct NamespaceList {
    namespaces: Vec<NamespaceRecord>,
}

async fn create_namespace(
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateNamespace>,
) -> Result<(StatusCode, AppJson<NamespaceRecord>), ApiError> {
    let name = parse_namespace(&body.name)?;
    let record = NamespaceRecord {
        name,
        description: body.description,
        created_at: state.applier.clock().now(),
    };
    state.applier.store().create_namespace(&record).await?;
    Ok((StatusCode::CREATED, AppJson(record)))
}

async fn list_namespaces(
    State(state): State<AppState>,
) -> Result<AppJson<NamespaceList>, ApiError> {
    let namespaces = state.applier.store().list_namespaces().await?;
    Ok(AppJson(NamespaceList { namespaces }))
}

async fn describe_namespace(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
) -> Result<AppJson<NamespaceRecord>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?;
    Ok(AppJson(ns))
}

/// Namespace names are 1–64 characters of `[A-Za-z0-9._-]`, starting with a
/// letter or digit (they appear inside task tokens and URLs).
pub fn parse_namespace(name: &str) -> Result<Namespace, ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Err(ApiError::BadRequest(format!(
            "invalid namespace name {name:?}: use 1-64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit"
        )));
    }
    Ok(Namespace(name.to_owned()))
}

/// The namespace named in a path, or 404.
pub async fn existing_namespace(state: &AppState, name: &str) -> Result<NamespaceRecord, ApiError> {
    let ns = Namespace(name.to_owned());
    state.applier.namespace(&ns).await.map_err(|e| match e {
        crate::apply::Error::NamespaceNotFound(_) => {
            ApiError::NotFound(format!("namespace {name} not found"))
        }
        other => other.into(),
    })
}
