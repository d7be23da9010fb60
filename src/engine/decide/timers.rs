//! Timers: the workflow's own (started and canceled by workflow commands)
//! and what firing a timer-queue row means, for every kind of timer: a
//! user timer, the run deadline, the first workflow task's back-off, and
//! (handed to `activities`) an activity timeout. A row that fires early is
//! re-armed; one that no longer applies is stale.

use crate::engine::command::{CancelTimer, StartTimer};
use crate::engine::effect::Task;
use crate::engine::event::*;
use crate::engine::failure::{Failure, FailureKind, RetryState, TimeoutType};
use crate::engine::state::BufferedEntry;
use crate::engine::Rejection;

use super::builder::Builder;
use super::{invalid, stale};

impl Builder<'_> {
    /// `WorkflowCommand::StartTimer`.
    pub(super) fn start_timer(&mut self, t: StartTimer, completed: i64) {
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

    /// `WorkflowCommand::CancelTimer`: a timer that fired already is left
    /// alone (its TimerFired is buffered).
    pub(super) fn cancel_timer(&mut self, t: CancelTimer, completed: i64) {
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

    pub(super) fn fire_timer(&mut self, task: Task) -> Result<(), Rejection> {
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
}
