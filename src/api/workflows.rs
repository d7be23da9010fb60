//! `/api/v1/namespaces/{ns}/workflows…`: start, list, describe, history,
//! result (following the chain of runs), signal, signal-with-start, cancel,
//! terminate, query, update, reset. Paths follow Temporal's HTTP API where
//! they fit.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::apply::{StartRequest, Started};
use crate::engine::{
    self, ActivityPhase, ChildExecution, Command, Event, EventAttributes, Failure,
    IdConflictPolicy, IdReusePolicy, ParentClosePolicy, ParentInfo, Reset, ResetPoint, RetryPolicy,
    RetryPolicySpec, RunState, RunStatus, Signal, StartRun, Update, UpdateStage,
};
use crate::ids::{Namespace, RunId, TaskQueue, WorkflowId};
use crate::store::{RunCursor, RunFilter, RunRecord, RunSummary};
use crate::time::{Duration, Timestamp};

use super::error::ApiError;
use super::extract::{null_as_default, AppJson, AppPath, AppQuery, Body};
use super::namespaces::existing_namespace;
use super::AppState;

pub fn router() -> Router<AppState> {
    let base = "/api/v1/namespaces/{namespace}/workflows";
    Router::new()
        .route(base, get(list_workflows))
        .route(
            &format!("{base}/{{workflow_id}}"),
            get(describe_workflow).post(start_workflow),
        )
        .route(&format!("{base}/{{workflow_id}}/history"), get(get_history))
        .route(&format!("{base}/{{workflow_id}}/result"), get(get_result))
        .route(
            &format!("{base}/{{workflow_id}}/terminate"),
            post(terminate_workflow),
        )
        .route(
            &format!("{base}/{{workflow_id}}/signal/{{signal_name}}"),
            post(signal_workflow),
        )
        .route(
            &format!("{base}/{{workflow_id}}/signal-with-start/{{signal_name}}"),
            post(signal_with_start),
        )
        .route(
            &format!("{base}/{{workflow_id}}/cancel"),
            post(cancel_workflow),
        )
        .route(
            &format!("{base}/{{workflow_id}}/query/{{query_name}}"),
            post(query_workflow),
        )
        .route(
            &format!("{base}/{{workflow_id}}/update/{{update_name}}"),
            post(update_workflow),
        )
        .route(
            &format!("{base}/{{workflow_id}}/updates/{{update_id}}"),
            get(poll_update),
        )
        .route(
            &format!("{base}/{{workflow_id}}/reset"),
            post(reset_workflow),
        )
}

/// Longest a result request may wait.
const MAX_RESULT_WAIT: Duration = Duration(60_000);
/// Longest an update request waits for its stage before it answers with
/// the stage reached (the client asks again).
const UPDATE_WAIT: Duration = Duration(30_000);
const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1_000;
const DEFAULT_HISTORY_PAGE: i64 = 1_000;
const MAX_HISTORY_PAGE: i64 = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartWorkflow {
    workflow_type: String,
    task_queue: String,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    workflow_execution_timeout: Option<Duration>,
    #[serde(default)]
    workflow_run_timeout: Option<Duration>,
    #[serde(default)]
    workflow_task_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "null_as_default")]
    id_reuse_policy: IdReusePolicy,
    #[serde(default, deserialize_with = "null_as_default")]
    id_conflict_policy: IdConflictPolicy,
    /// Makes retries of this request idempotent.
    #[serde(default)]
    request_id: Option<String>,
    /// A JSON object shown by describe and readable by the workflow.
    #[serde(default)]
    memo: Option<Value>,
    /// Retries the whole run when it fails or times out.
    #[serde(default)]
    retry_policy: Option<RetryPolicySpec>,
    #[serde(default)]
    identity: Option<String>,
}

impl Body for StartWorkflow {
    const PAYLOADS: &'static [&'static str] = &["/input", "/memo"];
}

#[derive(Serialize)]
struct StartResponse {
    run_id: RunId,
    started: bool,
}

async fn start_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id)): AppPath<(String, String)>,
    AppJson(body): AppJson<StartWorkflow>,
) -> Result<(StatusCode, AppJson<StartResponse>), ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    check_workflow_id(&workflow_id)?;
    let request = StartRequest {
        run: StartRun {
            namespace: ns,
            workflow_id: WorkflowId(workflow_id),
            run_id: RunId::generate(),
            workflow_type: body.workflow_type,
            task_queue: TaskQueue(body.task_queue),
            input: body.input,
            execution_timeout: body.workflow_execution_timeout,
            run_timeout: body.workflow_run_timeout,
            task_timeout: body.workflow_task_timeout,
            request_id: body.request_id,
            identity: body.identity,
            pinned_version: None,
            memo: body.memo,
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

fn check_workflow_id(workflow_id: &str) -> Result<(), ApiError> {
    if workflow_id.len() > 1_000 {
        return Err(ApiError::BadRequest(
            "workflow_id must be at most 1000 bytes".into(),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    #[serde(default)]
    run_id: Option<String>,
}

/// The run a request names: `run_id` if given, else the workflow's latest.
async fn find_run(
    state: &AppState,
    namespace: &str,
    workflow_id: &str,
    run_id: Option<&str>,
) -> Result<RunRecord, ApiError> {
    let ns = existing_namespace(state, namespace).await?.name;
    let store = state.applier.store();
    let record = match run_id {
        // An empty run_id is no UUID (the spec's `format: uuid`): refused,
        // never read as "the latest run", which is what omitting it means.
        Some(r) => {
            let run_id: RunId = r.parse().map_err(|_| {
                ApiError::BadRequest(format!(
                    "invalid run_id {r:?}: a run id is a UUID; omit run_id for the latest run"
                ))
            })?;
            store
                .load_run(&ns, run_id)
                .await?
                .filter(|rec| rec.state.workflow_id.as_str() == workflow_id)
        }
        None => {
            store
                .latest_run(&ns, &WorkflowId(workflow_id.to_owned()))
                .await?
        }
    };
    record.ok_or_else(|| ApiError::NotFound(format!("workflow {workflow_id} not found")))
}

#[derive(Serialize)]
struct Execution {
    namespace: Namespace,
    workflow_id: WorkflowId,
    run_id: RunId,
    workflow_type: String,
    task_queue: TaskQueue,
    status: RunStatus,
    start_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    close_time: Option<Timestamp>,
    history_length: i64,
}

impl From<RunSummary> for Execution {
    fn from(s: RunSummary) -> Execution {
        Execution {
            namespace: s.namespace,
            workflow_id: s.workflow_id,
            run_id: s.run_id,
            workflow_type: s.workflow_type,
            task_queue: s.task_queue,
            status: s.status,
            start_time: s.start_time,
            close_time: s.close_time,
            history_length: s.history_length,
        }
    }
}

impl From<&RunState> for Execution {
    fn from(s: &RunState) -> Execution {
        Execution {
            namespace: s.namespace.clone(),
            workflow_id: s.workflow_id.clone(),
            run_id: s.run_id,
            workflow_type: s.workflow_type.clone(),
            task_queue: s.task_queue.clone(),
            status: s.status,
            start_time: s.start_time,
            close_time: s.close_time,
            history_length: s.history_length(),
        }
    }
}

#[derive(Serialize)]
struct Description {
    execution: Execution,
    history_size_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_workflow_task: Option<PendingWorkflowTask>,
    pending_activities: Vec<PendingActivity>,
    pending_timers: Vec<PendingTimer>,
    /// A cancellation was requested (the workflow may still be running).
    cancel_requested: bool,
    /// The endpoint version of the run's task queue it is pinned to;
    /// absent until an unpinned run's first push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned_version: Option<String>,
    /// 1-based; counts the runs a workflow retry policy started.
    attempt: u32,
    first_execution_run_id: RunId,
    /// Set once the run closed and its chain went on (continue-as-new, a
    /// retry).
    #[serde(skip_serializing_if = "Option::is_none")]
    new_execution_run_id: Option<RunId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memo: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_policy: Option<RetryPolicy>,
    /// Set for a child workflow: the run that started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<ParentInfo>,
    /// Every child this run initiated, oldest first, open or closed.
    children: Vec<ChildSummary>,
}

#[derive(Serialize)]
struct ChildSummary {
    workflow_id: WorkflowId,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<RunId>,
    workflow_type: String,
    initiated_event_id: i64,
    parent_close_policy: ParentClosePolicy,
    /// INITIATED (not started yet), RUNNING, START_FAILED, or how it
    /// closed: COMPLETED, FAILED, CANCELED, TIMED_OUT, TERMINATED.
    status: &'static str,
}

/// The children a history records, by their Initiated event.
fn children(history: &[Event]) -> Vec<ChildSummary> {
    let mut children: Vec<ChildSummary> = Vec::new();
    for e in history {
        let (initiated, status, run_id) = match &e.attributes {
            EventAttributes::StartChildWorkflowExecutionInitiated(a) => {
                children.push(ChildSummary {
                    workflow_id: a.workflow_id.clone(),
                    run_id: None,
                    workflow_type: a.workflow_type.clone(),
                    initiated_event_id: e.event_id,
                    parent_close_policy: a.parent_close_policy,
                    status: "INITIATED",
                });
                continue;
            }
            EventAttributes::StartChildWorkflowExecutionFailed(a) => {
                (a.initiated_event_id, "START_FAILED", None)
            }
            EventAttributes::ChildWorkflowExecutionStarted(a) => {
                (a.initiated_event_id, "RUNNING", a.workflow_execution.run_id)
            }
            EventAttributes::ChildWorkflowExecutionCompleted(a) => closed(&a.child, "COMPLETED"),
            EventAttributes::ChildWorkflowExecutionFailed(a) => closed(&a.child, "FAILED"),
            EventAttributes::ChildWorkflowExecutionCanceled(a) => closed(&a.child, "CANCELED"),
            EventAttributes::ChildWorkflowExecutionTimedOut(a) => closed(&a.child, "TIMED_OUT"),
            EventAttributes::ChildWorkflowExecutionTerminated(a) => closed(&a.child, "TERMINATED"),
            _ => continue,
        };
        if let Some(c) = children
            .iter_mut()
            .find(|c| c.initiated_event_id == initiated)
        {
            c.status = status;
            c.run_id = run_id.or(c.run_id);
        }
    }
    children
}

fn closed(c: &ChildExecution, status: &'static str) -> (i64, &'static str, Option<RunId>) {
    (c.initiated_event_id, status, c.workflow_execution.run_id)
}

#[derive(Serialize)]
struct PendingWorkflowTask {
    attempt: u32,
    scheduled_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_failure: Option<String>,
}

#[derive(Serialize)]
struct PendingActivity {
    activity_id: String,
    activity_type: String,
    task_queue: TaskQueue,
    /// SCHEDULED (waiting to be pushed), STARTED or CANCEL_REQUESTED.
    state: &'static str,
    attempt: u32,
    maximum_attempts: u32,
    scheduled_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_started_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_schedule_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_heartbeat_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heartbeat_details: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_failure: Option<Failure>,
}

#[derive(Serialize)]
struct PendingTimer {
    timer_id: String,
    started_event_id: i64,
    fire_time: Timestamp,
}

async fn describe_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id)): AppPath<(String, String)>,
    AppQuery(q): AppQuery<RunQuery>,
) -> Result<AppJson<Description>, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, q.run_id.as_deref()).await?;
    let s = &record.state;
    let history = state.applier.history(s).await?;
    let pending_activities = s
        .activities
        .values()
        .filter(|a| a.phase != ActivityPhase::Closed)
        .map(|a| {
            let (state, started, next) = match a.phase {
                ActivityPhase::Started { since } => ("STARTED", Some(since), None),
                ActivityPhase::Scheduled { due, .. } => ("SCHEDULED", None, Some(due)),
                ActivityPhase::Closed => ("CLOSED", None, None),
            };
            PendingActivity {
                activity_id: a.activity_id.0.clone(),
                activity_type: a.activity_type.clone(),
                task_queue: a.task_queue.clone(),
                state: if a.cancel_requested {
                    "CANCEL_REQUESTED"
                } else {
                    state
                },
                attempt: a.attempt,
                maximum_attempts: a.retry_policy.maximum_attempts,
                scheduled_time: a.scheduled_time,
                last_started_time: started,
                next_attempt_schedule_time: next,
                last_heartbeat_time: a.last_heartbeat_time,
                heartbeat_details: a.heartbeat_details.clone(),
                last_failure: a.last_failure.clone(),
            }
        })
        .collect();
    let pending_timers = s
        .timers
        .iter()
        .filter(|(_, t)| !t.fired)
        .map(|(id, t)| PendingTimer {
            timer_id: id.0.clone(),
            started_event_id: t.started_event_id,
            fire_time: t.fire_at,
        })
        .collect();
    let pending_workflow_task = s.workflow_task.as_ref().map(|t| PendingWorkflowTask {
        attempt: t.attempt,
        scheduled_time: t.scheduled_time,
        last_failure: s.last_workflow_task_failure.clone(),
    });
    Ok(AppJson(Description {
        execution: s.into(),
        history_size_bytes: s.history_size_bytes,
        pending_workflow_task,
        pending_activities,
        pending_timers,
        cancel_requested: s.cancel_requested,
        pinned_version: s.pinned_version.clone(),
        attempt: s.chain.attempt.max(1),
        first_execution_run_id: s.first_execution_run_id(),
        new_execution_run_id: s.new_execution_run_id,
        memo: s.chain.memo.clone(),
        retry_policy: s.chain.retry_policy.clone(),
        parent: s.parent.clone(),
        children: children(&history),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    page_size: Option<i64>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Serialize)]
struct HistoryPage {
    run_id: RunId,
    events: Vec<Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn get_history(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id)): AppPath<(String, String)>,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> Result<AppJson<HistoryPage>, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, q.run_id.as_deref()).await?;
    let limit = page_size(q.page_size, DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE)?;
    let after = match q.next_page_token.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => t
            .parse::<i64>()
            .map_err(|_| ApiError::BadRequest("invalid next_page_token".into()))?,
        None => 0,
    };
    let s = &record.state;
    let events = state
        .applier
        .store()
        .read_history(&s.namespace, s.run_id, after, limit)
        .await?;
    let next_page_token = events
        .last()
        .filter(|e| events.len() as i64 == limit && e.event_id < s.history_length())
        .map(|e| e.event_id.to_string());
    Ok(AppJson(HistoryPage {
        run_id: s.run_id,
        events,
        next_page_token,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultQuery {
    #[serde(default)]
    run_id: Option<String>,
    /// How long to wait for the run to close (at most 60 s); 0 answers at once.
    #[serde(default)]
    wait: Option<Duration>,
    /// Follow the chain (continue-as-new, retries) to its last run, as
    /// Temporal clients do by default; `false` answers for the named run.
    #[serde(default = "follow_runs_default")]
    follow_runs: bool,
}

fn follow_runs_default() -> bool {
    true
}

#[derive(Serialize)]
struct RunResult {
    run_id: RunId,
    status: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    close_time: Option<Timestamp>,
    /// The next run of the chain, when `follow_runs` is false (or the
    /// wait ended before the chain's last run closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    new_execution_run_id: Option<RunId>,
}

async fn get_result(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id)): AppPath<(String, String)>,
    AppQuery(q): AppQuery<ResultQuery>,
) -> Result<AppJson<RunResult>, ApiError> {
    let mut s = find_run(&state, &namespace, &workflow_id, q.run_id.as_deref())
        .await?
        .state;
    let wait = q.wait.unwrap_or(Duration::ZERO).min(MAX_RESULT_WAIT);
    let deadline = state.applier.clock().now().saturating_add(wait);
    loop {
        let left = deadline.since(state.applier.clock().now());
        if !s.status.is_closed() && !left.is_zero() {
            s = state.applier.wait_for(s, left, |_| false).await?;
        }
        // The next run is committed with the close, so it exists.
        let next = match s.new_execution_run_id {
            Some(next) if q.follow_runs => {
                state.applier.store().load_run(&s.namespace, next).await?
            }
            _ => None,
        };
        match next {
            Some(next) => s = next.state,
            None => break,
        }
    }
    Ok(AppJson(RunResult {
        run_id: s.run_id,
        status: s.status,
        result: s.result,
        failure: s.failure,
        close_time: s.close_time,
        new_execution_run_id: s.new_execution_run_id,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Terminate {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    reason: String,
    #[serde(default)]
    details: Option<Value>,
    #[serde(default)]
    identity: Option<String>,
}

impl Body for Terminate {
    const PAYLOADS: &'static [&'static str] = &["/details"];
}

async fn terminate_workflow(
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalBody {
    #[serde(default)]
    input: Value,
    #[serde(default)]
    run_id: Option<String>,
    /// A signal with a request id the run has seen is not recorded again.
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    identity: Option<String>,
}

impl Body for SignalBody {
    const PAYLOADS: &'static [&'static str] = &["/input"];
}

#[derive(Serialize)]
struct SignalResponse {
    run_id: RunId,
}

async fn signal_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id, signal_name)): AppPath<(String, String, String)>,
    AppJson(body): AppJson<SignalBody>,
) -> Result<AppJson<SignalResponse>, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, body.run_id.as_deref()).await?;
    let cmd = Command::SignalWorkflow(Signal {
        signal_name,
        input: body.input,
        request_id: body.request_id,
        identity: body.identity,
    });
    let s = &record.state;
    state.applier.apply(&s.namespace, s.run_id, cmd).await?;
    Ok(AppJson(SignalResponse { run_id: s.run_id }))
}

/// A start request plus the signal's input; `request_id` and `identity`
/// serve both the start and the signal.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalWithStart {
    workflow_type: String,
    task_queue: String,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    signal_input: Value,
    #[serde(default)]
    workflow_execution_timeout: Option<Duration>,
    #[serde(default)]
    workflow_run_timeout: Option<Duration>,
    #[serde(default)]
    workflow_task_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "null_as_default")]
    id_reuse_policy: IdReusePolicy,
    #[serde(default)]
    request_id: Option<String>,
    /// A JSON object shown by describe and readable by the workflow.
    #[serde(default)]
    memo: Option<Value>,
    /// Retries the whole run when it fails or times out.
    #[serde(default)]
    retry_policy: Option<RetryPolicySpec>,
    #[serde(default)]
    identity: Option<String>,
}

impl Body for SignalWithStart {
    const PAYLOADS: &'static [&'static str] = &["/input", "/signal_input", "/memo"];
}

async fn signal_with_start(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id, signal_name)): AppPath<(String, String, String)>,
    AppJson(body): AppJson<SignalWithStart>,
) -> Result<(StatusCode, AppJson<StartResponse>), ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    check_workflow_id(&workflow_id)?;
    let signal = Signal {
        signal_name,
        input: body.signal_input,
        request_id: body.request_id.clone(),
        identity: body.identity.clone(),
    };
    let request = StartRequest {
        run: StartRun {
            namespace: ns,
            workflow_id: WorkflowId(workflow_id),
            run_id: RunId::generate(),
            workflow_type: body.workflow_type,
            task_queue: TaskQueue(body.task_queue),
            input: body.input,
            execution_timeout: body.workflow_execution_timeout,
            run_timeout: body.workflow_run_timeout,
            task_timeout: body.workflow_task_timeout,
            request_id: body.request_id,
            identity: body.identity,
            pinned_version: None,
            memo: body.memo,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    reason: String,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    identity: Option<String>,
}

impl Body for CancelBody {
    const PAYLOADS: &'static [&'static str] = &[];
}

/// Records a cancellation request; the workflow decides when and how it
/// closes (as Canceled, with CancelWorkflowExecution).
async fn cancel_workflow(
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    workflow_type: Option<String>,
    #[serde(default)]
    workflow_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    started_after: Option<Timestamp>,
    #[serde(default)]
    started_before: Option<Timestamp>,
    #[serde(default)]
    page_size: Option<i64>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Serialize)]
struct ExecutionList {
    executions: Vec<Execution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn list_workflows(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<AppJson<ExecutionList>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            RunStatus::parse(s).ok_or_else(|| ApiError::BadRequest(format!("unknown status {s:?}")))
        })
        .transpose()?;
    let filter = RunFilter {
        workflow_type: q.workflow_type,
        workflow_id: q.workflow_id.map(WorkflowId),
        status,
        started_after: q.started_after,
        started_before: q.started_before,
    };
    let limit = page_size(q.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let cursor = q
        .next_page_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(decode_cursor)
        .transpose()?;
    let runs = state
        .applier
        .store()
        .list_runs(&ns, &filter, cursor.as_ref(), limit)
        .await?;
    let next_page_token = runs
        .last()
        .filter(|_| runs.len() as i64 == limit)
        .map(|r| encode_cursor(r.start_time, r.run_id));
    Ok(AppJson(ExecutionList {
        executions: runs.into_iter().map(Into::into).collect(),
        next_page_token,
    }))
}

fn page_size(requested: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match requested {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "page_size {n} is not within 1..={max}"
        ))),
    }
}

fn encode_cursor(start_time: Timestamp, run_id: RunId) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{run_id}", start_time.millis()))
}

fn decode_cursor(token: &str) -> Result<RunCursor, ApiError> {
    let bad = || ApiError::BadRequest("invalid next_page_token".into());
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (ms, run) = raw.split_once(':').ok_or_else(bad)?;
    Ok(RunCursor {
        start_time: Timestamp(ms.parse().map_err(|_| bad())?),
        run_id: run.parse().map_err(|_| bad())?,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    /// The query's arguments, as the workflow's handler takes them.
    #[serde(default)]
    args: Value,
    #[serde(default)]
    run_id: Option<String>,
}

impl Body for QueryBody {
    const PAYLOADS: &'static [&'static str] = &["/args"];
}

#[derive(Serialize)]
struct QueryAnswer {
    run_id: RunId,
    result: Value,
}

/// Pushes a query to the run's endpoint and waits for the answer. Nothing
/// is written: works on closed runs, and never changes a history.
async fn query_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id, query_name)): AppPath<(String, String, String)>,
    AppJson(body): AppJson<QueryBody>,
) -> Result<AppJson<QueryAnswer>, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, body.run_id.as_deref()).await?;
    let s = &record.state;
    let result = state.querier.query(s, &query_name, &body.args).await?;
    Ok(AppJson(QueryAnswer {
        run_id: s.run_id,
        result,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    /// The update's arguments, as the workflow's handler takes them.
    #[serde(default)]
    args: Value,
    /// Identifies the update within the run; a retry with the same id gets
    /// the first update's outcome. Generated when absent.
    #[serde(default)]
    update_id: Option<String>,
    #[serde(default)]
    run_id: Option<String>,
    /// The stage to wait for; default COMPLETED.
    #[serde(default)]
    wait_for_stage: Option<UpdateStage>,
    #[serde(default)]
    identity: Option<String>,
}

impl Body for UpdateBody {
    const PAYLOADS: &'static [&'static str] = &["/args"];
}

#[derive(Serialize)]
struct UpdateOutcome {
    update_id: String,
    run_id: RunId,
    /// The stage reached: the one asked for, or an earlier one when the
    /// wait timed out.
    stage: UpdateStage,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<Failure>,
}

/// Validates an update with a synchronous push, records it, and waits for
/// the stage asked for. An update id the run has seen already is not
/// validated again: the caller gets (or waits for) the first one's outcome.
async fn update_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id, update_name)): AppPath<(String, String, String)>,
    AppJson(body): AppJson<UpdateBody>,
) -> Result<AppJson<UpdateOutcome>, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, body.run_id.as_deref()).await?;
    let update_id = body
        .update_id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let mut run = record.state;
    if !run.updates.contains_key(&update_id) {
        let update = Update {
            update_id: update_id.clone(),
            update_name,
            input: body.args,
            identity: body.identity,
        };
        let cmd = Command::AdmitUpdate(update.clone());
        // Refuses a closed run and bad input before the validation push;
        // nothing is written.
        engine::decide(&run, cmd.clone(), &state.applier.ctx())?;
        if let Some(failure) = state.querier.validate_update(&run, &update).await? {
            return Err(ApiError::UpdateRejected(failure));
        }
        run = std::sync::Arc::unwrap_or_clone(
            state.applier.apply(&run.namespace, run.run_id, cmd).await?,
        );
    }
    let stage = body.wait_for_stage.unwrap_or(UpdateStage::Completed);
    wait_update(&state, run, &update_id, stage).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PollUpdateQuery {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    wait_for_stage: Option<UpdateStage>,
}

/// An update's stage and outcome, waiting (boundedly) for the stage asked
/// for: the client side of an update handle.
async fn poll_update(
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
                None => result = Some(c.result),
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    /// The run to reset; the workflow's latest run if absent.
    #[serde(default)]
    run_id: Option<String>,
    /// A WorkflowTaskCompleted event id of that run; or `reset_type`.
    #[serde(default)]
    event_id: Option<i64>,
    #[serde(default)]
    reset_type: Option<ResetType>,
    reason: String,
    /// Default true; `null` is the default too.
    #[serde(default)]
    reapply_signals: Option<bool>,
    /// Makes retries of this request return the run the first one made.
    #[serde(default)]
    request_id: Option<String>,
}

impl Body for ResetBody {
    const PAYLOADS: &'static [&'static str] = &[];
}

/// Temporal's `ResetType` values that name a point without an event id.
#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum ResetType {
    FirstWorkflowTask,
    LastWorkflowTask,
}

#[derive(Serialize)]
struct ResetResponse {
    run_id: RunId,
}

/// Starts a new run with the history of a run up to a completed workflow
/// task (Temporal's ResetWorkflowExecution); the workflow id's open run is
/// terminated in the same commit.
async fn reset_workflow(
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
