//! `/api/v1/namespaces`: create, list (a scoped key sees only its own),
//! describe (with counts of open and closed runs), update (description,
//! retention).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Extension;
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::engine::RunStatus;
use crate::ids::Namespace;
use crate::store::{self, NamespaceRecord};
use crate::time::Duration;
use crate::visibility::{Attribute, CountQuery};

use super::access::Principal;
use super::error::ApiError;
use super::extract::{null_as_default, AppJson, AppPath, Body};
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/namespaces",
            get(list_namespaces).post(create_namespace),
        )
        .route(
            "/api/v1/namespaces/{namespace}",
            get(describe_namespace).patch(update_namespace),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateNamespace {
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    description: String,
    /// Default: [`store::DEFAULT_RETENTION`].
    #[serde(default)]
    retention: Option<Duration>,
}

impl Body for CreateNamespace {
    const PAYLOADS: &'static [&'static str] = &[];
}

/// The fields an update may change; absent ones stay as they are.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateNamespace {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    retention: Option<Duration>,
}

impl Body for UpdateNamespace {
    const PAYLOADS: &'static [&'static str] = &[];
}

/// A namespace with how many of its runs are open and closed.
#[derive(Serialize)]
struct NamespaceDescription {
    #[serde(flatten)]
    record: NamespaceRecord,
    open_runs: i64,
    closed_runs: i64,
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
        retention: retention(body.retention)?.unwrap_or(store::DEFAULT_RETENTION),
        created_at: state.applier.clock().now(),
    };
    state.applier.store().create_namespace(&record).await?;
    Ok((StatusCode::CREATED, AppJson(record)))
}

/// Every namespace the caller may see: all of them, or a scoped key's own.
async fn list_namespaces(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<AppJson<NamespaceList>, ApiError> {
    let mut namespaces = state.applier.store().list_namespaces().await?;
    namespaces.retain(|n| principal.sees(&n.name));
    Ok(AppJson(NamespaceList { namespaces }))
}

async fn describe_namespace(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
) -> Result<AppJson<NamespaceDescription>, ApiError> {
    let name = existing_namespace(&state, &namespace).await?.name;
    let store = state.applier.store();
    // Read from the store, not the node's cache of namespaces: another
    // node may have updated it.
    let record = store
        .get_namespace(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("namespace {namespace} not found")))?;
    let by_status = CountQuery {
        filter: None,
        group_by: Some(Attribute::ExecutionStatus),
    };
    let (mut open_runs, mut closed_runs) = (0, 0);
    for (status, n) in store.count_runs(&name, &by_status).await? {
        match status.as_deref().and_then(RunStatus::parse) {
            Some(RunStatus::Running) => open_runs += n,
            _ => closed_runs += n,
        }
    }
    Ok(AppJson(NamespaceDescription {
        record,
        open_runs,
        closed_runs,
    }))
}

async fn update_namespace(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppJson(body): AppJson<UpdateNamespace>,
) -> Result<AppJson<NamespaceRecord>, ApiError> {
    let retention = retention(body.retention)?;
    let name = existing_namespace(&state, &namespace).await?.name;
    let store = state.applier.store();
    let not_found = || ApiError::NotFound(format!("namespace {namespace} not found"));
    let current = store.get_namespace(&name).await?.ok_or_else(not_found)?;
    let updated = NamespaceRecord {
        description: body.description.unwrap_or(current.description),
        retention: retention.unwrap_or(current.retention),
        ..current
    };
    if !store.update_namespace(&updated).await? {
        return Err(not_found());
    }
    Ok(AppJson(updated))
}

/// A retention must keep closed runs for some time.
fn retention(given: Option<Duration>) -> Result<Option<Duration>, ApiError> {
    match given {
        Some(d) if d.millis() <= 0 => Err(ApiError::BadRequest(format!(
            "retention must be positive, not {d}"
        ))),
        other => Ok(other),
    }
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
