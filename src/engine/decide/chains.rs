//! Chains of runs: a run that closes into the next one of its workflow id.
//! Continue-as-new and workflow retries (the retry policy's decision, and
//! the [`StartRun`] of the next run with the chain's facts, which the edge
//! starts in the same commit), and reset: the run a reset makes of an
//! earlier one, and the termination of the run it replaces.

use crate::engine::search::SearchAttributes;
use serde_json::Value;

use crate::engine::command::{Chain, ContinueAsNewWorkflowExecution, Reset, ResetPoint, StartRun};
use crate::engine::effect::Task;
use crate::engine::event::*;
use crate::engine::failure::{Failure, RetryState, TimeoutType};
use crate::engine::retry::Retry;
use crate::engine::state::RunState;
use crate::engine::{Ctx, Rejection, Transition};
use crate::ids::RunId;
use crate::time::Duration;

use super::activities::activity_timeout;
use super::builder::Builder;
use super::invalid;
use super::start::{DEFAULT_WORKFLOW_TASK_TIMEOUT, MAX_WORKFLOW_TASK_TIMEOUT};

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

impl Builder<'_> {
    /// Whether the run's retry policy retries `failure`: the back-off
    /// before the next attempt, or why not (Temporal's RetryState).
    pub(super) fn workflow_retry(&self, failure: &Failure) -> Result<Duration, RetryState> {
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
    pub(super) fn successor(&self, initiator: ContinueAsNewInitiator, input: Value) -> StartRun {
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
            // Carried over, as Temporal carries them.
            search_attributes: s.search_attributes.clone(),
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
    pub(super) fn retry_run(&mut self, delay: Duration, failure: &Failure) -> RunId {
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
    pub(super) fn fail_run(&mut self, failure: Failure, completed: Option<i64>) {
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

    /// `search_attributes`: the command's, typed by `validate`; `None`
    /// carries the closing run's over.
    pub(super) fn continue_as_new(
        &mut self,
        c: ContinueAsNewWorkflowExecution,
        completed: i64,
        search_attributes: Option<SearchAttributes>,
    ) {
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
        if let Some(given) = &search_attributes {
            next.search_attributes = given.clone();
        }
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
                search_attributes,
                workflow_task_completed_event_id: completed,
            },
        ));
        self.next_run = Some(Box::new(next));
    }
}
