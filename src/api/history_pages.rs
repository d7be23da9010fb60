//! `POST /api/v1/namespaces/{ns}/workflow-tasks/history`: a handler sent a
//! partial push pages in the events before it (docs/protocol.md §5.10).
//!
//! No API key: the request is signed with the push secret of the endpoint
//! version the run is pinned to, as checkpoints are. The reference names
//! the run and the last event the handler may read; events are immutable,
//! so a page is read without the run's writer (from this node's run cache
//! when it holds them, else from the store), at most [`PAGE_BYTES`] of
//! encoded events at a time.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use crate::dispatch::wire;
use crate::engine::HistoryReference;
use crate::ids::Namespace;

use super::error::ApiError;
use super::extract::{parse_body, AppJson, AppPath, Body};
use super::{signed, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/namespaces/{namespace}/workflow-tasks/history",
        post(history_page),
    )
}

/// Most encoded event bytes a page carries (a single larger event goes
/// alone).
const PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Events read from the store at a time while filling a page.
const READ_CHUNK: i64 = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    history_reference: String,
    first_event_id: i64,
}

impl Body for Request {
    const PAYLOADS: &'static [&'static str] = &[];
}

async fn history_page(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = signed::body(body)?;
    let signed = signed::headers(&headers, "a history page request")?;
    // Reading the body before its signature is checked touches nothing:
    // the reference names the run whose endpoint's secrets verify it.
    let AppJson(req) = parse_body::<Request>(&body)?;
    let reference: HistoryReference = req
        .history_reference
        .parse()
        .map_err(|_| ApiError::BadRequest("malformed history_reference".into()))?;
    let ns = Namespace(namespace);
    if reference.namespace != ns {
        return Err(ApiError::BadRequest(
            "history_reference belongs to another namespace".into(),
        ));
    }
    let run_id = reference.run_id;
    signed::verify(&state, &ns, run_id, signed, &body, "history page request").await?;
    if state.applier.clock().now() > reference.expires_at {
        return Err(ApiError::Conflict(format!(
            "the history reference expired at {}",
            reference.expires_at
        )));
    }
    if !(1..=reference.through).contains(&req.first_event_id) {
        return Err(ApiError::BadRequest(format!(
            "first_event_id must be between 1 and {} for this reference",
            reference.through
        )));
    }
    let store = state.applier.store();
    let cached = state
        .applier
        .cached_events(run_id)
        .filter(|h| h.len() as i64 >= reference.through);
    let mut events = Vec::new();
    let mut after = req.first_event_id - 1;
    'page: while after < reference.through {
        let chunk = match &cached {
            Some(h) => Cow::Borrowed(&h[after as usize..reference.through as usize]),
            None => {
                let limit = READ_CHUNK.min(reference.through - after);
                Cow::Owned(store.read_history(&ns, run_id, after, limit).await?)
            }
        };
        if chunk.is_empty() {
            // The server names only persisted events: a made-up reference.
            return Err(ApiError::BadRequest(format!(
                "workflow run {run_id} has no event {}",
                after + 1
            )));
        }
        for event in chunk.iter() {
            let mut encoded = Vec::new();
            wire::encode_events(std::slice::from_ref(event), &mut encoded)
                .map_err(|e| ApiError::Internal(format!("encoding events: {e}")))?;
            if !events.is_empty() && events.len() + encoded.len() + 1 > PAGE_BYTES {
                break 'page;
            }
            if !events.is_empty() {
                events.push(b',');
            }
            events.extend_from_slice(&encoded);
            after = event.event_id;
        }
    }
    let mut out = Vec::with_capacity(events.len() + 48);
    out.extend_from_slice(b"{\"events\":[");
    out.extend_from_slice(&events);
    out.extend_from_slice(format!("],\"next_first_event_id\":{}}}", after + 1).as_bytes());
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}
