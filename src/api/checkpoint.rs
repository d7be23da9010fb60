//! `POST /api/v1/namespaces/{ns}/workflow-tasks/checkpoint`: a handler that
//! runs activities inline commits each step of its workflow task here
//! (docs/protocol.md §5.9).
//!
//! No API key: the request is signed with the push secret of the endpoint
//! version the run is pinned to (Standard Webhooks, as pushes are), and
//! verified before anything is read into the run. The engine decides the
//! checkpoint as one command (`engine::Command::Checkpoint`) through the
//! run's single writer, so it is group-committed with whatever else the run
//! receives meanwhile.

use crate::dispatch::payloads::Inlined;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::engine::{
    ActivityToken, Checkpoint, CheckpointFrom, CheckpointReport, ContinuationToken, Event, Failure,
    InlineOutcome, Registry, Rejection, TaskToken, TokenKind, WorkflowCommand,
    WorkflowTaskFailedCause,
};
use crate::ids::{ActivityId, Namespace, RunId};
use crate::time::Timestamp;

use super::error::ApiError;
use super::extract::{AppJson, AppPath, Body};
use super::{signed, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/namespaces/{namespace}/workflow-tasks/checkpoint",
        post(checkpoint),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    task_token: String,
    #[serde(default)]
    completions: Vec<Completion>,
    #[serde(default)]
    commands: Option<Vec<WorkflowCommand>>,
    #[serde(default)]
    inline: Vec<ActivityId>,
    #[serde(default)]
    workflow_time: Option<Timestamp>,
    #[serde(default)]
    identity: Option<String>,
}

impl Body for Request {
    const PAYLOADS: &'static [&'static str] = &["/completions", "/commands"];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Completion {
    task_token: String,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default)]
    failure: Option<Failure>,
    #[serde(default)]
    canceled: Option<Canceled>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Canceled {
    #[serde(default)]
    details: Option<Value>,
}

/// Makes `"result": null` count as present.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Serialize)]
struct Answer {
    continued: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    continuation_token: Option<String>,
    completions: Vec<Accepted>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    activity_tasks: Vec<ActivityTask>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    events: Vec<Event>,
    /// Payloads beside the events' references (docs/protocol.md §9.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    payloads: Option<Inlined>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow_task_failed: Option<TaskFailed>,
    server_time: Timestamp,
}

#[derive(Serialize)]
struct Accepted {
    accepted: bool,
}

#[derive(Serialize)]
struct ActivityTask {
    activity_id: ActivityId,
    task_token: String,
    attempt: u32,
}

#[derive(Serialize)]
struct TaskFailed {
    cause: WorkflowTaskFailedCause,
    message: String,
}

async fn checkpoint(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<AppJson<Answer>, ApiError> {
    let body = signed::body(body)?;
    let signed = signed::headers(&headers, "a checkpoint")?;
    // Only the token is read before the signature is checked: it names the
    // run, whose endpoint's secrets verify the rest.
    let token = peek_token(&body)?;
    let ns = Namespace(namespace);
    if token.namespace != ns {
        return Err(ApiError::BadRequest(
            "task_token belongs to another namespace".into(),
        ));
    }
    let endpoint = signed::verify(&state, &ns, token.run_id, signed, &body, "checkpoint").await?;
    let AppJson(req) = super::extract::parse_body::<Request>(&body)?;
    let token = parse_token(&req.task_token)?;
    let from = match token.task {
        TokenKind::Workflow(t) => CheckpointFrom::WorkflowTask(t),
        TokenKind::Continuation(t) => CheckpointFrom::Continuation(t),
        TokenKind::Activity(_) => {
            return Err(ApiError::BadRequest(
                "task_token must be a workflow task's token or a continuation_token".into(),
            ))
        }
    };
    if matches!(from, CheckpointFrom::Continuation(_))
        && req.commands.is_some()
        && req.workflow_time.is_none()
    {
        return Err(ApiError::BadRequest(
            "workflow_time: required with commands on a continuation".into(),
        ));
    }
    let completions = req
        .completions
        .into_iter()
        .map(|c| completion(&ns, token.run_id, c))
        .collect::<Result<Vec<_>, _>>()?;
    let n_completions = completions.len();
    let search_attributes = match &req.commands {
        Some(cmds) if cmds.iter().any(WorkflowCommand::sets_search_attributes) => {
            state.applier.search_attributes().registry(&ns).await?
        }
        _ => Registry::default(),
    };
    let cp = Checkpoint {
        from,
        completions,
        commands: req.commands,
        inline: req.inline,
        workflow_time: req.workflow_time,
        identity: req.identity,
        search_attributes,
    };
    let report = match state.applier.checkpoint(&ns, token.run_id, cp).await {
        Ok((_, report)) => report,
        // A continuation of a closed run: nothing to apply, nothing stale
        // to report beyond that.
        Err(crate::apply::Error::Rejected(Rejection::RunClosed(_)))
            if matches!(from, CheckpointFrom::Continuation(_)) =>
        {
            CheckpointReport {
                accepted: vec![false; n_completions],
                ..CheckpointReport::default()
            }
        }
        Err(e) => return Err(e.into()),
    };
    for (activity_type, attempt, outcome) in &report.attempts {
        crate::telemetry::activity_attempt(&ns.0, activity_type, *attempt, outcome);
    }
    let mut report = report;
    let payloads = state
        .querier
        .resolver(&ns, token.run_id, &endpoint)
        .decoded(&mut report.events)
        .await?;
    let now = state.applier.clock().now();
    Ok(AppJson(answer(&ns, token.run_id, report, payloads, now)))
}

/// The token of a body that may not be signed yet.
fn peek_token(body: &[u8]) -> Result<TaskToken, ApiError> {
    #[derive(Deserialize)]
    struct Peek {
        task_token: String,
    }
    let peek: Peek = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("malformed checkpoint: {e}")))?;
    parse_token(&peek.task_token)
}

fn parse_token(token: &str) -> Result<TaskToken, ApiError> {
    token
        .parse()
        .map_err(|_| ApiError::BadRequest("malformed task_token".into()))
}

fn completion(
    ns: &Namespace,
    run_id: RunId,
    c: Completion,
) -> Result<(ActivityToken, InlineOutcome), ApiError> {
    let t: TaskToken = c
        .task_token
        .parse()
        .map_err(|_| ApiError::BadRequest("malformed completion task_token".into()))?;
    let TokenKind::Activity(token) = t.task else {
        return Err(ApiError::BadRequest(
            "a completion's task_token must be an activity attempt's".into(),
        ));
    };
    if t.namespace != *ns || t.run_id != run_id {
        return Err(ApiError::BadRequest(
            "a completion's task_token belongs to another run".into(),
        ));
    }
    let outcome = match (c.result, c.failure, c.canceled) {
        (Some(r), None, None) => InlineOutcome::Completed(r),
        (None, Some(f), None) => InlineOutcome::Failed(f),
        (None, None, Some(c)) => InlineOutcome::Canceled(c.details),
        _ => {
            return Err(ApiError::BadRequest(
                "a completion carries exactly one of result, failure and canceled".into(),
            ))
        }
    };
    Ok((token, outcome))
}

fn answer(
    ns: &Namespace,
    run_id: RunId,
    report: CheckpointReport,
    payloads: Option<Inlined>,
    now: Timestamp,
) -> Answer {
    let token = |task| {
        TaskToken {
            namespace: ns.clone(),
            run_id,
            task,
        }
        .to_string()
    };
    let continuation_token = report.events.last().filter(|_| report.continued).map(|e| {
        token(TokenKind::Continuation(ContinuationToken {
            last_event_id: e.event_id,
            last_event_time: e.event_time,
        }))
    });
    Answer {
        continued: report.continued,
        continuation_token,
        completions: report
            .accepted
            .iter()
            .map(|&accepted| Accepted { accepted })
            .collect(),
        activity_tasks: report
            .inline_attempts
            .into_iter()
            .map(|(activity_id, scheduled_event_id)| ActivityTask {
                activity_id,
                task_token: token(TokenKind::Activity(ActivityToken {
                    scheduled_event_id,
                    attempt: 1,
                })),
                attempt: 1,
            })
            .collect(),
        events: report.events,
        payloads,
        workflow_task_failed: report
            .workflow_task_failed
            .map(|(cause, message)| TaskFailed { cause, message }),
        server_time: now,
    }
}
