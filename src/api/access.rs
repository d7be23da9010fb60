//! Who may call which route: the one place the API authorises a request.
//!
//! A caller presents `Authorization: Bearer <key>`. The key is either the
//! server's bootstrap key (`--api-key`, an admin of everything) or a key an
//! admin created under `/api/v1/apikeys`: `<id>.<secret>`, with a public id
//! (`bk_` and 16 hex digits, named in logs, lists and metrics) and a secret
//! of 32 random bytes that is stored only as its SHA-256 (see
//! migrations/postgres/0012_api_keys.sql for why a fast hash is right).
//! Without a bootstrap key the server is open and no key is checked.
//!
//! [`ROUTES`] gives every route the role it needs. A key of a namespace
//! may use only routes under `/api/v1/namespaces/{namespace}` of that
//! namespace (plus listing namespaces, which shows it only its own); a
//! route of another namespace answers 404 exactly as a namespace that does
//! not exist would, so a key learns nothing about other tenants. Within its
//! namespace a key whose role is too low gets 403. A route missing from the
//! table is refused to every key but an admin's (tests/api_keys.rs walks
//! every route of the OpenAPI spec, so a forgotten one fails there).
//!
//! Keys are read from the store and cached for at most [`KEY_TTL`], so a
//! revocation made on any node holds on every node within that time.
//! `last_used_at` is written at most once a minute per key and node.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{FromRequestParts as _, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::Namespace;
use crate::store::{ApiKeyRecord, Role};
use crate::time::{Clock, Duration, SystemClock, Timestamp};

use super::error::ApiError;
use super::AppState;

/// How long a node trusts what it read about a key.
const KEY_TTL: Duration = Duration(500);

/// How often `last_used_at` is written per key and node.
const TOUCH_EVERY: Duration = Duration(60_000);

/// The prefix of a key id.
const ID_PREFIX: &str = "bk_";

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// No key: a webhook delivery, authenticated by the sender's
    /// signature over it (`webhooks::receive`), or a handler's checkpoint
    /// or history page request, signed with its endpoint's push secret
    /// (`signed`).
    Signature,
    /// Any valid key (the route shows each key only what it may see).
    AnyKey,
    Role(Role),
}

const READ: Need = Need::Role(Role::Reader);
const WRITE: Need = Need::Role(Role::Writer);
const ADMIN: Need = Need::Role(Role::Admin);

/// Every authenticated route and what it needs, by method and route
/// template (as axum matched it).
#[rustfmt::skip]
const ROUTES: &[(Method, &str, Need)] = &[
    (Method::GET, "/api/v1/namespaces", Need::AnyKey),
    (Method::POST, "/api/v1/namespaces", ADMIN),
    (Method::GET, "/api/v1/namespaces/{namespace}", READ),
    (Method::PATCH, "/api/v1/namespaces/{namespace}", ADMIN),
    (Method::GET, "/api/v1/namespaces/{namespace}/search-attributes", READ),
    (Method::POST, "/api/v1/namespaces/{namespace}/search-attributes", ADMIN),
    (Method::DELETE, "/api/v1/namespaces/{namespace}/search-attributes/{name}", ADMIN),
    (Method::GET, "/api/v1/namespaces/{namespace}/endpoints", READ),
    (Method::POST, "/api/v1/namespaces/{namespace}/endpoints", WRITE),
    (Method::DELETE, "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/{version}", WRITE),
    (Method::GET, "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/versions", READ),
    (Method::POST, "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/versions/{version}/promote", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/versions/{version}/move-runs", WRITE),
    (Method::GET, "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/versions/{version}/schemas", READ),
    (Method::PUT, "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/versions/{version}/schemas", WRITE),
    (Method::GET, "/api/v1/namespaces/{namespace}/workflows", READ),
    (Method::GET, "/api/v1/namespaces/{namespace}/workflow-count", READ),
    (Method::GET, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}", READ),
    (Method::POST, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}", WRITE),
    (Method::DELETE, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}", WRITE),
    (Method::GET, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/history", READ),
    (Method::GET, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/result", READ),
    (Method::POST, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/terminate", WRITE),
    // A query reads the workflow's state; it changes nothing.
    (Method::POST, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/query/{query_name}", READ),
    (Method::POST, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/update/{update_name}", WRITE),
    (Method::GET, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/updates/{update_id}", READ),
    (Method::POST, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/signal/{signal_name}", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/signal-with-start/{signal_name}", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/cancel", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/reset", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/activities/complete", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/activities/fail", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/activities/cancel", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/activities/heartbeat", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/workflow-tasks/checkpoint", Need::Signature),
    (Method::POST, "/api/v1/namespaces/{namespace}/workflow-tasks/history", Need::Signature),
    (Method::POST, "/api/v1/namespaces/{namespace}/payloads", Need::Signature),
    (Method::GET, "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/runs/{run_id}/payloads/{sha256}", READ),
    (Method::GET, "/api/v1/namespaces/{namespace}/schedules", READ),
    (Method::GET, "/api/v1/namespaces/{namespace}/schedules/{schedule_id}", READ),
    (Method::POST, "/api/v1/namespaces/{namespace}/schedules/{schedule_id}", WRITE),
    (Method::DELETE, "/api/v1/namespaces/{namespace}/schedules/{schedule_id}", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/schedules/{schedule_id}/update", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/schedules/{schedule_id}/pause", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/schedules/{schedule_id}/unpause", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/schedules/{schedule_id}/trigger", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/schedules/{schedule_id}/backfill", WRITE),
    (Method::GET, "/api/v1/namespaces/{namespace}/batches", READ),
    (Method::POST, "/api/v1/namespaces/{namespace}/batches", WRITE),
    (Method::GET, "/api/v1/namespaces/{namespace}/batches/{batch_id}", READ),
    (Method::POST, "/api/v1/namespaces/{namespace}/batches/{batch_id}/stop", WRITE),
    (Method::GET, "/api/v1/namespaces/{namespace}/webhooks", READ),
    (Method::POST, "/api/v1/namespaces/{namespace}/webhooks", WRITE),
    (Method::GET, "/api/v1/namespaces/{namespace}/webhooks/{source_id}", READ),
    (Method::DELETE, "/api/v1/namespaces/{namespace}/webhooks/{source_id}", WRITE),
    (Method::POST, "/api/v1/namespaces/{namespace}/webhooks/{source_id}", Need::Signature),
    (Method::GET, "/api/v1/namespaces/{namespace}/webhooks/{source_id}/deliveries", READ),
    (Method::POST, "/api/v1/namespaces/{namespace}/webhooks/{source_id}/deliveries/{delivery}/replay", WRITE),
    (Method::GET, "/api/v1/apikeys", ADMIN),
    (Method::POST, "/api/v1/apikeys", ADMIN),
    (Method::DELETE, "/api/v1/apikeys/{key_id}", ADMIN),
    (Method::GET, "/api/v1/dev/time", ADMIN),
    (Method::POST, "/api/v1/dev/time/skip", ADMIN),
];

/// Who is calling, as the authorisation decided; handlers that list across
/// namespaces read it from the request's extensions.
#[derive(Clone, Debug)]
pub(super) enum Principal {
    /// The bootstrap key, an admin key, or anyone on an open server.
    Admin,
    /// A key of one namespace.
    Scoped {
        key_id: String,
        namespace: Namespace,
        role: Role,
    },
}

impl Principal {
    /// Whether this caller may see namespace `ns` at all.
    pub(super) fn sees(&self, ns: &Namespace) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Scoped { namespace, .. } => namespace == ns,
        }
    }
}

/// Why a request was refused: the `reason` label of
/// `baton_api_denied_total`.
#[derive(Clone, Copy, Debug)]
enum Denial {
    /// No key, or one that is not the bootstrap key nor a stored key.
    Unknown,
    Revoked,
    Expired,
    /// A route of a namespace the key does not hold (answered 404).
    Namespace,
    /// The key's role is below what the route needs (answered 403).
    Role,
}

impl Denial {
    fn label(self) -> &'static str {
        match self {
            Denial::Unknown => "unknown_key",
            Denial::Revoked => "revoked",
            Denial::Expired => "expired",
            Denial::Namespace => "namespace",
            Denial::Role => "role",
        }
    }
}

struct Cached {
    record: ApiKeyRecord,
    fetched_at: Timestamp,
}

/// The server's bootstrap key and this node's short-lived cache of stored
/// keys (only keys that exist are cached, so it holds at most one entry
/// per stored key).
#[derive(Default)]
pub struct Access {
    bootstrap: Option<String>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("bootstrap", &self.bootstrap.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Access {
    /// `bootstrap`: the `--api-key`; `None` leaves the API open.
    pub fn new(bootstrap: Option<String>) -> Access {
        Access {
            bootstrap,
            cache: Mutex::default(),
        }
    }

    /// Whether keys are checked at all.
    pub(super) fn is_enforced(&self) -> bool {
        self.bootstrap.is_some()
    }

    /// Drops what this node read about key `id` (it was just revoked
    /// here: this node refuses it at once, the others within [`KEY_TTL`]).
    pub(super) fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Who presents `token`, or why nobody does.
    async fn identify(
        &self,
        state: &AppState,
        token: &str,
    ) -> Result<Principal, (Denial, Option<String>)> {
        if let Some(bootstrap) = &self.bootstrap {
            // Constant time in the key's content; the length is not secret.
            if bool::from(token.as_bytes().ct_eq(bootstrap.as_bytes())) {
                return Ok(Principal::Admin);
            }
        }
        let Some((id, secret)) = token
            .split_once('.')
            .filter(|(id, _)| id.starts_with(ID_PREFIX))
        else {
            return Err((Denial::Unknown, None));
        };
        let now = SystemClock.now();
        let Some(record) = self.record(state, id, now).await? else {
            return Err((Denial::Unknown, None));
        };
        let presented = hash_secret(secret);
        if !bool::from(presented.as_bytes().ct_eq(record.secret_hash.as_bytes())) {
            return Err((Denial::Unknown, Some(record.id)));
        }
        if record.revoked_at.is_some() {
            return Err((Denial::Revoked, Some(record.id)));
        }
        if record.expires_at.is_some_and(|at| at <= now) {
            return Err((Denial::Expired, Some(record.id)));
        }
        self.touch(state, &record, now).await;
        match (record.role, record.namespace) {
            (Role::Admin, _) => Ok(Principal::Admin),
            (role, Some(namespace)) => Ok(Principal::Scoped {
                key_id: record.id,
                namespace,
                role,
            }),
            // Never written by the API; fail closed rather than widen it.
            (_, None) => Err((Denial::Unknown, Some(record.id))),
        }
    }

    /// The stored key `id`, from the cache while it is fresh.
    async fn record(
        &self,
        state: &AppState,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<ApiKeyRecord>, (Denial, Option<String>)> {
        if let Some(c) = self.lock().get(id) {
            if now.since(c.fetched_at) < KEY_TTL {
                return Ok(Some(c.record.clone()));
            }
        }
        let fetched = match state.applier.store().get_api_key(id).await {
            Ok(r) => r,
            Err(e) => {
                // Fail closed: an unreadable key is no key.
                tracing::warn!(key_id = id, error = %e, "cannot read API key");
                return Err((Denial::Unknown, Some(id.to_owned())));
            }
        };
        let mut cache = self.lock();
        match &fetched {
            Some(record) => {
                cache.insert(
                    id.to_owned(),
                    Cached {
                        record: record.clone(),
                        fetched_at: now,
                    },
                );
            }
            None => {
                cache.remove(id);
            }
        }
        Ok(fetched)
    }

    /// Writes `last_used_at` if this node has not for [`TOUCH_EVERY`].
    async fn touch(&self, state: &AppState, record: &ApiKeyRecord, now: Timestamp) {
        if record
            .last_used_at
            .is_some_and(|at| now.since(at) < TOUCH_EVERY)
        {
            return;
        }
        if let Some(c) = self.lock().get_mut(&record.id) {
            c.record.last_used_at = Some(now);
        }
        if let Err(e) = state.applier.store().touch_api_key(&record.id, now).await {
            tracing::warn!(key_id = %record.id, error = %e, "cannot record API key use");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        // The map holds plain data; a panic elsewhere leaves it usable.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The middleware on every API route: identifies the caller, checks the
/// route's need against the key, and hands the [`Principal`] to the handler.
pub(super) async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let route_need = parts
        .extensions
        .get::<MatchedPath>()
        .and_then(|route| need(&parts.method, route.as_str()));
    if route_need == Some(Need::Signature) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let principal = if state.access.is_enforced() {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .unwrap_or("");
        match state.access.identify(&state, token).await {
            Ok(p) => p,
            Err((denial, key_id)) => {
                return deny(&parts, denial, key_id.as_deref(), ApiError::Unauthorized)
            }
        }
    } else {
        Principal::Admin
    };
    if let Principal::Scoped {
        key_id,
        namespace,
        role,
    } = &principal
    {
        let target = RawPathParams::from_request_parts(&mut parts, &state)
            .await
            .ok()
            .and_then(|params| {
                params
                    .iter()
                    .find(|(name, _)| *name == "namespace")
                    .map(|(_, value)| value.to_owned())
            });
        let refusal = match (&target, route_need) {
            (Some(ns), _) if *ns != namespace.0 => Some((
                Denial::Namespace,
                ApiError::NotFound(format!("namespace {ns} not found")),
            )),
            (_, Some(Need::AnyKey)) => None,
            (Some(_), Some(Need::Role(needed))) if *role >= needed => None,
            _ => Some((
                Denial::Role,
                ApiError::Forbidden(format!(
                    "API key {key_id} ({}) may not {} {}",
                    role.as_str(),
                    parts.method,
                    parts.uri.path()
                )),
            )),
        };
        if let Some((denial, error)) = refusal {
            return deny(&parts, denial, Some(key_id), error);
        }
    }
    parts.extensions.insert(principal);
    next.run(Request::from_parts(parts, body)).await
}

/// What `method` on route template `route` needs; `None` if the table
/// does not know it.
fn need(method: &Method, route: &str) -> Option<Need> {
    ROUTES
        .iter()
        .find(|(m, r, _)| m == method && *r == route)
        .map(|(_, _, n)| *n)
}

/// Counts and logs a refusal (with the key's id, never the key) and
/// answers it.
fn deny(parts: &Parts, denial: Denial, key_id: Option<&str>, error: ApiError) -> Response {
    crate::telemetry::api_denied(denial.label());
    tracing::info!(
        key_id = key_id.unwrap_or("-"),
        reason = denial.label(),
        method = %parts.method,
        path = parts.uri.path(),
        "API request denied"
    );
    error.into_response()
}

/// The token of an `Authorization: Bearer <token>` header. RFC 9110
/// §11.1: the scheme is case-insensitive and one or more spaces separate it
/// from the credentials.
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// Lowercase hex SHA-256 of a key's secret.
fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new key: its stored record (with `secret_hash`) and the full key, to
/// be shown once.
pub(super) fn generate(
    namespace: Option<Namespace>,
    role: Role,
    description: String,
    now: Timestamp,
    expires_at: Option<Timestamp>,
) -> (ApiKeyRecord, String) {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut id);
    rand::thread_rng().fill_bytes(&mut secret);
    let id = format!("{ID_PREFIX}{}", hex(&id));
    let secret = hex(&secret);
    let key = format!("{id}.{secret}");
    let record = ApiKeyRecord {
        id,
        secret_hash: hash_secret(&secret),
        namespace,
        role,
        description,
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    (record, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("bearer  k"), Some("k"));
        assert_eq!(bearer_token("Basic k"), None);
    }

    #[test]
    fn generated_keys_verify_by_their_hash_only() {
        let (record, key) = generate(None, Role::Admin, String::new(), Timestamp(0), None);
        let (id, secret) = key.split_once('.').expect("id.secret");
        assert_eq!(id, record.id);
        assert_eq!(id.len(), ID_PREFIX.len() + 16);
        assert_eq!(secret.len(), 64);
        assert_eq!(record.secret_hash, hash_secret(secret));
        assert!(!record.secret_hash.contains(secret));
    }

    #[test]
    fn routes_are_looked_up_by_method_and_template() {
        assert_eq!(need(&Method::GET, "/api/v1/namespaces"), Some(Need::AnyKey));
        assert_eq!(need(&Method::POST, "/api/v1/namespaces"), Some(ADMIN));
        assert_eq!(need(&Method::PUT, "/api/v1/namespaces"), None);
    }
}
