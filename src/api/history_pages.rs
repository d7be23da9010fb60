//! `POST /api/v1/namespaces/{ns}/workflow-tasks/history`: a handler sent a
//! partial push pages in the events before it (docs/protocol.md §5.10).
//!
//! No API key: the request is signed with the push secret of the endpoint
//! version the run is pinned to, as checkpoints are. The reference names
//! the run and the last event the handler may read; events are immutable,
//! so a page is read without the run's writer: sliced from the encoding
//! this node's run cache keeps when it holds the events, else read from the
//! store and encoded, at most [`PAGE_BYTES`] of encoded events at a time.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use crate::dispatch::payloads::Events;
use crate::dispatch::wire::EncodedEvents;
use crate::engine::HistoryReference;
use crate::ids::{Namespace, RunId};

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
    let endpoint =
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
    let (events, next) = match state
        .applier
        .cached_encoded(run_id)
        .filter(|e| e.events() >= reference.through)
    {
        Some(encoded) => {
            let last = page_end(&encoded, req.first_event_id, reference.through);
            let events = encoded.range(req.first_event_id, last).to_vec();
            (events, last + 1)
        }
        None => read_page(&state, &ns, run_id, req.first_event_id, reference.through).await?,
    };
    let resolver = state.querier.resolver(&ns, run_id, &endpoint);
    let (events, payloads) = match resolver.events(&events).await? {
        Events::AsTheyAre(payloads) => (events, payloads),
        Events::InPlace(events) => (events, None),
    };
    let mut out = Vec::with_capacity(events.len() + 48);
    out.extend_from_slice(b"{\"events\":[");
    out.extend_from_slice(&events);
    out.extend_from_slice(format!("],\"next_first_event_id\":{next}").as_bytes());
    if let Some(payloads) = payloads {
        out.extend_from_slice(b",\"payloads\":");
        serde_json::to_writer(&mut out, &payloads)
            .map_err(|e| ApiError::Internal(format!("encoding payloads: {e}")))?;
    }
    out.push(b'}');
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

/// The last event of the page of `encoded` that starts at `first` and
/// ends by `through`: as many events as fit in [`PAGE_BYTES`], at least
/// one.
fn page_end(encoded: &EncodedEvents, first: i64, through: i64) -> i64 {
    let (mut lo, mut hi) = (first, through);
    while lo < hi {
        let mid = lo + (hi - lo + 1) / 2;
        if encoded.range(first, mid).len() <= PAGE_BYTES {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// A page read from the store and encoded (the run is not in this node's
/// cache): the events' JSON and the id after the last. Reads chunks until
/// they hold more than a page, then cuts as [`page_end`] does.
async fn read_page(
    state: &AppState,
    ns: &Namespace,
    run_id: RunId,
    first: i64,
    through: i64,
) -> Result<(Vec<u8>, i64), ApiError> {
    let store = state.applier.store();
    // Events `first ..= through` as ids `1 ..` of their own encoding.
    let mut read = EncodedEvents::default();
    let mut after = first - 1;
    while after < through && read.bytes().len() <= PAGE_BYTES {
        let limit = READ_CHUNK.min(through - after);
        let chunk = store.read_history(ns, run_id, after, limit).await?;
        let Some(last) = chunk.last() else {
            // The server names only persisted events: a made-up reference.
            return Err(ApiError::BadRequest(format!(
                "workflow run {run_id} has no event {}",
                after + 1
            )));
        };
        after = last.event_id;
        read.append(&chunk)
            .map_err(|e| ApiError::Internal(format!("encoding events: {e}")))?;
    }
    let last = page_end(&read, 1, read.events());
    Ok((read.range(1, last).to_vec(), first + last))
}
