//! Signals to a run: checking one, recording it (or recognising a retry by
//! its request id), buffered like any event from outside the workflow-task
//! cycle.

use crate::engine::command::Signal;
use crate::engine::event::*;
use crate::engine::state::BufferedEntry;
use crate::engine::{Limits, Rejection};

use super::builder::Builder;
use super::{check_payload, invalid};

pub(super) fn check_signal(signal: &Signal, limits: &Limits) -> Result<(), Rejection> {
    if signal.signal_name.is_empty() {
        return Err(invalid("signal_name must not be empty"));
    }
    check_payload(&signal.input, limits)
}

impl Builder<'_> {
    /// `Command::SignalWorkflow`.
    pub(super) fn signal_workflow(&mut self, signal: Signal) -> Result<(), Rejection> {
        check_signal(&signal, &self.ctx.limits)?;
        if let Some(event) = self.signal_event(signal) {
            self.external(BufferedEntry::Event(event));
        }
        Ok(())
    }

    /// The event recording a checked signal, or `None` if its request id
    /// was seen already (a retry: accepted, not recorded again).
    pub(super) fn signal_event(&mut self, signal: Signal) -> Option<EventAttributes> {
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
}
