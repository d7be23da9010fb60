//! Workflow tasks: scheduling one (at most one in flight per run), the view
//! a push carries ([`workflow_task_view`]), fencing answers by token,
//! completion (the response checked whole by `validate`, then each
//! workflow command applied), failures the SDK reports, transport failures
//! and timeouts, and retries after back-off (transient attempts leave no
//! events).

use crate::engine::command::WorkflowCommand;
use crate::engine::effect::{Dispatch, Effect, Task};
use crate::engine::event::*;
use crate::engine::failure::{Failure, TimeoutType};
use crate::engine::retry::backoff;
use crate::engine::search::{Registry, SearchAttributes};
use crate::engine::state::{event_size, RunState, WorkflowTask};
use crate::engine::token::WorkflowTaskToken;
use crate::engine::{Ctx, Limits, Rejection};
use crate::time::{Duration, Timestamp};

use super::builder::Builder;
use super::stale;
use super::validate::{validate_commands, TypedAttributes};

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

pub(super) fn view(
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

impl Builder<'_> {
    /// A new workflow task (attempt 1), pushed right after commit. Its row
    /// is committed already leased to this node, so only a crash makes it
    /// reappear for another node.
    pub(super) fn schedule_workflow_task(&mut self) {
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
    pub(super) fn retry_workflow_task(&mut self, task: &WorkflowTask, transient: bool) {
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

    pub(super) fn check_workflow_token(
        &self,
        token: WorkflowTaskToken,
    ) -> Result<WorkflowTask, Rejection> {
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
    pub(super) fn append_started(
        &mut self,
        task: &WorkflowTask,
        token: WorkflowTaskToken,
    ) -> (i64, i64) {
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
    pub(super) fn record_workflow_task_failure(
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

    pub(super) fn complete_workflow_task(
        &mut self,
        token: WorkflowTaskToken,
        commands: Vec<WorkflowCommand>,
        identity: Option<String>,
        force_new_task: bool,
        registry: &Registry,
    ) -> Result<(), Rejection> {
        let task = self.check_workflow_token(token)?;
        let heartbeats = self.state.workflow_task_heartbeats;
        let checked = validate_commands(&self.state, &commands, &self.ctx.limits, registry)
            .and_then(|typed| {
                let closes = commands
                    .last()
                    .is_some_and(WorkflowCommand::closes_workflow);
                if force_new_task
                    && !closes
                    && heartbeats >= self.ctx.limits.max_workflow_task_heartbeats
                {
                    Err((
                        WorkflowTaskFailedCause::ForceCloseCommand,
                        format!(
                            "workflow task heartbeat refused: {heartbeats} heartbeats in a row \
                             (limit {})",
                            self.ctx.limits.max_workflow_task_heartbeats
                        ),
                    ))
                } else {
                    Ok(typed)
                }
            });
        self.state.workflow_task_heartbeats = 0;
        let typed = match checked {
            Ok(typed) => typed,
            Err((cause, message)) => {
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
                self.state.last_workflow_task_failure = Some(message.clone());
                self.workflow_task_failed = Some((cause, message));
                if unhandled && had_new_events {
                    // The workflow simply has not seen the new events yet.
                    self.schedule_workflow_task();
                } else {
                    self.retry_workflow_task(&task, true);
                }
                return Ok(());
            }
        };
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
        for (cmd, typed) in commands.into_iter().zip(typed) {
            self.apply_command(cmd, completed, typed);
        }
        if !self.state.status.is_closed()
            && (self.flush_buffered() || self.canceled_unstarted_activity || force_new_task)
        {
            if force_new_task {
                self.state.workflow_task_heartbeats = heartbeats + 1;
            }
            self.schedule_workflow_task();
        }
        Ok(())
    }

    /// `Command::FailWorkflowTask`: the SDK reports the task failed.
    pub(super) fn fail_workflow_task(
        &mut self,
        token: WorkflowTaskToken,
        cause: WorkflowTaskFailedCause,
        failure: Failure,
    ) -> Result<(), Rejection> {
        let task = self.check_workflow_token(token)?;
        self.state.workflow_task_heartbeats = 0;
        self.state.last_workflow_task_failure = Some(failure.message.clone());
        self.record_workflow_task_failure(&task, token, |sched, started| {
            EventAttributes::WorkflowTaskFailed(WorkflowTaskFailed {
                scheduled_event_id: sched,
                started_event_id: started,
                cause,
                failure,
                base_run_id: None,
                new_run_id: None,
            })
        });
        Ok(())
    }

    /// `Command::WorkflowTaskUndelivered`: the push failed in transport or
    /// timed out.
    pub(super) fn workflow_task_undelivered(
        &mut self,
        token: WorkflowTaskToken,
        timed_out: bool,
        error: String,
    ) -> Result<(), Rejection> {
        let task = self.check_workflow_token(token)?;
        self.state.workflow_task_heartbeats = 0;
        self.state.last_workflow_task_failure = Some(error);
        if timed_out {
            self.record_workflow_task_failure(&task, token, |sched, started| {
                EventAttributes::WorkflowTaskTimedOut(WorkflowTaskTimedOut {
                    scheduled_event_id: sched,
                    started_event_id: started,
                    timeout_type: TimeoutType::StartToClose,
                })
            });
        } else {
            // Transport failures leave no trace in the history.
            self.retry_workflow_task(&task, task.scheduled_event_id.is_none());
        }
        Ok(())
    }

    /// One command of a completed task's response, already validated, with
    /// its search attributes typed (`None`: it names none).
    pub(super) fn apply_command(
        &mut self,
        cmd: WorkflowCommand,
        completed: i64,
        typed: Option<TypedAttributes>,
    ) {
        let set_only = |t: Option<TypedAttributes>| {
            t.map(|t| {
                t.into_iter()
                    .filter_map(|(name, v)| v.map(|v| (name, v)))
                    .collect::<SearchAttributes>()
            })
        };
        match cmd {
            WorkflowCommand::ScheduleActivityTask(a) => self.schedule_activity(a, completed),
            WorkflowCommand::RequestCancelActivityTask(a) => {
                self.request_cancel_activity(a, completed);
            }
            WorkflowCommand::StartTimer(t) => self.start_timer(t, completed),
            WorkflowCommand::CancelTimer(t) => self.cancel_timer(t, completed),
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
                self.continue_as_new(c, completed, set_only(typed))
            }
            WorkflowCommand::CancelWorkflowExecution(c) => {
                self.close_run(EventAttributes::WorkflowExecutionCanceled(
                    WorkflowExecutionCanceled {
                        details: c.details,
                        workflow_task_completed_event_id: completed,
                    },
                ));
            }
            WorkflowCommand::CompleteWorkflowUpdate(u) => self.complete_update(u, completed),
            WorkflowCommand::StartChildWorkflowExecution(c) => {
                self.initiate_child(c, completed, set_only(typed).unwrap_or_default());
            }
            WorkflowCommand::UpsertWorkflowSearchAttributes(_) => {
                self.append(EventAttributes::UpsertWorkflowSearchAttributes(
                    UpsertWorkflowSearchAttributesEventAttributes {
                        workflow_task_completed_event_id: completed,
                        search_attributes: typed.unwrap_or_default(),
                    },
                ));
            }
            WorkflowCommand::SignalExternalWorkflowExecution(c) => {
                self.initiate_external_signal(c, completed);
            }
            WorkflowCommand::RequestCancelExternalWorkflowExecution(c) => {
                self.initiate_external_cancel(c, completed);
            }
        }
    }
}
