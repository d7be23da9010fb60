//! `/api/v1/apikeys` (admin only): create a namespace-scoped key with a
//! role and an optional expiry, list keys, revoke one. The full key is in
//! the create answer and nowhere else; the store keeps its secret's hash
//! (`access` checks keys and explains the format). A server without a
//! bootstrap key checks no key, so it refuses to create any (409) rather
//! than let an operator believe a namespace is protected.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::ids::Namespace;
use crate::store::{ApiKeyRecord, Role};
use crate::time::{Clock, Duration, SystemClock, Timestamp};

use super::access;
use super::error::ApiError;
use super::extract::{null_as_default, AppJson, AppPath, Body};
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/apikeys", get(list_api_keys).post(create_api_key))
        .route("/api/v1/apikeys/{key_id}", delete(revoke_api_key))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApiKey {
    /// `admin`, `writer` or `reader`.
    role: String,
    /// Required for writer and reader keys; admin keys hold every namespace.
    #[serde(default)]
    namespace: Option<String>,
    /// How long the key is valid (`"90d"`); absent: until revoked.
    #[serde(default)]
    expires_in: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    description: String,
}

impl Body for CreateApiKey {
    const PAYLOADS: &'static [&'static str] = &[];
}

/// A key as shown by the API: never its secret nor the secret's hash.
#[derive(Serialize)]
struct ApiKey {
    id: String,
    namespace: Option<Namespace>,
    role: Role,
    description: String,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    last_used_at: Option<Timestamp>,
}

impl From<ApiKeyRecord> for ApiKey {
    fn from(r: ApiKeyRecord) -> ApiKey {
        ApiKey {
            id: r.id,
            namespace: r.namespace,
            role: r.role,
            description: r.description,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
        }
    }
}

#[derive(Serialize)]
struct CreatedApiKey {
    #[serde(flatten)]
    api_key: ApiKey,
    /// The bearer token, `<id>.<secret>`: shown this once.
    key: String,
}

#[derive(Serialize)]
struct ApiKeyList {
    api_keys: Vec<ApiKey>,
}

async fn create_api_key(
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateApiKey>,
) -> Result<(StatusCode, AppJson<CreatedApiKey>), ApiError> {
    if !state.access.is_enforced() {
        return Err(ApiError::Conflict(
            "this server runs without --api-key and checks no key; start it with --api-key to use API keys".into(),
        ));
    }
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "role: unknown role {:?}; use admin, writer or reader",
            body.role
        ))
    })?;
    let namespace = match (role, body.namespace) {
        (Role::Admin, None) => None,
        (Role::Admin, Some(_)) => {
            return Err(ApiError::BadRequest(
                "namespace: admin keys hold every namespace; omit namespace".into(),
            ))
        }
        (_, None) => {
            return Err(ApiError::BadRequest(format!(
                "namespace: a {} key needs the namespace it may use",
                role.as_str()
            )))
        }
        (_, Some(name)) => {
            let ns = super::parse_namespace(&name)
                .map_err(|e| ApiError::BadRequest(format!("namespace: {e}")))?;
            if state.applier.store().get_namespace(&ns).await?.is_none() {
                return Err(ApiError::BadRequest(format!(
                    "namespace: namespace {name} does not exist"
                )));
            }
            Some(ns)
        }
    };
    let now = SystemClock.now();
    let expires_at = match body.expires_in.as_deref() {
        None => None,
        Some(text) => {
            let d: Duration = text
                .parse()
                .map_err(|e| ApiError::BadRequest(format!("expires_in: {e}")))?;
            if d.millis() <= 0 {
                return Err(ApiError::BadRequest(format!(
                    "expires_in: must be positive, not {text:?}"
                )));
            }
            Some(now.saturating_add(d))
        }
    };
    let (record, key) = access::generate(namespace, role, body.description, now, expires_at);
    state.applier.store().create_api_key(&record).await?;
    tracing::info!(key_id = %record.id, role = role.as_str(), "API key created");
    Ok((
        StatusCode::CREATED,
        AppJson(CreatedApiKey {
            api_key: record.into(),
            key,
        }),
    ))
}

async fn list_api_keys(State(state): State<AppState>) -> Result<AppJson<ApiKeyList>, ApiError> {
    let keys = state.applier.store().list_api_keys().await?;
    Ok(AppJson(ApiKeyList {
        api_keys: keys.into_iter().map(ApiKey::from).collect(),
    }))
}

async fn revoke_api_key(
    State(state): State<AppState>,
    AppPath(key_id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    let now = SystemClock.now();
    if !state.applier.store().revoke_api_key(&key_id, now).await? {
        return Err(ApiError::NotFound(format!("API key {key_id} not found")));
    }
    state.access.forget(&key_id);
    tracing::info!(%key_id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
