//! Payloads stored by reference (docs/protocol.md §9.1), as the API hands
//! them out:
//!
//! - `POST /api/v1/namespaces/{ns}/payloads`: a handler fetches the
//!   payloads its push referenced. No API key: signed with the push secret
//!   of the run's endpoint version, as history pages are.
//! - `GET …/workflows/{id}/runs/{run_id}/payloads/{sha256}`: one payload
//!   of a run, for clients (reader).
//!
//! and [`in_place`], which answers that carry one payload (a result, an
//! update's outcome) use to put the payload back.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::ids::{Namespace, RunId};
use crate::payload::{is_digest, Reference};

use super::error::ApiError;
use super::extract::{parse_body, AppJson, AppPath, Body};
use super::{signed, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/namespaces/{namespace}/payloads", post(fetch))
        .route(
            "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/runs/{run_id}/payloads/{sha256}",
            get(get_payload),
        )
}

/// Most digests one request names.
const MAX_DIGESTS: usize = 100;
/// Most payload bytes one answer carries (a single larger one goes alone).
const ANSWER_BYTES: usize = 8 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    run_id: String,
    sha256: Vec<String>,
}

impl Body for Request {
    const PAYLOADS: &'static [&'static str] = &[];
}

async fn fetch(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = signed::body(body)?;
    let signed = signed::headers(&headers, "a payload request")?;
    // Reading the body before its signature is checked touches nothing:
    // the run it names has the secrets that verify it.
    let AppJson(req) = parse_body::<Request>(&body)?;
    let run_id = parse_run_id(&req.run_id)?;
    if req.sha256.is_empty() || req.sha256.len() > MAX_DIGESTS {
        return Err(ApiError::BadRequest(format!(
            "sha256 must name 1 to {MAX_DIGESTS} payloads"
        )));
    }
    if let Some(bad) = req.sha256.iter().find(|d| !is_digest(d)) {
        return Err(ApiError::BadRequest(format!(
            "`{bad}` is not a lowercase hex SHA-256"
        )));
    }
    let ns = Namespace(namespace);
    signed::verify(&state, &ns, run_id, signed, &body, "payload request").await?;
    let found = state
        .applier
        .store()
        .read_payloads(&ns, run_id, &req.sha256)
        .await?;
    // In the request's order, as many as fit (at least one).
    let mut answer: Vec<(&str, &str)> = Vec::new();
    let mut size = 0;
    for digest in &req.sha256 {
        let Some((_, data)) = found.iter().find(|(d, _)| d == digest) else {
            return Err(ApiError::NotFound(format!(
                "workflow run {run_id} references no payload {digest}"
            )));
        };
        if answer.iter().any(|(d, _)| d == digest) {
            continue;
        }
        if !answer.is_empty() && size + data.len() > ANSWER_BYTES {
            break;
        }
        size += data.len();
        answer.push((digest, data));
    }
    let mut out = Vec::with_capacity(size + 80 * answer.len() + 16);
    out.extend_from_slice(b"{\"payloads\":{");
    for (i, (digest, data)) in answer.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"{digest}\":").as_bytes());
        out.extend_from_slice(data.as_bytes());
    }
    out.extend_from_slice(b"}}");
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

#[derive(Serialize)]
struct PayloadView {
    sha256: String,
    size_bytes: usize,
    value: Box<RawValue>,
}

async fn get_payload(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id, run_id, sha256)): AppPath<(String, String, String, String)>,
) -> Result<AppJson<PayloadView>, ApiError> {
    let run_id = parse_run_id(&run_id)?;
    if !is_digest(&sha256) {
        return Err(ApiError::BadRequest(format!(
            "`{sha256}` is not a lowercase hex SHA-256"
        )));
    }
    let ns = Namespace(namespace);
    let record = state
        .applier
        .store()
        .load_run(&ns, run_id)
        .await?
        .filter(|r| r.state.workflow_id.0 == workflow_id)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "workflow {workflow_id} has no run {run_id} in namespace {ns}"
            ))
        })?;
    let found = state
        .applier
        .store()
        .read_payloads(&ns, record.state.run_id, std::slice::from_ref(&sha256))
        .await?;
    let Some((_, data)) = found.into_iter().next() else {
        return Err(ApiError::NotFound(format!(
            "workflow run {run_id} references no payload {sha256}"
        )));
    };
    let size_bytes = data.len();
    let value = RawValue::from_string(data)
        .map_err(|e| ApiError::Internal(format!("stored payload {sha256}: {e}")))?;
    Ok(AppJson(PayloadView {
        sha256,
        size_bytes,
        value,
    }))
}

/// Puts back the payload `value` references, if it is a reference of the
/// run's (an answer that carries one payload).
pub async fn in_place(
    state: &AppState,
    ns: &Namespace,
    run_id: RunId,
    value: &mut Value,
) -> Result<(), ApiError> {
    let Some(reference) = Reference::of(value) else {
        return Ok(());
    };
    let found = state
        .applier
        .store()
        .read_payloads(ns, run_id, std::slice::from_ref(&reference.sha256))
        .await?;
    if let Some((_, data)) = found.into_iter().next() {
        *value = serde_json::from_str(&data)
            .map_err(|e| ApiError::Internal(format!("stored payload {}: {e}", reference.sha256)))?;
    }
    Ok(())
}

fn parse_run_id(text: &str) -> Result<RunId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::BadRequest(format!("`{text}` is not a run id")))
}
