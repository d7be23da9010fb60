//! Starting a run: what a start request does when its workflow id already
//! has a run ([`start_decision`], over the id reuse and conflict policies),
//! and the transition that creates a run ([`start`], [`start_with_signal`]):
//! WorkflowExecutionStarted, the run deadline and the first workflow task
//! (or the back-off before it).

use crate::engine::command::{Signal, StartRun};
use crate::engine::effect::Task;
use crate::engine::event::*;
use crate::engine::policy::{IdConflictPolicy, IdReusePolicy};
use crate::engine::retry::RetryPolicySpec;
use crate::engine::state::{RunState, RunStatus};
use crate::engine::{Ctx, Rejection, Transition};
use crate::time::Duration;

use super::builder::Builder;
use super::signals::check_signal;
use super::{check_payload, invalid};

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

/// Temporal's default and maximum workflow task timeout.
pub(super) const DEFAULT_WORKFLOW_TASK_TIMEOUT: Duration = Duration(10_000);
pub(super) const MAX_WORKFLOW_TASK_TIMEOUT: Duration = Duration(120_000);

/// Creates a run: WorkflowExecutionStarted, the first workflow task, and the
/// run deadline timer.
pub fn start(cmd: StartRun, ctx: &Ctx) -> Result<Transition, Rejection> {
    let mut b = started(cmd, ctx)?;
    match b.state.chain.backoff_until {
        // The first workflow task waits out the back-off (Temporal's
        // workflow back-off timer); signals meanwhile are recorded.
        Some(due) => b.enqueue(Task::WorkflowBackoffTimer, due),
        None => b.schedule_workflow_task(),
    }
    Ok(b.finish())
}

/// Creates a run that has a signal waiting (signal-with-start): the
/// signal is recorded right after WorkflowExecutionStarted, before the first
/// workflow task, so that task sees it.
pub fn start_with_signal(
    cmd: StartRun,
    signal: Signal,
    ctx: &Ctx,
) -> Result<Transition, Rejection> {
    check_signal(&signal, &ctx.limits)?;
    let mut b = started(cmd, ctx)?;
    if let Some(event) = b.signal_event(signal) {
        b.append(event);
    }
    b.schedule_workflow_task();
    Ok(b.finish())
}

/// WorkflowExecutionStarted and the run deadline, without the first task.
fn started(cmd: StartRun, ctx: &Ctx) -> Result<Builder<'_>, Rejection> {
    if cmd.workflow_id.as_str().is_empty() {
        return Err(invalid("workflow_id must not be empty"));
    }
    if cmd.workflow_type.is_empty() {
        return Err(invalid("workflow_type must not be empty"));
    }
    if cmd.task_queue.as_str().is_empty() {
        return Err(invalid("task_queue must not be empty"));
    }
    for (name, d) in [
        ("workflow_execution_timeout", cmd.execution_timeout),
        ("workflow_run_timeout", cmd.run_timeout),
        ("workflow_task_timeout", cmd.task_timeout),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            return Err(invalid(format!("{name} must be greater than zero")));
        }
    }
    check_payload(&cmd.input, &ctx.limits)?;
    if let Some(memo) = &cmd.memo {
        if !memo.is_object() {
            return Err(invalid("memo must be a JSON object"));
        }
        check_payload(memo, &ctx.limits)?;
    }
    let retry_policy = cmd
        .retry_policy
        .as_ref()
        .map(RetryPolicySpec::resolve)
        .transpose()
        .map_err(invalid)?;
    let chain = cmd.chain.as_ref();
    let run_timeout = match (cmd.run_timeout, cmd.execution_timeout) {
        (Some(r), Some(e)) => Some(r.min(e)),
        (r, e) => r.or(e),
    };
    let task_timeout = cmd
        .task_timeout
        .unwrap_or(DEFAULT_WORKFLOW_TASK_TIMEOUT)
        .min(MAX_WORKFLOW_TASK_TIMEOUT);
    let state = RunState::empty(cmd.namespace, cmd.workflow_id, cmd.run_id);
    let mut b = Builder::new(&state, ctx);
    b.append(EventAttributes::WorkflowExecutionStarted(Box::new(
        WorkflowExecutionStarted {
            workflow_type: cmd.workflow_type,
            task_queue: cmd.task_queue,
            input: cmd.input,
            workflow_execution_timeout: cmd.execution_timeout,
            workflow_run_timeout: run_timeout,
            workflow_task_timeout: task_timeout,
            attempt: chain.map_or(1, |c| c.attempt),
            request_id: cmd.request_id,
            identity: cmd.identity,
            pinned_version: cmd.pinned_version,
            parent: cmd.parent,
            memo: cmd.memo,
            search_attributes: cmd.search_attributes,
            retry_policy,
            workflow_execution_expiration_time: chain.and_then(|c| c.execution_expiration_time),
            first_workflow_task_backoff: chain
                .and_then(|c| c.first_workflow_task_backoff)
                .filter(|d| !d.is_zero()),
            continued_execution_run_id: chain.map(|c| c.continued_execution_run_id),
            initiator: chain.map(|c| c.initiator),
            continued_failure: chain.and_then(|c| c.continued_failure.clone()),
            first_execution_run_id: Some(chain.map_or(cmd.run_id, |c| c.first_execution_run_id)),
            original_execution_run_id: Some(cmd.run_id),
        },
    )));
    if let Some(deadline) = b.state.deadline {
        b.enqueue(Task::RunTimeout, deadline);
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdConflictPolicy as C;
    use IdReusePolicy as R;
    use StartDecision as D;

    #[test]
    pub(super) fn policies_follow_temporal() {
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
