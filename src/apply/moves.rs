//! The audited move of runs from one endpoint version of a task queue to
//! another (`move-runs`): an emergency tool for when a version must go
//! before its runs drain. Each run moves in its own commit, which appends
//! WorkflowExecutionOptionsUpdated and changes its pin together; the
//! engine refuses a run no longer pinned to the `from` version, so a move
//! that races another is never applied twice.

use crate::engine::{Command, MoveToVersion, Rejection};
use crate::ids::{Namespace, RunId, TaskQueue, WorkflowId};

use super::{Applier, Error};

/// Which runs to move where, and the audit record.
#[derive(Clone, Debug)]
pub struct MoveRuns {
    pub namespace: Namespace,
    pub task_queue: TaskQueue,
    /// `None`: every open run of the queue pinned to `change.from_version`.
    pub workflow_ids: Option<Vec<WorkflowId>>,
    pub change: MoveToVersion,
}

impl Applier {
    /// Moves the runs and returns the ids of those it moved. Named
    /// workflows are checked first, all of them: if any has no open run of
    /// the queue pinned to the `from` version, nothing moves. Runs that a
    /// concurrent change moved or closed meanwhile are skipped.
    pub async fn move_runs(&self, req: MoveRuns) -> Result<Vec<RunId>, Error> {
        let (ns, queue) = (&req.namespace, &req.task_queue);
        let from = req.change.from_version.as_str();
        let run_ids = match &req.workflow_ids {
            None => self.store.open_runs_pinned_to(ns, queue, from).await?,
            Some(workflow_ids) => {
                let mut run_ids = Vec::with_capacity(workflow_ids.len());
                for workflow_id in workflow_ids {
                    let run = self.store.latest_run(ns, workflow_id).await?;
                    let state = run.map(|r| r.state).filter(|s| {
                        !s.status.is_closed()
                            && &s.task_queue == queue
                            && s.pinned_version.as_deref() == Some(from)
                    });
                    let Some(state) = state else {
                        return Err(Error::Rejected(Rejection::InvalidArgument(format!(
                            "workflow {workflow_id} has no open run of task queue {queue} \
                             pinned to version {from}"
                        ))));
                    };
                    run_ids.push(state.run_id);
                }
                run_ids
            }
        };
        let mut moved = Vec::with_capacity(run_ids.len());
        for run_id in run_ids {
            let cmd = Command::UpdateWorkflowExecutionOptions(req.change.clone());
            match self.apply(ns, run_id, cmd).await {
                Ok(_) => moved.push(run_id),
                Err(Error::Rejected(Rejection::RunClosed(_) | Rejection::InvalidArgument(_))) => {
                    tracing::debug!(%run_id, "run closed or moved concurrently; not moved");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }
}
