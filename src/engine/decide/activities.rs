//! Activities, with Temporal's semantics: scheduling one (its timeouts
//! defaulted and checked), starting and pushing an attempt, what its
//! handler reports (result, failure, cancellation, heartbeats), transport
//! failures of the push, retries per the activity's policy, the four
//! timeouts, and cancellation requested by the workflow.
//!
//! Events are lazy, as in Temporal: retries leave no events, and
//! ActivityTaskStarted is written with the closing event of the attempt.

use serde_json::Value;

use crate::engine::command::{RequestCancelActivityTask, ScheduleActivityTask};
use crate::engine::effect::{Dispatch, Effect, Task};
use crate::engine::event::*;
use crate::engine::failure::{Failure, RetryState, TimeoutType};
use crate::engine::retry::{backoff, Retry};
use crate::engine::state::{Activity, ActivityOutcome, ActivityPhase, BufferedEntry};
use crate::engine::token::ActivityToken;
use crate::engine::Rejection;
use crate::time::Duration;

use super::builder::Builder;
use super::{check_payload, invalid, payload_size, stale};

pub(super) fn activity_timeout(
    scheduled_event_id: i64,
    attempt: u32,
    timeout_type: TimeoutType,
) -> Task {
    Task::ActivityTimeout {
        scheduled_event_id,
        attempt,
        timeout_type,
    }
}

impl Builder<'_> {
    /// `Command::StartActivityAttempt`: the attempt's back-off is over.
    pub(super) fn start_scheduled_attempt(
        &mut self,
        scheduled_event_id: i64,
    ) -> Result<(), Rejection> {
        let act = self
            .state
            .activities
            .get(&scheduled_event_id)
            .ok_or_else(|| stale("activity is not open"))?;
        match act.phase {
            ActivityPhase::Scheduled { due, .. } if due > self.ctx.now => {
                // Claimed early (clock skew between nodes): re-arm.
                self.enqueue(Task::ActivityTask { scheduled_event_id }, due);
            }
            ActivityPhase::Scheduled { .. } => self.start_activity_attempt(scheduled_event_id),
            _ => return Err(stale("activity attempt already started")),
        }
        Ok(())
    }

    /// `Command::ActivityAttemptSent`: the attempt's clocks restart at the
    /// moment the push was actually sent.
    pub(super) fn activity_attempt_sent(&mut self, token: ActivityToken) -> Result<(), Rejection> {
        let sched = token.scheduled_event_id;
        let act = self.check_activity_token(token)?;
        let ActivityPhase::Started { since } = act.phase else {
            return Err(stale("activity attempt is not started"));
        };
        let now = self.ctx.now;
        if since >= now {
            return Err(stale(
                "activity attempt started no earlier than it was sent",
            ));
        }
        self.activity_mut(sched).phase = ActivityPhase::Started { since: now };
        self.arm_attempt_timers(sched);
        Ok(())
    }

    /// `Command::ActivityUndelivered`: the push failed in transport; the
    /// same attempt is pushed again after the delivery back-off.
    pub(super) fn activity_undelivered(&mut self, token: ActivityToken) -> Result<(), Rejection> {
        let sched = token.scheduled_event_id;
        let act = self.check_activity_token(token)?;
        if !matches!(act.phase, ActivityPhase::Started { .. }) {
            return Err(stale("activity attempt is not started"));
        }
        let undelivered = act.undelivered + 1;
        let limits = &self.ctx.limits;
        let delay = backoff(
            limits.delivery_initial_backoff,
            2.0,
            limits.delivery_max_backoff,
            undelivered,
        );
        let s2s = act.schedule_to_start_timeout;
        let attempt = act.attempt;
        let now = self.ctx.now;
        let due = now.saturating_add(delay);
        let act = self.activity_mut(sched);
        act.undelivered = undelivered;
        act.phase = ActivityPhase::Scheduled { since: now, due };
        self.dequeue_attempt_timers(sched);
        self.enqueue(
            Task::ActivityTask {
                scheduled_event_id: sched,
            },
            due,
        );
        if let (Some(s2s), 1) = (s2s, undelivered) {
            self.enqueue(
                activity_timeout(sched, attempt, TimeoutType::ScheduleToStart),
                now.saturating_add(s2s),
            );
        }
        Ok(())
    }

    /// `Command::CompleteActivity`: a result too large fails the attempt,
    /// not retryably.
    pub(super) fn complete_activity(
        &mut self,
        token: ActivityToken,
        result: Value,
    ) -> Result<(), Rejection> {
        self.check_activity_token(token)?;
        let size = payload_size(&result);
        let limit = self.ctx.limits.max_payload_bytes;
        if size > limit {
            let mut failure = Failure::new(
                format!("activity result of {size} bytes exceeds the limit of {limit} bytes"),
                "PayloadTooLarge",
            );
            failure.non_retryable = true;
            self.fail_activity_attempt(token.scheduled_event_id, failure, None);
        } else {
            self.close_activity(token.scheduled_event_id, ActivityOutcome::Completed(result));
        }
        Ok(())
    }

    /// `Command::FailActivity`.
    pub(super) fn fail_activity(
        &mut self,
        token: ActivityToken,
        failure: Failure,
    ) -> Result<(), Rejection> {
        self.check_activity_token(token)?;
        if let Some(d) = &failure.details {
            check_payload(d, &self.ctx.limits)?;
        }
        self.fail_activity_attempt(token.scheduled_event_id, failure, None);
        Ok(())
    }

    /// `Command::ReportActivityCanceled`: only after a cancellation was
    /// requested.
    pub(super) fn report_activity_canceled(
        &mut self,
        token: ActivityToken,
        details: Option<Value>,
    ) -> Result<(), Rejection> {
        let act = self.check_activity_token(token)?;
        if !act.cancel_requested {
            return Err(invalid(
                "activity cannot report cancellation: none was requested",
            ));
        }
        self.close_activity(token.scheduled_event_id, ActivityOutcome::Canceled(details));
        Ok(())
    }

    /// `Command::RecordActivityHeartbeat`: bookkeeping without an event.
    pub(super) fn record_activity_heartbeat(
        &mut self,
        token: ActivityToken,
        details: Option<Value>,
    ) -> Result<(), Rejection> {
        self.check_activity_token(token)?;
        if let Some(d) = &details {
            check_payload(d, &self.ctx.limits)?;
        }
        let now = self.ctx.now;
        let act = self.activity_mut(token.scheduled_event_id);
        act.last_heartbeat_time = Some(now);
        if details.is_some() {
            act.heartbeat_details = details;
        }
        Ok(())
    }

    /// `WorkflowCommand::RequestCancelActivityTask`.
    pub(super) fn request_cancel_activity(&mut self, a: RequestCancelActivityTask, completed: i64) {
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

    pub(super) fn schedule_activity(&mut self, a: ScheduleActivityTask, completed: i64) {
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
        let inline = self.inline.contains(&a.activity_id);
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
                inline,
            },
        ));
        if let Some(s2c) = t.schedule_to_close {
            self.enqueue(
                activity_timeout(sched, 0, TimeoutType::ScheduleToClose),
                self.now().saturating_add(s2c),
            );
        }
        self.start_activity_attempt(sched);
        if inline {
            // Started, with its timers armed, but run by the handler that
            // sent the checkpoint: nothing is pushed.
            self.effects.retain(|e| {
                !matches!(e, Effect::Dispatch(Dispatch::ActivityTask { scheduled_event_id })
                    if *scheduled_event_id == sched)
            });
        }
    }

    pub(super) fn activity_mut(&mut self, sched: i64) -> &mut Activity {
        self.state
            .activities
            .get_mut(&sched)
            .expect("callers check that the activity is open")
    }

    pub(super) fn check_activity_token(
        &self,
        token: ActivityToken,
    ) -> Result<&Activity, Rejection> {
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
    pub(super) fn start_activity_attempt(&mut self, sched: i64) {
        let now = self.now();
        let act = self.activity_mut(sched);
        act.phase = ActivityPhase::Started { since: now };
        act.last_heartbeat_time = None;
        let (attempt, redelivery) = (act.attempt, act.undelivered > 0);
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
        self.arm_attempt_timers(sched);
        self.effects.push(Effect::Dispatch(Dispatch::ActivityTask {
            scheduled_event_id: sched,
        }));
    }

    /// Arms the current attempt's start-to-close timer (never past the
    /// schedule-to-close deadline) and heartbeat timer, counted from now.
    fn arm_attempt_timers(&mut self, sched: i64) {
        let now = self.now();
        let act = self
            .state
            .activities
            .get(&sched)
            .expect("callers check that the activity is open");
        let (attempt, stc, hb, s2c) = (
            act.attempt,
            act.start_to_close_timeout,
            act.heartbeat_timeout,
            act.schedule_to_close_timeout
                .map(|d| act.scheduled_time.saturating_add(d)),
        );
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
    }

    pub(super) fn dequeue_attempt_timers(&mut self, sched: i64) {
        for tt in [TimeoutType::StartToClose, TimeoutType::Heartbeat] {
            self.dequeue(&activity_timeout(sched, 0, tt));
        }
    }

    pub(super) fn dequeue_activity_tasks(&mut self, sched: i64) {
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

    pub(super) fn close_activity(&mut self, sched: i64, outcome: ActivityOutcome) {
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
    pub(super) fn fail_activity_attempt(
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

    pub(super) fn fire_activity_timeout(
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
pub(super) struct ActivityTimeouts {
    schedule_to_close: Option<Duration>,
    schedule_to_start: Option<Duration>,
    start_to_close: Duration,
    heartbeat: Option<Duration>,
}

pub(super) fn resolve_activity_timeouts(
    a: &ScheduleActivityTask,
) -> Result<ActivityTimeouts, String> {
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
