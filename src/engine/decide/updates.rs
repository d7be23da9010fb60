//! Workflow updates: admitting one (recorded like a signal, once per update
//! id), accepting the updates a completed workflow task carried, and
//! recording an update's outcome the workflow reported.

use crate::engine::command::{CompleteWorkflowUpdate, Update};
use crate::engine::event::*;
use crate::engine::state::BufferedEntry;
use crate::engine::{Limits, Rejection};

use super::builder::Builder;
use super::{check_payload, invalid};

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

impl Builder<'_> {
    /// `Command::AdmitUpdate`.
    pub(super) fn admit_update(&mut self, update: Update) -> Result<(), Rejection> {
        check_update(&update, &self.ctx.limits)?;
        // A retry of an update the run has seen is not recorded again;
        // the caller waits for the first one's outcome.
        if !self.state.updates.contains_key(&update.update_id) {
            self.state
                .updates
                .insert(update.update_id.clone(), Default::default());
            self.external(BufferedEntry::Event(
                EventAttributes::WorkflowExecutionUpdateAdmitted(WorkflowExecutionUpdateAdmitted {
                    update_id: update.update_id,
                    update_name: update.update_name,
                    input: update.input,
                    identity: update.identity,
                }),
            ));
        }
        Ok(())
    }

    /// Every recorded update this task carried that no earlier task
    /// accepted: the workflow took it, and its handler is running.
    pub(super) fn accept_delivered_updates(&mut self) {
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

    /// `WorkflowCommand::CompleteWorkflowUpdate`.
    pub(super) fn complete_update(&mut self, u: CompleteWorkflowUpdate, completed: i64) {
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
}
