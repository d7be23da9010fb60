//! `/api/v1/namespaces/{ns}/activities/…`: asynchronous completion and
//! heartbeats by task token, for activities that answered their push with
//! 202 or run longer than a function may.

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::{ActivityToken, Command, Failure, TaskToken, TokenKind};
use crate::ids::RunId;

use super::error::ApiError;
use super::extract::{AppJson, AppPath, Body};
use super::AppState;

pub fn router() -> Router<AppState> {
    let base = "/api/v1/namespaces/{namespace}/activities";
    Router::new()
        .route(&format!("{base}/complete"), post(complete_activity))
        .route(&format!("{base}/fail"), post(fail_activity))
        .route(&format!("{base}/cancel"), post(report_activity_canceled))
        .route(&format!("{base}/heartbeat"), post(heartbeat_activity))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Complete {
    task_token: String,
    #[serde(default)]
    result: Value,
}

impl Body for Complete {
    const PAYLOADS: &'static [&'static str] = &["/result"];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fail {
    task_token: String,
    failure: Failure,
}

impl Body for Fail {
    const PAYLOADS: &'static [&'static str] = &["/failure"];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithDetails {
    task_token: String,
    #[serde(default)]
    details: Option<Value>,
}

impl Body for WithDetails {
    const PAYLOADS: &'static [&'static str] = &["/details"];
}

#[derive(Serialize)]
struct HeartbeatAnswer {
    /// True once the workflow asked for this activity to be cancelled: the
    /// handler should stop and report `…/activities/cancel`.
    cancel_requested: bool,
}

#[derive(Serialize)]
struct Accepted {
    accepted: bool,
}

/// Decodes a token and checks it belongs to the namespace in the path.
fn activity_token(namespace: &str, token: &str) -> Result<(RunId, ActivityToken), ApiError> {
    let t: TaskToken = token
        .parse()
        .map_err(|_| ApiError::BadRequest("malformed task_token".into()))?;
    match t.task {
        TokenKind::Activity(a) if t.namespace.as_str() == namespace => Ok((t.run_id, a)),
        TokenKind::Activity(_) => Err(ApiError::BadRequest(
            "task_token belongs to another namespace".into(),
        )),
        TokenKind::Workflow(_) => Err(ApiError::BadRequest(
            "task_token is a workflow task token, not an activity's".into(),
        )),
        TokenKind::Continuation(_) => Err(ApiError::BadRequest(
            "task_token is a checkpoint continuation token, not an activity's".into(),
        )),
    }
}

async fn run_command(
    state: &AppState,
    namespace: &str,
    token: &str,
    make: impl FnOnce(ActivityToken) -> Command,
) -> Result<std::sync::Arc<crate::engine::RunState>, ApiError> {
    let (run_id, token) = activity_token(namespace, token)?;
    let ns = crate::ids::Namespace(namespace.to_owned());
    Ok(state.applier.apply(&ns, run_id, make(token)).await?)
}

async fn complete_activity(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppJson(body): AppJson<Complete>,
) -> Result<AppJson<Accepted>, ApiError> {
    run_command(&state, &namespace, &body.task_token, |token| {
        Command::CompleteActivity {
            token,
            result: body.result,
        }
    })
    .await?;
    Ok(AppJson(Accepted { accepted: true }))
}

async fn fail_activity(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppJson(body): AppJson<Fail>,
) -> Result<AppJson<Accepted>, ApiError> {
    run_command(&state, &namespace, &body.task_token, |token| {
        Command::FailActivity {
            token,
            failure: body.failure,
        }
    })
    .await?;
    Ok(AppJson(Accepted { accepted: true }))
}

async fn report_activity_canceled(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppJson(body): AppJson<WithDetails>,
) -> Result<AppJson<Accepted>, ApiError> {
    run_command(&state, &namespace, &body.task_token, |token| {
        Command::ReportActivityCanceled {
            token,
            details: body.details,
        }
    })
    .await?;
    Ok(AppJson(Accepted { accepted: true }))
}

async fn heartbeat_activity(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppJson(body): AppJson<WithDetails>,
) -> Result<AppJson<HeartbeatAnswer>, ApiError> {
    let sched = activity_token(&namespace, &body.task_token)?
        .1
        .scheduled_event_id;
    let run = run_command(&state, &namespace, &body.task_token, |token| {
        Command::RecordActivityHeartbeat {
            token,
            details: body.details,
        }
    })
    .await?;
    let cancel_requested = run
        .activities
        .get(&sched)
        .is_some_and(|a| a.cancel_requested);
    Ok(AppJson(HeartbeatAnswer { cancel_requested }))
}
