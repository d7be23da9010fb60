//! Requests from outside to stop a run: a cancellation request (recorded
//! once, for the workflow to act on) and termination (the run closes now,
//! after its buffered events).

use serde_json::Value;

use crate::engine::event::*;
use crate::engine::state::BufferedEntry;
use crate::engine::Rejection;

use super::builder::Builder;
use super::check_payload;

impl Builder<'_> {
    /// `Command::TerminateWorkflow`.
    pub(super) fn terminate(
        &mut self,
        reason: String,
        details: Option<Value>,
        identity: Option<String>,
    ) -> Result<(), Rejection> {
        if let Some(d) = &details {
            check_payload(d, &self.ctx.limits)?;
        }
        self.flush_buffered();
        self.close_run(EventAttributes::WorkflowExecutionTerminated(
            WorkflowExecutionTerminated {
                reason,
                details,
                identity,
            },
        ));
        Ok(())
    }

    /// `Command::RequestCancelWorkflow`: later requests are no-ops.
    pub(super) fn request_cancel(&mut self, reason: String, identity: Option<String>) {
        if !self.state.cancel_requested {
            self.state.cancel_requested = true;
            self.external(BufferedEntry::Event(
                EventAttributes::WorkflowExecutionCancelRequested(
                    WorkflowExecutionCancelRequested {
                        cause: reason,
                        identity,
                    },
                ),
            ));
        }
    }
}
