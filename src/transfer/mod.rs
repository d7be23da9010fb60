//! The transfer service: carries out the work one run asks of another, as
//! Temporal's transfer queue does. A run's transition commits a row of the
//! transfer queue with the event that implies it (transactional outbox);
//! this service claims due rows with leases, like the timer service, and
//! turns each into changes of two runs, one `apply` at a time (never an
//! in-memory call chain):
//!
//! - `StartChild`: start the child through `Applier::start` with a request
//!   id derived from (parent run id, initiated event id), so a redelivered
//!   row finds the child it created; then record ChildWorkflowExecutionStarted
//!   (or StartChildWorkflowExecutionFailed) on the parent.
//! - `SignalExternal` / `CancelExternal`: signal (request id derived from
//!   source run and initiated event id, so redelivery dedupes) or request
//!   cancellation of the target, then record the outcome on the source.
//! - `NotifyParent`: a child's chain closed for good; record its outcome on
//!   the parent.
//! - `ApplyParentClosePolicy`: the parent closed; terminate the child or
//!   request its cancellation.
//!
//! Every step is at least once and idempotent: the engine refuses a
//! repeated report as stale, and a closed run refuses everything. A row is
//! deleted once its work is done (most are already dequeued by the
//! transition that recorded the outcome); a step that fails on the store
//! leaves its row leased, and it comes back when the lease runs out.

use std::sync::Arc;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::apply::{self, Applier, StartRequest};
use crate::claim;
use crate::engine::{
    child_outcome, Command, Event, EventAttributes, ExternalWorkflowExecutionFailedCause,
    IdConflictPolicy, ParentClosePolicy, ParentInfo, Queue, Rejection, Signal,
    StartChildWorkflowExecutionFailedCause, StartRun, Task, WorkflowExecution,
};
use crate::ids::{Namespace, RunId, WorkflowId};
use crate::store::{RunRecord, TaskRow};

/// Transfer rows carried out by this node at once; more wait in the table.
const IN_FLIGHT: usize = 256;

/// The reason recorded when a parent close policy ends a child.
const PARENT_CLOSE_REASON: &str = "by parent close policy";

pub struct Service {
    applier: Applier,
    options: claim::Options,
}

impl Service {
    pub fn new(applier: Applier, options: claim::Options) -> Service {
        Service { applier, options }
    }

    /// Carries out due transfer rows until `shutdown`.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let applier = self.applier.clone();
        claim::run(
            self.applier.store().clone(),
            self.applier.clock().clone(),
            Queue::Transfer,
            self.options,
            Arc::new(Semaphore::new(IN_FLIGHT)),
            shutdown,
            move |row, permit| {
                tokio::spawn(handle(applier.clone(), row, permit));
            },
        )
        .await;
    }
}

async fn handle(applier: Applier, row: TaskRow, _permit: OwnedSemaphorePermit) {
    let ns = &row.namespace;
    let done = match &row.task {
        Task::StartChild { initiated_event_id } => {
            start_child(&applier, ns, row.run_id, *initiated_event_id).await
        }
        Task::SignalExternal { initiated_event_id }
        | Task::CancelExternal { initiated_event_id } => {
            deliver_external(&applier, ns, row.run_id, *initiated_event_id).await
        }
        Task::NotifyParent => notify_parent(&applier, ns, row.run_id).await,
        Task::ApplyParentClosePolicy {
            initiated_event_id,
            workflow_id,
            policy,
        } => {
            apply_parent_close_policy(
                &applier,
                ns,
                row.run_id,
                *initiated_event_id,
                workflow_id,
                *policy,
            )
            .await
        }
        other => {
            tracing::warn!(task = ?other, "not a transfer task; dropped");
            Ok(())
        }
    };
    match done {
        Ok(()) => {
            if let Err(e) = applier.store().delete_task(&row.task_id).await {
                tracing::warn!(task_id = %row.task_id, error = %e, "deleting a done transfer row failed");
            }
        }
        // Left leased: the row comes back when the lease runs out.
        Err(e) => {
            tracing::warn!(run_id = %row.run_id, task = ?row.task, error = %e, "transfer failed")
        }
    }
}

/// Starts the child of the parent's Initiated event and records the outcome.
async fn start_child(
    applier: &Applier,
    ns: &Namespace,
    parent_run: RunId,
    initiated_event_id: i64,
) -> Result<(), apply::Error> {
    let Some(parent) = applier.store().load_run(ns, parent_run).await? else {
        return Ok(());
    };
    let Some(event) = read_event(applier, ns, parent_run, initiated_event_id).await? else {
        return Ok(());
    };
    let EventAttributes::StartChildWorkflowExecutionInitiated(a) = event.attributes else {
        tracing::warn!(%parent_run, initiated_event_id, "StartChild names no Initiated event");
        return Ok(());
    };
    let (workflow_id, policy) = (a.workflow_id.clone(), a.parent_close_policy);
    let request = StartRequest {
        run: StartRun {
            namespace: ns.clone(),
            workflow_id: a.workflow_id,
            run_id: RunId::generate(),
            workflow_type: a.workflow_type,
            task_queue: a.task_queue,
            input: a.input,
            execution_timeout: a.workflow_execution_timeout,
            run_timeout: a.workflow_run_timeout,
            task_timeout: Some(a.workflow_task_timeout),
            request_id: Some(format!("{parent_run}/{initiated_event_id}")),
            identity: None,
            pinned_version: None,
            memo: a.memo,
            search_attributes: a.search_attributes,
            retry_policy: a.retry_policy.map(Into::into),
            chain: None,
            parent: Some(ParentInfo {
                workflow_id: parent.state.workflow_id.clone(),
                run_id: parent_run,
                initiated_event_id,
                parent_close_policy: policy,
            }),
        },
        reuse_policy: a.workflow_id_reuse_policy,
        conflict_policy: IdConflictPolicy::Fail,
    };
    let cmd = match applier.start(request).await {
        Ok(started) => Command::ChildStarted {
            initiated_event_id,
            run_id: started.run_id,
        },
        Err(apply::Error::AlreadyStarted { .. }) => Command::ChildStartFailed {
            initiated_event_id,
            cause: StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists,
        },
        Err(e) => return Err(e),
    };
    let started = matches!(cmd, Command::ChildStarted { .. });
    let parent_closed = record(applier, ns, parent_run, cmd).await?;
    if started && parent_closed {
        // The parent closed between the start and its record, so its close
        // did not see this child: apply the policy now.
        apply_parent_close_policy(
            applier,
            ns,
            parent_run,
            initiated_event_id,
            &workflow_id,
            policy,
        )
        .await?;
    }
    Ok(())
}

/// Delivers a signal or cancellation request and records the outcome on
/// its source.
async fn deliver_external(
    applier: &Applier,
    ns: &Namespace,
    source_run: RunId,
    initiated_event_id: i64,
) -> Result<(), apply::Error> {
    let Some(event) = read_event(applier, ns, source_run, initiated_event_id).await? else {
        return Ok(());
    };
    let request_id = Some(format!("{source_run}/{initiated_event_id}"));
    let (target, child_only, cmd) = match event.attributes {
        EventAttributes::SignalExternalWorkflowExecutionInitiated(a) => (
            a.workflow_execution,
            a.child_workflow_only,
            Command::SignalWorkflow(Signal {
                signal_name: a.signal_name,
                input: a.input,
                request_id,
                identity: None,
            }),
        ),
        EventAttributes::RequestCancelExternalWorkflowExecutionInitiated(a) => (
            a.workflow_execution,
            a.child_workflow_only,
            Command::RequestCancelWorkflow {
                reason: a.reason,
                request_id,
                identity: None,
            },
        ),
        _ => {
            tracing::warn!(%source_run, initiated_event_id, "external task names no Initiated event");
            return Ok(());
        }
    };
    let target = open_target(applier, ns, &target).await?.filter(|t| {
        !child_only
            || t.state
                .parent
                .as_ref()
                .is_some_and(|p| p.run_id == source_run)
    });
    let delivered = match target {
        None => false,
        Some(t) => match applier.record(ns, t.state.run_id, cmd).await {
            Ok(_) => true,
            Err(apply::Error::Rejected(_) | apply::Error::RunNotFound(_)) => false,
            Err(e) => return Err(e),
        },
    };
    let outcome = if delivered {
        Command::ExternalRequestDelivered { initiated_event_id }
    } else {
        Command::ExternalRequestFailed {
            initiated_event_id,
            cause: ExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound,
        }
    };
    record(applier, ns, source_run, outcome).await?;
    Ok(())
}

/// Records a closed child run's outcome on its parent.
async fn notify_parent(
    applier: &Applier,
    ns: &Namespace,
    child_run: RunId,
) -> Result<(), apply::Error> {
    let Some(child) = applier.store().load_run(ns, child_run).await? else {
        return Ok(());
    };
    let Some(parent) = child.state.parent.clone() else {
        return Ok(());
    };
    let last = child.state.history_length();
    let outcome = read_event(applier, ns, child_run, last)
        .await?
        .and_then(|e| child_outcome(&e.attributes));
    let Some(outcome) = outcome else {
        tracing::warn!(%child_run, "a child to report has no closing event");
        return Ok(());
    };
    let cmd = Command::ChildClosed {
        initiated_event_id: parent.initiated_event_id,
        first_run_id: child.state.first_execution_run_id(),
        run_id: child_run,
        outcome,
    };
    record(applier, ns, parent.run_id, cmd).await?;
    Ok(())
}

/// Ends the open child that `parent_run` started from `initiated_event_id`
/// as `policy` says; any other run of the workflow id is left alone.
async fn apply_parent_close_policy(
    applier: &Applier,
    ns: &Namespace,
    parent_run: RunId,
    initiated_event_id: i64,
    workflow_id: &WorkflowId,
    policy: ParentClosePolicy,
) -> Result<(), apply::Error> {
    let cmd = match policy {
        ParentClosePolicy::Abandon => return Ok(()),
        ParentClosePolicy::Terminate => Command::TerminateWorkflow {
            reason: PARENT_CLOSE_REASON.to_owned(),
            details: None,
            identity: None,
        },
        ParentClosePolicy::RequestCancel => Command::RequestCancelWorkflow {
            reason: PARENT_CLOSE_REASON.to_owned(),
            request_id: None,
            identity: None,
        },
    };
    let child = applier.store().latest_run(ns, workflow_id).await?;
    let Some(child) = child.filter(|c| {
        !c.state.status.is_closed()
            && c.state.parent.as_ref().is_some_and(|p| {
                p.run_id == parent_run && p.initiated_event_id == initiated_event_id
            })
    }) else {
        return Ok(());
    };
    record(applier, ns, child.state.run_id, cmd).await?;
    Ok(())
}

/// Applies a report; a refusal (stale, closed, gone) means the report is
/// no longer needed. True if the run refused it for being closed.
async fn record(
    applier: &Applier,
    ns: &Namespace,
    run_id: RunId,
    cmd: Command,
) -> Result<bool, apply::Error> {
    match applier.record(ns, run_id, cmd).await {
        Ok(_) | Err(apply::Error::RunNotFound(_)) => Ok(false),
        Err(apply::Error::Rejected(Rejection::RunClosed(_))) => Ok(true),
        Err(apply::Error::Rejected(reason)) => {
            tracing::debug!(%run_id, %reason, "transfer report no longer needed");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The open run a signal or cancellation request names: the given run, or
/// the workflow id's current one.
async fn open_target(
    applier: &Applier,
    ns: &Namespace,
    target: &WorkflowExecution,
) -> Result<Option<RunRecord>, apply::Error> {
    let store = applier.store();
    let record = match target.run_id {
        Some(run_id) => store
            .load_run(ns, run_id)
            .await?
            .filter(|r| r.state.workflow_id == target.workflow_id),
        None => store.latest_run(ns, &target.workflow_id).await?,
    };
    Ok(record.filter(|r| !r.state.status.is_closed()))
}

async fn read_event(
    applier: &Applier,
    ns: &Namespace,
    run_id: RunId,
    event_id: i64,
) -> Result<Option<Event>, apply::Error> {
    let events = applier
        .store()
        .read_history(ns, run_id, event_id - 1, 1)
        .await?;
    Ok(events.into_iter().next().filter(|e| e.event_id == event_id))
}
