//! Requests a handler signs with its endpoint's push secret instead of an
//! API key (checkpoints, history pages: docs/protocol.md §5.9, §5.10).
//! Standard Webhooks, as pushes are signed, verified against the secrets
//! of the endpoint version the named run is pinned to.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};

use crate::ids::{Namespace, RunId};
use crate::signing::{self, Secret};
use crate::store::Endpoint;
use crate::time::{Clock as _, SystemClock};

use super::error::ApiError;
use super::AppState;

/// The raw body, or the problem for one that could not be read.
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("request body is too large".into())
        }
        _ => ApiError::BadRequest(e.body_text()),
    })
}

/// The signature headers; `what` (`"a checkpoint"`) names the request
/// when they are missing.
pub fn headers<'a>(headers: &'a HeaderMap, what: &str) -> Result<signing::Headers<'a>, ApiError> {
    let lookup = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = signing::Headers::from_lookup(lookup);
    if signed.id.is_none() || signed.timestamp.is_none() || signed.signature.is_none() {
        return Err(ApiError::SignatureInvalid(format!(
            "{what} must be signed with the endpoint's push secret"
        )));
    }
    Ok(signed)
}

/// Checks the signature against the secrets of the version the run is
/// pinned to, and returns that version; `what` names the request in the
/// log line of a refusal.
pub async fn verify(
    state: &AppState,
    ns: &Namespace,
    run_id: RunId,
    signed: signing::Headers<'_>,
    body: &[u8],
    what: &str,
) -> Result<Endpoint, ApiError> {
    let (queue, pinned) = state
        .applier
        .pin_of(ns, run_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("workflow run {run_id} not found")))?;
    let endpoint = match pinned {
        Some(v) => state.applier.endpoints().version(ns, &queue, &v).await?,
        None => None,
    };
    let secrets: Vec<Secret> = endpoint
        .iter()
        .flat_map(|e| e.secrets.iter().filter_map(|s| s.parse().ok()))
        .collect();
    // Handlers sign with the wall clock, as pushes are signed.
    let now_secs = SystemClock.now().millis().div_euclid(1000);
    signing::verify(&secrets, signed, body, now_secs).map_err(|e| {
        tracing::info!(namespace = %ns, %run_id, error = %e, "{what} refused");
        ApiError::SignatureInvalid(e.to_string())
    })?;
    // Verified against a secret: so there was a version.
    endpoint.ok_or_else(|| ApiError::SignatureInvalid("the run has no endpoint version".into()))
}
