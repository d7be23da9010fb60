//! Child workflows and requests to other workflows (signals, cancellation
//! requests), as Temporal has them: the workflow commands that initiate
//! them, the outcomes the transfer service reports back, and what a run's
//! close asks of its parent and its children.
//!
//! Everything that reaches another run is a task row of the transfer queue
//! committed with the event that implies it (transactional outbox); the
//! service carries it out at least once and reports back with a
//! [`Command`](crate::engine::Command). Every report is checked against the phase
//! the run keeps per child and per request, so a repeated report is
//! `Rejection::Stale` and changes nothing. Outcomes that arrive while a
//! workflow task is in flight are buffered like activity results.

use crate::engine::command::{
    ChildOutcome, RequestCancelExternalWorkflowExecution, SignalExternalWorkflowExecution,
    StartChildWorkflowExecution,
};
use crate::engine::effect::Task;
use crate::engine::event::*;
use crate::engine::search::SearchAttributes;
use crate::engine::state::{BufferedEntry, Child, ChildPhase};
use crate::engine::Rejection;
use crate::ids::RunId;
use crate::time::Timestamp;

use super::builder::Builder;

/// Longest workflow id a child may be given, as for a start over REST.
const MAX_WORKFLOW_ID_BYTES: usize = 1_000;

impl Builder<'_> {
    /// `search_attributes`: the command's, typed by `validate`.
    pub(super) fn initiate_child(
        &mut self,
        c: StartChildWorkflowExecution,
        completed: i64,
        search_attributes: SearchAttributes,
    ) {
        // validate_start_child refused policies that do not resolve.
        let retry_policy = c.retry_policy.and_then(|p| p.resolve().ok());
        let id = self.append(EventAttributes::StartChildWorkflowExecutionInitiated(
            StartChildWorkflowExecutionInitiated {
                workflow_id: c.workflow_id,
                workflow_type: c.workflow_type,
                task_queue: c
                    .task_queue
                    .unwrap_or_else(|| self.state.task_queue.clone()),
                input: c.input,
                workflow_execution_timeout: c.workflow_execution_timeout,
                workflow_run_timeout: c.workflow_run_timeout,
                workflow_task_timeout: c
                    .workflow_task_timeout
                    .unwrap_or(self.state.workflow_task_timeout),
                parent_close_policy: c.parent_close_policy,
                workflow_id_reuse_policy: c.workflow_id_reuse_policy,
                retry_policy,
                memo: c.memo,
                search_attributes,
                workflow_task_completed_event_id: completed,
            },
        ));
        self.enqueue(
            Task::StartChild {
                initiated_event_id: id,
            },
            self.now(),
        );
    }

    pub(super) fn initiate_external_signal(
        &mut self,
        c: SignalExternalWorkflowExecution,
        completed: i64,
    ) {
        let id = self.append(EventAttributes::SignalExternalWorkflowExecutionInitiated(
            SignalExternalWorkflowExecutionInitiated {
                workflow_execution: WorkflowExecution {
                    workflow_id: c.workflow_id,
                    run_id: c.run_id,
                },
                signal_name: c.signal_name,
                input: c.input,
                child_workflow_only: c.child_workflow_only,
                workflow_task_completed_event_id: completed,
            },
        ));
        self.enqueue(
            Task::SignalExternal {
                initiated_event_id: id,
            },
            self.now(),
        );
    }

    pub(super) fn initiate_external_cancel(
        &mut self,
        c: RequestCancelExternalWorkflowExecution,
        completed: i64,
    ) {
        let id = self.append(
            EventAttributes::RequestCancelExternalWorkflowExecutionInitiated(
                RequestCancelExternalWorkflowExecutionInitiated {
                    workflow_execution: WorkflowExecution {
                        workflow_id: c.workflow_id,
                        run_id: c.run_id,
                    },
                    child_workflow_only: c.child_workflow_only,
                    reason: c.reason,
                    workflow_task_completed_event_id: completed,
                },
            ),
        );
        self.enqueue(
            Task::CancelExternal {
                initiated_event_id: id,
            },
            self.now(),
        );
    }

    /// The transfer service started the child: ChildWorkflowExecutionStarted.
    pub(super) fn child_started(
        &mut self,
        initiated_event_id: i64,
        run_id: RunId,
    ) -> Result<(), Rejection> {
        let child = self.pending_child(initiated_event_id, ChildPhase::Initiated)?;
        child.phase = ChildPhase::Started;
        child.run_id = Some(run_id);
        let event = ChildWorkflowExecutionStarted {
            workflow_execution: WorkflowExecution {
                workflow_id: child.workflow_id.clone(),
                run_id: Some(run_id),
            },
            workflow_type: child.workflow_type.clone(),
            initiated_event_id,
        };
        self.dequeue(&Task::StartChild { initiated_event_id });
        self.external(BufferedEntry::Event(
            EventAttributes::ChildWorkflowExecutionStarted(event),
        ));
        Ok(())
    }

    pub(super) fn child_start_failed(
        &mut self,
        initiated_event_id: i64,
        cause: StartChildWorkflowExecutionFailedCause,
    ) -> Result<(), Rejection> {
        let child = self.pending_child(initiated_event_id, ChildPhase::Initiated)?;
        child.phase = ChildPhase::Closed;
        let event = StartChildWorkflowExecutionFailed {
            workflow_id: child.workflow_id.clone(),
            workflow_type: child.workflow_type.clone(),
            cause,
            initiated_event_id,
        };
        self.dequeue(&Task::StartChild { initiated_event_id });
        self.external(BufferedEntry::Event(
            EventAttributes::StartChildWorkflowExecutionFailed(event),
        ));
        Ok(())
    }

    /// The child's chain closed. If its start was never recorded (the
    /// report of the start was lost or is late), the closing event comes
    /// after a ChildWorkflowExecutionStarted made from this report.
    pub(super) fn child_closed(
        &mut self,
        initiated_event_id: i64,
        first_run_id: RunId,
        run_id: RunId,
        outcome: ChildOutcome,
    ) -> Result<(), Rejection> {
        let child = self
            .state
            .children
            .get_mut(&initiated_event_id)
            .filter(|c| c.phase != ChildPhase::Closed)
            .ok_or_else(|| Rejection::Stale("child workflow is not open".into()))?;
        let was_initiated = child.phase == ChildPhase::Initiated;
        child.phase = ChildPhase::Closed;
        if was_initiated {
            self.dequeue(&Task::StartChild { initiated_event_id });
        }
        self.external(BufferedEntry::ChildClosed {
            initiated_event_id,
            first_run_id,
            run_id,
            outcome,
        });
        Ok(())
    }

    /// Appends a child's closing event (see [`BufferedEntry::ChildClosed`]).
    pub(super) fn append_child_closed(
        &mut self,
        initiated_event_id: i64,
        first_run_id: RunId,
        run_id: RunId,
        outcome: ChildOutcome,
        time: Timestamp,
    ) {
        let Some(child) = self.state.children.get(&initiated_event_id) else {
            // child_closed checked that the child is open, and only this
            // entry closes it.
            return;
        };
        let workflow_execution = WorkflowExecution {
            workflow_id: child.workflow_id.clone(),
            run_id: Some(run_id),
        };
        let workflow_type = child.workflow_type.clone();
        let started_event_id = match child.started_event_id {
            Some(id) => id,
            // Started names the run the start created, as a timely
            // report of the start would have.
            None => self.append_at(
                EventAttributes::ChildWorkflowExecutionStarted(ChildWorkflowExecutionStarted {
                    workflow_execution: WorkflowExecution {
                        workflow_id: child.workflow_id.clone(),
                        run_id: Some(first_run_id),
                    },
                    workflow_type: workflow_type.clone(),
                    initiated_event_id,
                }),
                time,
            ),
        };
        let child = ChildExecution {
            workflow_execution,
            workflow_type,
            initiated_event_id,
            started_event_id,
        };
        let event =
            match outcome {
                ChildOutcome::Completed(result) => {
                    EventAttributes::ChildWorkflowExecutionCompleted(
                        ChildWorkflowExecutionCompleted { result, child },
                    )
                }
                ChildOutcome::Failed(failure, retry_state) => {
                    EventAttributes::ChildWorkflowExecutionFailed(ChildWorkflowExecutionFailed {
                        failure,
                        retry_state,
                        child,
                    })
                }
                ChildOutcome::Canceled(details) => EventAttributes::ChildWorkflowExecutionCanceled(
                    ChildWorkflowExecutionCanceled { details, child },
                ),
                ChildOutcome::TimedOut(retry_state) => {
                    EventAttributes::ChildWorkflowExecutionTimedOut(
                        ChildWorkflowExecutionTimedOut { retry_state, child },
                    )
                }
                ChildOutcome::Terminated => EventAttributes::ChildWorkflowExecutionTerminated(
                    ChildWorkflowExecutionTerminated { child },
                ),
            };
        self.append_at(event, time);
    }

    /// A signal or cancellation request reached its target (`cause` is
    /// `None`) or could not.
    pub(super) fn external_request_done(
        &mut self,
        initiated_event_id: i64,
        cause: Option<ExternalWorkflowExecutionFailedCause>,
    ) -> Result<(), Rejection> {
        let request = self
            .state
            .external_requests
            .get_mut(&initiated_event_id)
            .filter(|r| !r.done)
            .ok_or_else(|| Rejection::Stale("external request is not pending".into()))?;
        request.done = true;
        let workflow_execution = WorkflowExecution {
            workflow_id: request.workflow_id.clone(),
            run_id: request.run_id,
        };
        let (task, event) = if request.cancel {
            let event = match cause {
                None => EventAttributes::ExternalWorkflowExecutionCancelRequested(
                    ExternalWorkflowExecutionCancelRequested {
                        workflow_execution,
                        initiated_event_id,
                    },
                ),
                Some(cause) => EventAttributes::RequestCancelExternalWorkflowExecutionFailed(
                    RequestCancelExternalWorkflowExecutionFailed {
                        workflow_execution,
                        cause,
                        initiated_event_id,
                    },
                ),
            };
            (Task::CancelExternal { initiated_event_id }, event)
        } else {
            let event = match cause {
                None => EventAttributes::ExternalWorkflowExecutionSignaled(
                    ExternalWorkflowExecutionSignaled {
                        workflow_execution,
                        initiated_event_id,
                    },
                ),
                Some(cause) => EventAttributes::SignalExternalWorkflowExecutionFailed(
                    SignalExternalWorkflowExecutionFailed {
                        workflow_execution,
                        cause,
                        initiated_event_id,
                    },
                ),
            };
            (Task::SignalExternal { initiated_event_id }, event)
        };
        self.dequeue(&task);
        self.external(BufferedEntry::Event(event));
        Ok(())
    }

    /// Called when the run closes, after every row of the run was
    /// dequeued: a child tells its parent (unless its chain goes on in a
    /// new run), and each open child gets its parent close policy applied.
    pub(super) fn reach_parent_and_children(&mut self) {
        let now = self.now();
        // A run whose chain goes on (continue-as-new, a retry) is not the
        // child's last: the next run carries the parent and reports.
        if self.state.parent.is_some() && self.state.new_execution_run_id.is_none() {
            self.enqueue(Task::NotifyParent, now);
        }
        let policies: Vec<Task> = self
            .state
            .children
            .iter()
            .filter(|(_, c)| {
                c.phase != ChildPhase::Closed && c.parent_close_policy != ParentClosePolicy::Abandon
            })
            .map(|(id, c)| Task::ApplyParentClosePolicy {
                initiated_event_id: *id,
                workflow_id: c.workflow_id.clone(),
                policy: c.parent_close_policy,
            })
            .collect();
        for task in policies {
            self.enqueue(task, now);
        }
    }

    pub(super) fn pending_child(
        &mut self,
        initiated_event_id: i64,
        phase: ChildPhase,
    ) -> Result<&mut Child, Rejection> {
        self.state
            .children
            .get_mut(&initiated_event_id)
            .filter(|c| c.phase == phase)
            .ok_or_else(|| Rejection::Stale("child workflow start is not pending".into()))
    }
}

/// How the closing event of a child's last run reads to its parent; `None`
/// for any other event.
pub fn child_outcome(event: &EventAttributes) -> Option<ChildOutcome> {
    Some(match event {
        EventAttributes::WorkflowExecutionCompleted(a) => ChildOutcome::Completed(a.result.clone()),
        EventAttributes::WorkflowExecutionFailed(a) => {
            ChildOutcome::Failed(a.failure.clone(), a.retry_state)
        }
        EventAttributes::WorkflowExecutionCanceled(a) => ChildOutcome::Canceled(a.details.clone()),
        EventAttributes::WorkflowExecutionTimedOut(a) => ChildOutcome::TimedOut(a.retry_state),
        EventAttributes::WorkflowExecutionTerminated(_) => ChildOutcome::Terminated,
        _ => return None,
    })
}

/// BAD_START_CHILD_EXECUTION_ATTRIBUTES rules (payload sizes are checked
/// with the other payloads).
pub(super) fn validate_start_child(c: &StartChildWorkflowExecution) -> Result<(), String> {
    check_workflow_id(c.workflow_id.as_str())?;
    if c.workflow_type.is_empty() {
        return Err("workflow_type must not be empty".into());
    }
    if c.task_queue.as_ref().is_some_and(|q| q.as_str().is_empty()) {
        return Err("task_queue must not be empty".into());
    }
    for (name, d) in [
        ("workflow_execution_timeout", c.workflow_execution_timeout),
        ("workflow_run_timeout", c.workflow_run_timeout),
        ("workflow_task_timeout", c.workflow_task_timeout),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            return Err(format!("{name} must be greater than zero"));
        }
    }
    if let Some(p) = &c.retry_policy {
        p.resolve()?;
    }
    Ok(())
}

/// BAD_SIGNAL_WORKFLOW_EXECUTION_ATTRIBUTES rules.
pub(super) fn validate_signal_external(c: &SignalExternalWorkflowExecution) -> Result<(), String> {
    check_workflow_id(c.workflow_id.as_str())?;
    if c.signal_name.is_empty() {
        return Err("signal_name must not be empty".into());
    }
    Ok(())
}

/// BAD_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_ATTRIBUTES rules.
pub(super) fn validate_cancel_external(
    c: &RequestCancelExternalWorkflowExecution,
) -> Result<(), String> {
    check_workflow_id(c.workflow_id.as_str())
}

fn check_workflow_id(workflow_id: &str) -> Result<(), String> {
    if workflow_id.is_empty() {
        return Err("workflow_id must not be empty".into());
    }
    if workflow_id.len() > MAX_WORKFLOW_ID_BYTES {
        return Err(format!(
            "workflow_id must be at most {MAX_WORKFLOW_ID_BYTES} bytes"
        ));
    }
    Ok(())
}
