//! `start` and `decide`: the rules. Each input is validated against the
//! current state, then turned into events (folded in with
//! [`RunState::evolve`]), event-less bookkeeping and effects.

use std::collections::HashSet;

use serde_json::Value;

use crate::ids::{ActivityId, RunId};
use crate::time::{Duration, Timestamp};

use super::command::{
    Chain, Command, ContinueAsNewWorkflowExecution, Reset, ResetPoint, ScheduleActivityTask,
    Signal, StartRun, Update, WorkflowCommand,
};
use super::effect::{Dispatch, Effect, Task};
use super::event::*;
use super::failure::{Failure, FailureKind, RetryState, TimeoutType};
use super::retry::{backoff, Retry, RetryPolicySpec};
use super::state::{
    event_size, ActivityOutcome, ActivityPhase, Buffered, BufferedEntry, RunState, WorkflowTask,
};
use super::token::{ActivityToken, WorkflowTaskToken};
use super::{children, Ctx, Limits, Rejection, Transition};

/// Temporal's default and maximum workflow task timeout.
const DEFAULT_WORKFLOW_TASK_TIMEOUT: Duration = Duration(10_000);
const MAX_WORKFLOW_TASK_TIMEOUT: Duration = Duration(120_000);

/// Creates a run: WorkflowExecutionStarted, the first workflow task, and the
/// run deadline timer.
pub fn start(cmd: StartRun, ctx: &Ctx) -> Result<Transition, Rejection> {
    let mut b = started(cmd, ctx)?;
    match b.state.chain.backoff_until {
        // The first workflow task waits out the back-off (Temporal's
        // workflow back-off timer); signals meanwhile are recorded.
        Some(due) => b.enqueue(Task::WorkflowBackoffTimer, due),
        None => b.schedule_workflow_task(),
    }
    Ok(b.finish())
}

/// Creates a run that has a signal waiting (signal-with-start): the
/// signal is recorded right after WorkflowExecutionStarted, before the first
/// workflow task, so that task sees it.
pub fn start_with_signal(
    cmd: StartRun,
    signal: Signal,
    ctx: &Ctx,
) -> Result<Transition, Rejection> {
    check_signal(&signal, &ctx.limits)?;
    let mut b = started(cmd, ctx)?;
    if let Some(event) = b.signal_event(signal) {
        b.append(event);
    }
    b.schedule_workflow_task();
    Ok(b.finish())
}

/// Creates the run a reset makes of `base` (whose whole history is
/// `history`), as `ctx.next_run_id`. Its history is `base`'s up to and
/// including the WorkflowTaskStarted of the workflow task completed at the
/// reset point, then WorkflowTaskFailed (cause RESET_WORKFLOW), then the
/// signals `base` recorded after the point (unless excluded), then a new
/// workflow task. The state is the fold of those events; what the kept
/// prefix left open is re-armed: its timers, its activities (pushed again)
/// and the run deadline (the run timeout restarts; the chain's execution
/// deadline stays). `base` itself is the edge's to terminate.
pub fn reset(
    base: &RunState,
    history: &[Event],
    req: Reset,
    ctx: &Ctx,
) -> Result<Transition, Rejection> {
    if req.reason.is_empty() {
        return Err(invalid("reason must not be empty"));
    }
    let mut completed_tasks = history.iter().filter_map(|e| match &e.attributes {
        EventAttributes::WorkflowTaskCompleted(a) => Some((e.event_id, a)),
        _ => None,
    });
    let point = match req.point {
        ResetPoint::WorkflowTaskCompleted(id) => completed_tasks
            .find(|(event_id, _)| *event_id == id)
            .ok_or_else(|| {
                invalid(format!(
                    "event {id} of run {} is not a WorkflowTaskCompleted event",
                    base.run_id
                ))
            })?,
        ResetPoint::FirstWorkflowTask => completed_tasks
            .next()
            .ok_or_else(|| invalid("the run has no completed workflow task to reset to"))?,
        ResetPoint::LastWorkflowTask => completed_tasks
            .next_back()
            .ok_or_else(|| invalid("the run has no completed workflow task to reset to"))?,
    };
    let (scheduled, started) = (point.1.scheduled_event_id, point.1.started_event_id);
    let state = RunState::empty(
        base.namespace.clone(),
        base.workflow_id.clone(),
        ctx.next_run_id,
    );
    let mut b = Builder::new(&state, ctx);
    for e in history.iter().take_while(|e| e.event_id <= started) {
        b.push_event(e.clone());
    }
    // The new run starts now, and so does its run timeout.
    b.state.start_time = ctx.now;
    if req.pinned_version.is_some() {
        b.state.pinned_version = req.pinned_version;
    }
    b.state.deadline = b.state.chain.deadline(ctx.now);
    b.append(EventAttributes::WorkflowTaskFailed(WorkflowTaskFailed {
        scheduled_event_id: scheduled,
        started_event_id: started,
        cause: WorkflowTaskFailedCause::ResetWorkflow,
        failure: Failure::new(req.reason, "ResetWorkflow"),
        base_run_id: Some(base.run_id),
        new_run_id: Some(ctx.next_run_id),
    }));
    if req.reapply_signals {
        for e in history.iter().filter(|e| e.event_id > started) {
            if let EventAttributes::WorkflowExecutionSignaled(a) = &e.attributes {
                b.append(EventAttributes::WorkflowExecutionSignaled(a.clone()));
            }
        }
    }
    let request_ids: Vec<String> = b
        .events
        .iter()
        .filter_map(|e| match &e.attributes {
            EventAttributes::WorkflowExecutionSignaled(a) => a.request_id.clone(),
            _ => None,
        })
        .collect();
    for r in request_ids {
        b.state.remember_signal_request_id(&r);
    }
    b.schedule_workflow_task();
    if let Some(deadline) = b.state.deadline {
        b.enqueue(Task::RunTimeout, deadline);
    }
    let timers: Vec<_> = b
        .state
        .timers
        .iter()
        .map(|(id, t)| (id.clone(), t.started_event_id, t.fire_at))
        .collect();
    for (timer_id, started_event_id, fire_at) in timers {
        b.enqueue(
            Task::UserTimer {
                timer_id,
                started_event_id,
            },
            fire_at,
        );
    }
    let activities: Vec<_> = b
        .state
        .activities
        .values()
        .map(|a| {
            (
                a.scheduled_event_id,
                a.scheduled_time,
                a.schedule_to_close_timeout,
            )
        })
        .collect();
    for (sched, scheduled_time, s2c) in activities {
        if let Some(s2c) = s2c {
            b.enqueue(
                activity_timeout(sched, 0, TimeoutType::ScheduleToClose),
                scheduled_time.saturating_add(s2c),
            );
        }
        b.start_activity_attempt(sched);
    }
    Ok(b.finish())
}

/// Terminates the open run a reset replaces with `reset_run`. Unlike a
/// plain terminate, the run's chain goes on in the reset run: that run
/// reports to the parent (if any), and result waiters follow to it
/// (`new_execution_run_id`, bookkeeping without an event).
pub fn terminate_for_reset(
    state: &RunState,
    reset_run: RunId,
    reason: String,
    ctx: &Ctx,
) -> Result<Transition, Rejection> {
    if state.status.is_closed() {
        return Err(Rejection::RunClosed(state.status));
    }
    let mut b = Builder::new(state, ctx);
    b.flush_buffered();
    b.state.new_execution_run_id = Some(reset_run);
    b.close_run(EventAttributes::WorkflowExecutionTerminated(
        WorkflowExecutionTerminated {
            reason,
            details: None,
            identity: Some("baton".to_owned()),
        },
    ));
    Ok(b.finish())
}

/// WorkflowExecutionStarted and the run deadline, without the first task.
fn started(cmd: StartRun, ctx: &Ctx) -> Result<Builder<'_>, Rejection> {
    if cmd.workflow_id.as_str().is_empty() {
        return Err(invalid("workflow_id must not be empty"));
    }
    if cmd.workflow_type.is_empty() {
        return Err(invalid("workflow_type must not be empty"));
    }
    if cmd.task_queue.as_str().is_empty() {
        return Err(invalid("task_queue must not be empty"));
    }
    for (name, d) in [
        ("workflow_execution_timeout", cmd.execution_timeout),
        ("workflow_run_timeout", cmd.run_timeout),
        ("workflow_task_timeout", cmd.task_timeout),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            return Err(invalid(format!("{name} must be greater than zero")));
        }
    }
    check_payload(&cmd.input, &ctx.limits)?;
    if let Some(memo) = &cmd.memo {
        if !memo.is_object() {
            return Err(invalid("memo must be a JSON object"));
        }
        check_payload(memo, &ctx.limits)?;
    }
    let retry_policy = cmd
        .retry_policy
        .as_ref()
        .map(RetryPolicySpec::resolve)
        .transpose()
        .map_err(invalid)?;
    let chain = cmd.chain.as_ref();
    let run_timeout = match (cmd.run_timeout, cmd.execution_timeout) {
        (Some(r), Some(e)) => Some(r.min(e)),
        (r, e) => r.or(e),
    };
    let task_timeout = cmd
        .task_timeout
        .unwrap_or(DEFAULT_WORKFLOW_TASK_TIMEOUT)
        .min(MAX_WORKFLOW_TASK_TIMEOUT);
    let state = RunState::empty(cmd.namespace, cmd.workflow_id, cmd.run_id);
    let mut b = Builder::new(&state, ctx);
    b.append(EventAttributes::WorkflowExecutionStarted(Box::new(
        WorkflowExecutionStarted {
            workflow_type: cmd.workflow_type,
            task_queue: cmd.task_queue,
            input: cmd.input,
            workflow_execution_timeout: cmd.execution_timeout,
            workflow_run_timeout: run_timeout,
            workflow_task_timeout: task_timeout,
            attempt: chain.map_or(1, |c| c.attempt),
            request_id: cmd.request_id,
            identity: cmd.identity,
            pinned_version: cmd.pinned_version,
            parent: cmd.parent,
            memo: cmd.memo,
            retry_policy,
            workflow_execution_expiration_time: chain.and_then(|c| c.execution_expiration_time),
            first_workflow_task_backoff: chain
                .and_then(|c| c.first_workflow_task_backoff)
                .filter(|d| !d.is_zero()),
            continued_execution_run_id: chain.map(|c| c.continued_execution_run_id),
            initiator: chain.map(|c| c.initiator),
            continued_failure: chain.and_then(|c| c.continued_failure.clone()),
            first_execution_run_id: Some(chain.map_or(cmd.run_id, |c| c.first_execution_run_id)),
            original_execution_run_id: Some(cmd.run_id),
        },
    )));
    if let Some(deadline) = b.state.deadline {
        b.enqueue(Task::RunTimeout, deadline);
    }
    Ok(b)
}

fn check_signal(signal: &Signal, limits: &Limits) -> Result<(), Rejection> {
    if signal.signal_name.is_empty() {
        return Err(invalid("signal_name must not be empty"));
    }
    check_payload(&signal.input, limits)
}

fn check_update(update: &Update, limits: &Limits) -> Result<(), Rejection> {
    if update.update_name.is_empty() {
        return Err(invalid("update_name must not be empty"));
    }
    if update.update_id.is_empty() {
        return Err(invalid("update_id must not be empty"));
    }
    if update.update_id.len() > 1_000 {
        return Err(invalid("update_id must be at most 1000 bytes"));
    }
    check_payload(&update.input, limits)
}

/// Applies one command to a run.
pub fn decide(state: &RunState, cmd: Command, ctx: &Ctx) -> Result<Transition, Rejection> {
    if state.status.is_closed() {
        return Err(Rejection::RunClosed(state.status));
    }
    let mut b = Builder::new(state, ctx);
    match cmd {
        Command::CompleteWorkflowTask {
            token,
            commands,
            identity,
        } => b.complete_workflow_task(token, commands, identity)?,
        Command::FailWorkflowTask {
            token,
            cause,
            failure,
        } => {
            let task = b.check_workflow_token(token)?;
            b.state.last_workflow_task_failure = Some(failure.message.clone());
            b.record_workflow_task_failure(&task, token, |sched, started| {
                EventAttributes::WorkflowTaskFailed(WorkflowTaskFailed {
                    scheduled_event_id: sched,
                    started_event_id: started,
                    cause,
                    failure,
                    base_run_id: None,
                    new_run_id: None,
                })
            });
        }
        Command::WorkflowTaskUndelivered {
            token,
            timed_out,
            error,
        } => {
            let task = b.check_workflow_token(token)?;
            b.state.last_workflow_task_failure = Some(error);
            if timed_out {
                b.record_workflow_task_failure(&task, token, |sched, started| {
                    EventAttributes::WorkflowTaskTimedOut(WorkflowTaskTimedOut {
                        scheduled_event_id: sched,
                        started_event_id: started,
                        timeout_type: TimeoutType::StartToClose,
                    })
                });
            } else {
                // Transport failures leave no trace in the history.
                b.retry_workflow_task(&task, task.scheduled_event_id.is_none());
            }
        }
        Command::StartActivityAttempt { scheduled_event_id } => {
            let act = b
                .state
                .activities
                .get(&scheduled_event_id)
                .ok_or_else(|| stale("activity is not open"))?;
            match act.phase {
                ActivityPhase::Scheduled { due, .. } if due > ctx.now => {
                    // Claimed early (clock skew between nodes): re-arm.
                    b.enqueue(Task::ActivityTask { scheduled_event_id }, due);
                }
                ActivityPhase::Scheduled { .. } => b.start_activity_attempt(scheduled_event_id),
                _ => return Err(stale("activity attempt already started")),
            }
        }
        Command::ActivityUndelivered { token, .. } => {
            let sched = token.scheduled_event_id;
            let act = b.check_activity_token(token)?;
            if !matches!(act.phase, ActivityPhase::Started { .. }) {
                return Err(stale("activity attempt is not started"));
            }
            let undelivered = act.undelivered + 1;
            let delay = backoff(
                ctx.limits.delivery_initial_backoff,
                2.0,
                ctx.limits.delivery_max_backoff,
                undelivered,
            );
            let s2s = act.schedule_to_start_timeout;
            let attempt = act.attempt;
            let due = ctx.now.saturating_add(delay);
            let act = b.activity_mut(sched);
            act.undelivered = undelivered;
            act.phase = ActivityPhase::Scheduled {
                since: ctx.now,
                due,
            };
            b.dequeue_attempt_timers(sched);
            b.enqueue(
                Task::ActivityTask {
                    scheduled_event_id: sched,
                },
                due,
            );
            if let (Some(s2s), 1) = (s2s, undelivered) {
                b.enqueue(
                    activity_timeout(sched, attempt, TimeoutType::ScheduleToStart),
                    ctx.now.saturating_add(s2s),
                );
            }
        }
        Command::CompleteActivity { token, result } => {
            b.check_activity_token(token)?;
            let size = payload_size(&result);
            if size > ctx.limits.max_payload_bytes {
                let mut failure = Failure::new(
                    format!(
                        "activity result of {size} bytes exceeds the limit of {} bytes",
                        ctx.limits.max_payload_bytes
                    ),
                    "PayloadTooLarge",
                );
                failure.non_retryable = true;
                b.fail_activity_attempt(token.scheduled_event_id, failure, None);
            } else {
                b.close_activity(token.scheduled_event_id, ActivityOutcome::Completed(result));
            }
        }
        Command::FailActivity { token, failure } => {
            b.check_activity_token(token)?;
            if let Some(d) = &failure.details {
                check_payload(d, &ctx.limits)?;
            }
            b.fail_activity_attempt(token.scheduled_event_id, failure, None);
        }
        Command::ReportActivityCanceled { token, details } => {
            let act = b.check_activity_token(token)?;
            if !act.cancel_requested {
                return Err(invalid(
                    "activity cannot report cancellation: none was requested",
                ));
            }
            b.close_activity(token.scheduled_event_id, ActivityOutcome::Canceled(details));
        }
        Command::RecordActivityHeartbeat { token, details } => {
            b.check_activity_token(token)?;
            if let Some(d) = &details {
                check_payload(d, &ctx.limits)?;
            }
            let act = b.activity_mut(token.scheduled_event_id);
            act.last_heartbeat_time = Some(ctx.now);
            if details.is_some() {
                act.heartbeat_details = details;
            }
        }
        Command::FireTimer(task) => b.fire_timer(task)?,
        Command::TerminateWorkflow {
            reason,
            details,
            identity,
        } => {
            if let Some(d) = &details {
                check_payload(d, &ctx.limits)?;
            }
            b.flush_buffered();
            b.close_run(EventAttributes::WorkflowExecutionTerminated(
                WorkflowExecutionTerminated {
                    reason,
                    details,
                    identity,
                },
            ));
        }
        Command::SignalWorkflow(signal) => {
            check_signal(&signal, &ctx.limits)?;
            if let Some(event) = b.signal_event(signal) {
                b.external(BufferedEntry::Event(event));
            }
        }
        Command::ChildStarted {
            initiated_event_id,
            run_id,
        } => b.child_started(initiated_event_id, run_id)?,
        Command::ChildStartFailed {
            initiated_event_id,
            cause,
        } => b.child_start_failed(initiated_event_id, cause)?,
        Command::ChildClosed {
            initiated_event_id,
            first_run_id,
            run_id,
            outcome,
        } => b.child_closed(initiated_event_id, first_run_id, run_id, outcome)?,
        Command::ExternalRequestDelivered { initiated_event_id } => {
            b.external_request_done(initiated_event_id, None)?;
        }
        Command::ExternalRequestFailed {
            initiated_event_id,
            cause,
        } => b.external_request_done(initiated_event_id, Some(cause))?,
        Command::RequestCancelWorkflow {
            reason,
            request_id: _,
            identity,
        } => {
            if !b.state.cancel_requested {
                b.state.cancel_requested = true;
                b.external(BufferedEntry::Event(
                    EventAttributes::WorkflowExecutionCancelRequested(
                        WorkflowExecutionCancelRequested {
                            cause: reason,
                            identity,
                        },
                    ),
                ));
            }
        }
        Command::PinVersion { version } => {
            if b.state.pinned_version.is_none() {
                b.state.pinned_version = Some(version);
            }
        }
        Command::UpdateWorkflowExecutionOptions(m) => {
            if m.reason.trim().is_empty() {
                return Err(invalid("reason must not be empty"));
            }
            if m.to_version.is_empty() {
                return Err(invalid("the version to move to must not be empty"));
            }
            let pinned = b.state.pinned_version.clone();
            if pinned.as_deref() != Some(m.from_version.as_str()) {
                return Err(invalid(format!(
                    "run is pinned to {}, not version {}",
                    pinned.map_or_else(|| "no version".to_owned(), |v| format!("version {v}")),
                    m.from_version
                )));
            }
            if m.to_version == m.from_version {
                return Err(invalid(format!(
                    "run is already pinned to version {}",
                    m.to_version
                )));
            }
            // The pin moves now, even while the event waits behind an
            // in-flight workflow task: every later push goes to the new
            // version. The event (buffered like a signal) then schedules a
            // workflow task, so the new version replays the run at once
            // and a version that cannot shows up as failing tasks now.
            b.state.pinned_version = Some(m.to_version.clone());
            b.external(BufferedEntry::Event(
                EventAttributes::WorkflowExecutionOptionsUpdated(WorkflowExecutionOptionsUpdated {
                    versioning_override: VersioningOverride {
                        pinned_version: m.to_version,
                    },
                    previous_pinned_version: Some(m.from_version),
                    reason: m.reason,
                    identity: m.identity,
                }),
            ));
        }
        Command::AdmitUpdate(update) => {
            check_update(&update, &ctx.limits)?;
            // A retry of an update the run has seen is not recorded again;
            // the caller waits for the first one's outcome.
            if !b.state.updates.contains_key(&update.update_id) {
                b.state
                    .updates
                    .insert(update.update_id.clone(), Default::default());
                b.external(BufferedEntry::Event(
                    EventAttributes::WorkflowExecutionUpdateAdmitted(
                        WorkflowExecutionUpdateAdmitted {
                            update_id: update.update_id,
                            update_name: update.update_name,
                            input: update.input,
                            identity: update.identity,
                        },
                    ),
                ));
            }
        }
    }
    Ok(b.finish())
}

/// What a workflow task push carries besides the persisted history.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowTaskView {
    pub token: WorkflowTaskToken,
    /// Not yet persisted, but part of the history the SDK replays: the
    /// Scheduled event of a transient task, then WorkflowTaskStarted.
    pub transient_events: Vec<Event>,
    pub history_size_bytes: u64,
    pub suggest_continue_as_new: bool,
}

/// The run's current workflow task as pushed at `ctx.now`, or `None` if
/// there is none. Deterministic: the engine rebuilds the same Started event
/// from the token when the answer arrives.
pub fn workflow_task_view(state: &RunState, ctx: &Ctx) -> Option<WorkflowTaskView> {
    if state.status.is_closed() {
        return None;
    }
    let task = state.workflow_task.as_ref()?;
    Some(view(state, task, ctx.now, &ctx.limits))
}

fn view(
    state: &RunState,
    task: &WorkflowTask,
    started_at: Timestamp,
    limits: &Limits,
) -> WorkflowTaskView {
    let mut events = Vec::new();
    let mut next_id = state.next_event_id;
    let mut size = state.history_size_bytes;
    let scheduled_event_id = match task.scheduled_event_id {
        Some(id) => id,
        None => {
            let e = Event {
                event_id: next_id,
                event_time: task.scheduled_time,
                attributes: EventAttributes::WorkflowTaskScheduled(WorkflowTaskScheduled {
                    task_queue: state.task_queue.clone(),
                    start_to_close_timeout: state.workflow_task_timeout,
                    attempt: task.attempt,
                }),
            };
            size += event_size(&e);
            events.push(e);
            next_id += 1;
            next_id - 1
        }
    };
    let suggest = next_id >= limits.suggest_continue_as_new_events
        || size >= limits.suggest_continue_as_new_bytes;
    events.push(Event {
        event_id: next_id,
        event_time: started_at,
        attributes: EventAttributes::WorkflowTaskStarted(WorkflowTaskStarted {
            scheduled_event_id,
            history_size_bytes: Some(size),
            suggest_continue_as_new: suggest,
        }),
    });
    WorkflowTaskView {
        token: WorkflowTaskToken {
            seq: task.seq,
            attempt: task.attempt,
            started_at,
        },
        transient_events: events,
        history_size_bytes: size,
        suggest_continue_as_new: suggest,
    }
}

fn invalid(msg: impl Into<String>) -> Rejection {
    Rejection::InvalidArgument(msg.into())
}

fn stale(msg: impl Into<String>) -> Rejection {
    Rejection::Stale(msg.into())
}

fn payload_size(v: &Value) -> u64 {
    serde_json::to_vec(v).map_or(0, |b| b.len() as u64)
}

fn check_payload(v: &Value, limits: &Limits) -> Result<(), Rejection> {
    let size = payload_size(v);
    if size > limits.max_payload_bytes {
        return Err(Rejection::PayloadTooLarge {
            size,
            limit: limits.max_payload_bytes,
        });
    }
    Ok(())
}

fn activity_timeout(scheduled_event_id: i64, attempt: u32, timeout_type: TimeoutType) -> Task {
    Task::ActivityTimeout {
        scheduled_event_id,
        attempt,
        timeout_type,
    }
}

/// A transition under construction: a private copy of the state plus what
/// has been appended and asked for so far.
pub(super) struct Builder<'a> {
    pub(super) state: RunState,
    events: Vec<Event>,
    pub(super) effects: Vec<Effect>,
    pub(super) ctx: &'a Ctx,
    /// A workflow command canceled an activity that had not started; the
    /// workflow must be told by a new workflow task.
    canceled_unstarted_activity: bool,
    next_run: Option<Box<StartRun>>,
}

impl<'a> Builder<'a> {
    fn new(state: &RunState, ctx: &'a Ctx) -> Builder<'a> {
        Builder {
            state: state.clone(),
            events: Vec::new(),
            effects: Vec::new(),
            ctx,
            canceled_unstarted_activity: false,
            next_run: None,
        }
    }

    pub(super) fn now(&self) -> Timestamp {
        self.ctx.now
    }

    fn finish(mut self) -> Transition {
        let limits = &self.ctx.limits;
        if !self.state.status.is_closed()
            && (self.state.history_length() > limits.max_history_events
                || self.state.history_size_bytes > limits.max_history_bytes)
        {
            self.flush_buffered();
            self.close_run(EventAttributes::WorkflowExecutionTerminated(
                WorkflowExecutionTerminated {
                    reason: format!(
                        "history limit exceeded: {} events, {} bytes (limits {} events, {} bytes)",
                        self.state.history_length(),
                        self.state.history_size_bytes,
                        limits.max_history_events,
                        limits.max_history_bytes
                    ),
                    details: None,
                    identity: Some("baton".to_owned()),
                },
            ));
        }
        Transition {
            state: self.state,
            events: self.events,
            effects: self.effects,
            next_run: self.next_run,
        }
    }

    fn push_event(&mut self, event: Event) -> i64 {
        self.state.evolve(&event);
        let id = event.event_id;
        self.events.push(event);
        id
    }

    pub(super) fn append_at(&mut self, attributes: EventAttributes, time: Timestamp) -> i64 {
        let event = Event {
            event_id: self.state.next_event_id,
            event_time: time,
            attributes,
        };
        self.push_event(event)
    }

    pub(super) fn append(&mut self, attributes: EventAttributes) -> i64 {
        self.append_at(attributes, self.now())
    }

    pub(super) fn enqueue(&mut self, task: Task, at: Timestamp) {
        // A claimed workflow task stays leased for as long as its push may
        // take; anything else only until its command is applied.
        let lease = match task {
            Task::WorkflowTask => self.state.workflow_task_timeout.0,
            _ => 0,
        };
        let lease = Duration(lease + self.ctx.limits.lease_grace.0);
        self.effects.push(Effect::Enqueue { task, at, lease });
    }

    pub(super) fn dequeue(&mut self, task: &Task) {
        self.effects.push(Effect::Dequeue { key: task.key() });
    }

    /// An event from outside the workflow-task cycle: buffered while a task
    /// is in flight, else appended, and a workflow task scheduled for it.
    pub(super) fn external(&mut self, entry: BufferedEntry) {
        if self.state.workflow_task.is_some() {
            let time = self.now();
            self.state.buffered.push(Buffered { time, entry });
        } else if self.backing_off() {
            // The first workflow task, due at the back-off's end, sees it.
            self.append_entry(entry, self.now());
        } else {
            self.append_entry(entry, self.now());
            self.schedule_workflow_task();
        }
    }

    /// The event recording a checked signal, or `None` if its request id
    /// was seen already (a retry: accepted, not recorded again).
    fn signal_event(&mut self, signal: Signal) -> Option<EventAttributes> {
        if let Some(r) = &signal.request_id {
            if !self.state.remember_signal_request_id(r) {
                return None;
            }
        }
        Some(EventAttributes::WorkflowExecutionSignaled(
            WorkflowExecutionSignaled {
                signal_name: signal.signal_name,
                input: signal.input,
                identity: signal.identity,
                request_id: signal.request_id,
            },
        ))
    }

    fn append_entry(&mut self, entry: BufferedEntry, time: Timestamp) {
        match entry {
            BufferedEntry::Event(attributes) => {
                self.append_at(attributes, time);
            }
            BufferedEntry::ActivityClosed {
                scheduled_event_id,
                attempt,
                last_failure,
                outcome,
            } => {
                let started = self.append_at(
                    EventAttributes::ActivityTaskStarted(ActivityTaskStarted {
                        scheduled_event_id,
                        attempt,
                        last_failure,
                    }),
                    time,
                );
                let closing = match outcome {
                    ActivityOutcome::Completed(result) => {
                        EventAttributes::ActivityTaskCompleted(ActivityTaskCompleted {
                            scheduled_event_id,
                            started_event_id: started,
                            result,
                        })
                    }
                    ActivityOutcome::Failed(failure, retry_state) => {
                        EventAttributes::ActivityTaskFailed(ActivityTaskFailed {
                            scheduled_event_id,
                            started_event_id: started,
                            failure,
                            retry_state,
                        })
                    }
                    ActivityOutcome::TimedOut(failure, retry_state) => {
                        EventAttributes::ActivityTaskTimedOut(ActivityTaskTimedOut {
                            scheduled_event_id,
                            started_event_id: started,
                            failure,
                            retry_state,
                        })
                    }
                    ActivityOutcome::Canceled(details) => {
                        EventAttributes::ActivityTaskCanceled(ActivityTaskCanceled {
                            scheduled_event_id,
                            started_event_id: started,
                            details,
                        })
                    }
                };
                self.append_at(closing, time);
            }
            BufferedEntry::ChildClosed {
                initiated_event_id,
                first_run_id,
                run_id,
                outcome,
            } => self.append_child_closed(initiated_event_id, first_run_id, run_id, outcome, time),
        }
    }

    /// Appends the buffered events; true if there were any.
    fn flush_buffered(&mut self) -> bool {
        let buffered = std::mem::take(&mut self.state.buffered);
        let any = !buffered.is_empty();
        for b in buffered {
            self.append_entry(b.entry, b.time);
        }
        any
    }

    /// The first workflow task waits for a back-off to end.
    fn backing_off(&self) -> bool {
        self.state.workflow_task_seq == 0 && self.state.chain.backoff_until.is_some()
    }

    /// Whether the run's retry policy retries `failure`: the back-off
    /// before the next attempt, or why not (Temporal's RetryState).
    fn workflow_retry(&self, failure: &Failure) -> Result<Duration, RetryState> {
        let chain = &self.state.chain;
        let policy = chain
            .retry_policy
            .as_ref()
            .ok_or(RetryState::RetryPolicyNotSet)?;
        match policy.next(chain.attempt.max(1), failure) {
            Retry::NonRetryable => Err(RetryState::NonRetryableFailure),
            Retry::AttemptsExhausted => Err(RetryState::MaximumAttemptsReached),
            Retry::After(delay) => {
                let due = self.now().saturating_add(delay);
                if chain.execution_expiration.is_some_and(|e| due >= e) {
                    return Err(RetryState::Timeout);
                }
                Ok(delay)
            }
        }
    }

    /// The next run of this run's chain, with everything carried over;
    /// callers change what differs.
    fn successor(&self, initiator: ContinueAsNewInitiator, input: Value) -> StartRun {
        let s = &self.state;
        StartRun {
            namespace: s.namespace.clone(),
            workflow_id: s.workflow_id.clone(),
            run_id: self.ctx.next_run_id,
            workflow_type: s.workflow_type.clone(),
            task_queue: s.task_queue.clone(),
            input,
            execution_timeout: s.chain.execution_timeout,
            run_timeout: s.chain.run_timeout,
            task_timeout: Some(s.workflow_task_timeout),
            request_id: None,
            identity: None,
            // The next run is the upgrade point: the start path pins it to
            // the queue's current endpoint version.
            pinned_version: None,
            memo: s.chain.memo.clone(),
            retry_policy: s.chain.retry_policy.clone().map(Into::into),
            // A child's chain stays the parent's child.
            parent: s.parent.clone(),
            chain: Some(Chain {
                initiator,
                continued_execution_run_id: s.run_id,
                first_execution_run_id: s.first_execution_run_id(),
                attempt: 1,
                execution_expiration_time: s.chain.execution_expiration,
                first_workflow_task_backoff: None,
                continued_failure: None,
            }),
        }
    }

    /// Asks the edge to start the next attempt of a failed or timed-out
    /// run (same input and options) after `delay`; returns its run id.
    fn retry_run(&mut self, delay: Duration, failure: &Failure) -> RunId {
        let input = self.state.chain.retry_input.clone().unwrap_or_default();
        let mut next = self.successor(ContinueAsNewInitiator::Retry, input);
        if let Some(chain) = &mut next.chain {
            chain.attempt = self.state.chain.attempt.max(1) + 1;
            chain.first_workflow_task_backoff = Some(delay);
            chain.continued_failure = Some(failure.clone());
        }
        let run_id = next.run_id;
        self.next_run = Some(Box::new(next));
        run_id
    }

    /// Closes the run as failed (`completed`: by the workflow) or timed
    /// out, retrying it if its policy says so.
    fn fail_run(&mut self, failure: Failure, completed: Option<i64>) {
        let (retry_state, new_run) = match self.workflow_retry(&failure) {
            Ok(delay) => (
                RetryState::InProgress,
                Some(self.retry_run(delay, &failure)),
            ),
            Err(state) => (state, None),
        };
        let attributes = match completed {
            Some(completed) => EventAttributes::WorkflowExecutionFailed(WorkflowExecutionFailed {
                failure,
                retry_state,
                workflow_task_completed_event_id: completed,
                new_execution_run_id: new_run,
            }),
            None => EventAttributes::WorkflowExecutionTimedOut(WorkflowExecutionTimedOut {
                timeout_type: TimeoutType::StartToClose,
                // Without a retry policy a timed-out run says why it
                // stopped: the timeout.
                retry_state: match retry_state {
                    RetryState::RetryPolicyNotSet => RetryState::Timeout,
                    other => other,
                },
                new_execution_run_id: new_run,
            }),
        };
        self.close_run(attributes);
    }

    fn continue_as_new(&mut self, c: ContinueAsNewWorkflowExecution, completed: i64) {
        let mut next = self.successor(ContinueAsNewInitiator::Workflow, c.input);
        if let Some(t) = c.workflow_type {
            next.workflow_type = t;
        }
        if let Some(q) = c.task_queue {
            next.task_queue = q;
        }
        next.run_timeout = c.workflow_run_timeout.or(next.run_timeout);
        next.task_timeout = c.workflow_task_timeout.or(next.task_timeout);
        next.memo = c.memo.or(next.memo);
        next.retry_policy = c.retry_policy.or(next.retry_policy);
        if let Some(chain) = &mut next.chain {
            chain.first_workflow_task_backoff = c.backoff_start_interval;
        }
        self.close_run(EventAttributes::WorkflowExecutionContinuedAsNew(
            WorkflowExecutionContinuedAsNew {
                new_execution_run_id: next.run_id,
                workflow_type: next.workflow_type.clone(),
                task_queue: next.task_queue.clone(),
                input: next.input.clone(),
                workflow_run_timeout: next.run_timeout,
                workflow_task_timeout: next
                    .task_timeout
                    .unwrap_or(DEFAULT_WORKFLOW_TASK_TIMEOUT)
                    .min(MAX_WORKFLOW_TASK_TIMEOUT),
                backoff_start_interval: c.backoff_start_interval,
                initiator: ContinueAsNewInitiator::Workflow,
                memo: next.memo.clone(),
                workflow_task_completed_event_id: completed,
            },
        ));
        self.next_run = Some(Box::new(next));
    }

    fn close_run(&mut self, attributes: EventAttributes) {
        self.append(attributes);
        // Nothing more runs for a closed run: its rows go, and so do the
        // pushes this transition asked for (an activity scheduled by the
        // same response, a workflow task before the history limit hit).
        self.effects.retain(|e| !matches!(e, Effect::Dispatch(_)));
        self.effects.push(Effect::DequeueAll);
        self.reach_parent_and_children();
    }

    /// A new workflow task (attempt 1), pushed right after commit. Its row
    /// is committed already leased to this node, so only a crash makes it
    /// reappear for another node.
    fn schedule_workflow_task(&mut self) {
        self.state.last_workflow_task_failure = None;
        self.append(EventAttributes::WorkflowTaskScheduled(
            WorkflowTaskScheduled {
                task_queue: self.state.task_queue.clone(),
                start_to_close_timeout: self.state.workflow_task_timeout,
                attempt: 1,
            },
        ));
        let lease = self.state.workflow_task_timeout.0 + self.ctx.limits.lease_grace.0;
        self.enqueue(
            Task::WorkflowTask,
            self.now().saturating_add(Duration(lease)),
        );
        self.effects.push(Effect::Dispatch(Dispatch::WorkflowTask));
    }

    /// The next attempt of `task` after back-off; no event is written.
    fn retry_workflow_task(&mut self, task: &WorkflowTask, transient: bool) {
        let limits = &self.ctx.limits;
        let delay = backoff(
            limits.workflow_task_initial_backoff,
            2.0,
            limits.workflow_task_max_backoff,
            task.attempt,
        );
        let due = self.now().saturating_add(delay);
        self.state.workflow_task = Some(WorkflowTask {
            seq: task.seq,
            attempt: task.attempt + 1,
            scheduled_event_id: if transient {
                None
            } else {
                task.scheduled_event_id
            },
            scheduled_time: due,
        });
        self.enqueue(Task::WorkflowTask, due);
    }

    fn check_workflow_token(&self, token: WorkflowTaskToken) -> Result<WorkflowTask, Rejection> {
        let task = self
            .state
            .workflow_task
            .as_ref()
            .ok_or_else(|| stale("no workflow task is in flight"))?;
        if task.seq != token.seq || task.attempt != token.attempt {
            return Err(stale(format!(
                "workflow task {}/{} is not current (current {}/{})",
                token.seq, token.attempt, task.seq, task.attempt
            )));
        }
        Ok(task.clone())
    }

    /// Appends the task's transient Scheduled (if any) and Started events;
    /// returns (scheduled id, started id).
    fn append_started(&mut self, task: &WorkflowTask, token: WorkflowTaskToken) -> (i64, i64) {
        let v = view(&self.state, task, token.started_at, &self.ctx.limits);
        let mut ids = Vec::new();
        for e in v.transient_events {
            ids.push(self.push_event(e));
        }
        let started = ids.last().copied().unwrap_or_default();
        let scheduled = task.scheduled_event_id.unwrap_or(started - 1);
        // Evolving a transient Scheduled event re-opened the task; it is
        // still the one in flight.
        self.state.workflow_task = Some(task.clone());
        (scheduled, started)
    }

    /// Records the first failure of a task (its Scheduled event is
    /// persisted); later attempts are transient and leave no events.
    fn record_workflow_task_failure(
        &mut self,
        task: &WorkflowTask,
        token: WorkflowTaskToken,
        event: impl FnOnce(i64, i64) -> EventAttributes,
    ) {
        if task.scheduled_event_id.is_some() {
            let (sched, started) = self.append_started(task, token);
            self.append(event(sched, started));
            self.flush_buffered();
        }
        self.retry_workflow_task(task, true);
    }

    fn complete_workflow_task(
        &mut self,
        token: WorkflowTaskToken,
        commands: Vec<WorkflowCommand>,
        identity: Option<String>,
    ) -> Result<(), Rejection> {
        let task = self.check_workflow_token(token)?;
        if let Err((cause, message)) = validate_commands(&self.state, &commands, &self.ctx.limits) {
            let unhandled = cause == WorkflowTaskFailedCause::UnhandledCommand;
            // As for a failure the SDK reports, only the first failure is
            // recorded: a transient task leaves no events (Temporal writes
            // no WorkflowTaskFailed for it either), so a workflow stuck on a
            // bad command does not grow its history on every retry.
            let had_new_events = if task.scheduled_event_id.is_some() {
                let (sched, started) = self.append_started(&task, token);
                self.append(EventAttributes::WorkflowTaskFailed(WorkflowTaskFailed {
                    scheduled_event_id: sched,
                    started_event_id: started,
                    cause,
                    failure: Failure::new(message.clone(), "WorkflowTaskFailed"),
                    base_run_id: None,
                    new_run_id: None,
                }));
                self.flush_buffered()
            } else {
                unhandled && self.flush_buffered()
            };
            self.state.last_workflow_task_failure = Some(message);
            if unhandled && had_new_events {
                // The workflow simply has not seen the new events yet.
                self.schedule_workflow_task();
            } else {
                self.retry_workflow_task(&task, true);
            }
            return Ok(());
        }
        let (sched, started) = self.append_started(&task, token);
        self.dequeue(&Task::WorkflowTask);
        let completed = self.append(EventAttributes::WorkflowTaskCompleted(
            WorkflowTaskCompleted {
                scheduled_event_id: sched,
                started_event_id: started,
                identity,
            },
        ));
        self.state.last_workflow_task_failure = None;
        self.accept_delivered_updates();
        for cmd in commands {
            self.apply_command(cmd, completed);
        }
        if !self.state.status.is_closed()
            && (self.flush_buffered() || self.canceled_unstarted_activity)
        {
            self.schedule_workflow_task();
        }
        Ok(())
    }

    /// Every recorded update this task carried that no earlier task
    /// accepted: the workflow took it, and its handler is running.
    fn accept_delivered_updates(&mut self) {
        let mut delivered: Vec<(i64, String)> = self
            .state
            .updates
            .iter()
            .filter(|(_, u)| u.accepted_event_id.is_none())
            .filter_map(|(id, u)| u.admitted_event_id.map(|a| (a, id.clone())))
            .collect();
        delivered.sort();
        for (admitted_event_id, update_id) in delivered {
            self.append(EventAttributes::WorkflowExecutionUpdateAccepted(
                WorkflowExecutionUpdateAccepted {
                    update_id,
                    admitted_event_id,
                },
            ));
        }
    }

    fn apply_command(&mut self, cmd: WorkflowCommand, completed: i64) {
        match cmd {
            WorkflowCommand::ScheduleActivityTask(a) => self.schedule_activity(a, completed),
            WorkflowCommand::RequestCancelActivityTask(a) => {
                let Some(act) = self.state.activity_by_id(&a.activity_id) else {
                    return;
                };
                let (sched, phase) = (act.scheduled_event_id, act.phase);
                if phase == ActivityPhase::Closed {
                    // Its result is buffered; the workflow sees it next.
                    return;
                }
                self.append(EventAttributes::ActivityTaskCancelRequested(
                    ActivityTaskCancelRequested {
                        scheduled_event_id: sched,
                        workflow_task_completed_event_id: completed,
                    },
                ));
                if let ActivityPhase::Scheduled { .. } = phase {
                    // Not running anywhere: cancelled at once, and the
                    // workflow needs a task to learn of it (Temporal's
                    // activityNotStartedCancelled).
                    self.canceled_unstarted_activity = true;
                    self.dequeue_activity_tasks(sched);
                    self.append(EventAttributes::ActivityTaskCanceled(
                        ActivityTaskCanceled {
                            scheduled_event_id: sched,
                            started_event_id: 0,
                            details: None,
                        },
                    ));
                }
                // A started attempt learns of the request from its next
                // heartbeat answer.
            }
            WorkflowCommand::StartTimer(t) => {
                let id = self.append(EventAttributes::TimerStarted(TimerStarted {
                    timer_id: t.timer_id.clone(),
                    start_to_fire_timeout: t.start_to_fire_timeout,
                    workflow_task_completed_event_id: completed,
                }));
                self.enqueue(
                    Task::UserTimer {
                        timer_id: t.timer_id,
                        started_event_id: id,
                    },
                    self.now().saturating_add(t.start_to_fire_timeout),
                );
            }
            WorkflowCommand::CancelTimer(t) => {
                let Some(timer) = self.state.timers.get(&t.timer_id) else {
                    return;
                };
                if timer.fired {
                    return;
                }
                let started = timer.started_event_id;
                self.append(EventAttributes::TimerCanceled(TimerCanceled {
                    timer_id: t.timer_id.clone(),
                    started_event_id: started,
                    workflow_task_completed_event_id: completed,
                }));
                self.dequeue(&Task::UserTimer {
                    timer_id: t.timer_id,
                    started_event_id: started,
                });
            }
            WorkflowCommand::RecordMarker(m) => {
                self.append(EventAttributes::MarkerRecorded(MarkerRecorded {
                    marker_name: m.marker_name,
                    details: m.details,
                    workflow_task_completed_event_id: completed,
                    failure: m.failure,
                }));
            }
            WorkflowCommand::CompleteWorkflowExecution(c) => {
                self.close_run(EventAttributes::WorkflowExecutionCompleted(
                    WorkflowExecutionCompleted {
                        result: c.result,
                        workflow_task_completed_event_id: completed,
                    },
                ));
            }
            WorkflowCommand::FailWorkflowExecution(f) => self.fail_run(f.failure, Some(completed)),
            WorkflowCommand::ContinueAsNewWorkflowExecution(c) => {
                self.continue_as_new(c, completed)
            }
            WorkflowCommand::CancelWorkflowExecution(c) => {
                self.close_run(EventAttributes::WorkflowExecutionCanceled(
                    WorkflowExecutionCanceled {
                        details: c.details,
                        workflow_task_completed_event_id: completed,
                    },
                ));
            }
            WorkflowCommand::CompleteWorkflowUpdate(u) => {
                // validate_commands checked that the update was delivered,
                // and accept_delivered_updates recorded its acceptance.
                let Some(accepted_event_id) = self
                    .state
                    .updates
                    .get(&u.update_id)
                    .and_then(|s| s.accepted_event_id)
                else {
                    return;
                };
                self.append(EventAttributes::WorkflowExecutionUpdateCompleted(
                    WorkflowExecutionUpdateCompleted {
                        update_id: u.update_id,
                        accepted_event_id,
                        result: u.result,
                        failure: u.failure,
                        workflow_task_completed_event_id: completed,
                    },
                ));
            }
            WorkflowCommand::StartChildWorkflowExecution(c) => self.initiate_child(c, completed),
            WorkflowCommand::SignalExternalWorkflowExecution(c) => {
                self.initiate_external_signal(c, completed);
            }
            WorkflowCommand::RequestCancelExternalWorkflowExecution(c) => {
                self.initiate_external_cancel(c, completed);
            }
        }
    }

    fn schedule_activity(&mut self, a: ScheduleActivityTask, completed: i64) {
        // validate_commands refused every command whose timeouts do not
        // resolve, so the else branch is never taken.
        let Ok(t) = resolve_activity_timeouts(&a) else {
            return;
        };
        let retry_policy = a
            .retry_policy
            .unwrap_or_default()
            .resolve()
            .unwrap_or_default();
        let sched = self.append(EventAttributes::ActivityTaskScheduled(
            ActivityTaskScheduled {
                activity_id: a.activity_id,
                activity_type: a.activity_type,
                task_queue: a
                    .task_queue
                    .unwrap_or_else(|| self.state.task_queue.clone()),
                input: a.input,
                schedule_to_close_timeout: t.schedule_to_close,
                schedule_to_start_timeout: t.schedule_to_start,
                start_to_close_timeout: t.start_to_close,
                heartbeat_timeout: t.heartbeat,
                retry_policy,
                workflow_task_completed_event_id: completed,
            },
        ));
        if let Some(s2c) = t.schedule_to_close {
            self.enqueue(
                activity_timeout(sched, 0, TimeoutType::ScheduleToClose),
                self.now().saturating_add(s2c),
            );
        }
        self.start_activity_attempt(sched);
    }

    fn activity_mut(&mut self, sched: i64) -> &mut super::state::Activity {
        self.state
            .activities
            .get_mut(&sched)
            .expect("callers check that the activity is open")
    }

    fn check_activity_token(
        &self,
        token: ActivityToken,
    ) -> Result<&super::state::Activity, Rejection> {
        let act = self
            .state
            .activities
            .get(&token.scheduled_event_id)
            .ok_or_else(|| stale("activity is not open"))?;
        if act.phase == ActivityPhase::Closed {
            return Err(stale("activity already closed"));
        }
        if act.attempt != token.attempt {
            return Err(stale(format!(
                "activity attempt {} is not current (current {})",
                token.attempt, act.attempt
            )));
        }
        Ok(act)
    }

    /// Marks the waiting attempt started and pushes it now; its
    /// start-to-close timer is the durable record of the push.
    fn start_activity_attempt(&mut self, sched: i64) {
        let now = self.now();
        let act = self.activity_mut(sched);
        act.phase = ActivityPhase::Started { since: now };
        act.last_heartbeat_time = None;
        let (attempt, stc, hb, s2c, redelivery) = (
            act.attempt,
            act.start_to_close_timeout,
            act.heartbeat_timeout,
            act.schedule_to_close_timeout
                .map(|d| act.scheduled_time.saturating_add(d)),
            act.undelivered > 0,
        );
        self.dequeue(&Task::ActivityTask {
            scheduled_event_id: sched,
        });
        if !redelivery {
            // A re-push after a transport failure may fail again: its
            // schedule-to-start clock, armed at the first failure, keeps
            // running until the handler is reached.
            self.dequeue(&activity_timeout(
                sched,
                attempt,
                TimeoutType::ScheduleToStart,
            ));
        }
        let mut deadline = now.saturating_add(stc);
        if let Some(s2c) = s2c {
            deadline = deadline.min(s2c);
        }
        self.enqueue(
            activity_timeout(sched, attempt, TimeoutType::StartToClose),
            deadline,
        );
        if let Some(hb) = hb {
            self.enqueue(
                activity_timeout(sched, attempt, TimeoutType::Heartbeat),
                now.saturating_add(hb),
            );
        }
        self.effects.push(Effect::Dispatch(Dispatch::ActivityTask {
            scheduled_event_id: sched,
        }));
    }

    fn dequeue_attempt_timers(&mut self, sched: i64) {
        for tt in [TimeoutType::StartToClose, TimeoutType::Heartbeat] {
            self.dequeue(&activity_timeout(sched, 0, tt));
        }
    }

    fn dequeue_activity_tasks(&mut self, sched: i64) {
        self.dequeue(&Task::ActivityTask {
            scheduled_event_id: sched,
        });
        for tt in [
            TimeoutType::StartToClose,
            TimeoutType::Heartbeat,
            TimeoutType::ScheduleToStart,
            TimeoutType::ScheduleToClose,
        ] {
            self.dequeue(&activity_timeout(sched, 0, tt));
        }
    }

    fn close_activity(&mut self, sched: i64, outcome: ActivityOutcome) {
        let act = self.activity_mut(sched);
        act.phase = ActivityPhase::Closed;
        let entry = BufferedEntry::ActivityClosed {
            scheduled_event_id: sched,
            attempt: act.attempt,
            last_failure: act.last_failure.clone(),
            outcome,
        };
        self.dequeue_activity_tasks(sched);
        self.external(entry);
    }

    /// The current attempt failed (or timed out with `timeout`): retry per
    /// the policy, or close the activity.
    fn fail_activity_attempt(
        &mut self,
        sched: i64,
        failure: Failure,
        timeout: Option<TimeoutType>,
    ) {
        let now = self.now();
        let act = self.activity_mut(sched);
        let mut decision = act.retry_policy.next(act.attempt, &failure);
        if act.cancel_requested {
            decision = Retry::NonRetryable;
        }
        let retry_state = match decision {
            Retry::After(delay) => {
                let due = now.saturating_add(delay);
                let past_deadline = act
                    .schedule_to_close_timeout
                    .is_some_and(|d| due >= act.scheduled_time.saturating_add(d));
                if !past_deadline {
                    act.attempt += 1;
                    act.undelivered = 0;
                    act.last_failure = Some(failure);
                    act.phase = ActivityPhase::Scheduled { since: now, due };
                    let (attempt, s2s) = (act.attempt, act.schedule_to_start_timeout);
                    self.dequeue_attempt_timers(sched);
                    self.enqueue(
                        Task::ActivityTask {
                            scheduled_event_id: sched,
                        },
                        due,
                    );
                    if let Some(s2s) = s2s {
                        self.enqueue(
                            activity_timeout(sched, attempt, TimeoutType::ScheduleToStart),
                            due.saturating_add(s2s),
                        );
                    }
                    return;
                }
                RetryState::Timeout
            }
            Retry::NonRetryable if act.cancel_requested => RetryState::CancelRequested,
            Retry::NonRetryable => RetryState::NonRetryableFailure,
            Retry::AttemptsExhausted => RetryState::MaximumAttemptsReached,
        };
        let outcome = match timeout {
            Some(_) => ActivityOutcome::TimedOut(failure, retry_state),
            None => ActivityOutcome::Failed(failure, retry_state),
        };
        self.close_activity(sched, outcome);
    }

    fn fire_timer(&mut self, task: Task) -> Result<(), Rejection> {
        let now = self.now();
        match task {
            Task::UserTimer {
                ref timer_id,
                started_event_id,
            } => {
                let timer = self
                    .state
                    .timers
                    .get(timer_id)
                    .filter(|t| t.started_event_id == started_event_id && !t.fired)
                    .ok_or_else(|| stale("timer is not pending"))?;
                if timer.fire_at > now {
                    let at = timer.fire_at;
                    self.enqueue(task, at);
                    return Ok(());
                }
                if let Some(t) = self.state.timers.get_mut(timer_id) {
                    t.fired = true;
                }
                self.dequeue(&task);
                self.external(BufferedEntry::Event(EventAttributes::TimerFired(
                    TimerFired {
                        timer_id: timer_id.clone(),
                        started_event_id,
                    },
                )));
            }
            Task::RunTimeout => {
                let deadline = self
                    .state
                    .deadline
                    .ok_or_else(|| stale("run has no deadline"))?;
                if deadline > now {
                    self.enqueue(task, deadline);
                    return Ok(());
                }
                self.flush_buffered();
                let failure = Failure {
                    message: "workflow run timed out".to_owned(),
                    error_type: "TimeoutError".to_owned(),
                    timeout_type: Some(TimeoutType::StartToClose),
                    kind: Some(FailureKind::Timeout),
                    ..Failure::default()
                };
                if self
                    .state
                    .chain
                    .execution_expiration
                    .is_some_and(|e| e <= now)
                {
                    // The chain's execution timeout: nothing is retried.
                    self.close_run(EventAttributes::WorkflowExecutionTimedOut(
                        WorkflowExecutionTimedOut {
                            timeout_type: TimeoutType::StartToClose,
                            retry_state: RetryState::Timeout,
                            new_execution_run_id: None,
                        },
                    ));
                } else {
                    self.fail_run(failure, None);
                }
            }
            Task::WorkflowBackoffTimer => {
                let due = self
                    .state
                    .chain
                    .backoff_until
                    .filter(|_| self.backing_off())
                    .ok_or_else(|| stale("no workflow back-off is pending"))?;
                if due > now {
                    self.enqueue(task, due);
                    return Ok(());
                }
                self.schedule_workflow_task();
            }
            Task::ActivityTimeout {
                scheduled_event_id: sched,
                attempt,
                timeout_type,
            } => self.fire_activity_timeout(sched, attempt, timeout_type)?,
            Task::WorkflowTask
            | Task::ActivityTask { .. }
            | Task::StartChild { .. }
            | Task::SignalExternal { .. }
            | Task::CancelExternal { .. }
            | Task::NotifyParent
            | Task::ApplyParentClosePolicy { .. } => {
                return Err(invalid("only timer tasks fire"));
            }
        }
        Ok(())
    }

    fn fire_activity_timeout(
        &mut self,
        sched: i64,
        attempt: u32,
        timeout_type: TimeoutType,
    ) -> Result<(), Rejection> {
        let now = self.now();
        let act = self
            .state
            .activities
            .get(&sched)
            .filter(|a| a.phase != ActivityPhase::Closed)
            .ok_or_else(|| stale("activity is not open"))?;
        let task = activity_timeout(sched, attempt, timeout_type);
        if timeout_type != TimeoutType::ScheduleToClose && act.attempt != attempt {
            return Err(stale("timer belongs to an earlier attempt"));
        }
        let last_failure = act.last_failure.clone();
        match (timeout_type, act.phase) {
            (TimeoutType::ScheduleToClose, _) => {
                let due = act
                    .schedule_to_close_timeout
                    .map(|d| act.scheduled_time.saturating_add(d))
                    .ok_or_else(|| stale("activity has no schedule-to-close timeout"))?;
                if due > now {
                    self.enqueue(task, due);
                    return Ok(());
                }
                let failure = Failure::timeout(timeout_type, last_failure);
                self.close_activity(
                    sched,
                    ActivityOutcome::TimedOut(failure, RetryState::Timeout),
                );
            }
            (TimeoutType::ScheduleToStart, ActivityPhase::Started { since })
                if act.undelivered > 0 =>
            {
                // A re-push is in flight: look again when its attempt would
                // time out anyway, unless that time has come.
                let due = since.saturating_add(act.start_to_close_timeout);
                if due <= now {
                    return Err(stale("timeout does not apply to the activity's phase"));
                }
                self.enqueue(task, due);
            }
            (TimeoutType::ScheduleToStart, ActivityPhase::Scheduled { .. }) => {
                let failure = Failure::timeout(timeout_type, last_failure);
                self.close_activity(
                    sched,
                    ActivityOutcome::TimedOut(failure, RetryState::Timeout),
                );
            }
            (TimeoutType::StartToClose, ActivityPhase::Started { since }) => {
                let mut due = since.saturating_add(act.start_to_close_timeout);
                if let Some(s2c) = act.schedule_to_close_timeout {
                    due = due.min(act.scheduled_time.saturating_add(s2c));
                }
                if due > now {
                    self.enqueue(task, due);
                    return Ok(());
                }
                let failure = Failure::timeout(timeout_type, last_failure);
                self.fail_activity_attempt(sched, failure, Some(timeout_type));
            }
            (TimeoutType::Heartbeat, ActivityPhase::Started { since }) => {
                let hb = act
                    .heartbeat_timeout
                    .ok_or_else(|| stale("activity has no heartbeat timeout"))?;
                let due = act.last_heartbeat_time.unwrap_or(since).saturating_add(hb);
                if due > now {
                    self.enqueue(task, due);
                    return Ok(());
                }
                let mut failure = Failure::timeout(timeout_type, last_failure);
                failure.details = act.heartbeat_details.clone();
                self.fail_activity_attempt(sched, failure, Some(timeout_type));
            }
            _ => return Err(stale("timeout does not apply to the activity's phase")),
        }
        Ok(())
    }
}

/// Activity timeouts after Temporal's defaulting rules.
struct ActivityTimeouts {
    schedule_to_close: Option<Duration>,
    schedule_to_start: Option<Duration>,
    start_to_close: Duration,
    heartbeat: Option<Duration>,
}

fn resolve_activity_timeouts(a: &ScheduleActivityTask) -> Result<ActivityTimeouts, String> {
    for (name, d) in [
        ("schedule_to_close_timeout", a.schedule_to_close_timeout),
        ("schedule_to_start_timeout", a.schedule_to_start_timeout),
        ("start_to_close_timeout", a.start_to_close_timeout),
        ("heartbeat_timeout", a.heartbeat_timeout),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            return Err(format!("{name} must be greater than zero"));
        }
    }
    let s2c = a.schedule_to_close_timeout;
    let stc = match (a.start_to_close_timeout, s2c) {
        (Some(stc), Some(s2c)) => stc.min(s2c),
        (Some(stc), None) => stc,
        (None, Some(s2c)) => s2c,
        (None, None) => {
            return Err(
                "one of schedule_to_close_timeout or start_to_close_timeout is required".into(),
            )
        }
    };
    let s2s = match (a.schedule_to_start_timeout, s2c) {
        (Some(s2s), Some(s2c)) => Some(s2s.min(s2c)),
        (s2s, _) => s2s,
    };
    Ok(ActivityTimeouts {
        schedule_to_close: s2c,
        schedule_to_start: s2s,
        start_to_close: stc,
        heartbeat: a.heartbeat_timeout.map(|h| h.min(stc)),
    })
}

/// Checks a whole workflow task response before anything is applied: a
/// response is taken whole or refused whole.
fn validate_commands(
    state: &RunState,
    commands: &[WorkflowCommand],
    limits: &Limits,
) -> Result<(), (WorkflowTaskFailedCause, String)> {
    use WorkflowTaskFailedCause as C;
    let mut activity_ids: HashSet<&ActivityId> =
        state.activities.values().map(|a| &a.activity_id).collect();
    let mut timer_ids: HashSet<_> = state.timers.keys().collect();
    let mut completed_updates: HashSet<&str> = HashSet::new();
    let too_large = |v: &Value, what: &str| -> Result<(), (C, String)> {
        check_payload(v, limits).map_err(|e| (C::PayloadsTooLarge, format!("{what}: {e}")))
    };
    for (idx, cmd) in commands.iter().enumerate() {
        if cmd.closes_workflow() {
            let cause = match cmd {
                WorkflowCommand::FailWorkflowExecution(_) => C::BadFailWorkflowExecutionAttributes,
                WorkflowCommand::CancelWorkflowExecution(_) => {
                    C::BadCancelWorkflowExecutionAttributes
                }
                WorkflowCommand::ContinueAsNewWorkflowExecution(_) => C::BadContinueAsNewAttributes,
                _ => C::BadCompleteWorkflowExecutionAttributes,
            };
            if idx + 1 != commands.len() {
                return Err((
                    cause,
                    format!("command {idx} closes the workflow but is not the last command"),
                ));
            }
            if !state.buffered.is_empty() {
                return Err((
                    C::UnhandledCommand,
                    "new events arrived while the workflow task was in flight; the workflow must see them before it closes".into(),
                ));
            }
        }
        match cmd {
            WorkflowCommand::ScheduleActivityTask(a) => {
                let bad = |m: String| (C::BadScheduleActivityAttributes, m);
                if a.activity_id.as_str().is_empty() {
                    return Err(bad("activity_id must not be empty".into()));
                }
                if a.activity_type.is_empty() {
                    return Err(bad("activity_type must not be empty".into()));
                }
                if a.task_queue.as_ref().is_some_and(|q| q.as_str().is_empty()) {
                    return Err(bad("task_queue must not be empty".into()));
                }
                if !activity_ids.insert(&a.activity_id) {
                    return Err((
                        C::ScheduleActivityDuplicateId,
                        format!("activity id {:?} is already in use", a.activity_id.as_str()),
                    ));
                }
                resolve_activity_timeouts(a).map_err(bad)?;
                if let Some(p) = &a.retry_policy {
                    p.resolve().map_err(bad)?;
                }
                too_large(&a.input, "activity input")?;
            }
            WorkflowCommand::RequestCancelActivityTask(a) => {
                if !activity_ids.contains(&a.activity_id) {
                    return Err((
                        C::BadRequestCancelActivityAttributes,
                        format!("no open activity with id {:?}", a.activity_id.as_str()),
                    ));
                }
            }
            WorkflowCommand::StartTimer(t) => {
                if t.timer_id.as_str().is_empty() {
                    return Err((
                        C::BadStartTimerAttributes,
                        "timer_id must not be empty".into(),
                    ));
                }
                if t.start_to_fire_timeout.is_zero() {
                    return Err((
                        C::BadStartTimerAttributes,
                        "start_to_fire_timeout must be greater than zero".into(),
                    ));
                }
                if state.timers.get(&t.timer_id).is_some_and(|t| t.fired) {
                    // Its TimerFired is buffered: the workflow must see it
                    // before the id can be reused (after a CancelTimer that
                    // is a no-op), or the flush would close the new timer.
                    return Err((
                        C::UnhandledCommand,
                        format!(
                            "timer {:?} fired while the workflow task was in flight; the workflow must see that first",
                            t.timer_id.as_str()
                        ),
                    ));
                }
                if !timer_ids.insert(&t.timer_id) {
                    return Err((
                        C::StartTimerDuplicateId,
                        format!("timer id {:?} is already in use", t.timer_id.as_str()),
                    ));
                }
            }
            WorkflowCommand::CancelTimer(t) => {
                if !timer_ids.remove(&t.timer_id) {
                    return Err((
                        C::BadCancelTimerAttributes,
                        format!("no open timer with id {:?}", t.timer_id.as_str()),
                    ));
                }
            }
            WorkflowCommand::RecordMarker(m) => {
                if m.marker_name.is_empty() {
                    return Err((
                        C::BadRecordMarkerAttributes,
                        "marker_name must not be empty".into(),
                    ));
                }
                too_large(&m.details, "marker details")?;
            }
            WorkflowCommand::CompleteWorkflowExecution(c) => {
                too_large(&c.result, "workflow result")?;
            }
            WorkflowCommand::FailWorkflowExecution(f) => {
                if let Some(d) = &f.failure.details {
                    too_large(d, "failure details")?;
                }
            }
            WorkflowCommand::CancelWorkflowExecution(c) => {
                if let Some(d) = &c.details {
                    too_large(d, "cancel details")?;
                }
            }
            WorkflowCommand::CompleteWorkflowUpdate(u) => {
                let bad = |m: &str| {
                    (
                        C::BadUpdateWorkflowExecutionMessage,
                        format!("update {:?} {m}", u.update_id),
                    )
                };
                let update = state
                    .updates
                    .get(&u.update_id)
                    .ok_or_else(|| bad("is unknown"))?;
                if update.admitted_event_id.is_none() {
                    return Err(bad("was admitted while the workflow task was in flight; the workflow has not seen it"));
                }
                if update.completed_event_id.is_some() || !completed_updates.insert(&u.update_id) {
                    return Err(bad("is already completed"));
                }
                too_large(&u.result, "update result")?;
                if let Some(d) = u.failure.as_ref().and_then(|f| f.details.as_ref()) {
                    too_large(d, "update failure details")?;
                }
            }
            WorkflowCommand::StartChildWorkflowExecution(c) => {
                children::validate_start_child(c)
                    .map_err(|m| (C::BadStartChildExecutionAttributes, m))?;
                too_large(&c.input, "child workflow input")?;
                if let Some(memo) = &c.memo {
                    too_large(memo, "child workflow memo")?;
                }
            }
            WorkflowCommand::SignalExternalWorkflowExecution(c) => {
                children::validate_signal_external(c)
                    .map_err(|m| (C::BadSignalWorkflowExecutionAttributes, m))?;
                too_large(&c.input, "signal input")?;
            }
            WorkflowCommand::RequestCancelExternalWorkflowExecution(c) => {
                children::validate_cancel_external(c)
                    .map_err(|m| (C::BadRequestCancelExternalWorkflowExecutionAttributes, m))?;
            }
            WorkflowCommand::ContinueAsNewWorkflowExecution(c) => {
                let bad = |m: &str| (C::BadContinueAsNewAttributes, m.to_owned());
                if c.workflow_type.as_ref().is_some_and(String::is_empty) {
                    return Err(bad("workflow_type must not be empty"));
                }
                if c.task_queue.as_ref().is_some_and(|q| q.as_str().is_empty()) {
                    return Err(bad("task_queue must not be empty"));
                }
                if [c.workflow_run_timeout, c.workflow_task_timeout]
                    .iter()
                    .any(|d| d.is_some_and(|d| d.is_zero()))
                {
                    return Err(bad("timeouts must be greater than zero"));
                }
                if c.memo.as_ref().is_some_and(|m| !m.is_object()) {
                    return Err(bad("memo must be a JSON object"));
                }
                if let Some(p) = &c.retry_policy {
                    p.resolve().map_err(|m| bad(&m))?;
                }
                too_large(&c.input, "continue-as-new input")?;
                if let Some(m) = &c.memo {
                    too_large(m, "memo")?;
                }
            }
        }
    }
    Ok(())
}
