//! What the engine asks the edges to do, as data. The store turns
//! [`Effect::Enqueue`] / [`Effect::Dequeue`] into rows of the `tasks` table
//! in the same transaction as the events (transactional outbox); the
//! dispatcher turns [`Effect::Dispatch`] into an HTTP push after commit.

use serde::{Deserialize, Serialize};

use crate::ids::{TimerId, WorkflowId};
use crate::time::{Duration, Timestamp};

use super::event::ParentClosePolicy;
use super::failure::TimeoutType;

/// A durable unit of future work for one run. At most one row exists per
/// `(run, key)`; enqueueing a task with the key of an existing row replaces
/// it, which is how a timer is re-armed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Task {
    /// Push the run's current workflow task. The key is the same for every
    /// workflow task, so the unique (run, key) index enforces "at most one
    /// workflow task in flight per run".
    WorkflowTask,
    /// Push the waiting attempt of an activity.
    ActivityTask { scheduled_event_id: i64 },
    /// One of an activity's timeouts; `attempt` fences a stale timer.
    ActivityTimeout {
        scheduled_event_id: i64,
        attempt: u32,
        timeout_type: TimeoutType,
    },
    UserTimer {
        timer_id: TimerId,
        started_event_id: i64,
    },
    /// The earlier of the workflow run and execution timeouts.
    RunTimeout,
    /// Start the child of this StartChildWorkflowExecutionInitiated event,
    /// then record the outcome on this run.
    StartChild { initiated_event_id: i64 },
    /// Deliver the signal of this SignalExternalWorkflowExecutionInitiated
    /// event, then record the outcome on this run.
    SignalExternal { initiated_event_id: i64 },
    /// Deliver the cancellation request of this
    /// RequestCancelExternalWorkflowExecutionInitiated event, then record
    /// the outcome on this run.
    CancelExternal { initiated_event_id: i64 },
    /// This child run closed for good: record its outcome on its parent.
    NotifyParent,
    /// This run closed with a child open: apply the child's parent close
    /// policy to it.
    ApplyParentClosePolicy {
        initiated_event_id: i64,
        workflow_id: WorkflowId,
        policy: ParentClosePolicy,
    },
    /// The end of a new run's first-workflow-task back-off (Temporal's
    /// workflow back-off timer): the first workflow task is scheduled.
    WorkflowBackoffTimer,
}

/// Which service drains a task row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    /// Pushed over HTTP by `dispatch`.
    Push,
    /// Fired by `timers`.
    Timer,
    /// Work that reaches another run, carried out by `transfer`.
    Transfer,
}

impl Task {
    pub fn queue(&self) -> Queue {
        match self {
            Task::WorkflowTask | Task::ActivityTask { .. } => Queue::Push,
            Task::StartChild { .. }
            | Task::SignalExternal { .. }
            | Task::CancelExternal { .. }
            | Task::NotifyParent
            | Task::ApplyParentClosePolicy { .. } => Queue::Transfer,
            Task::ActivityTimeout { .. }
            | Task::UserTimer { .. }
            | Task::RunTimeout
            | Task::WorkflowBackoffTimer => Queue::Timer,
        }
    }

    /// The row key, unique per run.
    pub fn key(&self) -> String {
        match self {
            Task::WorkflowTask => "workflow_task".to_owned(),
            Task::ActivityTask { scheduled_event_id } => format!("activity/{scheduled_event_id}"),
            Task::ActivityTimeout {
                scheduled_event_id,
                timeout_type,
                ..
            } => format!("activity/{scheduled_event_id}/{}", timeout_type.describe()),
            Task::UserTimer { timer_id, .. } => format!("timer/{timer_id}"),
            Task::RunTimeout => "run_timeout".to_owned(),
            Task::StartChild { initiated_event_id } => format!("child/{initiated_event_id}"),
            Task::SignalExternal { initiated_event_id } => {
                format!("signal/{initiated_event_id}")
            }
            Task::CancelExternal { initiated_event_id } => {
                format!("cancel/{initiated_event_id}")
            }
            Task::NotifyParent => "notify_parent".to_owned(),
            Task::ApplyParentClosePolicy {
                initiated_event_id, ..
            } => format!("parent_close/{initiated_event_id}"),
            Task::WorkflowBackoffTimer => "workflow_backoff".to_owned(),
        }
    }
}

/// Something to push right after commit, by the node that committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dispatch {
    WorkflowTask,
    ActivityTask { scheduled_event_id: i64 },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Upsert a task row, visible at `at`. Once claimed, a row stays
    /// invisible for `lease`; if its claimer dies, it reappears.
    Enqueue {
        task: Task,
        at: Timestamp,
        lease: Duration,
    },
    /// Delete the task row with this key, if any.
    Dequeue { key: String },
    /// Delete every task row of the run (it closed).
    DequeueAll,
    /// Push now from this node; the matching durable record (a leased
    /// workflow-task row, or an activity's start-to-close timer) is
    /// committed alongside, so a crash after commit loses nothing.
    Dispatch(Dispatch),
}
