//! What can happen to a run: engine inputs ([`Command`]) and the commands an
//! SDK returns from a workflow task ([`WorkflowCommand`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{ActivityId, Namespace, RunId, TaskQueue, TimerId, WorkflowId};
use crate::time::{Duration, Timestamp};

use super::effect::Task;
use super::event::{
    ContinueAsNewInitiator, ExternalWorkflowExecutionFailedCause, ParentClosePolicy, ParentInfo,
    StartChildWorkflowExecutionFailedCause, WorkflowTaskFailedCause,
};
use super::failure::{Failure, RetryState};
use super::policy::IdReusePolicy;
use super::retry::RetryPolicySpec;
use super::search::{Registry, SearchAttributes};
use super::token::{ActivityToken, ContinuationToken, WorkflowTaskToken};

/// Everything needed to create a run; the first input of every run.
#[derive(Clone, Debug, PartialEq)]
pub struct StartRun {
    pub namespace: Namespace,
    pub workflow_id: WorkflowId,
    pub run_id: RunId,
    pub workflow_type: String,
    pub task_queue: TaskQueue,
    pub input: Value,
    pub execution_timeout: Option<Duration>,
    pub run_timeout: Option<Duration>,
    pub task_timeout: Option<Duration>,
    pub request_id: Option<String>,
    pub identity: Option<String>,
    /// The endpoint version to pin the run to (the queue's current one,
    /// filled in by `Applier::start`), or `None` to pin it on its first
    /// push. A run the engine starts itself (the next run of a chain) takes
    /// `None`, never its predecessor's pin: a new run is the upgrade point.
    pub pinned_version: Option<String>,
    /// A JSON object of non-indexed fields shown by describe (Temporal's
    /// memo).
    pub memo: Option<Value>,
    /// Custom search attributes, typed by the namespace's registry.
    pub search_attributes: SearchAttributes,
    /// Retries of the whole run when it fails or times out (Temporal's
    /// workflow retry policy); `None`: a failed run stays failed.
    pub retry_policy: Option<RetryPolicySpec>,
    /// Set when the run is the next run of a chain.
    pub chain: Option<Chain>,
    /// Set when a parent starts the run as its child (and carried to every
    /// later run of the child's chain).
    pub parent: Option<ParentInfo>,
    /// The trace the run joins (from the start request, or the previous
    /// run of its chain, or its parent).
    pub trace_context: Option<TraceContext>,
}

/// A W3C Trace Context (`traceparent` and `tracestate` header values),
/// kept as the text the edge checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    pub traceparent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

/// How a run continues an earlier run of its chain (continue-as-new or a
/// retry): the facts WorkflowExecutionStarted records about the chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Chain {
    pub initiator: ContinueAsNewInitiator,
    pub continued_execution_run_id: RunId,
    pub first_execution_run_id: RunId,
    /// 1 after continue-as-new, the previous attempt + 1 after a retry.
    pub attempt: u32,
    /// The execution timeout spans the chain: its deadline is carried.
    pub execution_expiration_time: Option<Timestamp>,
    /// Delay before the first workflow task (retry back-off, or
    /// continue-as-new's `backoff_start_interval`).
    pub first_workflow_task_backoff: Option<Duration>,
    /// The failure that made a retry start this run.
    pub continued_failure: Option<Failure>,
}

/// Where a reset forks the old run: after a completed workflow task.
#[derive(Clone, Debug, PartialEq)]
pub enum ResetPoint {
    /// The id of a WorkflowTaskCompleted event.
    WorkflowTaskCompleted(i64),
    FirstWorkflowTask,
    LastWorkflowTask,
}

/// A reset request after parsing (Temporal's ResetWorkflowExecution).
#[derive(Clone, Debug, PartialEq)]
pub struct Reset {
    pub point: ResetPoint,
    pub reason: String,
    /// Re-apply the signals recorded after the point to the new run.
    pub reapply_signals: bool,
    /// The endpoint version to pin the new run to; `None` keeps the old
    /// run's.
    pub pinned_version: Option<String>,
}

/// An input to an existing run. Each one comes from exactly one edge: the
/// dispatcher (push outcomes), the timer service (due timers) or the API.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// The SDK answered a workflow task with commands.
    CompleteWorkflowTask {
        token: WorkflowTaskToken,
        commands: Vec<WorkflowCommand>,
        identity: Option<String>,
        /// Workflow-task heartbeat (Temporal's
        /// `force_create_new_workflow_task`): the SDK answered early to keep
        /// local activities going and wants the next task at once.
        force_create_new_workflow_task: bool,
        /// The namespace's search attributes, which the commands' are
        /// typed against (empty when no command sets any).
        search_attributes: Registry,
    },
    /// The SDK answered a workflow task with a failure (non-determinism, a
    /// bug in workflow code).
    FailWorkflowTask {
        token: WorkflowTaskToken,
        cause: WorkflowTaskFailedCause,
        failure: Failure,
    },
    /// The push of a workflow task failed in transport (connection error,
    /// timeout, 5xx, garbage answer). Retried with back-off.
    WorkflowTaskUndelivered {
        token: WorkflowTaskToken,
        timed_out: bool,
        error: String,
    },
    /// A dispatcher took a waiting activity (first push after a transport
    /// failure, or a retry after back-off) and is about to push it.
    StartActivityAttempt {
        scheduled_event_id: i64,
    },
    /// The dispatcher sent the current attempt's push later than the
    /// attempt started (it waited for the endpoint's concurrency limit):
    /// the attempt's start time, and with it the start-to-close and
    /// heartbeat clocks, move to now, as a Temporal activity starts when a
    /// worker picks it up. The schedule-to-close deadline does not move.
    ActivityAttemptSent {
        token: ActivityToken,
    },
    /// The push of an activity task failed before the handler could start it
    /// (connection refused, 429, 503). Not an attempt failure.
    ActivityUndelivered {
        token: ActivityToken,
        error: String,
    },
    CompleteActivity {
        token: ActivityToken,
        result: Value,
    },
    FailActivity {
        token: ActivityToken,
        failure: Failure,
    },
    /// The handler acknowledges a requested cancellation.
    ReportActivityCanceled {
        token: ActivityToken,
        details: Option<Value>,
    },
    RecordActivityHeartbeat {
        token: ActivityToken,
        details: Option<Value>,
    },
    /// A durable timer row came due.
    FireTimer(Task),
    TerminateWorkflow {
        reason: String,
        details: Option<Value>,
        identity: Option<String>,
    },
    /// A client signalled the run (WorkflowExecutionSignaled).
    SignalWorkflow(Signal),
    /// A client asked the workflow to cancel itself
    /// (WorkflowExecutionCancelRequested); the workflow decides how.
    RequestCancelWorkflow {
        reason: String,
        request_id: Option<String>,
        identity: Option<String>,
    },
    /// A client's update passed the workflow's validator
    /// (WorkflowExecutionUpdateAdmitted). An update id the run has seen
    /// already makes it a no-op.
    AdmitUpdate(Update),
    /// The dispatcher is about to push the first workflow task of a run
    /// that started unpinned: pin it to the version it pushes to. A no-op
    /// for a pinned run.
    PinVersion {
        version: String,
    },
    /// An operator moves the run from one endpoint version to another
    /// (WorkflowExecutionOptionsUpdated). `from_version` must be the run's
    /// pin, so a concurrent move is never overwritten.
    UpdateWorkflowExecutionOptions(MoveToVersion),
    /// The transfer service started the child of a
    /// StartChildWorkflowExecutionInitiated event.
    ChildStarted {
        initiated_event_id: i64,
        run_id: RunId,
    },
    /// The transfer service could not start that child.
    ChildStartFailed {
        initiated_event_id: i64,
        cause: StartChildWorkflowExecutionFailedCause,
    },
    /// A child's chain closed for good (`run_id` is its last run,
    /// `first_run_id` the run its start created).
    ChildClosed {
        initiated_event_id: i64,
        first_run_id: RunId,
        run_id: RunId,
        outcome: ChildOutcome,
    },
    /// The signal or cancellation request of an
    /// ...ExternalWorkflowExecutionInitiated event reached its target.
    ExternalRequestDelivered {
        initiated_event_id: i64,
    },
    /// It could not reach its target.
    ExternalRequestFailed {
        initiated_event_id: i64,
        cause: ExternalWorkflowExecutionFailedCause,
    },
    /// A handler commits a step of a workflow task that runs activities
    /// inline (docs/protocol.md §5.9).
    Checkpoint(Box<Checkpoint>),
}

/// A checkpoint, after parsing.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub from: CheckpointFrom,
    /// Outcomes of inline attempts, in the request's order.
    pub completions: Vec<(ActivityToken, InlineOutcome)>,
    /// The next activation's commands; `None`: completions only.
    pub commands: Option<Vec<WorkflowCommand>>,
    /// Activity ids among `commands` that the handler runs itself.
    pub inline: Vec<ActivityId>,
    /// The handler's workflow time for `commands` (continuations).
    pub workflow_time: Option<Timestamp>,
    pub identity: Option<String>,
    /// The namespace's search attributes, for the commands.
    pub search_attributes: Registry,
}

/// What a checkpoint continues.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CheckpointFrom {
    /// The first checkpoint of a session: the pushed workflow task.
    WorkflowTask(WorkflowTaskToken),
    /// A later one: the previous checkpoint's continuation.
    Continuation(ContinuationToken),
}

/// How an inline attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum InlineOutcome {
    Completed(Value),
    Failed(Failure),
    Canceled(Option<Value>),
}

/// The audited change of a run's pinned version.
#[derive(Clone, Debug, PartialEq)]
pub struct MoveToVersion {
    pub from_version: String,
    pub to_version: String,
    pub reason: String,
    pub identity: Option<String>,
}

/// How a child workflow's chain ended, as its parent records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ChildOutcome {
    Completed(Value),
    Failed(Failure, RetryState),
    Canceled(Option<Value>),
    TimedOut(RetryState),
    Terminated,
}

/// A signal from a client, as recorded in WorkflowExecutionSignaled. A
/// request id the run has seen already makes the signal a no-op.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    pub signal_name: String,
    pub input: Value,
    pub request_id: Option<String>,
    pub identity: Option<String>,
}

/// An update from a client, as recorded in WorkflowExecutionUpdateAdmitted.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    pub update_id: String,
    pub update_name: String,
    pub input: Value,
    pub identity: Option<String>,
}

/// A command returned by workflow code in a workflow task response, named
/// after Temporal's command types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command_type", content = "attributes")]
pub enum WorkflowCommand {
    ScheduleActivityTask(ScheduleActivityTask),
    RequestCancelActivityTask(RequestCancelActivityTask),
    StartTimer(StartTimer),
    CancelTimer(CancelTimer),
    RecordMarker(RecordMarker),
    CompleteWorkflowExecution(CompleteWorkflowExecution),
    FailWorkflowExecution(FailWorkflowExecution),
    CancelWorkflowExecution(CancelWorkflowExecution),
    CompleteWorkflowUpdate(CompleteWorkflowUpdate),
    ContinueAsNewWorkflowExecution(ContinueAsNewWorkflowExecution),
    StartChildWorkflowExecution(StartChildWorkflowExecution),
    SignalExternalWorkflowExecution(SignalExternalWorkflowExecution),
    RequestCancelExternalWorkflowExecution(RequestCancelExternalWorkflowExecution),
    UpsertWorkflowSearchAttributes(UpsertWorkflowSearchAttributes),
}

impl WorkflowCommand {
    /// True if the command names custom search attributes (and so needs
    /// the namespace's registry to be checked).
    pub fn sets_search_attributes(&self) -> bool {
        match self {
            WorkflowCommand::UpsertWorkflowSearchAttributes(_) => true,
            WorkflowCommand::StartChildWorkflowExecution(c) => c.search_attributes.is_some(),
            WorkflowCommand::ContinueAsNewWorkflowExecution(c) => c.search_attributes.is_some(),
            _ => false,
        }
    }

    pub fn closes_workflow(&self) -> bool {
        matches!(
            self,
            WorkflowCommand::CompleteWorkflowExecution(_)
                | WorkflowCommand::FailWorkflowExecution(_)
                | WorkflowCommand::CancelWorkflowExecution(_)
                | WorkflowCommand::ContinueAsNewWorkflowExecution(_)
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleActivityTask {
    pub activity_id: ActivityId,
    pub activity_type: String,
    /// Defaults to the workflow's task queue.
    #[serde(default)]
    pub task_queue: Option<TaskQueue>,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub schedule_to_close_timeout: Option<Duration>,
    #[serde(default)]
    pub schedule_to_start_timeout: Option<Duration>,
    #[serde(default)]
    pub start_to_close_timeout: Option<Duration>,
    #[serde(default)]
    pub heartbeat_timeout: Option<Duration>,
    #[serde(default)]
    pub retry_policy: Option<RetryPolicySpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestCancelActivityTask {
    pub activity_id: ActivityId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartTimer {
    pub timer_id: TimerId,
    pub start_to_fire_timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelTimer {
    pub timer_id: TimerId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordMarker {
    pub marker_name: String,
    #[serde(default)]
    pub details: Value,
    #[serde(default)]
    pub failure: Option<Failure>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteWorkflowExecution {
    #[serde(default)]
    pub result: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailWorkflowExecution {
    pub failure: Failure,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelWorkflowExecution {
    #[serde(default)]
    pub details: Option<Value>,
}

/// The outcome of an update handler: `result`, or `failure` when the
/// handler raised an application error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteWorkflowUpdate {
    pub update_id: String,
    #[serde(default)]
    pub result: Value,
    #[serde(default)]
    pub failure: Option<Failure>,
}

/// Closes the run and starts the next run of its chain with a fresh
/// history. Every option not given is carried from the closing run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinueAsNewWorkflowExecution {
    #[serde(default)]
    pub workflow_type: Option<String>,
    #[serde(default)]
    pub task_queue: Option<TaskQueue>,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub workflow_run_timeout: Option<Duration>,
    #[serde(default)]
    pub workflow_task_timeout: Option<Duration>,
    #[serde(default)]
    pub memo: Option<Value>,
    /// The next run's search attributes (plain JSON by name); absent: the
    /// closing run's are carried over.
    #[serde(default)]
    pub search_attributes: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub retry_policy: Option<RetryPolicySpec>,
    /// Delay before the new run's first workflow task.
    #[serde(default)]
    pub backoff_start_interval: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartChildWorkflowExecution {
    pub workflow_id: WorkflowId,
    pub workflow_type: String,
    /// Defaults to the parent's task queue.
    #[serde(default)]
    pub task_queue: Option<TaskQueue>,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub workflow_execution_timeout: Option<Duration>,
    #[serde(default)]
    pub workflow_run_timeout: Option<Duration>,
    /// Defaults to the parent's workflow task timeout.
    #[serde(default)]
    pub workflow_task_timeout: Option<Duration>,
    #[serde(default)]
    pub retry_policy: Option<RetryPolicySpec>,
    #[serde(default)]
    pub workflow_id_reuse_policy: IdReusePolicy,
    #[serde(default)]
    pub parent_close_policy: ParentClosePolicy,
    #[serde(default)]
    pub memo: Option<Value>,
    /// The child's search attributes (plain JSON by name); it inherits
    /// none of the parent's.
    #[serde(default)]
    pub search_attributes: Option<serde_json::Map<String, Value>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalExternalWorkflowExecution {
    pub workflow_id: WorkflowId,
    /// Absent: the workflow id's current run.
    #[serde(default)]
    pub run_id: Option<RunId>,
    pub signal_name: String,
    #[serde(default)]
    pub input: Value,
    /// Refuse targets that are not children of this run.
    #[serde(default)]
    pub child_workflow_only: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestCancelExternalWorkflowExecution {
    pub workflow_id: WorkflowId,
    #[serde(default)]
    pub run_id: Option<RunId>,
    #[serde(default)]
    pub child_workflow_only: bool,
    #[serde(default)]
    pub reason: String,
}

/// Sets (or, with `null`, removes) custom search attributes of the run:
/// plain JSON values by name, typed by the namespace's registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertWorkflowSearchAttributes {
    pub search_attributes: serde_json::Map<String, Value>,
}
