//! Messages to a workflow: signal, query (nothing written), update and
//! polling an update's outcome.

use axum::extract::State;

use crate::api::error::ApiError;
use crate::api::extract::{AppJson, AppPath, AppQuery};
use crate::api::payloads;
use crate::api::workflows::find_run;
use crate::api::workflows::model::{
    PollUpdateQuery, QueryAnswer, QueryBody, SignalBody, SignalResponse, UpdateBody, UpdateOutcome,
};
use crate::api::AppState;
use crate::apply::InputTarget;
use crate::engine::{self, Command, EventAttributes, RunState, Signal, Update, UpdateStage};
use crate::schema::Target;
use crate::time::Duration;

/// Longest an update request waits for its stage before it answers with
/// the stage reached (the client asks again).
const UPDATE_WAIT: Duration = Duration(30_000);

pub(super) async fn signal_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id, signal_name)): AppPath<(String, String, String)>,
    AppJson(body): AppJson<SignalBody>,
) -> Result<AppJson<SignalResponse>, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, body.run_id.as_deref()).await?;
    let s = &record.state;
    let target = Target::Signal {
        workflow_type: &s.workflow_type,
        name: &signal_name,
    };
    validate(&state, s, target, "input", &body.input).await?;
    let cmd = Command::SignalWorkflow(Signal {
        signal_name,
        input: body.input,
        request_id: body.request_id,
        identity: body.identity,
    });
    state.applier.apply(&s.namespace, s.run_id, cmd).await?;
    Ok(AppJson(SignalResponse { run_id: s.run_id }))
}

/// Pushes a query to the run's endpoint and waits for the answer. Nothing
/// is written: works on closed runs, and never changes a history.
pub(super) async fn query_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id, query_name)): AppPath<(String, String, String)>,
    AppJson(body): AppJson<QueryBody>,
) -> Result<AppJson<QueryAnswer>, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, body.run_id.as_deref()).await?;
    let s = &record.state;
    let target = Target::Query {
        workflow_type: &s.workflow_type,
        name: &query_name,
    };
    validate(&state, s, target, "args", &body.args).await?;
    let result = state.querier.query(s, &query_name, &body.args).await?;
    Ok(AppJson(QueryAnswer {
        run_id: s.run_id,
        result,
    }))
}

/// Validates an update with a synchronous push, records it, and waits for
/// the stage asked for. An update id the run has seen already is not
/// validated again: the caller gets (or waits for) the first one's outcome.
pub(super) async fn update_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id, update_name)): AppPath<(String, String, String)>,
    AppJson(body): AppJson<UpdateBody>,
) -> Result<AppJson<UpdateOutcome>, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, body.run_id.as_deref()).await?;
    let update_id = body
        .update_id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let update = Update {
        update_id: update_id.clone(),
        update_name,
        input: body.args,
        identity: body.identity,
    };
    let run = admit_update(&state, record.state, update).await?;
    let stage = body.wait_for_stage.unwrap_or(UpdateStage::Completed);
    wait_update(&state, run, &update_id, stage).await
}

/// Checks an update's payload against its schema, validates it with a
/// synchronous push and records it, unless the
/// run has seen its id already; returns the run as it is after. Shared by
/// the update route and webhook actions.
pub(in crate::api) async fn admit_update(
    state: &AppState,
    run: RunState,
    update: Update,
) -> Result<RunState, ApiError> {
    if run.updates.contains_key(&update.update_id) {
        return Ok(run);
    }
    let target = Target::Update {
        workflow_type: &run.workflow_type,
        name: &update.update_name,
    };
    validate(state, &run, target, "args", &update.input).await?;
    let cmd = Command::AdmitUpdate(update.clone());
    // Refuses a closed run and bad input before the validation push;
    // nothing is written.
    engine::decide(&run, cmd.clone(), &state.applier.ctx())?;
    if let Some(failure) = state.querier.validate_update(&run, &update).await? {
        return Err(ApiError::UpdateRejected(failure));
    }
    Ok(std::sync::Arc::unwrap_or_clone(
        state.applier.apply(&run.namespace, run.run_id, cmd).await?,
    ))
}

/// Checks a message's payload against the schema of the version the run
/// is pinned to (the current one if it is not pinned).
pub(in crate::api) async fn validate(
    state: &AppState,
    run: &RunState,
    target: Target<'_>,
    field: &'static str,
    payload: &serde_json::Value,
) -> Result<(), ApiError> {
    let to = InputTarget {
        namespace: &run.namespace,
        task_queue: &run.task_queue,
        version: run.pinned_version.as_deref(),
        target,
        field,
    };
    Ok(state
        .applier
        .endpoints()
        .validate_input(&to, payload)
        .await?)
}

/// An update's stage and outcome, waiting (boundedly) for the stage asked
/// for: the client side of an update handle.
pub(super) async fn poll_update(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id, update_id)): AppPath<(String, String, String)>,
    AppQuery(q): AppQuery<PollUpdateQuery>,
) -> Result<AppJson<UpdateOutcome>, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, q.run_id.as_deref()).await?;
    let stage = q.wait_for_stage.unwrap_or(UpdateStage::Completed);
    wait_update(&state, record.state, &update_id, stage).await
}

async fn wait_update(
    state: &AppState,
    run: RunState,
    update_id: &str,
    stage: UpdateStage,
) -> Result<AppJson<UpdateOutcome>, ApiError> {
    let reached = |s: &RunState| s.updates.get(update_id).is_some_and(|u| u.stage() >= stage);
    if !run.updates.contains_key(update_id) {
        return Err(ApiError::NotFound(format!(
            "update {update_id} not found in run {}",
            run.run_id
        )));
    }
    let run = if reached(&run) {
        run
    } else {
        state.applier.wait_for(run, UPDATE_WAIT, reached).await?
    };
    let update = run
        .updates
        .get(update_id)
        .expect("stages are never forgotten")
        .clone();
    if !reached(&run) && run.status.is_closed() {
        return Err(ApiError::Conflict(format!(
            "workflow execution already completed ({}) before update {update_id} reached stage {stage:?}",
            run.status.as_str(),
        )));
    }
    let (mut result, mut failure) = (None, None);
    if let Some(id) = update.completed_event_id {
        let events = state
            .applier
            .store()
            .read_history(&run.namespace, run.run_id, id - 1, 1)
            .await?;
        match events.into_iter().next().map(|e| e.attributes) {
            Some(EventAttributes::WorkflowExecutionUpdateCompleted(c)) => match c.failure {
                Some(f) => failure = Some(f),
                None => {
                    let mut value = c.result;
                    payloads::in_place(state, &run.namespace, run.run_id, &mut value).await?;
                    result = Some(value);
                }
            },
            _ => {
                return Err(ApiError::Internal(format!(
                    "event {id} of run {} is not the completion of update {update_id}",
                    run.run_id
                )))
            }
        }
    }
    Ok(AppJson(UpdateOutcome {
        update_id: update_id.to_owned(),
        run_id: run.run_id,
        stage: update.stage(),
        result,
        failure,
    }))
}
