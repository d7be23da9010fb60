//! The engine: every rule of Baton's workflow semantics as pure functions
//! over plain data. No IO, no clock reads, no randomness (tests/tidy.rs
//! checks the imports).
//!
//! The contract is `decide(&RunState, Command, &Ctx) -> Result<Transition,
//! Rejection>` (and [`decide_all`], its fold over many commands for one
//! group commit): the input state is never mutated; a [`Transition`] carries the
//! new events, the state after them and the [`Effect`]s the edges must carry
//! out, and the store commits all three in one transaction. A [`Rejection`]
//! is a domain "no" (a stale token, a closed run) that changes nothing.
//!
//! Invariants held here:
//! - at most one workflow task in flight per run; events that arrive while
//!   one is in flight are buffered and appended after its outcome;
//! - every answer is checked against the current task and attempt (fencing);
//! - a workflow task whose commands do not fit the history is recorded as
//!   WorkflowTaskFailed with a cause, never applied in part;
//! - a closed run absorbs every command.
//!
//! # Layers
//!
//! The modules depend one way, lower to higher (tests/tidy.rs fails on an
//! import against this order, and on one that names an item only through
//! this file's re-exports, which would hide where it lives):
//!
//! 1. types, each importing only those before it: `failure`, `token`,
//!    `retry`, `policy`, `search`, `event`, `effect`, `command`, `state` (the
//!    snapshot and its fold, `RunState::evolve`);
//! 2. this file: [`Ctx`], [`Limits`], [`Transition`], [`Rejection`];
//! 3. the rules, `decide/`: [`start`], [`decide`], [`reset`] and the rest,
//!    one file per concern around `decide/builder.rs` (the transition under
//!    construction); files inside `decide/` share the layer;
//! 4. `batch`: [`decide_all`], the fold of many commands into one
//!    transition.
//!
//! So the types know nothing of the rules, and a rule never needs a type
//! to call back into it.

mod batch;
mod command;
mod decide;
mod effect;
mod event;
mod failure;
mod policy;
mod retry;
mod search;
mod state;
mod token;

#[cfg(test)]
mod tests;

pub use batch::{decide_all, Batch};
pub use command::{
    CancelTimer, CancelWorkflowExecution, Chain, Checkpoint, CheckpointFrom, ChildOutcome, Command,
    CompleteWorkflowExecution, CompleteWorkflowUpdate, ContinueAsNewWorkflowExecution,
    FailWorkflowExecution, InlineOutcome, MoveToVersion, RecordMarker, RequestCancelActivityTask,
    RequestCancelExternalWorkflowExecution, Reset, ResetPoint, ScheduleActivityTask, Signal,
    SignalExternalWorkflowExecution, StartChildWorkflowExecution, StartRun, StartTimer,
    TraceContext, Update, UpsertWorkflowSearchAttributes, WorkflowCommand,
};
pub use decide::{
    child_outcome, decide, reset, start, start_decision, start_with_signal, terminate_for_reset,
    workflow_task_view, StartDecision, WorkflowTaskView,
};
pub use effect::{Dispatch, Effect, Queue, Task};
pub use event::*;
pub use failure::{
    ActivityFailureInfo, ChildWorkflowExecutionFailureInfo, Failure, FailureExtra, FailureKind,
    RetryState, TimeoutType,
};
pub use policy::{IdConflictPolicy, IdReusePolicy};
pub use retry::{RetryPolicy, RetryPolicySpec};
pub use search::{
    assign as assign_search_attributes, tokens as text_tokens,
    typed_set as typed_search_attributes, AssignError, RegisteredAttribute, Registry,
    SearchAttributeType, SearchAttributeValue, SearchAttributes, Slot,
};
pub use state::{
    Activity, ActivityOutcome, ActivityPhase, Buffered, BufferedEntry, Child, ChildPhase, RunState,
    RunStatus, Timer, UpdateStage, UpdateState, SEEN_SIGNAL_REQUEST_IDS,
};
pub use token::{
    ActivityToken, ContinuationToken, HistoryReference, TaskToken, TokenError, TokenKind,
    WorkflowTaskToken,
};

use crate::ids::{ActivityId, RunId};
use crate::time::{Duration, Timestamp};

/// What the engine may know besides the run: the time, the limits, and a
/// fresh run id the edge generated (the engine has no randomness), used
/// only when the command starts the next run of the chain.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub now: Timestamp,
    pub limits: Limits,
    pub next_run_id: RunId,
}

/// Size limits and workflow-task back-off, with Temporal's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest single payload (input, result, details), in bytes.
    pub max_payload_bytes: u64,
    pub suggest_continue_as_new_events: i64,
    pub suggest_continue_as_new_bytes: u64,
    /// Past either hard limit the run is terminated.
    pub max_history_events: i64,
    pub max_history_bytes: u64,
    /// Delay before the first retry of a failed workflow task; doubles per
    /// attempt up to `workflow_task_max_backoff`.
    pub workflow_task_initial_backoff: Duration,
    pub workflow_task_max_backoff: Duration,
    /// Delay before re-pushing an activity whose push failed in transport.
    pub delivery_initial_backoff: Duration,
    pub delivery_max_backoff: Duration,
    /// Extra time on a claim lease beyond the task's own timeout.
    pub lease_grace: Duration,
    /// Workflow-task heartbeats (answers with
    /// `force_create_new_workflow_task`) allowed in a row; the next one is
    /// refused with FORCE_CLOSE_COMMAND and the task retried after back-off.
    pub max_workflow_task_heartbeats: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_payload_bytes: 2 * 1024 * 1024,
            suggest_continue_as_new_events: 4_096,
            suggest_continue_as_new_bytes: 4 * 1024 * 1024,
            max_history_events: 51_200,
            max_history_bytes: 50 * 1024 * 1024,
            workflow_task_initial_backoff: Duration(200),
            workflow_task_max_backoff: Duration::from_secs(60),
            delivery_initial_backoff: Duration(200),
            delivery_max_backoff: Duration::from_secs(60),
            lease_grace: Duration::from_secs(5),
            // Temporal bounds heartbeating by 30 minutes; 180 heartbeats of
            // the default 10 s task timeout.
            max_workflow_task_heartbeats: 180,
        }
    }
}

/// The outcome of a command: everything to commit atomically.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The state after `events` (and the event-less bookkeeping).
    pub state: RunState,
    /// New events, ids `previous next_event_id ..`.
    pub events: Vec<Event>,
    pub effects: Vec<Effect>,
    /// The closed run's chain goes on (continue-as-new, a retry): the
    /// edge starts this run in the same commit, through the common start
    /// path (`engine::start`).
    pub next_run: Option<Box<StartRun>>,
    /// What a checkpoint command did, for its answer.
    pub checkpoint: Option<Box<CheckpointReport>>,
}

/// What a checkpoint did (docs/protocol.md §5.9), beside its transition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckpointReport {
    /// Per completion, in order: applied (false: its token was stale).
    pub accepted: Vec<bool>,
    /// Per applied completion, for metrics: the activity's type, the
    /// attempt and how it ended (`completed`, `failed`, `canceled`).
    pub attempts: Vec<(String, u32, &'static str)>,
    /// The commands were applied as a workflow task's answer and the
    /// session may go on.
    pub continued: bool,
    /// The attempts the handler runs inline: activity id and scheduled
    /// event id (attempt 1).
    pub inline_attempts: Vec<(ActivityId, i64)>,
    /// The commands broke a rule; WorkflowTaskFailed was recorded.
    pub workflow_task_failed: Option<(event::WorkflowTaskFailedCause, String)>,
    /// The events the checkpoint appended, when it continued.
    pub events: Vec<event::Event>,
}

/// A command the engine refuses. Nothing is written.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("workflow run is closed ({})", .0.as_str())]
    RunClosed(RunStatus),
    #[error("stale task: {0}")]
    Stale(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge { size: u64, limit: u64 },
}
