//! Controlling a workflow from outside: request cancellation, terminate,
//! reset to an earlier workflow task, and delete a closed run.

use axum::extract::State;
use axum::http::StatusCode;

use crate::api::error::ApiError;
use crate::api::extract::{AppJson, AppPath, AppQuery};
use crate::api::workflows::find_run;
use crate::api::workflows::model::{
    CancelBody, ResetBody, ResetResponse, ResetType, RunQuery, Terminate,
};
use crate::api::AppState;
use crate::engine::{Command, Reset, ResetPoint};
use crate::store::Deletion;

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

/// Deletes a closed run and its history at once (retention does the same
/// later by itself). An open run is refused: terminate it first.
pub(super) async fn delete_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id)): AppPath<(String, String)>,
    AppQuery(q): AppQuery<RunQuery>,
) -> Result<StatusCode, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, q.run_id.as_deref()).await?;
    let s = &record.state;
    match state
        .applier
        .store()
        .delete_run(&s.namespace, s.run_id)
        .await?
    {
        Deletion::Deleted => Ok(StatusCode::NO_CONTENT),
        Deletion::NotFound => Err(ApiError::NotFound(format!(
            "workflow {workflow_id} not found"
        ))),
        Deletion::Open => Err(ApiError::Conflict(format!(
            "run {} of workflow {workflow_id} is open: terminate it before deleting it",
            s.run_id
        ))),
        Deletion::Pending => Err(ApiError::Conflict(format!(
            "run {} of workflow {workflow_id} still has work pending (such as telling its \
             parent it closed); retry shortly",
            s.run_id
        ))),
    }
}
