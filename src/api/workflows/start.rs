//! Starting a workflow: start and signal-with-start, and the checks a
//! workflow id passes first.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use crate::api::error::ApiError;
use crate::api::extract::{AppJson, AppPath};
use crate::api::namespaces::existing_namespace;
use crate::api::workflows::model::{SignalWithStart, StartResponse, StartWorkflow};
use crate::api::AppState;
use crate::apply::{InputTarget, StartRequest, Started};
use crate::engine::{
    typed_search_attributes, IdConflictPolicy, SearchAttributes, Signal, StartRun,
};
use crate::ids::{Namespace, RunId, TaskQueue, WorkflowId};
use crate::schema::Target;
use crate::telemetry::traces;

pub(super) async fn start_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id)): AppPath<(String, String)>,
    headers: HeaderMap,
    AppJson(body): AppJson<StartWorkflow>,
) -> Result<(StatusCode, AppJson<StartResponse>), ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    check_workflow_id(&workflow_id)?;
    let queue = TaskQueue(body.task_queue);
    validate_start(&state, &ns, &queue, &body.workflow_type, &body.input).await?;
    let request = StartRequest {
        run: StartRun {
            trace_context: traces::start_context(&headers),
            namespace: ns.clone(),
            workflow_id: WorkflowId(workflow_id),
            run_id: RunId::generate(),
            workflow_type: body.workflow_type,
            task_queue: queue,
            input: body.input,
            execution_timeout: body.workflow_execution_timeout,
            run_timeout: body.workflow_run_timeout,
            task_timeout: body.workflow_task_timeout,
            request_id: body.request_id,
            identity: body.identity,
            pinned_version: None,
            memo: body.memo,
            search_attributes: typed(&state, &ns, body.search_attributes.as_ref()).await?,
            retry_policy: body.retry_policy,
            chain: None,
            parent: None,
        },
        reuse_policy: body.id_reuse_policy,
        conflict_policy: body.id_conflict_policy,
    };
    let Started { run_id, started } = state.applier.start(request).await?;
    let status = if started {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, AppJson(StartResponse { run_id, started })))
}

pub(super) async fn signal_with_start(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id, signal_name)): AppPath<(String, String, String)>,
    headers: HeaderMap,
    AppJson(body): AppJson<SignalWithStart>,
) -> Result<(StatusCode, AppJson<StartResponse>), ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    check_workflow_id(&workflow_id)?;
    let queue = TaskQueue(body.task_queue);
    // Both payloads are checked against the current version, which a new
    // run pins, before the look-up of an open run: nothing is read or
    // written for a refused call.
    validate_start(&state, &ns, &queue, &body.workflow_type, &body.input).await?;
    validate_new_signal(
        &state,
        &ns,
        &queue,
        &body.workflow_type,
        &signal_name,
        &body.signal_input,
    )
    .await?;
    let signal = Signal {
        signal_name,
        input: body.signal_input,
        request_id: body.request_id.clone(),
        identity: body.identity.clone(),
    };
    let request = StartRequest {
        run: StartRun {
            trace_context: traces::start_context(&headers),
            namespace: ns.clone(),
            workflow_id: WorkflowId(workflow_id),
            run_id: RunId::generate(),
            workflow_type: body.workflow_type,
            task_queue: queue,
            input: body.input,
            execution_timeout: body.workflow_execution_timeout,
            run_timeout: body.workflow_run_timeout,
            task_timeout: body.workflow_task_timeout,
            request_id: body.request_id,
            identity: body.identity,
            pinned_version: None,
            memo: body.memo,
            search_attributes: typed(&state, &ns, body.search_attributes.as_ref()).await?,
            retry_policy: body.retry_policy,
            chain: None,
            parent: None,
        },
        reuse_policy: body.id_reuse_policy,
        conflict_policy: IdConflictPolicy::UseExisting,
    };
    let Started { run_id, started } = state.applier.signal_with_start(request, signal).await?;
    let status = if started {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, AppJson(StartResponse { run_id, started })))
}

/// Checks a signal-with-start's signal input against the schema of the
/// queue's current version (the one a new run pins).
pub(in crate::api) async fn validate_new_signal(
    state: &AppState,
    ns: &Namespace,
    queue: &TaskQueue,
    workflow_type: &str,
    signal_name: &str,
    input: &serde_json::Value,
) -> Result<(), ApiError> {
    let target = InputTarget {
        namespace: ns,
        task_queue: queue,
        version: None,
        target: Target::Signal {
            workflow_type,
            name: signal_name,
        },
        field: "signal_input",
    };
    Ok(state
        .applier
        .endpoints()
        .validate_input(&target, input)
        .await?)
}

/// Checks a start's input against the schema the queue's current
/// version (the one the run will pin) publishes for the workflow type.
pub(in crate::api) async fn validate_start(
    state: &AppState,
    ns: &Namespace,
    queue: &TaskQueue,
    workflow_type: &str,
    input: &serde_json::Value,
) -> Result<(), ApiError> {
    let target = InputTarget {
        namespace: ns,
        task_queue: queue,
        version: None,
        target: Target::Workflow(workflow_type),
        field: "input",
    };
    Ok(state
        .applier
        .endpoints()
        .validate_input(&target, input)
        .await?)
}

/// A start's search attributes typed by the namespace's registry; an
/// unknown name or a value of the wrong type is a 400 naming it.
async fn typed(
    state: &AppState,
    ns: &Namespace,
    given: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<SearchAttributes, ApiError> {
    let Some(given) = given.filter(|g| !g.is_empty()) else {
        return Ok(SearchAttributes::new());
    };
    let registry = state.applier.search_attributes().registry(ns).await?;
    typed_search_attributes(&registry, given).map_err(ApiError::BadRequest)
}

pub(in crate::api) fn check_workflow_id(workflow_id: &str) -> Result<(), ApiError> {
    if workflow_id.len() > 1_000 {
        return Err(ApiError::BadRequest(
            "workflow_id must be at most 1000 bytes".into(),
        ));
    }
    Ok(())
}
