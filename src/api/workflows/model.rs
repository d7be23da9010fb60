//! The wire shapes of the workflow routes: request bodies and query
//! strings (each body names its payload members for `extract`), response
//! bodies, and their conversions from domain types. They mirror
//! `openapi/openapi.yaml`; changing one changes the public contract.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::extract::{null_as_default, Body};
use crate::engine::{
    ActivityOutcome, Buffered, BufferedEntry, ChildExecution, ChildOutcome, Event, EventAttributes,
    Failure, IdConflictPolicy, IdReusePolicy, ParentClosePolicy, ParentInfo, RetryPolicy,
    RetryPolicySpec, RunState, RunStatus, SearchAttributes, UpdateStage,
};
use crate::ids::{Namespace, RunId, TaskQueue, WorkflowId};
use crate::store::RunSummary;
use crate::time::{Duration, Timestamp};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StartWorkflow {
    pub(super) workflow_type: String,
    pub(super) task_queue: String,
    #[serde(default)]
    pub(super) input: Value,
    #[serde(default)]
    pub(super) workflow_execution_timeout: Option<Duration>,
    #[serde(default)]
    pub(super) workflow_run_timeout: Option<Duration>,
    #[serde(default)]
    pub(super) workflow_task_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(super) id_reuse_policy: IdReusePolicy,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(super) id_conflict_policy: IdConflictPolicy,
    /// Makes retries of this request idempotent.
    #[serde(default)]
    pub(super) request_id: Option<String>,
    /// A JSON object shown by describe and readable by the workflow.
    #[serde(default)]
    pub(super) memo: Option<Value>,
    /// Custom search attributes: plain JSON values by name, typed by the
    /// namespace's registry.
    #[serde(default)]
    pub(super) search_attributes: Option<serde_json::Map<String, Value>>,
    /// Retries the whole run when it fails or times out.
    #[serde(default)]
    pub(super) retry_policy: Option<RetryPolicySpec>,
    #[serde(default)]
    pub(super) identity: Option<String>,
}

impl Body for StartWorkflow {
    const PAYLOADS: &'static [&'static str] = &["/input", "/memo"];
}

#[derive(Serialize)]
pub(super) struct StartResponse {
    pub(super) run_id: RunId,
    pub(super) started: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunQuery {
    #[serde(default)]
    pub(super) run_id: Option<String>,
}

#[derive(Serialize)]
pub(super) struct Execution {
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
    /// A child's parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_workflow_id: Option<WorkflowId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_run_id: Option<RunId>,
    /// The endpoint version the run is pinned to (the list's column).
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned_version: Option<String>,
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
            parent_workflow_id: s.parent_workflow_id,
            parent_run_id: s.parent_run_id,
            pinned_version: s.pinned_version,
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
            parent_workflow_id: s.parent.as_ref().map(|p| p.workflow_id.clone()),
            parent_run_id: s.parent.as_ref().map(|p| p.run_id),
            pinned_version: s.pinned_version.clone(),
        }
    }
}

#[derive(Serialize)]
pub(super) struct Description {
    pub(super) execution: Execution,
    pub(super) history_size_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) pending_workflow_task: Option<PendingWorkflowTask>,
    pub(super) pending_activities: Vec<PendingActivity>,
    pub(super) pending_timers: Vec<PendingTimer>,
    /// A cancellation was requested (the workflow may still be running).
    pub(super) cancel_requested: bool,
    /// The endpoint version of the run's task queue it is pinned to;
    /// absent until an unpinned run's first push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) pinned_version: Option<String>,
    /// 1-based; counts the runs a workflow retry policy started.
    pub(super) attempt: u32,
    pub(super) first_execution_run_id: RunId,
    /// Set once the run closed and its chain went on (continue-as-new, a
    /// retry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) new_execution_run_id: Option<RunId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) memo: Option<Value>,
    /// The run's custom search attributes now, each with its type.
    pub(super) search_attributes: BTreeMap<String, TypedValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) retry_policy: Option<RetryPolicy>,
    /// Set for a child workflow: the run that started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) parent: Option<ParentInfo>,
    /// Every child this run initiated, oldest first, open or closed.
    pub(super) children: Vec<ChildSummary>,
    /// What waits behind the workflow task in flight, oldest first.
    pub(super) buffered_events: Vec<BufferedEvent>,
    /// Why a push of the run waits for its endpoint's flow control on the
    /// node that answers (`waiting for concurrency key customer_id=42
    /// (limit 1)`, `waiting for rate limit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) waiting_reason: Option<String>,
}

/// An event buffered behind the in-flight workflow task (not in the history
/// yet): its type, when it arrived, and the signal's or update's name.
#[derive(Serialize)]
pub(super) struct BufferedEvent {
    event_type: &'static str,
    time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

impl From<&Buffered> for BufferedEvent {
    fn from(b: &Buffered) -> BufferedEvent {
        let (event_type, name) = match &b.entry {
            BufferedEntry::Event(attrs) => {
                let name = match attrs {
                    EventAttributes::WorkflowExecutionSignaled(a) => Some(a.signal_name.clone()),
                    EventAttributes::WorkflowExecutionUpdateAdmitted(a) => {
                        Some(a.update_name.clone())
                    }
                    _ => None,
                };
                (attrs.event_type(), name)
            }
            BufferedEntry::ActivityClosed { outcome, .. } => (
                match outcome {
                    ActivityOutcome::Completed(_) => "ActivityTaskCompleted",
                    ActivityOutcome::Failed(..) => "ActivityTaskFailed",
                    ActivityOutcome::TimedOut(..) => "ActivityTaskTimedOut",
                    ActivityOutcome::Canceled(_) => "ActivityTaskCanceled",
                },
                None,
            ),
            BufferedEntry::ChildClosed { outcome, .. } => (
                match outcome {
                    ChildOutcome::Completed(_) => "ChildWorkflowExecutionCompleted",
                    ChildOutcome::Failed(..) => "ChildWorkflowExecutionFailed",
                    ChildOutcome::Canceled(_) => "ChildWorkflowExecutionCanceled",
                    ChildOutcome::TimedOut(_) => "ChildWorkflowExecutionTimedOut",
                    ChildOutcome::Terminated => "ChildWorkflowExecutionTerminated",
                },
                None,
            ),
        };
        BufferedEvent {
            event_type,
            time: b.time,
            name,
        }
    }
}

/// A search attribute's value with its type (`Keyword`, `Int`, …).
#[derive(Serialize)]
pub(super) struct TypedValue {
    #[serde(rename = "type")]
    kind: &'static str,
    value: Value,
}

/// Describe's form of a run's search attributes.
pub(super) fn typed_values(attributes: &SearchAttributes) -> BTreeMap<String, TypedValue> {
    attributes
        .iter()
        .map(|(name, v)| {
            let typed = TypedValue {
                kind: v.kind.as_str(),
                value: v.value.clone(),
            };
            (name.clone(), typed)
        })
        .collect()
}

#[derive(Serialize)]
pub(super) struct ChildSummary {
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
pub(super) fn children(history: &[Event]) -> Vec<ChildSummary> {
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
pub(super) struct PendingWorkflowTask {
    pub(super) attempt: u32,
    pub(super) scheduled_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) last_failure: Option<String>,
}

#[derive(Serialize)]
pub(super) struct PendingActivity {
    pub(super) activity_id: String,
    pub(super) activity_type: String,
    pub(super) task_queue: TaskQueue,
    /// SCHEDULED (waiting to be pushed), STARTED or CANCEL_REQUESTED.
    pub(super) state: &'static str,
    pub(super) attempt: u32,
    pub(super) maximum_attempts: u32,
    pub(super) scheduled_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) last_started_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_attempt_schedule_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) last_heartbeat_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) heartbeat_details: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) last_failure: Option<Failure>,
}

#[derive(Serialize)]
pub(super) struct PendingTimer {
    pub(super) timer_id: String,
    pub(super) started_event_id: i64,
    pub(super) fire_time: Timestamp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    #[serde(default)]
    pub(super) run_id: Option<String>,
    #[serde(default)]
    pub(super) page_size: Option<i64>,
    #[serde(default)]
    pub(super) next_page_token: Option<String>,
}

#[derive(Serialize)]
pub(super) struct HistoryPage {
    pub(super) run_id: RunId,
    pub(super) events: Vec<Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResultQuery {
    #[serde(default)]
    pub(super) run_id: Option<String>,
    /// How long to wait for the run to close (at most 60 s); 0 answers at once.
    #[serde(default)]
    pub(super) wait: Option<Duration>,
    /// Follow the chain (continue-as-new, retries) to its last run, as
    /// Temporal clients do by default; `false` answers for the named run.
    #[serde(default = "follow_runs_default")]
    pub(super) follow_runs: bool,
}

fn follow_runs_default() -> bool {
    true
}

#[derive(Serialize)]
pub(super) struct RunResult {
    pub(super) run_id: RunId,
    pub(super) status: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) failure: Option<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) close_time: Option<Timestamp>,
    /// The next run of the chain, when `follow_runs` is false (or the
    /// wait ended before the chain's last run closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) new_execution_run_id: Option<RunId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Terminate {
    #[serde(default)]
    pub(super) run_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(super) reason: String,
    #[serde(default)]
    pub(super) details: Option<Value>,
    #[serde(default)]
    pub(super) identity: Option<String>,
}

impl Body for Terminate {
    const PAYLOADS: &'static [&'static str] = &["/details"];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignalBody {
    #[serde(default)]
    pub(super) input: Value,
    #[serde(default)]
    pub(super) run_id: Option<String>,
    /// A signal with a request id the run has seen is not recorded again.
    #[serde(default)]
    pub(super) request_id: Option<String>,
    #[serde(default)]
    pub(super) identity: Option<String>,
}

impl Body for SignalBody {
    const PAYLOADS: &'static [&'static str] = &["/input"];
}

#[derive(Serialize)]
pub(super) struct SignalResponse {
    pub(super) run_id: RunId,
}

/// A start request plus the signal's input; `request_id` and `identity`
/// serve both the start and the signal.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignalWithStart {
    pub(super) workflow_type: String,
    pub(super) task_queue: String,
    #[serde(default)]
    pub(super) input: Value,
    #[serde(default)]
    pub(super) signal_input: Value,
    #[serde(default)]
    pub(super) workflow_execution_timeout: Option<Duration>,
    #[serde(default)]
    pub(super) workflow_run_timeout: Option<Duration>,
    #[serde(default)]
    pub(super) workflow_task_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(super) id_reuse_policy: IdReusePolicy,
    #[serde(default)]
    pub(super) request_id: Option<String>,
    /// A JSON object shown by describe and readable by the workflow.
    #[serde(default)]
    pub(super) memo: Option<Value>,
    /// As for a start.
    #[serde(default)]
    pub(super) search_attributes: Option<serde_json::Map<String, Value>>,
    /// Retries the whole run when it fails or times out.
    #[serde(default)]
    pub(super) retry_policy: Option<RetryPolicySpec>,
    #[serde(default)]
    pub(super) identity: Option<String>,
}

impl Body for SignalWithStart {
    const PAYLOADS: &'static [&'static str] = &["/input", "/signal_input", "/memo"];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CancelBody {
    #[serde(default)]
    pub(super) run_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(super) reason: String,
    #[serde(default)]
    pub(super) request_id: Option<String>,
    #[serde(default)]
    pub(super) identity: Option<String>,
}

impl Body for CancelBody {
    const PAYLOADS: &'static [&'static str] = &[];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// A list filter (`visibility`), ANDed with the plain filters below.
    #[serde(default)]
    pub(super) query: Option<String>,
    #[serde(default)]
    pub(super) workflow_type: Option<String>,
    #[serde(default)]
    pub(super) workflow_id: Option<String>,
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) started_after: Option<Timestamp>,
    #[serde(default)]
    pub(super) started_before: Option<Timestamp>,
    #[serde(default)]
    pub(super) page_size: Option<i64>,
    #[serde(default)]
    pub(super) next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CountParams {
    #[serde(default)]
    pub(super) query: Option<String>,
}

/// Temporal's CountWorkflowExecutionsResponse: the total, and with GROUP
/// BY one group per value (the total is their sum).
#[derive(Serialize)]
pub(super) struct ExecutionCount {
    pub(super) count: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) groups: Vec<CountGroup>,
}

#[derive(Serialize)]
pub(super) struct CountGroup {
    pub(super) group_values: Vec<String>,
    pub(super) count: i64,
}

#[derive(Serialize)]
pub(super) struct ExecutionList {
    pub(super) executions: Vec<Execution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QueryBody {
    /// The query's arguments, as the workflow's handler takes them.
    #[serde(default)]
    pub(super) args: Value,
    #[serde(default)]
    pub(super) run_id: Option<String>,
}

impl Body for QueryBody {
    const PAYLOADS: &'static [&'static str] = &["/args"];
}

#[derive(Serialize)]
pub(super) struct QueryAnswer {
    pub(super) run_id: RunId,
    pub(super) result: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateBody {
    /// The update's arguments, as the workflow's handler takes them.
    #[serde(default)]
    pub(super) args: Value,
    /// Identifies the update within the run; a retry with the same id gets
    /// the first update's outcome. Generated when absent.
    #[serde(default)]
    pub(super) update_id: Option<String>,
    #[serde(default)]
    pub(super) run_id: Option<String>,
    /// The stage to wait for; default COMPLETED.
    #[serde(default)]
    pub(super) wait_for_stage: Option<UpdateStage>,
    #[serde(default)]
    pub(super) identity: Option<String>,
}

impl Body for UpdateBody {
    const PAYLOADS: &'static [&'static str] = &["/args"];
}

#[derive(Serialize)]
pub(super) struct UpdateOutcome {
    pub(super) update_id: String,
    pub(super) run_id: RunId,
    /// The stage reached: the one asked for, or an earlier one when the
    /// wait timed out.
    pub(super) stage: UpdateStage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) failure: Option<Failure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PollUpdateQuery {
    #[serde(default)]
    pub(super) run_id: Option<String>,
    #[serde(default)]
    pub(super) wait_for_stage: Option<UpdateStage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResetBody {
    /// The run to reset; the workflow's latest run if absent.
    #[serde(default)]
    pub(super) run_id: Option<String>,
    /// A WorkflowTaskCompleted event id of that run; or `reset_type`.
    #[serde(default)]
    pub(super) event_id: Option<i64>,
    #[serde(default)]
    pub(super) reset_type: Option<ResetType>,
    pub(super) reason: String,
    /// Default true; `null` is the default too.
    #[serde(default)]
    pub(super) reapply_signals: Option<bool>,
    /// Makes retries of this request return the run the first one made.
    #[serde(default)]
    pub(super) request_id: Option<String>,
}

impl Body for ResetBody {
    const PAYLOADS: &'static [&'static str] = &[];
}

/// Temporal's `ResetType` values that name a point without an event id.
#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum ResetType {
    FirstWorkflowTask,
    LastWorkflowTask,
}

#[derive(Serialize)]
pub(super) struct ResetResponse {
    pub(super) run_id: RunId,
}
