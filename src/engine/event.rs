//! The history: what happened to a run, append-only, one [`Event`] per fact.
//!
//! Names and meanings follow Temporal's events where they match, so that
//! people who know Temporal can read a Baton history. Every attribute struct
//! is part of the persisted format and the push protocol (docs/protocol.md):
//! add optional fields only, never rename.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{ActivityId, RunId, TaskQueue, TimerId, WorkflowId};
use crate::time::{Duration, Timestamp};

use super::failure::{Failure, RetryState, TimeoutType};
use super::policy::IdReusePolicy;
use super::retry::RetryPolicy;
use super::search::{SearchAttributeValue, SearchAttributes};

/// One entry of a run's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// 1-based, dense, assigned in append order.
    pub event_id: i64,
    pub event_time: Timestamp,
    #[serde(flatten)]
    pub attributes: EventAttributes,
}

/// What happened, with the facts that belong to it. Serialized as
/// `{"event_type": "...", "attributes": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "attributes")]
pub enum EventAttributes {
    /// Boxed: the largest attributes, once per run.
    WorkflowExecutionStarted(Box<WorkflowExecutionStarted>),
    WorkflowTaskScheduled(WorkflowTaskScheduled),
    WorkflowTaskStarted(WorkflowTaskStarted),
    WorkflowTaskCompleted(WorkflowTaskCompleted),
    WorkflowTaskFailed(WorkflowTaskFailed),
    WorkflowTaskTimedOut(WorkflowTaskTimedOut),
    ActivityTaskScheduled(ActivityTaskScheduled),
    ActivityTaskStarted(ActivityTaskStarted),
    ActivityTaskCompleted(ActivityTaskCompleted),
    ActivityTaskFailed(ActivityTaskFailed),
    ActivityTaskTimedOut(ActivityTaskTimedOut),
    ActivityTaskCancelRequested(ActivityTaskCancelRequested),
    ActivityTaskCanceled(ActivityTaskCanceled),
    TimerStarted(TimerStarted),
    TimerFired(TimerFired),
    TimerCanceled(TimerCanceled),
    MarkerRecorded(MarkerRecorded),
    WorkflowExecutionCompleted(WorkflowExecutionCompleted),
    WorkflowExecutionFailed(WorkflowExecutionFailed),
    WorkflowExecutionTimedOut(WorkflowExecutionTimedOut),
    WorkflowExecutionCanceled(WorkflowExecutionCanceled),
    WorkflowExecutionTerminated(WorkflowExecutionTerminated),
    WorkflowExecutionSignaled(WorkflowExecutionSignaled),
    WorkflowExecutionCancelRequested(WorkflowExecutionCancelRequested),
    WorkflowExecutionOptionsUpdated(WorkflowExecutionOptionsUpdated),
    WorkflowExecutionUpdateAdmitted(WorkflowExecutionUpdateAdmitted),
    WorkflowExecutionUpdateAccepted(WorkflowExecutionUpdateAccepted),
    WorkflowExecutionUpdateCompleted(WorkflowExecutionUpdateCompleted),
    WorkflowExecutionContinuedAsNew(WorkflowExecutionContinuedAsNew),
    UpsertWorkflowSearchAttributes(UpsertWorkflowSearchAttributesEventAttributes),
    StartChildWorkflowExecutionInitiated(StartChildWorkflowExecutionInitiated),
    StartChildWorkflowExecutionFailed(StartChildWorkflowExecutionFailed),
    ChildWorkflowExecutionStarted(ChildWorkflowExecutionStarted),
    ChildWorkflowExecutionCompleted(ChildWorkflowExecutionCompleted),
    ChildWorkflowExecutionFailed(ChildWorkflowExecutionFailed),
    ChildWorkflowExecutionCanceled(ChildWorkflowExecutionCanceled),
    ChildWorkflowExecutionTimedOut(ChildWorkflowExecutionTimedOut),
    ChildWorkflowExecutionTerminated(ChildWorkflowExecutionTerminated),
    SignalExternalWorkflowExecutionInitiated(SignalExternalWorkflowExecutionInitiated),
    SignalExternalWorkflowExecutionFailed(SignalExternalWorkflowExecutionFailed),
    ExternalWorkflowExecutionSignaled(ExternalWorkflowExecutionSignaled),
    RequestCancelExternalWorkflowExecutionInitiated(
        RequestCancelExternalWorkflowExecutionInitiated,
    ),
    RequestCancelExternalWorkflowExecutionFailed(RequestCancelExternalWorkflowExecutionFailed),
    ExternalWorkflowExecutionCancelRequested(ExternalWorkflowExecutionCancelRequested),
}

impl EventAttributes {
    /// The `event_type` tag, as stored in its own column.
    pub fn event_type(&self) -> &'static str {
        match self {
            EventAttributes::WorkflowExecutionStarted(_) => "WorkflowExecutionStarted",
            EventAttributes::WorkflowTaskScheduled(_) => "WorkflowTaskScheduled",
            EventAttributes::WorkflowTaskStarted(_) => "WorkflowTaskStarted",
            EventAttributes::WorkflowTaskCompleted(_) => "WorkflowTaskCompleted",
            EventAttributes::WorkflowTaskFailed(_) => "WorkflowTaskFailed",
            EventAttributes::WorkflowTaskTimedOut(_) => "WorkflowTaskTimedOut",
            EventAttributes::ActivityTaskScheduled(_) => "ActivityTaskScheduled",
            EventAttributes::ActivityTaskStarted(_) => "ActivityTaskStarted",
            EventAttributes::ActivityTaskCompleted(_) => "ActivityTaskCompleted",
            EventAttributes::ActivityTaskFailed(_) => "ActivityTaskFailed",
            EventAttributes::ActivityTaskTimedOut(_) => "ActivityTaskTimedOut",
            EventAttributes::ActivityTaskCancelRequested(_) => "ActivityTaskCancelRequested",
            EventAttributes::ActivityTaskCanceled(_) => "ActivityTaskCanceled",
            EventAttributes::TimerStarted(_) => "TimerStarted",
            EventAttributes::TimerFired(_) => "TimerFired",
            EventAttributes::TimerCanceled(_) => "TimerCanceled",
            EventAttributes::MarkerRecorded(_) => "MarkerRecorded",
            EventAttributes::WorkflowExecutionCompleted(_) => "WorkflowExecutionCompleted",
            EventAttributes::WorkflowExecutionFailed(_) => "WorkflowExecutionFailed",
            EventAttributes::WorkflowExecutionTimedOut(_) => "WorkflowExecutionTimedOut",
            EventAttributes::WorkflowExecutionCanceled(_) => "WorkflowExecutionCanceled",
            EventAttributes::WorkflowExecutionTerminated(_) => "WorkflowExecutionTerminated",
            EventAttributes::WorkflowExecutionSignaled(_) => "WorkflowExecutionSignaled",
            EventAttributes::WorkflowExecutionCancelRequested(_) => {
                "WorkflowExecutionCancelRequested"
            }
            EventAttributes::WorkflowExecutionOptionsUpdated(_) => {
                "WorkflowExecutionOptionsUpdated"
            }
            EventAttributes::WorkflowExecutionUpdateAdmitted(_) => {
                "WorkflowExecutionUpdateAdmitted"
            }
            EventAttributes::WorkflowExecutionUpdateAccepted(_) => {
                "WorkflowExecutionUpdateAccepted"
            }
            EventAttributes::WorkflowExecutionUpdateCompleted(_) => {
                "WorkflowExecutionUpdateCompleted"
            }
            EventAttributes::WorkflowExecutionContinuedAsNew(_) => {
                "WorkflowExecutionContinuedAsNew"
            }
            EventAttributes::UpsertWorkflowSearchAttributes(_) => "UpsertWorkflowSearchAttributes",
            EventAttributes::StartChildWorkflowExecutionInitiated(_) => {
                "StartChildWorkflowExecutionInitiated"
            }
            EventAttributes::StartChildWorkflowExecutionFailed(_) => {
                "StartChildWorkflowExecutionFailed"
            }
            EventAttributes::ChildWorkflowExecutionStarted(_) => "ChildWorkflowExecutionStarted",
            EventAttributes::ChildWorkflowExecutionCompleted(_) => {
                "ChildWorkflowExecutionCompleted"
            }
            EventAttributes::ChildWorkflowExecutionFailed(_) => "ChildWorkflowExecutionFailed",
            EventAttributes::ChildWorkflowExecutionCanceled(_) => "ChildWorkflowExecutionCanceled",
            EventAttributes::ChildWorkflowExecutionTimedOut(_) => "ChildWorkflowExecutionTimedOut",
            EventAttributes::ChildWorkflowExecutionTerminated(_) => {
                "ChildWorkflowExecutionTerminated"
            }
            EventAttributes::SignalExternalWorkflowExecutionInitiated(_) => {
                "SignalExternalWorkflowExecutionInitiated"
            }
            EventAttributes::SignalExternalWorkflowExecutionFailed(_) => {
                "SignalExternalWorkflowExecutionFailed"
            }
            EventAttributes::ExternalWorkflowExecutionSignaled(_) => {
                "ExternalWorkflowExecutionSignaled"
            }
            EventAttributes::RequestCancelExternalWorkflowExecutionInitiated(_) => {
                "RequestCancelExternalWorkflowExecutionInitiated"
            }
            EventAttributes::RequestCancelExternalWorkflowExecutionFailed(_) => {
                "RequestCancelExternalWorkflowExecutionFailed"
            }
            EventAttributes::ExternalWorkflowExecutionCancelRequested(_) => {
                "ExternalWorkflowExecutionCancelRequested"
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionStarted {
    pub workflow_type: String,
    pub task_queue: TaskQueue,
    #[serde(default)]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_execution_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_run_timeout: Option<Duration>,
    pub workflow_task_timeout: Duration,
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The endpoint version of the task queue the run is pinned to: the
    /// queue's current version when the run started. Absent if the queue
    /// had none; the run is then pinned by its first workflow task push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<Value>,
    /// The custom search attributes the run starts with, typed.
    #[serde(default, skip_serializing_if = "SearchAttributes::is_empty")]
    pub search_attributes: SearchAttributes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// The deadline of the whole chain (the execution timeout spans
    /// continue-as-new and retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_execution_expiration_time: Option<Timestamp>,
    /// The first workflow task waits this long (a retry's back-off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_workflow_task_backoff: Option<Duration>,
    /// The run this one continues (continue-as-new or retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued_execution_run_id: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<ContinueAsNewInitiator>,
    /// The failure of the attempt a retry follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued_failure: Option<Failure>,
    /// The first run of the chain; kept by reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_execution_run_id: Option<RunId>,
    /// The run this event was first written for; a reset copies the event
    /// and keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_execution_run_id: Option<RunId>,
    /// Set when the run is a child workflow; carried to every later run of
    /// its chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentInfo>,
}

/// What started the next run of a chain. Values match Temporal's
/// `ContinueAsNewInitiator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContinueAsNewInitiator {
    /// The workflow asked (ContinueAsNewWorkflowExecution).
    Workflow,
    /// The workflow retry policy.
    Retry,
}

/// The parent of a child workflow run: which run started it, from which
/// StartChildWorkflowExecutionInitiated event, and what the parent's close
/// does to it. (Temporal's parent_workflow_execution and
/// parent_initiated_event_id.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParentInfo {
    pub workflow_id: WorkflowId,
    pub run_id: RunId,
    pub initiated_event_id: i64,
    pub parent_close_policy: ParentClosePolicy,
}

/// What happens to an open child when its parent closes. Temporal's names;
/// TERMINATE is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParentClosePolicy {
    #[default]
    Terminate,
    Abandon,
    RequestCancel,
}

/// A workflow run, as Temporal names it in events. `run_id` is absent when
/// a command named only the workflow id (its current run is meant).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecution {
    pub workflow_id: WorkflowId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowTaskScheduled {
    pub task_queue: TaskQueue,
    pub start_to_close_timeout: Duration,
    pub attempt: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowTaskStarted {
    pub scheduled_event_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_size_bytes: Option<u64>,
    #[serde(default)]
    pub suggest_continue_as_new: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowTaskCompleted {
    pub scheduled_event_id: i64,
    pub started_event_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// Why the server (or the SDK) refused a workflow task's outcome. Values
/// match Temporal's `WorkflowTaskFailedCause` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkflowTaskFailedCause {
    UnhandledCommand,
    BadScheduleActivityAttributes,
    BadRequestCancelActivityAttributes,
    BadStartTimerAttributes,
    BadCancelTimerAttributes,
    BadRecordMarkerAttributes,
    BadCompleteWorkflowExecutionAttributes,
    BadFailWorkflowExecutionAttributes,
    BadCancelWorkflowExecutionAttributes,
    /// CompleteWorkflowUpdate names an update that was not delivered to
    /// this task or an earlier one, or that completed already.
    BadUpdateWorkflowExecutionMessage,
    BadStartChildExecutionAttributes,
    BadSignalWorkflowExecutionAttributes,
    BadRequestCancelExternalWorkflowExecutionAttributes,
    ScheduleActivityDuplicateId,
    StartTimerDuplicateId,
    BadContinueAsNewAttributes,
    /// A search attribute that is not registered, or a value of the wrong
    /// type (UpsertWorkflowSearchAttributes, a child's or the next run's).
    BadSearchAttributes,
    PayloadsTooLarge,
    /// Written into a reset run after the copied history: the workflow task
    /// at the reset point did not count.
    ResetWorkflow,
    /// Reported by the SDK: replay diverged from the history.
    NonDeterministicError,
    /// Reported by the SDK: workflow code raised an error that is not a
    /// workflow failure (a bug to be fixed and redeployed).
    WorkflowWorkerUnhandledFailure,
    /// The server refused a workflow-task heartbeat: too many in a row
    /// (`Limits::max_workflow_task_heartbeats`).
    ForceCloseCommand,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowTaskFailed {
    pub scheduled_event_id: i64,
    pub started_event_id: i64,
    pub cause: WorkflowTaskFailedCause,
    pub failure: Failure,
    /// For RESET_WORKFLOW: the run the history was copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_run_id: Option<RunId>,
    /// For RESET_WORKFLOW: the run this event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_run_id: Option<RunId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowTaskTimedOut {
    pub scheduled_event_id: i64,
    pub started_event_id: i64,
    pub timeout_type: TimeoutType,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityTaskScheduled {
    pub activity_id: ActivityId,
    pub activity_type: String,
    pub task_queue: TaskQueue,
    #[serde(default)]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_to_close_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_to_start_timeout: Option<Duration>,
    pub start_to_close_timeout: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_timeout: Option<Duration>,
    pub retry_policy: RetryPolicy,
    pub workflow_task_completed_event_id: i64,
    /// Attempt 1 was started by a checkpoint and run by the handler itself
    /// (docs/protocol.md §5.9); replay ignores it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
}

/// Written lazily, as Temporal does: only when the activity closes, carrying
/// the attempt that closed it and the failure of the attempt before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityTaskStarted {
    pub scheduled_event_id: i64,
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Failure>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityTaskCompleted {
    pub scheduled_event_id: i64,
    pub started_event_id: i64,
    #[serde(default)]
    pub result: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityTaskFailed {
    pub scheduled_event_id: i64,
    pub started_event_id: i64,
    pub failure: Failure,
    pub retry_state: RetryState,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityTaskTimedOut {
    pub scheduled_event_id: i64,
    pub started_event_id: i64,
    pub failure: Failure,
    pub retry_state: RetryState,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityTaskCancelRequested {
    pub scheduled_event_id: i64,
    pub workflow_task_completed_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityTaskCanceled {
    pub scheduled_event_id: i64,
    /// Zero when the activity was cancelled before any attempt started.
    pub started_event_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimerStarted {
    pub timer_id: TimerId,
    pub start_to_fire_timeout: Duration,
    pub workflow_task_completed_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimerFired {
    pub timer_id: TimerId,
    pub started_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimerCanceled {
    pub timer_id: TimerId,
    pub started_event_id: i64,
    pub workflow_task_completed_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarkerRecorded {
    pub marker_name: String,
    #[serde(default)]
    pub details: Value,
    pub workflow_task_completed_event_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionCompleted {
    #[serde(default)]
    pub result: Value,
    pub workflow_task_completed_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionFailed {
    pub failure: Failure,
    pub retry_state: RetryState,
    pub workflow_task_completed_event_id: i64,
    /// With retry_state IN_PROGRESS: the next attempt's run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_execution_run_id: Option<RunId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionTimedOut {
    pub timeout_type: TimeoutType,
    pub retry_state: RetryState,
    /// With retry_state IN_PROGRESS: the next attempt's run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_execution_run_id: Option<RunId>,
}

/// The run closed and its chain goes on in `new_execution_run_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionContinuedAsNew {
    pub new_execution_run_id: RunId,
    pub workflow_type: String,
    pub task_queue: TaskQueue,
    #[serde(default)]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_run_timeout: Option<Duration>,
    pub workflow_task_timeout: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_start_interval: Option<Duration>,
    pub initiator: ContinueAsNewInitiator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<Value>,
    /// The next run's search attributes, when the command gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_attributes: Option<SearchAttributes>,
    pub workflow_task_completed_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionCanceled {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    pub workflow_task_completed_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionTerminated {
    #[serde(default)]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionSignaled {
    pub signal_name: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A client asked the workflow to cancel; the workflow answers with
/// CancelWorkflowExecution (or ignores it). `cause` is the caller's reason,
/// as in Temporal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionCancelRequested {
    #[serde(default)]
    pub cause: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// An operator changed the run's options: today only its versioning
/// override, which re-pins the run to another endpoint version (an
/// audited `move-runs`). Temporal's event of the same name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionOptionsUpdated {
    pub versioning_override: VersioningOverride,
    /// The version the run was pinned to before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_pinned_version: Option<String>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// An update passed the workflow's validator and waits for a workflow task
/// to deliver it to its handler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionUpdateAdmitted {
    pub update_id: String,
    pub update_name: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// Pins a run to an endpoint version of its task queue, whatever version
/// is current.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersioningOverride {
    pub pinned_version: String,
}

/// The workflow task that delivered the update completed: its handler runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionUpdateAccepted {
    pub update_id: String,
    pub admitted_event_id: i64,
}

/// The update's handler finished, with `result` or `failure`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowExecutionUpdateCompleted {
    pub update_id: String,
    pub accepted_event_id: i64,
    #[serde(default)]
    pub result: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub workflow_task_completed_event_id: i64,
}

/// Workflow code set or removed custom search attributes: each value
/// typed, `null` for one removed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpsertWorkflowSearchAttributesEventAttributes {
    pub workflow_task_completed_event_id: i64,
    pub search_attributes: std::collections::BTreeMap<String, Option<SearchAttributeValue>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartChildWorkflowExecutionInitiated {
    pub workflow_id: WorkflowId,
    pub workflow_type: String,
    pub task_queue: TaskQueue,
    #[serde(default)]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_execution_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_run_timeout: Option<Duration>,
    pub workflow_task_timeout: Duration,
    pub parent_close_policy: ParentClosePolicy,
    pub workflow_id_reuse_policy: IdReusePolicy,
    /// The child's workflow retry policy, passed to its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<Value>,
    /// The child's search attributes (a child inherits none).
    #[serde(default, skip_serializing_if = "SearchAttributes::is_empty")]
    pub search_attributes: SearchAttributes,
    pub workflow_task_completed_event_id: i64,
}

/// Why a child could not be started. Temporal's
/// `StartChildWorkflowExecutionFailedCause`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StartChildWorkflowExecutionFailedCause {
    WorkflowAlreadyExists,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartChildWorkflowExecutionFailed {
    pub workflow_id: WorkflowId,
    pub workflow_type: String,
    pub cause: StartChildWorkflowExecutionFailedCause,
    pub initiated_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildWorkflowExecutionStarted {
    pub workflow_execution: WorkflowExecution,
    pub workflow_type: String,
    pub initiated_event_id: i64,
}

/// What every closing event of a child names: the child's run, its type and
/// the parent's Initiated and Started events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildExecution {
    pub workflow_execution: WorkflowExecution,
    pub workflow_type: String,
    pub initiated_event_id: i64,
    pub started_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildWorkflowExecutionCompleted {
    #[serde(default)]
    pub result: Value,
    #[serde(flatten)]
    pub child: ChildExecution,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildWorkflowExecutionFailed {
    pub failure: Failure,
    pub retry_state: RetryState,
    #[serde(flatten)]
    pub child: ChildExecution,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildWorkflowExecutionCanceled {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    #[serde(flatten)]
    pub child: ChildExecution,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildWorkflowExecutionTimedOut {
    pub retry_state: RetryState,
    #[serde(flatten)]
    pub child: ChildExecution,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildWorkflowExecutionTerminated {
    #[serde(flatten)]
    pub child: ChildExecution,
}

/// Why a signal or cancellation request could not reach its target.
/// Temporal's `SignalExternalWorkflowExecutionFailedCause` /
/// `CancelExternalWorkflowExecutionFailedCause`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExternalWorkflowExecutionFailedCause {
    /// No open run matched (unknown id, closed run, or not this run's child
    /// when `child_workflow_only`).
    ExternalWorkflowExecutionNotFound,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalExternalWorkflowExecutionInitiated {
    pub workflow_execution: WorkflowExecution,
    pub signal_name: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub child_workflow_only: bool,
    pub workflow_task_completed_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalExternalWorkflowExecutionFailed {
    pub workflow_execution: WorkflowExecution,
    pub cause: ExternalWorkflowExecutionFailedCause,
    pub initiated_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExternalWorkflowExecutionSignaled {
    pub workflow_execution: WorkflowExecution,
    pub initiated_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestCancelExternalWorkflowExecutionInitiated {
    pub workflow_execution: WorkflowExecution,
    #[serde(default)]
    pub child_workflow_only: bool,
    #[serde(default)]
    pub reason: String,
    pub workflow_task_completed_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestCancelExternalWorkflowExecutionFailed {
    pub workflow_execution: WorkflowExecution,
    pub cause: ExternalWorkflowExecutionFailedCause,
    pub initiated_event_id: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExternalWorkflowExecutionCancelRequested {
    pub workflow_execution: WorkflowExecution,
    pub initiated_event_id: i64,
}
