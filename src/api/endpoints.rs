//! `/api/v1/namespaces/{ns}/endpoints`: bind a handler URL (and its signing
//! secrets) to a task queue, in versions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::Router;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::ids::TaskQueue;
use crate::signing::{self, Secret};
use crate::store::Endpoint;

use super::error::ApiError;
use super::extract::{AppJson, AppPath};
use super::namespaces::existing_namespace;
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/namespaces/{namespace}/endpoints",
            get(list_endpoints).post(register_endpoint),
        )
        .route(
            "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/{version}",
            delete(delete_endpoint),
        )
}

/// Default per-node limit of concurrent pushes to one endpoint.
const DEFAULT_MAX_CONCURRENCY: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterEndpoint {
    task_queue: String,
    url: String,
    #[serde(default)]
    version: Option<String>,
    /// `whsec_…` secrets; one is generated (and returned once) if empty.
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    max_concurrency: Option<u32>,
}

#[derive(Serialize)]
struct Registered {
    #[serde(flatten)]
    endpoint: EndpointView,
    /// Present only when the server generated the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    generated_secret: Option<String>,
}

/// An endpoint as shown by the API: secrets are never echoed back.
#[derive(Serialize)]
struct EndpointView {
    namespace: String,
    task_queue: String,
    version: String,
    url: String,
    max_concurrency: u32,
    is_current: bool,
    secret_count: usize,
    created_at: crate::time::Timestamp,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> EndpointView {
        EndpointView {
            namespace: e.namespace.0,
            task_queue: e.task_queue.0,
            version: e.version,
            url: e.url,
            max_concurrency: e.max_concurrency,
            is_current: e.is_current,
            secret_count: e.secrets.len(),
            created_at: e.created_at,
        }
    }
}

#[derive(Serialize)]
struct EndpointList {
    endpoints: Vec<EndpointView>,
}

async fn register_endpoint(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppJson(body): AppJson<RegisterEndpoint>,
) -> Result<(StatusCode, AppJson<Registered>), ApiError> {
    let ns = existing_namespace(&state, &namespace).await?;
    if body.task_queue.is_empty() {
        return Err(ApiError::BadRequest("task_queue must not be empty".into()));
    }
    let url = reqwest::Url::parse(&body.url)
        .map_err(|e| ApiError::BadRequest(format!("invalid url {:?}: {e}", body.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::BadRequest("url must be http or https".into()));
    }
    let version = body.version.unwrap_or_else(|| "default".to_owned());
    if version.is_empty() || version.contains('/') {
        return Err(ApiError::BadRequest(
            "version must be non-empty and contain no '/'".into(),
        ));
    }
    let max_concurrency = body.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
    if max_concurrency == 0 {
        return Err(ApiError::BadRequest(
            "max_concurrency must be at least 1".into(),
        ));
    }
    for s in &body.secrets {
        s.parse::<Secret>()
            .map_err(|e| ApiError::BadRequest(format!("invalid signing secret: {e}")))?;
    }
    let (secrets, generated_secret) = if body.secrets.is_empty() {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        let secret = signing::generate_secret(key);
        (vec![secret.clone()], Some(secret))
    } else {
        (body.secrets, None)
    };
    let endpoint = Endpoint {
        namespace: ns.name,
        task_queue: TaskQueue(body.task_queue),
        version,
        url: url.to_string(),
        secrets,
        max_concurrency,
        is_current: true,
        created_at: state.applier.clock().now(),
    };
    state.applier.store().upsert_endpoint(&endpoint).await?;
    Ok((
        StatusCode::CREATED,
        AppJson(Registered {
            endpoint: endpoint.into(),
            generated_secret,
        }),
    ))
}

async fn list_endpoints(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
) -> Result<AppJson<EndpointList>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?;
    let endpoints = state.applier.store().list_endpoints(&ns.name).await?;
    Ok(AppJson(EndpointList {
        endpoints: endpoints.into_iter().map(Into::into).collect(),
    }))
}

async fn delete_endpoint(
    State(state): State<AppState>,
    AppPath((namespace, task_queue, version)): AppPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?;
    let deleted = state
        .applier
        .store()
        .delete_endpoint(&ns.name, &TaskQueue(task_queue.clone()), &version)
        .await?;
    if !deleted {
        return Err(ApiError::NotFound(format!(
            "no endpoint version {version} for task queue {task_queue}"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}
