//! Workflow id reuse and conflict policies, Temporal's names and meanings:
//! the options a start request (or a child workflow's) carries. What they
//! make a start do is a rule, `decide::start_decision`.

use serde::{Deserialize, Serialize};

/// What to do when the id's latest run is closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdReusePolicy {
    #[default]
    AllowDuplicate,
    /// Only after a run that did not complete successfully.
    AllowDuplicateFailedOnly,
    RejectDuplicate,
    /// Temporal's older spelling of conflict policy TERMINATE_EXISTING.
    TerminateIfRunning,
}

/// What to do when the id's latest run is still open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdConflictPolicy {
    #[default]
    Fail,
    UseExisting,
    TerminateExisting,
}
