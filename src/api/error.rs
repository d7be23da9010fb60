//! `ApiError`: every failure a handler can return, mapped once to an RFC 9457
//! `application/problem+json` body with a stable `code` (documented in
//! openapi/openapi.yaml). 5xx bodies are generic; the
//! cause is logged here, once.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::apply;
use crate::engine::{Failure, Rejection};
use crate::schema::{self, Violation};
use crate::store;
use crate::visibility;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// A list filter that does not parse or type-check.
    #[error("invalid query: {0}")]
    InvalidQuery(#[from] visibility::Error),
    #[error("missing or invalid API key")]
    Unauthorized,
    /// A valid key whose role may not use the route.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Conflict(String),
    /// An endpoint version still has open runs pinned to it.
    #[error("{0}")]
    VersionInUse(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UriTooLong(String),
    /// The workflow's query handler refused or failed.
    #[error("{0}")]
    QueryFailed(String),
    /// The workflow's update validator refused the update; the problem
    /// carries its failure. Nothing was written.
    #[error("update rejected: {}", .0.message)]
    UpdateRejected(Failure),
    /// A payload its schema refuses; the problem lists the violations.
    /// Nothing was written.
    #[error(transparent)]
    InvalidInput(#[from] schema::InvalidInput),
    #[error("{0}")]
    Unavailable(String),
    /// A webhook delivery whose signature does not verify.
    #[error("{0}")]
    SignatureInvalid(String),
    /// A verified webhook delivery whose action failed; the sender should
    /// retry.
    #[error("{0}")]
    WebhookActionFailed(String),
    #[error("internal error")]
    Internal(String),
}

/// The problem document.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
    /// The application failure behind an `update_rejected` problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<&'a Failure>,
    /// Where an `invalid_query` problem's query goes wrong: the 1-based
    /// column and the token there (empty at the end of the query).
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    /// Every way an `invalid_input` problem's payload breaks its schema,
    /// each with its JSON pointer.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [Violation]>,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                "Invalid argument",
            ),
            ApiError::InvalidQuery(_) => {
                (StatusCode::BAD_REQUEST, "invalid_query", "Invalid query")
            }
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            ApiError::AlreadyExists(_) => {
                (StatusCode::CONFLICT, "already_exists", "Already exists")
            }
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::VersionInUse(_) => (StatusCode::CONFLICT, "version_in_use", "Version in use"),
            ApiError::QueryFailed(_) => (StatusCode::BAD_REQUEST, "query_failed", "Query failed"),
            ApiError::UpdateRejected(_) => (
                StatusCode::BAD_REQUEST,
                "update_rejected",
                "Update rejected",
            ),
            ApiError::InvalidInput(_) => {
                (StatusCode::BAD_REQUEST, "invalid_input", "Invalid input")
            }
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            ApiError::UriTooLong(_) => (StatusCode::URI_TOO_LONG, "uri_too_long", "URI too long"),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::SignatureInvalid(_) => (
                StatusCode::UNAUTHORIZED,
                "signature_invalid",
                "Signature invalid",
            ),
            ApiError::WebhookActionFailed(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "webhook_action_failed",
                "Webhook action failed",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }
}

impl ApiError {
    /// The status and the `application/problem+json` body of this error:
    /// what `into_response` sends, and what the connection guard in
    /// `server` writes itself for requests hyper would refuse bodiless.
    pub fn problem(&self) -> (StatusCode, Vec<u8>) {
        let (status, code, title) = self.parts();
        let detail = match self {
            ApiError::Internal(_) => {
                "the server failed to handle the request; see its log".to_owned()
            }
            other => other.to_string(),
        };
        let body = Problem {
            kind: format!("https://baton.dev/errors/{code}"),
            title,
            status: status.as_u16(),
            detail,
            code,
            failure: match self {
                ApiError::UpdateRejected(f) => Some(f),
                _ => None,
            },
            column: match &self {
                ApiError::InvalidQuery(e) => Some(e.column),
                _ => None,
            },
            token: match &self {
                ApiError::InvalidQuery(e) => Some(e.token.as_str()),
                _ => None,
            },
            errors: match &self {
                ApiError::InvalidInput(e) => Some(e.violations.as_slice()),
                _ => None,
            },
        };
        (status, serde_json::to_vec(&body).unwrap_or_default())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let (status, json) = self.problem();
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            json,
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // The conditions behind a 503 (a database outage or failover, a
            // contended run, an unreachable handler) usually pass in seconds.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> ApiError {
        match e {
            store::Error::AlreadyExists(what) => {
                ApiError::AlreadyExists(format!("{what} already exists"))
            }
            store::Error::Conflict => ApiError::Conflict(e.to_string()),
            e if e.is_transient() => {
                ApiError::Unavailable(format!("the database is unavailable: {e}"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> ApiError {
        match r {
            Rejection::RunClosed(_) | Rejection::Stale(_) => ApiError::Conflict(r.to_string()),
            Rejection::InvalidArgument(_) => ApiError::BadRequest(r.to_string()),
            Rejection::PayloadTooLarge { .. } => ApiError::PayloadTooLarge(r.to_string()),
        }
    }
}

impl From<apply::Error> for ApiError {
    fn from(e: apply::Error) -> ApiError {
        match e {
            apply::Error::Rejected(r) => r.into(),
            apply::Error::RunNotFound(_) | apply::Error::NamespaceNotFound(_) => {
                ApiError::NotFound(e.to_string())
            }
            apply::Error::AlreadyStarted { .. } => ApiError::AlreadyExists(e.to_string()),
            apply::Error::Contended | apply::Error::Unavailable(_) => {
                ApiError::Unavailable(e.to_string())
            }
            apply::Error::Failed(cause) => ApiError::Internal(cause),
            apply::Error::Store(s) => s.into(),
        }
    }
}

impl From<crate::dispatch::QueryError> for ApiError {
    fn from(e: crate::dispatch::QueryError) -> ApiError {
        use crate::dispatch::QueryError;
        match e {
            QueryError::Failed(_) => ApiError::QueryFailed(e.to_string()),
            QueryError::NoEndpoint(_) | QueryError::Unreachable(..) => {
                ApiError::Unavailable(e.to_string())
            }
            QueryError::Store(s) => s.into(),
        }
    }
}

impl From<apply::InputError> for ApiError {
    fn from(e: apply::InputError) -> ApiError {
        match e {
            apply::InputError::Invalid(i) => i.into(),
            apply::InputError::Store(s) => s.into(),
        }
    }
}
