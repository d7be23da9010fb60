//! Workflow id reuse and conflict policies: what a start request does when
//! the workflow id already has a run. Temporal's names and meanings.

use serde::{Deserialize, Serialize};

use super::state::RunStatus;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartDecision {
    Start,
    /// Return the open run instead of starting one.
    UseExisting,
    /// Terminate the open run and start a new one, in one transaction.
    TerminateExistingAndStart,
    /// Refuse: an open run exists (`true`) or a closed one the reuse policy
    /// forbids (`false`).
    Reject {
        running: bool,
    },
}

/// Decides a start against the latest run of its workflow id.
pub fn start_decision(
    latest: Option<RunStatus>,
    reuse: IdReusePolicy,
    conflict: IdConflictPolicy,
) -> StartDecision {
    match latest {
        None => StartDecision::Start,
        Some(RunStatus::Running) => match (conflict, reuse) {
            (IdConflictPolicy::UseExisting, _) => StartDecision::UseExisting,
            (IdConflictPolicy::TerminateExisting, _)
            | (IdConflictPolicy::Fail, IdReusePolicy::TerminateIfRunning) => {
                StartDecision::TerminateExistingAndStart
            }
            (IdConflictPolicy::Fail, _) => StartDecision::Reject { running: true },
        },
        Some(closed) => match reuse {
            IdReusePolicy::AllowDuplicate | IdReusePolicy::TerminateIfRunning => {
                StartDecision::Start
            }
            IdReusePolicy::AllowDuplicateFailedOnly
                if !matches!(closed, RunStatus::Completed | RunStatus::ContinuedAsNew) =>
            {
                StartDecision::Start
            }
            IdReusePolicy::AllowDuplicateFailedOnly | IdReusePolicy::RejectDuplicate => {
                StartDecision::Reject { running: false }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdConflictPolicy as C;
    use IdReusePolicy as R;
    use StartDecision as D;

    #[test]
    fn policies_follow_temporal() {
        let run = Some(RunStatus::Running);
        assert_eq!(start_decision(None, R::RejectDuplicate, C::Fail), D::Start);
        assert_eq!(
            start_decision(run, R::AllowDuplicate, C::Fail),
            D::Reject { running: true }
        );
        assert_eq!(
            start_decision(run, R::AllowDuplicate, C::UseExisting),
            D::UseExisting
        );
        assert_eq!(
            start_decision(run, R::AllowDuplicate, C::TerminateExisting),
            D::TerminateExistingAndStart
        );
        assert_eq!(
            start_decision(run, R::TerminateIfRunning, C::Fail),
            D::TerminateExistingAndStart
        );
        let done = Some(RunStatus::Completed);
        let failed = Some(RunStatus::Failed);
        assert_eq!(start_decision(done, R::AllowDuplicate, C::Fail), D::Start);
        assert_eq!(
            start_decision(done, R::AllowDuplicateFailedOnly, C::Fail),
            D::Reject { running: false }
        );
        assert_eq!(
            start_decision(failed, R::AllowDuplicateFailedOnly, C::Fail),
            D::Start
        );
        assert_eq!(
            start_decision(failed, R::RejectDuplicate, C::Fail),
            D::Reject { running: false }
        );
    }
}
