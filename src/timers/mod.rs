//! Durable timers and every timeout: user timers, the four activity
//! timeouts, run deadlines. All live as rows of the timer queue in the
//! database (never only in memory), claimed with leases by any node; a due
//! row becomes `Command::FireTimer` through `apply`. The engine decides what
//! firing means, including "not yet" (the row is re-armed) and "no longer"
//! (stale: the row is deleted here).

use std::sync::Arc;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::apply::{self, Applier};
use crate::claim;
use crate::engine::{Command, Queue};
use crate::store::TaskRow;
use crate::telemetry;

/// Timers being fired by this node at once; more due rows wait in the
/// table.
const IN_FLIGHT: usize = 512;

pub struct Service {
    applier: Applier,
    options: claim::Options,
}

impl Service {
    pub fn new(applier: Applier, options: claim::Options) -> Service {
        Service { applier, options }
    }

    /// Fires due timers until `shutdown`.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let applier = self.applier.clone();
        claim::run(
            self.applier.store().clone(),
            self.applier.clock().clone(),
            Queue::Timer,
            self.options,
            Arc::new(Semaphore::new(IN_FLIGHT)),
            shutdown,
            move |row, permit| {
                tokio::spawn(fire(applier.clone(), row, permit));
            },
        )
        .await;
    }
}

async fn fire(applier: Applier, row: TaskRow, _permit: OwnedSemaphorePermit) {
    let cmd = Command::FireTimer(row.task.clone());
    let late = applier.clock().now().since(row.due_at);
    match applier.record(&row.namespace, row.run_id, cmd).await {
        // The transition dequeued or re-armed the row.
        Ok(_) => telemetry::timer_fired(late.0 as f64 / 1e3),
        Err(apply::Error::Rejected(reason)) => {
            tracing::debug!(run_id = %row.run_id, %reason, "stale timer dropped");
            if let Err(e) = applier.store().delete_task(&row.task_id).await {
                tracing::warn!(task_id = %row.task_id, error = %e, "deleting stale timer failed");
            }
        }
        Err(apply::Error::RunNotFound(_)) => {
            let _ = applier.store().delete_task(&row.task_id).await;
        }
        // Only at shutdown or on a broken store: left leased, the row comes
        // back when the lease runs out.
        Err(e) => tracing::warn!(run_id = %row.run_id, error = %e, "firing timer failed"),
    }
}
