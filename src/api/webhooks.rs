//! Inbound webhook sources over REST (`/api/v1/namespaces/{ns}/webhooks…`):
//! create, list, describe and delete a source, read its delivery log and
//! replay a delivery (all behind the API key), and the public receiving
//! route, `POST …/webhooks/{source_id}`, where the sender's signature is the
//! authentication (`authorize` lets exactly that route through).
//!
//! A delivery is verified over its raw bytes (`webhook::verify`); a
//! refused one is logged without its body and answered 401 (400 when a
//! header is missing or malformed). A verified one is routed
//! (`webhook::first_match`): no rule means it is logged as ignored and
//! answered 200; a matched rule's action is applied through the same
//! `apply` calls as the workflow routes, with a request id (signals,
//! starts) or update id derived from the provider's delivery id, so a
//! redelivery or a replay never acts twice. An action that fails is
//! logged and answered 503, so the sender retries.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::extract::{AppJson, AppPath, AppQuery, Body};
use crate::api::namespaces::existing_namespace;
use crate::api::workflows::find_run;
use crate::api::workflows::messages::{admit_update, validate};
use crate::api::workflows::start::{check_workflow_id, validate_new_signal, validate_start};
use crate::api::AppState;
use crate::apply::{StartRequest, Started};
use crate::engine::{
    Command, IdConflictPolicy, IdReusePolicy, RunState, SearchAttributes, Signal, StartRun, Update,
};
use crate::ids::{RunId, TaskQueue, WorkflowId};
use crate::schema::Target;
use crate::store::{Delivery, DeliveryOutcome, WebhookRecord};
use crate::time::{Clock as _, SystemClock, Timestamp};
use crate::webhook::{self, Action, Rule, Scheme, Source, VerifyError};

const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1000;
/// Longest source id, in characters.
const MAX_ID_CHARS: usize = 200;
/// Largest timestamp tolerance, in seconds (a day).
const MAX_TOLERANCE_SECS: i64 = 86_400;

pub fn router() -> Router<AppState> {
    let base = "/api/v1/namespaces/{namespace}/webhooks";
    Router::new()
        .route(base, get(list_sources).post(create_source))
        // A POST here is the public delivery route: `access` lets it
        // through without a key (tests/webhooks.rs posts to it without one).
        .route(
            &format!("{base}/{{source_id}}"),
            get(describe_source).delete(delete_source).post(receive),
        )
        .route(
            &format!("{base}/{{source_id}}/deliveries"),
            get(list_deliveries),
        )
        .route(
            &format!("{base}/{{source_id}}/deliveries/{{delivery}}/replay"),
            post(replay_delivery),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSource {
    source_id: String,
    scheme: Scheme,
    secrets: Vec<String>,
    #[serde(default)]
    tolerance_seconds: Option<i64>,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    description: Option<String>,
}

impl Body for CreateSource {
    // Rule templates and condition values are configuration, not payloads.
    const PAYLOADS: &'static [&'static str] = &[];
}

/// A source as the API shows it: never its secrets, only how many.
#[derive(Serialize)]
struct SourceView {
    source_id: String,
    scheme: Scheme,
    secret_count: usize,
    tolerance_seconds: i64,
    rules: Vec<Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    created_at: Timestamp,
    /// Where the sender posts, relative to the server's base URL.
    url: String,
}

impl From<WebhookRecord> for SourceView {
    fn from(r: WebhookRecord) -> SourceView {
        SourceView {
            url: format!(
                "/api/v1/namespaces/{}/webhooks/{}",
                r.namespace, r.source_id
            ),
            source_id: r.source_id,
            scheme: r.source.scheme,
            secret_count: r.source.secrets.len(),
            tolerance_seconds: r.source.tolerance_secs,
            rules: r.source.rules,
            description: r.source.description,
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize)]
struct SourceList {
    sources: Vec<SourceView>,
}

/// One delivery as the API shows it: everything but the kept headers and
/// body.
#[derive(Serialize)]
struct DeliveryView {
    delivery: String,
    received_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_id: Option<String>,
    verified: bool,
    outcome: DeliveryOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<RunId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replay_of: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> DeliveryView {
        DeliveryView {
            delivery: d.seq,
            received_at: d.received_at,
            delivery_id: d.delivery_id,
            verified: d.verified,
            outcome: d.outcome,
            rule: d.rule,
            action: d.action,
            workflow_id: d.workflow_id,
            run_id: d.run_id,
            error: d.error,
            replay_of: d.replay_of,
        }
    }
}

#[derive(Serialize)]
struct DeliveryList {
    deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next (older) page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<String>,
}

#[derive(Deserialize)]
struct DeliveryParams {
    page_size: Option<i64>,
    before: Option<String>,
}

fn check_source_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "source_id: 1 to {MAX_ID_CHARS} ASCII letters, digits, `-`, `_` or `.`"
        )))
    }
}

async fn create_source(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppJson(body): AppJson<CreateSource>,
) -> Result<(StatusCode, AppJson<SourceView>), ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    check_source_id(&body.source_id)?;
    if body.secrets.is_empty() || body.secrets.iter().any(|s| s.is_empty()) {
        return Err(ApiError::BadRequest(
            "secrets: at least one, none empty (several while one is rotated)".into(),
        ));
    }
    if let Some(bad) = webhook::verify::unusable_secret(&body.scheme, &body.secrets) {
        return Err(ApiError::BadRequest(format!("secrets: {bad}")));
    }
    let tolerance = body
        .tolerance_seconds
        .unwrap_or(webhook::DEFAULT_TOLERANCE_SECS);
    if !(1..=MAX_TOLERANCE_SECS).contains(&tolerance) {
        return Err(ApiError::BadRequest(format!(
            "tolerance_seconds: from 1 to {MAX_TOLERANCE_SECS}"
        )));
    }
    for (i, rule) in body.rules.iter().enumerate() {
        rule.check(&format!("rules/{i}"))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    let record = WebhookRecord {
        namespace: ns,
        source_id: body.source_id,
        source: Source {
            scheme: body.scheme,
            secrets: body.secrets,
            tolerance_secs: tolerance,
            rules: body.rules,
            description: body.description,
        },
        created_at: state.applier.clock().now(),
    };
    state.applier.store().create_webhook(&record).await?;
    Ok((StatusCode::CREATED, AppJson(record.into())))
}

async fn list_sources(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
) -> Result<AppJson<SourceList>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let sources = state.applier.store().list_webhooks(&ns).await?;
    Ok(AppJson(SourceList {
        sources: sources.into_iter().map(SourceView::from).collect(),
    }))
}

async fn existing_source(
    state: &AppState,
    namespace: &str,
    source_id: &str,
) -> Result<WebhookRecord, ApiError> {
    let ns = existing_namespace(state, namespace).await?.name;
    state
        .applier
        .store()
        .get_webhook(&ns, source_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("webhook source {source_id} not found")))
}

async fn describe_source(
    State(state): State<AppState>,
    AppPath((namespace, source_id)): AppPath<(String, String)>,
) -> Result<AppJson<SourceView>, ApiError> {
    Ok(AppJson(
        existing_source(&state, &namespace, &source_id)
            .await?
            .into(),
    ))
}

async fn delete_source(
    State(state): State<AppState>,
    AppPath((namespace, source_id)): AppPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    if state
        .applier
        .store()
        .delete_webhook(&ns, &source_id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "webhook source {source_id} not found"
        )))
    }
}

async fn list_deliveries(
    State(state): State<AppState>,
    AppPath((namespace, source_id)): AppPath<(String, String)>,
    AppQuery(params): AppQuery<DeliveryParams>,
) -> Result<AppJson<DeliveryList>, ApiError> {
    let source = existing_source(&state, &namespace, &source_id).await?;
    let size = params.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(ApiError::BadRequest(format!(
            "page_size: from 1 to {MAX_PAGE_SIZE}"
        )));
    }
    let deliveries = state
        .applier
        .store()
        .list_deliveries(
            &source.namespace,
            &source_id,
            params.before.as_deref(),
            size + 1,
        )
        .await?;
    let more = deliveries.len() as i64 > size;
    let page: Vec<DeliveryView> = deliveries
        .into_iter()
        .take(size as usize)
        .map(DeliveryView::from)
        .collect();
    let next_before = more
        .then(|| page.last().map(|d| d.delivery.clone()))
        .flatten();
    Ok(AppJson(DeliveryList {
        deliveries: page,
        next_before,
    }))
}

/// The public route: verify, log, route, act.
async fn receive(
    State(state): State<AppState>,
    AppPath((namespace, source_id)): AppPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<AppJson<DeliveryView>, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("request body is too large".into())
        }
        _ => ApiError::BadRequest(e.body_text()),
    })?;
    let source = existing_source(&state, &namespace, &source_id).await?;
    let received_at = state.applier.clock().now();
    let lookup = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut delivery = Delivery {
        namespace: source.namespace.clone(),
        source_id: source_id.clone(),
        seq: uuid::Uuid::now_v7().to_string(),
        received_at,
        delivery_id: None,
        verified: false,
        outcome: DeliveryOutcome::Refused,
        rule: None,
        action: None,
        workflow_id: None,
        run_id: None,
        error: None,
        replay_of: None,
        headers: None,
        body: None,
    };
    let s = &source.source;
    // The sender signed with the wall clock: a `baton dev --time-skipping`
    // node's skipped clock would make every real delivery stale.
    let now_secs = SystemClock.now().millis().div_euclid(1000);
    if let Err(e) = webhook::verify(
        &s.scheme,
        &s.secrets,
        s.tolerance_secs,
        lookup,
        &body,
        now_secs,
    ) {
        delivery.error = Some(e.to_string());
        state.applier.store().record_delivery(&delivery).await?;
        tracing::info!(%namespace, %source_id, error = %e, "webhook delivery refused");
        return Err(match e {
            VerifyError::MissingHeader(_) | VerifyError::Malformed { .. } => {
                ApiError::BadRequest(e.to_string())
            }
            _ => ApiError::SignatureInvalid(e.to_string()),
        });
    }
    delivery.verified = true;
    delivery.delivery_id = Some(webhook::delivery_id(&s.scheme, lookup, &body));
    delivery.headers = Some(
        headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect::<BTreeMap<_, _>>(),
    );
    delivery.body = Some(String::from_utf8_lossy(&body).into_owned());
    route_and_act(&state, &source, delivery).await
}

/// Replays a verified delivery: routes its kept headers and body again
/// under the source's current rules, with the same derived request id.
async fn replay_delivery(
    State(state): State<AppState>,
    AppPath((namespace, source_id, seq)): AppPath<(String, String, String)>,
) -> Result<AppJson<DeliveryView>, ApiError> {
    let source = existing_source(&state, &namespace, &source_id).await?;
    let original = state
        .applier
        .store()
        .get_delivery(&source.namespace, &source_id, &seq)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("delivery {seq} not found")))?;
    if !original.verified {
        return Err(ApiError::Conflict(format!(
            "delivery {seq} was refused (its signature did not verify); nothing of it was kept to replay"
        )));
    }
    let delivery = Delivery {
        seq: uuid::Uuid::now_v7().to_string(),
        received_at: state.applier.clock().now(),
        outcome: DeliveryOutcome::Ignored,
        rule: None,
        action: None,
        workflow_id: None,
        run_id: None,
        error: None,
        replay_of: Some(original.seq.clone()),
        ..original
    };
    route_and_act(&state, &source, delivery).await
}

/// Routes a verified delivery, applies its action, logs the outcome.
async fn route_and_act(
    state: &AppState,
    source: &WebhookRecord,
    mut d: Delivery,
) -> Result<AppJson<DeliveryView>, ApiError> {
    let body: Value = d
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    let headers = d.headers.clone().unwrap_or_default();
    let lookup = |name: &str| headers.get(name).map(String::as_str);
    let scheme = &source.source.scheme;
    let event = webhook::event_type(scheme, lookup, Some(&body));
    d.outcome = DeliveryOutcome::Ignored;
    if let Some(rule) = webhook::first_match(&source.source.rules, event.as_deref(), lookup, &body)
    {
        d.rule = Some(rule.name.clone());
        let outcome = match rule.resolve(&body) {
            Err(e) => Err(e.to_string()),
            Ok(action) => {
                d.action = Some(action.kind().to_owned());
                d.workflow_id = Some(action.workflow_id().to_owned());
                // The provider's id, stable across redeliveries and
                // replays, names the command: `apply` deduplicates it.
                let request_id = format!(
                    "webhook:{}:{}",
                    source.source_id,
                    d.delivery_id.as_deref().unwrap_or(&d.seq)
                );
                act(state, source, action, request_id)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        match outcome {
            Ok(run_id) => {
                d.outcome = DeliveryOutcome::Acted;
                d.run_id = Some(run_id);
            }
            Err(e) => {
                d.outcome = DeliveryOutcome::Failed;
                d.error = Some(e);
            }
        }
    }
    state.applier.store().record_delivery(&d).await?;
    if d.outcome == DeliveryOutcome::Failed {
        return Err(ApiError::WebhookActionFailed(format!(
            "delivery {} matched rule {}, whose action failed: {}",
            d.seq,
            d.rule.as_deref().unwrap_or_default(),
            d.error.as_deref().unwrap_or_default()
        )));
    }
    Ok(AppJson(d.into()))
}

/// Applies a resolved action as the workflow routes would; answers the
/// run it acted on.
async fn act(
    state: &AppState,
    source: &WebhookRecord,
    action: Action,
    request_id: String,
) -> Result<RunId, ApiError> {
    let ns = &source.namespace;
    let identity = Some(format!("webhook:{}", source.source_id));
    let start_run =
        |workflow_id: String, workflow_type: String, task_queue: String, input| StartRun {
            namespace: ns.clone(),
            workflow_id: WorkflowId(workflow_id),
            run_id: RunId::generate(),
            workflow_type,
            task_queue: TaskQueue(task_queue),
            input,
            execution_timeout: None,
            run_timeout: None,
            task_timeout: None,
            request_id: Some(request_id.clone()),
            identity: identity.clone(),
            pinned_version: None,
            memo: None,
            search_attributes: SearchAttributes::new(),
            retry_policy: None,
            // A provider's delivery joins no trace of ours.
            trace_context: None,
            chain: None,
            parent: None,
        };
    match action {
        Action::Signal {
            workflow_id,
            signal,
            input,
        } => {
            let run = find_run(state, &ns.0, &workflow_id, None).await?.state;
            if has_signal(&run, &request_id) {
                // Delivered before, perhaps before the run closed.
                return Ok(run.run_id);
            }
            let target = Target::Signal {
                workflow_type: &run.workflow_type,
                name: &signal,
            };
            validate(state, &run, target, "input", &input).await?;
            let cmd = Command::SignalWorkflow(Signal {
                signal_name: signal,
                input,
                request_id: Some(request_id.clone()),
                identity: identity.clone(),
            });
            state.applier.apply(ns, run.run_id, cmd).await?;
            Ok(run.run_id)
        }
        Action::SignalWithStart {
            workflow_id,
            signal,
            input,
            workflow_type,
            task_queue,
            workflow_input,
        } => {
            check_workflow_id(&workflow_id)?;
            // A run that took this delivery's signal already, even one
            // that has closed since, must not get a successor started.
            let latest = state
                .applier
                .store()
                .latest_run(ns, &WorkflowId(workflow_id.clone()))
                .await?;
            if let Some(run) = latest.filter(|r| has_signal(&r.state, &request_id)) {
                return Ok(run.state.run_id);
            }
            let queue = TaskQueue(task_queue.clone());
            validate_start(state, ns, &queue, &workflow_type, &workflow_input).await?;
            validate_new_signal(state, ns, &queue, &workflow_type, &signal, &input).await?;
            let request = StartRequest {
                run: start_run(workflow_id, workflow_type, task_queue, workflow_input),
                reuse_policy: IdReusePolicy::default(),
                conflict_policy: IdConflictPolicy::UseExisting,
            };
            let signal = Signal {
                signal_name: signal,
                input,
                request_id: Some(request_id.clone()),
                identity: identity.clone(),
            };
            let Started { run_id, .. } = state.applier.signal_with_start(request, signal).await?;
            Ok(run_id)
        }
        Action::Start {
            workflow_id,
            workflow_type,
            task_queue,
            input,
        } => {
            check_workflow_id(&workflow_id)?;
            let queue = TaskQueue(task_queue.clone());
            validate_start(state, ns, &queue, &workflow_type, &input).await?;
            let request = StartRequest {
                run: start_run(workflow_id, workflow_type, task_queue, input),
                reuse_policy: IdReusePolicy::default(),
                conflict_policy: IdConflictPolicy::default(),
            };
            let Started { run_id, .. } = state.applier.start(request).await?;
            Ok(run_id)
        }
        Action::Update {
            workflow_id,
            update,
            input,
        } => {
            let run = find_run(state, &ns.0, &workflow_id, None).await?.state;
            let update = Update {
                update_id: request_id.clone(),
                update_name: update,
                input,
                identity: identity.clone(),
            };
            Ok(admit_update(state, run, update).await?.run_id)
        }
    }
}

/// Whether the run recorded a signal with this request id (it remembers
/// the last `engine::SEEN_SIGNAL_REQUEST_IDS`, closed or not).
fn has_signal(run: &RunState, request_id: &str) -> bool {
    run.signal_request_ids.iter().any(|r| r == request_id)
}
