//! Batch jobs over REST (`/api/v1/namespaces/{ns}/batches…`, Temporal's
//! StartBatchOperation, DescribeBatchOperation, ListBatchOperations and
//! StopBatchOperation): start (idempotent by job id or request id),
//! list (newest first), describe with progress, stop. A start is checked
//! whole first (`batch::Request::check`: a bad field is a 400 naming it,
//! and nothing is stored), its total counted, then the job is stored due
//! at once and this node's batch loop woken; any node may run it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::extract::{AppJson, AppPath, AppQuery, Body};
use crate::api::namespaces::existing_namespace;
use crate::api::AppState;
use crate::batch::{self, Batch, Operation, RunFailure};
use crate::store::{self, BatchRecord};
use crate::time::Timestamp;
use crate::visibility::CountQuery;

const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1000;
/// Longest job id, in characters.
const MAX_ID_CHARS: usize = 256;

pub fn router() -> Router<AppState> {
    let base = "/api/v1/namespaces/{namespace}/batches";
    Router::new()
        .route(base, get(list_batches).post(start_batch))
        .route(&format!("{base}/{{batch_id}}"), get(describe_batch))
        .route(&format!("{base}/{{batch_id}}/stop"), post(stop_batch))
}

#[derive(Deserialize)]
struct StartBatch {
    /// Defaults to the request id, else a new UUID.
    batch_id: Option<String>,
    request_id: Option<String>,
    query: Option<String>,
    operation: Option<String>,
    reason: Option<String>,
    identity: Option<String>,
    rps: Option<f64>,
    signal_name: Option<String>,
    input: Option<Value>,
    reset_type: Option<String>,
}

impl Body for StartBatch {
    const PAYLOADS: &'static [&'static str] = &["/input"];
}

#[derive(Deserialize)]
struct ListParams {
    page_size: Option<i64>,
    next_page_token: Option<String>,
}

/// A job with its progress.
#[derive(Serialize)]
struct BatchView {
    batch_id: String,
    namespace: String,
    query: String,
    operation: &'static str,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
    rps: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reset_type: Option<&'static str>,
    state: &'static str,
    total: i64,
    done: i64,
    failed: i64,
    failures: Vec<RunFailure>,
    stop_requested: bool,
    created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    closed_at: Option<Timestamp>,
}

impl From<BatchRecord> for BatchView {
    fn from(record: BatchRecord) -> BatchView {
        let b = record.batch;
        let (signal_name, input, reset_type) = match &b.operation {
            Operation::Signal { name, input } => (Some(name.clone()), Some(input.clone()), None),
            Operation::Reset { to_last } => (
                None,
                None,
                Some(match to_last {
                    true => "LAST_WORKFLOW_TASK",
                    false => "FIRST_WORKFLOW_TASK",
                }),
            ),
            _ => (None, None, None),
        };
        BatchView {
            operation: b.operation.name(),
            batch_id: b.batch_id,
            namespace: b.namespace.0,
            query: b.query,
            reason: b.reason,
            identity: b.identity,
            rps: b.rps,
            signal_name,
            input,
            reset_type,
            state: b.state.as_str(),
            total: b.total,
            done: b.done,
            failed: b.failed,
            failures: b.failures,
            stop_requested: record.stop_requested,
            created_at: b.created_at,
            closed_at: b.closed_at,
        }
    }
}

#[derive(Serialize)]
struct BatchList {
    batches: Vec<BatchView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

impl From<batch::Error> for ApiError {
    fn from(e: batch::Error) -> ApiError {
        match e {
            batch::Error::Query(q) => ApiError::InvalidQuery(q),
            field => ApiError::BadRequest(field.to_string()),
        }
    }
}

async fn start_batch(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppJson(body): AppJson<StartBatch>,
) -> Result<(StatusCode, AppJson<BatchView>), ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let registry = state.applier.search_attributes().registry(&ns).await?;
    let checked = batch::Request {
        query: body.query,
        operation: body.operation,
        reason: body.reason,
        identity: body.identity,
        rps: body.rps,
        signal_name: body.signal_name,
        input: body.input,
        reset_type: body.reset_type,
    }
    .check(state.batch_max_rps, &registry)?;
    let batch_id = match body.batch_id.or_else(|| body.request_id.clone()) {
        Some(id) if id.is_empty() || id.chars().count() > MAX_ID_CHARS => {
            return Err(ApiError::BadRequest(format!(
                "batch_id: give 1 to {MAX_ID_CHARS} characters"
            )))
        }
        Some(id) => id,
        None => uuid::Uuid::now_v7().to_string(),
    };
    let store = state.applier.store();
    // A retry of a start that went through gets its job, not a second one.
    if let Some(existing) = store.get_batch(&ns, &batch_id).await? {
        return replay(existing, body.request_id.as_deref());
    }
    let now = state.applier.clock().now();
    let mut job = Batch::new(ns.clone(), batch_id, checked, 0, now);
    let count = CountQuery {
        filter: job.page_query(&registry)?.filter,
        group_by: None,
    };
    job.total = store
        .count_runs(&ns, &count)
        .await?
        .first()
        .map_or(0, |(_, n)| *n);
    let record = BatchRecord {
        batch: job,
        version: 1,
        due_at: Some(now),
        stop_requested: false,
        request_id: body.request_id.clone(),
    };
    match store.create_batch(&record).await {
        Ok(()) => {}
        Err(store::Error::AlreadyExists(_)) => {
            // A concurrent start with the same id won.
            let existing = store
                .get_batch(&ns, &record.batch.batch_id)
                .await?
                .ok_or_else(|| ApiError::Conflict("the batch job changed concurrently".into()))?;
            return replay(existing, body.request_id.as_deref());
        }
        Err(e) => return Err(e.into()),
    }
    state.batches.wake();
    Ok((StatusCode::CREATED, AppJson(record.into())))
}

/// The answer to a start naming a job that exists: the job itself when
/// the request ids match (a retry), else a conflict.
fn replay(
    existing: BatchRecord,
    request_id: Option<&str>,
) -> Result<(StatusCode, AppJson<BatchView>), ApiError> {
    match request_id {
        Some(r) if existing.request_id.as_deref() == Some(r) => {
            Ok((StatusCode::OK, AppJson(existing.into())))
        }
        _ => Err(ApiError::AlreadyExists(format!(
            "batch `{}` already exists",
            existing.batch.batch_id
        ))),
    }
}

async fn describe_batch(
    State(state): State<AppState>,
    AppPath((namespace, id)): AppPath<(String, String)>,
) -> Result<AppJson<BatchView>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let record = state.applier.store().get_batch(&ns, &id).await?;
    record
        .map(|r| AppJson(r.into()))
        .ok_or_else(|| ApiError::NotFound(format!("batch {id} not found")))
}

async fn list_batches(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppQuery(q): AppQuery<ListParams>,
) -> Result<AppJson<BatchList>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let limit = q.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "page_size {limit} is not within 1..={MAX_PAGE_SIZE}"
        )));
    }
    let after = q
        .next_page_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(decode_token)
        .transpose()?;
    let records = state
        .applier
        .store()
        .list_batches(&ns, after.as_ref().map(|(t, id)| (*t, id.as_str())), limit)
        .await?;
    let next_page_token = records
        .last()
        .filter(|_| records.len() as i64 >= limit)
        .map(|r| encode_token(r.batch.created_at, &r.batch.batch_id));
    Ok(AppJson(BatchList {
        batches: records.into_iter().map(Into::into).collect(),
        next_page_token,
    }))
}

/// Asks the job to stop; the node running it ends it Stopped before its
/// next run. A closed job stays as it is.
async fn stop_batch(
    State(state): State<AppState>,
    AppPath((namespace, id)): AppPath<(String, String)>,
) -> Result<(StatusCode, AppJson<BatchView>), ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let store = state.applier.store();
    if !store.request_batch_stop(&ns, &id).await? {
        return Err(ApiError::NotFound(format!("batch {id} not found")));
    }
    let record = store
        .get_batch(&ns, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("batch {id} not found")))?;
    Ok((StatusCode::ACCEPTED, AppJson(record.into())))
}

/// A page token: the last job's creation time and id, as JSON in
/// base64url.
fn encode_token(created_at: Timestamp, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&(created_at.millis(), id)).unwrap_or_default())
}

fn decode_token(token: &str) -> Result<(Timestamp, String), ApiError> {
    let bad = || ApiError::BadRequest("invalid next_page_token".into());
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let (millis, id): (i64, String) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((Timestamp(millis), id))
}
