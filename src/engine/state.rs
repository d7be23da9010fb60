//! [`RunState`]: everything the engine knows about one run, and
//! [`RunState::evolve`], the fold of one event into it.
//!
//! The state is the run's snapshot row. Most of it is a pure function of the
//! history (replaying every event through `evolve` rebuilds it); the rest is
//! Temporal-style "mutable state" that deliberately has no events: attempt
//! counters, heartbeat details, delivery back-off and the events buffered
//! while a workflow task is in flight. [`RunState::history_view`] is the
//! event-derived part, which tests compare against a full replay.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{ActivityId, Namespace, RunId, TaskQueue, TimerId, WorkflowId};
use crate::time::{Duration, Timestamp};

use super::command::{ChildOutcome, TraceContext};
use super::event::{Event, EventAttributes, ParentClosePolicy, ParentInfo};
use super::failure::{Failure, RetryState};
use super::retry::RetryPolicy;
use super::search::SearchAttributes;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Canceled,
    Terminated,
    ContinuedAsNew,
    TimedOut,
}

impl RunStatus {
    pub fn is_closed(self) -> bool {
        self != RunStatus::Running
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Completed => "COMPLETED",
            RunStatus::Failed => "FAILED",
            RunStatus::Canceled => "CANCELED",
            RunStatus::Terminated => "TERMINATED",
            RunStatus::ContinuedAsNew => "CONTINUED_AS_NEW",
            RunStatus::TimedOut => "TIMED_OUT",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Canceled,
            RunStatus::Terminated,
            RunStatus::ContinuedAsNew,
            RunStatus::TimedOut,
        ]
        .into_iter()
        .find(|st| st.as_str().eq_ignore_ascii_case(s))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub namespace: Namespace,
    pub workflow_id: WorkflowId,
    pub run_id: RunId,
    pub workflow_type: String,
    pub task_queue: TaskQueue,
    pub status: RunStatus,
    pub start_time: Timestamp,
    pub close_time: Option<Timestamp>,
    /// The earlier of the execution and run deadlines.
    pub deadline: Option<Timestamp>,
    pub workflow_task_timeout: Duration,
    /// The id the next appended event gets; history length + 1.
    pub next_event_id: i64,
    /// Sum of the serialized sizes of the persisted events.
    pub history_size_bytes: u64,
    pub last_workflow_task_completed_event_id: i64,
    /// The workflow task in flight, if any (at most one: invariant 2).
    pub workflow_task: Option<WorkflowTask>,
    /// Counts workflow tasks ever scheduled, transient ones included.
    pub workflow_task_seq: u64,
    /// Events that arrived while a workflow task was in flight. They are
    /// appended after that task's outcome, as Temporal's buffered events, so
    /// the history the SDK replayed stays a prefix of the final history.
    pub buffered: Vec<Buffered>,
    /// Open activities by scheduled event id.
    pub activities: BTreeMap<i64, Activity>,
    /// Open timers by timer id.
    pub timers: BTreeMap<TimerId, Timer>,
    pub result: Option<Value>,
    pub failure: Option<Failure>,
    /// Set while a recorded or transport failure is being retried: the
    /// error of the last attempt, for describe.
    pub last_workflow_task_failure: Option<String>,
    /// Workflow tasks in a row that were answered as heartbeats
    /// (`force_create_new_workflow_task`); reset by any other outcome.
    #[serde(default)]
    pub workflow_task_heartbeats: u32,
    /// A cancellation was requested (WorkflowExecutionCancelRequested is
    /// recorded or buffered); later requests are no-ops.
    #[serde(default)]
    pub cancel_requested: bool,
    /// Request ids of the signals this run accepted, oldest first, at most
    /// [`SEEN_SIGNAL_REQUEST_IDS`]: a signal whose request id is here is a
    /// retry and is not recorded again. Bookkeeping without events, like
    /// `buffered`: set when a signal is accepted, buffered or not.
    #[serde(default)]
    pub signal_request_ids: VecDeque<String>,
    /// The endpoint version of `task_queue` this run's workflow tasks (and
    /// activities on its own queue) are pushed to. Set at start, by the
    /// first push of a run that started unpinned (bookkeeping, no event),
    /// or by WorkflowExecutionOptionsUpdated.
    #[serde(default)]
    pub pinned_version: Option<String>,
    /// Every update the run admitted, by update id, kept after completion
    /// (and after the run closed) so that a retry with the same id gets
    /// the first outcome instead of a second execution.
    #[serde(default)]
    pub updates: BTreeMap<String, UpdateState>,
    /// Set when the run is a child workflow.
    #[serde(default)]
    pub parent: Option<ParentInfo>,
    /// Open children by their StartChildWorkflowExecutionInitiated event id.
    #[serde(default)]
    pub children: BTreeMap<i64, Child>,
    /// Signals and cancellation requests to other workflows not yet
    /// delivered (or whose outcome is buffered), by Initiated event id.
    #[serde(default)]
    pub external_requests: BTreeMap<i64, ExternalRequest>,
    /// The chain this run belongs to (the facts of its
    /// WorkflowExecutionStarted that the next run carries).
    #[serde(default)]
    pub chain: ChainInfo,
    /// Set when the run closed and the chain goes on (continue-as-new, or
    /// a retry): the next run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_execution_run_id: Option<RunId>,
    /// The W3C trace context the run was started in (the first start's),
    /// sent with every push of the run so the handler's spans join that
    /// trace. Bookkeeping without events; carried to the next run of the
    /// chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
    /// The run's custom search attributes now: set at start, changed by
    /// UpsertWorkflowSearchAttributes. The store writes them into the
    /// listing columns of their slots at every commit.
    #[serde(default, skip_serializing_if = "SearchAttributes::is_empty")]
    pub search_attributes: SearchAttributes,
}

/// How far an update got; each stage's event id once it is recorded.
/// Stages only advance, so a waiter that saw a stage may trust it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateState {
    /// `None` while WorkflowExecutionUpdateAdmitted is buffered behind the
    /// in-flight workflow task.
    pub admitted_event_id: Option<i64>,
    pub accepted_event_id: Option<i64>,
    pub completed_event_id: Option<i64>,
}

/// Temporal's `WorkflowUpdateStage` names (UNSPECIFIED aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpdateStage {
    Admitted,
    Accepted,
    Completed,
}

impl UpdateState {
    pub fn stage(&self) -> UpdateStage {
        if self.completed_event_id.is_some() {
            UpdateStage::Completed
        } else if self.accepted_event_id.is_some() {
            UpdateStage::Accepted
        } else {
            UpdateStage::Admitted
        }
    }
}

/// What a run knows about its chain, from its WorkflowExecutionStarted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChainInfo {
    /// `None` for snapshots written before chains existed: the run itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_execution_run_id: Option<RunId>,
    /// 1-based; 0 in old snapshots means 1.
    #[serde(default)]
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// The run's input, kept only when a retry policy may need it for the
    /// next attempt (the snapshot stays small for every other run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_timeout: Option<Duration>,
    /// The execution deadline of the whole chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_expiration: Option<Timestamp>,
    /// While the first workflow task waits for a retry back-off: when it
    /// is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_until: Option<Timestamp>,
}

/// How many signal request ids a run remembers for deduplication. A retry
/// that comes after this many newer signals with request ids is recorded
/// again.
pub const SEEN_SIGNAL_REQUEST_IDS: usize = 1_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowTask {
    pub seq: u64,
    pub attempt: u32,
    /// `None` while the task is transient: a retry after a recorded
    /// failure, whose Scheduled/Started events are only written when it
    /// completes (Temporal's transient workflow task).
    pub scheduled_event_id: Option<i64>,
    pub scheduled_time: Timestamp,
}

/// An event waiting for the in-flight workflow task to finish.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Buffered {
    pub time: Timestamp,
    pub entry: BufferedEntry,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BufferedEntry {
    Event(EventAttributes),
    /// Expands to ActivityTaskStarted plus the closing event, whose
    /// `started_event_id` is only known once the Started event has its id.
    ActivityClosed {
        scheduled_event_id: i64,
        attempt: u32,
        last_failure: Option<Failure>,
        outcome: ActivityOutcome,
    },
    /// Expands to the child's closing event (after ChildWorkflowExecutionStarted
    /// if the start was never recorded), whose `started_event_id` is only
    /// known once that event has its id.
    ChildClosed {
        initiated_event_id: i64,
        first_run_id: RunId,
        run_id: RunId,
        outcome: ChildOutcome,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ActivityOutcome {
    Completed(Value),
    Failed(Failure, RetryState),
    TimedOut(Failure, RetryState),
    Canceled(Option<Value>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub scheduled_event_id: i64,
    pub activity_id: ActivityId,
    pub activity_type: String,
    pub task_queue: TaskQueue,
    pub input: Value,
    pub scheduled_time: Timestamp,
    pub schedule_to_close_timeout: Option<Duration>,
    pub schedule_to_start_timeout: Option<Duration>,
    pub start_to_close_timeout: Duration,
    pub heartbeat_timeout: Option<Duration>,
    pub retry_policy: RetryPolicy,
    pub attempt: u32,
    pub phase: ActivityPhase,
    pub last_heartbeat_time: Option<Timestamp>,
    pub heartbeat_details: Option<Value>,
    pub last_failure: Option<Failure>,
    pub cancel_requested: bool,
    /// Transport failures of the current attempt (not attempt failures).
    pub undelivered: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActivityPhase {
    /// Waiting to be pushed: after a retry back-off or a transport failure.
    Scheduled { since: Timestamp, due: Timestamp },
    /// Pushed; the start-to-close clock runs from `since`.
    Started { since: Timestamp },
    /// Closed, with its closing events buffered behind the in-flight
    /// workflow task. Further answers for it are stale.
    Closed,
}

/// A child workflow this run started and has not seen close.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Child {
    pub workflow_id: WorkflowId,
    pub workflow_type: String,
    pub parent_close_policy: ParentClosePolicy,
    /// Known once ChildWorkflowExecutionStarted is recorded or buffered.
    pub run_id: Option<RunId>,
    /// The ChildWorkflowExecutionStarted event, once appended.
    pub started_event_id: Option<i64>,
    pub phase: ChildPhase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChildPhase {
    /// Initiated; the transfer service has not reported the start yet.
    Initiated,
    Started,
    /// Closed (or failed to start), with its closing event buffered behind
    /// the in-flight workflow task. Further reports about it are stale.
    Closed,
}

/// A signal or cancellation request on its way to another workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExternalRequest {
    pub workflow_id: WorkflowId,
    pub run_id: Option<RunId>,
    /// False for a signal, true for a cancellation request.
    pub cancel: bool,
    /// Its outcome is buffered; further reports are stale.
    pub done: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    pub started_event_id: i64,
    pub fire_at: Timestamp,
    /// Fired, with TimerFired buffered behind the in-flight workflow task.
    pub fired: bool,
}

/// The part of [`RunState`] that the history alone determines.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryView {
    pub status: RunStatus,
    pub next_event_id: i64,
    pub history_size_bytes: u64,
    pub last_workflow_task_completed_event_id: i64,
    pub open_activities: Vec<(i64, ActivityId)>,
    pub open_timers: Vec<(TimerId, i64)>,
    /// Recorded updates (admitted, not buffered) and their stages.
    pub updates: Vec<(String, UpdateState)>,
    pub open_children: Vec<(i64, Option<i64>)>,
    pub open_external_requests: Vec<i64>,
    pub parent: Option<ParentInfo>,
    pub result: Option<Value>,
    pub failure: Option<Failure>,
}

impl RunState {
    /// The state before the first event; `evolve` of WorkflowExecutionStarted
    /// fills it in.
    pub fn empty(namespace: Namespace, workflow_id: WorkflowId, run_id: RunId) -> RunState {
        RunState {
            namespace,
            workflow_id,
            run_id,
            workflow_type: String::new(),
            task_queue: TaskQueue(String::new()),
            status: RunStatus::Running,
            start_time: Timestamp(0),
            close_time: None,
            deadline: None,
            workflow_task_timeout: Duration::ZERO,
            next_event_id: 1,
            history_size_bytes: 0,
            last_workflow_task_completed_event_id: 0,
            workflow_task: None,
            workflow_task_seq: 0,
            buffered: Vec::new(),
            activities: BTreeMap::new(),
            timers: BTreeMap::new(),
            result: None,
            failure: None,
            last_workflow_task_failure: None,
            workflow_task_heartbeats: 0,
            cancel_requested: false,
            signal_request_ids: VecDeque::new(),
            pinned_version: None,
            updates: BTreeMap::new(),
            parent: None,
            children: BTreeMap::new(),
            external_requests: BTreeMap::new(),
            chain: ChainInfo::default(),
            new_execution_run_id: None,
            trace_context: None,
            search_attributes: SearchAttributes::new(),
        }
    }

    /// Folds one persisted event into the state. Total: an event that does
    /// not fit (which the engine never produces) leaves the state as is.
    pub fn evolve(&mut self, event: &Event) {
        self.next_event_id = event.event_id + 1;
        self.history_size_bytes += event_size(event);
        let now = event.event_time;
        match &event.attributes {
            EventAttributes::WorkflowExecutionStarted(a) => {
                self.workflow_type = a.workflow_type.clone();
                self.task_queue = a.task_queue.clone();
                self.status = RunStatus::Running;
                self.start_time = now;
                self.workflow_task_timeout = a.workflow_task_timeout;
                self.pinned_version = a.pinned_version.clone();
                let deadlines = [a.workflow_execution_timeout, a.workflow_run_timeout];
                self.deadline = deadlines
                    .into_iter()
                    .flatten()
                    .map(|d| now.saturating_add(d))
                    .min();
                self.parent = a.parent.clone();
                self.search_attributes = a.search_attributes.clone();
                let backoff = a.first_workflow_task_backoff.unwrap_or(Duration::ZERO);
                let expiration = a
                    .workflow_execution_expiration_time
                    .or_else(|| a.workflow_execution_timeout.map(|d| now.saturating_add(d)));
                self.chain = ChainInfo {
                    first_execution_run_id: a.first_execution_run_id,
                    attempt: a.attempt,
                    memo: a.memo.clone(),
                    retry_policy: a.retry_policy.clone(),
                    retry_input: a.retry_policy.as_ref().map(|_| a.input.clone()),
                    execution_timeout: a.workflow_execution_timeout,
                    run_timeout: a.workflow_run_timeout,
                    execution_expiration: expiration,
                    backoff_until: a.first_workflow_task_backoff.map(|d| now.saturating_add(d)),
                };
                self.deadline = self.chain.deadline(now.saturating_add(backoff));
            }
            EventAttributes::WorkflowTaskScheduled(a) => {
                self.workflow_task_seq += 1;
                self.workflow_task = Some(WorkflowTask {
                    seq: self.workflow_task_seq,
                    attempt: a.attempt,
                    scheduled_event_id: Some(event.event_id),
                    scheduled_time: now,
                });
            }
            EventAttributes::WorkflowTaskStarted(_) => {}
            EventAttributes::WorkflowTaskCompleted(_) => {
                self.workflow_task = None;
                self.last_workflow_task_completed_event_id = event.event_id;
            }
            EventAttributes::WorkflowTaskFailed(_) | EventAttributes::WorkflowTaskTimedOut(_) => {
                self.workflow_task = None;
            }
            EventAttributes::ActivityTaskScheduled(a) => {
                self.activities.insert(
                    event.event_id,
                    Activity {
                        scheduled_event_id: event.event_id,
                        activity_id: a.activity_id.clone(),
                        activity_type: a.activity_type.clone(),
                        task_queue: a.task_queue.clone(),
                        input: a.input.clone(),
                        scheduled_time: now,
                        schedule_to_close_timeout: a.schedule_to_close_timeout,
                        schedule_to_start_timeout: a.schedule_to_start_timeout,
                        start_to_close_timeout: a.start_to_close_timeout,
                        heartbeat_timeout: a.heartbeat_timeout,
                        retry_policy: a.retry_policy.clone(),
                        attempt: 1,
                        phase: ActivityPhase::Scheduled {
                            since: now,
                            due: now,
                        },
                        last_heartbeat_time: None,
                        heartbeat_details: None,
                        last_failure: None,
                        cancel_requested: false,
                        undelivered: 0,
                    },
                );
            }
            EventAttributes::ActivityTaskStarted(_) => {}
            EventAttributes::ActivityTaskCompleted(a) => {
                self.activities.remove(&a.scheduled_event_id);
            }
            EventAttributes::ActivityTaskFailed(a) => {
                self.activities.remove(&a.scheduled_event_id);
            }
            EventAttributes::ActivityTaskTimedOut(a) => {
                self.activities.remove(&a.scheduled_event_id);
            }
            EventAttributes::ActivityTaskCanceled(a) => {
                self.activities.remove(&a.scheduled_event_id);
            }
            EventAttributes::ActivityTaskCancelRequested(a) => {
                if let Some(act) = self.activities.get_mut(&a.scheduled_event_id) {
                    act.cancel_requested = true;
                }
            }
            EventAttributes::TimerStarted(a) => {
                self.timers.insert(
                    a.timer_id.clone(),
                    Timer {
                        started_event_id: event.event_id,
                        fire_at: now.saturating_add(a.start_to_fire_timeout),
                        fired: false,
                    },
                );
            }
            EventAttributes::TimerFired(a) => {
                self.timers.remove(&a.timer_id);
            }
            EventAttributes::TimerCanceled(a) => {
                self.timers.remove(&a.timer_id);
            }
            EventAttributes::MarkerRecorded(_) => {}
            EventAttributes::WorkflowExecutionCompleted(a) => {
                self.close(RunStatus::Completed, now);
                self.result = Some(a.result.clone());
            }
            EventAttributes::WorkflowExecutionFailed(a) => {
                self.close(RunStatus::Failed, now);
                self.failure = Some(a.failure.clone());
                self.new_execution_run_id = a.new_execution_run_id;
            }
            EventAttributes::WorkflowExecutionTimedOut(a) => {
                self.close(RunStatus::TimedOut, now);
                self.new_execution_run_id = a.new_execution_run_id;
            }
            EventAttributes::WorkflowExecutionContinuedAsNew(a) => {
                self.close(RunStatus::ContinuedAsNew, now);
                self.new_execution_run_id = Some(a.new_execution_run_id);
            }
            EventAttributes::WorkflowExecutionCanceled(_) => {
                self.close(RunStatus::Canceled, now);
            }
            EventAttributes::WorkflowExecutionTerminated(_) => {
                self.close(RunStatus::Terminated, now);
            }
            EventAttributes::WorkflowExecutionSignaled(_) => {}
            EventAttributes::UpsertWorkflowSearchAttributes(a) => {
                for (name, value) in &a.search_attributes {
                    match value {
                        Some(v) => self.search_attributes.insert(name.clone(), v.clone()),
                        None => self.search_attributes.remove(name),
                    };
                }
            }
            EventAttributes::WorkflowExecutionCancelRequested(_) => {
                self.cancel_requested = true;
            }
            EventAttributes::WorkflowExecutionOptionsUpdated(a) => {
                self.pinned_version = Some(a.versioning_override.pinned_version.clone());
            }
            EventAttributes::WorkflowExecutionUpdateAdmitted(a) => {
                self.updates
                    .entry(a.update_id.clone())
                    .or_default()
                    .admitted_event_id = Some(event.event_id);
            }
            EventAttributes::WorkflowExecutionUpdateAccepted(a) => {
                if let Some(u) = self.updates.get_mut(&a.update_id) {
                    u.accepted_event_id = Some(event.event_id);
                }
            }
            EventAttributes::WorkflowExecutionUpdateCompleted(a) => {
                if let Some(u) = self.updates.get_mut(&a.update_id) {
                    u.completed_event_id = Some(event.event_id);
                }
            }
            EventAttributes::StartChildWorkflowExecutionInitiated(a) => {
                self.children.insert(
                    event.event_id,
                    Child {
                        workflow_id: a.workflow_id.clone(),
                        workflow_type: a.workflow_type.clone(),
                        parent_close_policy: a.parent_close_policy,
                        run_id: None,
                        started_event_id: None,
                        phase: ChildPhase::Initiated,
                    },
                );
            }
            EventAttributes::ChildWorkflowExecutionStarted(a) => {
                if let Some(child) = self.children.get_mut(&a.initiated_event_id) {
                    child.run_id = a.workflow_execution.run_id;
                    child.started_event_id = Some(event.event_id);
                    if child.phase == ChildPhase::Initiated {
                        child.phase = ChildPhase::Started;
                    }
                }
            }
            EventAttributes::StartChildWorkflowExecutionFailed(a) => {
                self.children.remove(&a.initiated_event_id);
            }
            EventAttributes::ChildWorkflowExecutionCompleted(a) => {
                self.children.remove(&a.child.initiated_event_id);
            }
            EventAttributes::ChildWorkflowExecutionFailed(a) => {
                self.children.remove(&a.child.initiated_event_id);
            }
            EventAttributes::ChildWorkflowExecutionCanceled(a) => {
                self.children.remove(&a.child.initiated_event_id);
            }
            EventAttributes::ChildWorkflowExecutionTimedOut(a) => {
                self.children.remove(&a.child.initiated_event_id);
            }
            EventAttributes::ChildWorkflowExecutionTerminated(a) => {
                self.children.remove(&a.child.initiated_event_id);
            }
            EventAttributes::SignalExternalWorkflowExecutionInitiated(a) => {
                self.external_requests.insert(
                    event.event_id,
                    ExternalRequest {
                        workflow_id: a.workflow_execution.workflow_id.clone(),
                        run_id: a.workflow_execution.run_id,
                        cancel: false,
                        done: false,
                    },
                );
            }
            EventAttributes::RequestCancelExternalWorkflowExecutionInitiated(a) => {
                self.external_requests.insert(
                    event.event_id,
                    ExternalRequest {
                        workflow_id: a.workflow_execution.workflow_id.clone(),
                        run_id: a.workflow_execution.run_id,
                        cancel: true,
                        done: false,
                    },
                );
            }
            EventAttributes::SignalExternalWorkflowExecutionFailed(a) => {
                self.external_requests.remove(&a.initiated_event_id);
            }
            EventAttributes::ExternalWorkflowExecutionSignaled(a) => {
                self.external_requests.remove(&a.initiated_event_id);
            }
            EventAttributes::RequestCancelExternalWorkflowExecutionFailed(a) => {
                self.external_requests.remove(&a.initiated_event_id);
            }
            EventAttributes::ExternalWorkflowExecutionCancelRequested(a) => {
                self.external_requests.remove(&a.initiated_event_id);
            }
        }
    }

    /// The first run of the chain this run belongs to.
    pub fn first_execution_run_id(&self) -> RunId {
        self.chain.first_execution_run_id.unwrap_or(self.run_id)
    }

    fn close(&mut self, status: RunStatus, now: Timestamp) {
        self.status = status;
        self.close_time = Some(now);
        self.workflow_task = None;
        self.buffered.clear();
    }

    /// Rebuilds a state from a full history.
    pub fn replay<'a>(
        namespace: Namespace,
        workflow_id: WorkflowId,
        run_id: RunId,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> RunState {
        let mut state = RunState::empty(namespace, workflow_id, run_id);
        for event in events {
            state.evolve(event);
        }
        state
    }

    pub fn history_view(&self) -> HistoryView {
        HistoryView {
            status: self.status,
            next_event_id: self.next_event_id,
            history_size_bytes: self.history_size_bytes,
            last_workflow_task_completed_event_id: self.last_workflow_task_completed_event_id,
            open_activities: self
                .activities
                .values()
                .map(|a| (a.scheduled_event_id, a.activity_id.clone()))
                .collect(),
            open_timers: self
                .timers
                .iter()
                .map(|(id, t)| (id.clone(), t.started_event_id))
                .collect(),
            updates: self
                .updates
                .iter()
                .filter(|(_, u)| u.admitted_event_id.is_some())
                .map(|(id, u)| (id.clone(), u.clone()))
                .collect(),
            open_children: self
                .children
                .iter()
                .map(|(id, c)| (*id, c.started_event_id))
                .collect(),
            open_external_requests: self.external_requests.keys().copied().collect(),
            parent: self.parent.clone(),
            result: self.result.clone(),
            failure: self.failure.clone(),
        }
    }

    /// Remembers a signal's request id; false if it was seen already.
    pub fn remember_signal_request_id(&mut self, request_id: &str) -> bool {
        if self.signal_request_ids.iter().any(|r| r == request_id) {
            return false;
        }
        if self.signal_request_ids.len() >= SEEN_SIGNAL_REQUEST_IDS {
            self.signal_request_ids.pop_front();
        }
        self.signal_request_ids.push_back(request_id.to_owned());
        true
    }

    pub fn history_length(&self) -> i64 {
        self.next_event_id - 1
    }

    pub fn activity_by_id(&self, activity_id: &ActivityId) -> Option<&Activity> {
        self.activities
            .values()
            .find(|a| &a.activity_id == activity_id)
    }
}

impl ChainInfo {
    /// The run's deadline: the earlier of the chain's execution deadline
    /// and the run timeout counted from `run_start`.
    pub fn deadline(&self, run_start: Timestamp) -> Option<Timestamp> {
        let run = self.run_timeout.map(|d| run_start.saturating_add(d));
        [self.execution_expiration, run].into_iter().flatten().min()
    }
}

/// The size an event counts for against history limits: its JSON encoding.
pub fn event_size(event: &Event) -> u64 {
    serde_json::to_vec(event).map_or(0, |v| v.len() as u64)
}
