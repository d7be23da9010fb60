//! Worker versioning: pinning a run that started unpinned to the endpoint
//! version its first push went to, and the audited move of a run from one
//! version to another (WorkflowExecutionOptionsUpdated).

use crate::engine::command::MoveToVersion;
use crate::engine::event::*;
use crate::engine::state::BufferedEntry;
use crate::engine::Rejection;

use super::builder::Builder;
use super::invalid;

impl Builder<'_> {
    /// `Command::PinVersion`: bookkeeping without an event, and only for a
    /// run not pinned yet.
    pub(super) fn pin_version(&mut self, version: String) {
        if self.state.pinned_version.is_none() {
            self.state.pinned_version = Some(version);
        }
    }

    /// `Command::UpdateWorkflowExecutionOptions`.
    pub(super) fn move_to_version(&mut self, m: MoveToVersion) -> Result<(), Rejection> {
        if m.reason.trim().is_empty() {
            return Err(invalid("reason must not be empty"));
        }
        if m.to_version.is_empty() {
            return Err(invalid("the version to move to must not be empty"));
        }
        let pinned = self.state.pinned_version.clone();
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
        self.state.pinned_version = Some(m.to_version.clone());
        self.external(BufferedEntry::Event(
            EventAttributes::WorkflowExecutionOptionsUpdated(WorkflowExecutionOptionsUpdated {
                versioning_override: VersioningOverride {
                    pinned_version: m.to_version,
                },
                previous_pinned_version: Some(m.from_version),
                reason: m.reason,
                identity: m.identity,
            }),
        ));
        Ok(())
    }
}
