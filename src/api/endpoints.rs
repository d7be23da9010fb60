//! `/api/v1/namespaces/{ns}/endpoints`: bind a handler URL (and its signing
//! secrets) to a task queue, in versions; list a queue's versions with the
//! open runs pinned to each, promote one (rollback), and move runs between
//! versions (audited); read and replace a version's input schemas.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::apply::MoveRuns;
use crate::dispatch::PushError;
use crate::engine::MoveToVersion;
use crate::flow::{ConcurrencyKey, FlowControl, RateLimit};
use crate::ids::{Namespace, RunId, TaskQueue, WorkflowId};
use crate::schema::Schemas;
use crate::signing::{self, Secret};
use crate::store::Endpoint;
use crate::time::Timestamp;

use super::error::ApiError;
use super::extract::{null_as_default, AppJson, AppPath, AppQuery, Body};
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
        .route(
            "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/versions",
            get(list_versions),
        )
        .route(
            "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/versions/{version}/promote",
            post(promote_version),
        )
        .route(
            "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/versions/{version}/move-runs",
            post(move_runs),
        )
        .route(
            "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/versions/{version}/schemas",
            get(get_schemas).put(put_schemas),
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
    #[serde(default, deserialize_with = "null_as_default")]
    secrets: Vec<String>,
    #[serde(default)]
    max_concurrency: Option<u32>,
    /// The version's input schemas: what the SDK's description serves
    /// under `schemas` (the CLI and the SDKs' test helpers read it).
    #[serde(default, deserialize_with = "null_as_default")]
    schemas: Schemas,
    /// Flow control (`src/flow.rs`); members checked by `validate`.
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default, deserialize_with = "null_as_default")]
    concurrency_keys: Vec<ConcurrencyKey>,
    /// Protocol features the handler supports: what its description lists
    /// under `features` (docs/protocol.md §1.5).
    #[serde(default, deserialize_with = "null_as_default")]
    features: Vec<String>,
}

impl Body for RegisterEndpoint {
    const PAYLOADS: &'static [&'static str] = &[];
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
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<RateLimitView>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    concurrency_keys: Vec<ConcurrencyKey>,
    features: Vec<String>,
    is_current: bool,
    secret_count: usize,
    created_at: crate::time::Timestamp,
}

/// A rate limit as shown, with its effective burst.
#[derive(Serialize)]
struct RateLimitView {
    per_second: f64,
    burst: u32,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> EndpointView {
        EndpointView {
            namespace: e.namespace.0,
            task_queue: e.task_queue.0,
            version: e.version,
            url: e.url,
            max_concurrency: e.max_concurrency,
            rate_limit: e.flow.rate_limit.as_ref().map(|r| RateLimitView {
                per_second: r.per_second,
                burst: r.burst(),
            }),
            concurrency_keys: e.flow.concurrency_keys,
            features: e.features,
            is_current: e.is_current,
            secret_count: e.secrets.len(),
            created_at: e.created_at,
        }
    }
}

/// A listed endpoint: the view plus the last push errors this node saw.
#[derive(Serialize)]
struct ListedEndpoint {
    #[serde(flatten)]
    endpoint: EndpointView,
    last_push_errors: Vec<PushErrorView>,
}

#[derive(Serialize)]
struct PushErrorView {
    time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    message: String,
}

impl From<PushError> for PushErrorView {
    fn from(e: PushError) -> PushErrorView {
        PushErrorView {
            time: e.time,
            status_code: e.status_code,
            message: e.message,
        }
    }
}

#[derive(Serialize)]
struct EndpointList {
    endpoints: Vec<ListedEndpoint>,
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
    // `versions` would be taken for the queue's version list in paths.
    if version.is_empty() || version.contains('/') || version == "versions" {
        return Err(ApiError::BadRequest(
            "version must be non-empty, contain no '/' and not be `versions`".into(),
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
    check_schemas(&body.schemas)?;
    check_features(&body.features)?;
    let flow = FlowControl {
        rate_limit: body.rate_limit,
        concurrency_keys: body.concurrency_keys,
    };
    flow.validate()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let schemas = body.schemas;
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
        schemas,
        flow,
        features: body.features,
    };
    state.applier.store().upsert_endpoint(&endpoint).await?;
    state
        .applier
        .endpoints()
        .forget(&endpoint.namespace, &endpoint.task_queue);
    Ok((
        StatusCode::CREATED,
        AppJson(Registered {
            endpoint: endpoint.into(),
            generated_secret,
        }),
    ))
}

/// Most features a version may list, and the longest name.
const MAX_FEATURES: usize = 16;
const MAX_FEATURE_LEN: usize = 64;

/// Feature names are kept whether or not this server knows them (a newer
/// SDK may list more), but must look like names.
fn check_features(features: &[String]) -> Result<(), ApiError> {
    if features.len() > MAX_FEATURES {
        return Err(ApiError::BadRequest(format!(
            "features: at most {MAX_FEATURES} names"
        )));
    }
    let named = |f: &String| {
        (1..=MAX_FEATURE_LEN).contains(&f.len())
            && f.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    match features.iter().find(|f| !named(f)) {
        Some(f) => Err(ApiError::BadRequest(format!(
            "features: {f:?} is not a feature name (1 to {MAX_FEATURE_LEN} of a-z, 0-9 and _)"
        ))),
        None => Ok(()),
    }
}

async fn list_endpoints(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
) -> Result<AppJson<EndpointList>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?;
    let endpoints = state.applier.store().list_endpoints(&ns.name).await?;
    let endpoints = endpoints
        .into_iter()
        .map(|e| ListedEndpoint {
            last_push_errors: state
                .querier
                .push_errors(&e)
                .into_iter()
                .map(Into::into)
                .collect(),
            endpoint: e.into(),
        })
        .collect();
    Ok(AppJson(EndpointList { endpoints }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Delete even if open runs are pinned to the version; their pushes then
    /// fail as undelivered until they are moved (or the version returns).
    #[serde(default)]
    force: bool,
}

async fn delete_endpoint(
    State(state): State<AppState>,
    AppPath((namespace, task_queue, version)): AppPath<(String, String, String)>,
    AppQuery(q): AppQuery<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let queue = TaskQueue(task_queue);
    let open_runs = open_runs(&state, &ns, &queue).await?;
    let pinned = open_runs.get(&version).copied().unwrap_or_default();
    if pinned > 0 && !q.force {
        return Err(ApiError::VersionInUse(format!(
            "{pinned} open run(s) are pinned to version {version} of task queue {queue}; \
             let them drain, move them to another version (move-runs), or delete with force"
        )));
    }
    let store = state.applier.store();
    let deleted = store.delete_endpoint(&ns, &queue, &version).await?;
    state.applier.endpoints().forget(&ns, &queue);
    if !deleted {
        return Err(unknown_version(&queue, &version));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// One version of a queue, with the open runs pinned to it. A version that
/// was deleted (with force) while runs were pinned to it is listed while
/// they stay open, as not registered.
#[derive(Serialize)]
struct VersionView {
    version: String,
    registered: bool,
    is_current: bool,
    open_runs: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<Timestamp>,
}

#[derive(Serialize)]
struct VersionList {
    task_queue: String,
    versions: Vec<VersionView>,
}

async fn list_versions(
    State(state): State<AppState>,
    AppPath((namespace, task_queue)): AppPath<(String, String)>,
) -> Result<AppJson<VersionList>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let queue = TaskQueue(task_queue);
    let endpoints = state.applier.store().queue_endpoints(&ns, &queue).await?;
    let mut open_runs = open_runs(&state, &ns, &queue).await?;
    let mut versions: Vec<VersionView> = endpoints
        .into_iter()
        .map(|e| VersionView {
            open_runs: open_runs.remove(&e.version).unwrap_or_default(),
            version: e.version,
            registered: true,
            is_current: e.is_current,
            url: Some(e.url),
            created_at: Some(e.created_at),
        })
        .collect();
    versions.extend(open_runs.into_iter().map(|(version, n)| VersionView {
        version,
        registered: false,
        is_current: false,
        open_runs: n,
        url: None,
        created_at: None,
    }));
    if versions.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no endpoint is registered for task queue {queue}"
        )));
    }
    Ok(AppJson(VersionList {
        task_queue: queue.0,
        versions,
    }))
}

async fn open_runs(
    state: &AppState,
    ns: &Namespace,
    queue: &TaskQueue,
) -> Result<BTreeMap<String, i64>, ApiError> {
    let counts = state
        .applier
        .store()
        .open_runs_by_version(ns, queue)
        .await?;
    Ok(counts.into_iter().collect())
}

/// Makes a registered version current again: new runs pin to it (a
/// rollback). Runs already pinned elsewhere stay where they are.
async fn promote_version(
    State(state): State<AppState>,
    AppPath((namespace, task_queue, version)): AppPath<(String, String, String)>,
) -> Result<AppJson<EndpointView>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let queue = TaskQueue(task_queue);
    let store = state.applier.store();
    let promoted = store.promote_endpoint(&ns, &queue, &version).await?;
    state.applier.endpoints().forget(&ns, &queue);
    if !promoted {
        return Err(unknown_version(&queue, &version));
    }
    let endpoint = state
        .applier
        .endpoints()
        .version(&ns, &queue, &version)
        .await?
        .ok_or_else(|| unknown_version(&queue, &version))?;
    Ok(AppJson(endpoint.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveRunsBody {
    from_version: String,
    /// Only these workflows' open runs; default: every open run of the
    /// queue pinned to `from_version`.
    #[serde(default)]
    workflow_ids: Option<Vec<String>>,
    /// Why, for the audit event in each moved run's history.
    reason: String,
    #[serde(default)]
    identity: Option<String>,
}

impl Body for MoveRunsBody {
    const PAYLOADS: &'static [&'static str] = &[];
}

#[derive(Serialize)]
struct Moved {
    moved: usize,
    run_ids: Vec<RunId>,
}

async fn move_runs(
    State(state): State<AppState>,
    AppPath((namespace, task_queue, to_version)): AppPath<(String, String, String)>,
    AppJson(body): AppJson<MoveRunsBody>,
) -> Result<AppJson<Moved>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let queue = TaskQueue(task_queue);
    if body.reason.trim().is_empty() {
        return Err(ApiError::BadRequest("reason must not be empty".into()));
    }
    if body.from_version == to_version {
        return Err(ApiError::BadRequest(format!(
            "from_version and the version to move to are both {to_version}"
        )));
    }
    // Moving runs to a version that cannot take their pushes would strand
    // them, so the target must be registered (it need not be current).
    let endpoints = state.applier.endpoints();
    endpoints.forget(&ns, &queue);
    if endpoints.version(&ns, &queue, &to_version).await?.is_none() {
        return Err(unknown_version(&queue, &to_version));
    }
    let req = MoveRuns {
        namespace: ns,
        task_queue: queue,
        workflow_ids: body
            .workflow_ids
            .map(|ids| ids.into_iter().map(WorkflowId).collect()),
        change: MoveToVersion {
            from_version: body.from_version,
            to_version,
            reason: body.reason,
            identity: body.identity,
        },
    };
    let run_ids = state.applier.move_runs(req).await?;
    Ok(AppJson(Moved {
        moved: run_ids.len(),
        run_ids,
    }))
}

/// A refused schema names where it is (`schemas.workflows.Order.input`).
fn check_schemas(schemas: &Schemas) -> Result<(), ApiError> {
    schemas.compile().map(drop).map_err(|e| {
        ApiError::BadRequest(format!(
            "schemas.{} is not a valid JSON Schema: {}",
            e.at, e.message
        ))
    })
}

#[derive(Serialize)]
struct SchemasView {
    task_queue: String,
    version: String,
    schemas: Schemas,
}

async fn get_schemas(
    State(state): State<AppState>,
    AppPath((namespace, task_queue, version)): AppPath<(String, String, String)>,
) -> Result<AppJson<SchemasView>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let queue = TaskQueue(task_queue);
    let endpoints = state.applier.endpoints();
    endpoints.forget(&ns, &queue);
    let endpoint = endpoints
        .version(&ns, &queue, &version)
        .await?
        .ok_or_else(|| unknown_version(&queue, &version))?;
    Ok(AppJson(SchemasView {
        task_queue: queue.0,
        version,
        schemas: endpoint.schemas,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutSchemas {
    schemas: Schemas,
}

impl Body for PutSchemas {
    const PAYLOADS: &'static [&'static str] = &[];
}

/// Replaces a registered version's schemas (for handlers that publish
/// none); inputs sent from now on are checked against them.
async fn put_schemas(
    State(state): State<AppState>,
    AppPath((namespace, task_queue, version)): AppPath<(String, String, String)>,
    AppJson(body): AppJson<PutSchemas>,
) -> Result<AppJson<SchemasView>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let queue = TaskQueue(task_queue);
    check_schemas(&body.schemas)?;
    let store = state.applier.store();
    let set = store
        .set_endpoint_schemas(&ns, &queue, &version, &body.schemas)
        .await?;
    state.applier.endpoints().forget(&ns, &queue);
    if !set {
        return Err(unknown_version(&queue, &version));
    }
    Ok(AppJson(SchemasView {
        task_queue: queue.0,
        version,
        schemas: body.schemas,
    }))
}

fn unknown_version(queue: &TaskQueue, version: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no endpoint version {version} for task queue {queue}"
    ))
}
