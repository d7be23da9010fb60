//! Controlling a workflow from outside: request cancellation, terminate,
//! and reset to an earlier workflow task.

use axum::extract::State;
use axum::http::StatusCode;

use crate::api::error::ApiError;
use crate::api::extract::{AppJson, AppPath};
use crate::api::workflows::find_run;
use crate::api::workflows::model::{CancelBody, ResetBody, ResetResponse, ResetType, Terminate};
use crate::api::AppState;
use crate::engine::{Command, Reset, ResetPoint};

/// Records a cancellation request; the workflow decides when and how it
/// closes (as Canceled, with CancelWorkflowExecution).
pub(super) async fn cancel_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id)): AppPath<(String, String)>,
    AppJson(body): AppJson<CancelBody>,
) -> Result<StatusCode, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, body.run_id.as_deref()).await?;
    let cmd = Command::RequestCancelWorkflow {
        reason: body.reason,
        request_id: body.request_id,
        identity: body.identity,
    };
    let s = &record.state;
    state.applier.apply(&s.namespace, s.run_id, cmd).await?;
    Ok(StatusCode::ACCEPTED)
}

pub(super) async fn terminate_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id)): AppPath<(String, String)>,
    AppJson(body): AppJson<Terminate>,
) -> Result<StatusCode, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, body.run_id.as_deref()).await?;
    let cmd = Command::TerminateWorkflow {
        reason: body.reason,
        details: body.details,
        identity: body.identity,
    };
    let s = &record.state;
    state.applier.apply(&s.namespace, s.run_id, cmd).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a new run with the history of a run up to a completed workflow
/// task (Temporal's ResetWorkflowExecution); the workflow id's open run is
/// terminated in the same commit.
pub(super) async fn reset_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id)): AppPath<(String, String)>,
    AppJson(body): AppJson<ResetBody>,
) -> Result<AppJson<ResetResponse>, ApiError> {
    let point = match (body.event_id, body.reset_type) {
        (Some(id), None) => ResetPoint::WorkflowTaskCompleted(id),
        (None, Some(ResetType::FirstWorkflowTask)) => ResetPoint::FirstWorkflowTask,
        (None, Some(ResetType::LastWorkflowTask)) => ResetPoint::LastWorkflowTask,
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of event_id and reset_type".into(),
            ))
        }
    };
    let record = find_run(&state, &namespace, &workflow_id, body.run_id.as_deref()).await?;
    let reset = Reset {
        point,
        reason: body.reason,
        reapply_signals: body.reapply_signals.unwrap_or(true),
        pinned_version: None,
    };
    let s = &record.state;
    let run_id = state
        .applier
        .reset(&s.namespace, s.run_id, reset, body.request_id)
        .await?;
    Ok(AppJson(ResetResponse { run_id }))
}
