//! Retention: closed runs older than their namespace's retention are
//! deleted, with their history, by a background deleter on every node.
//!
//! Each pass deletes [`BATCH`] runs at a time, [`BATCH_PAUSE`] apart
//! (`Store::delete_expired_runs`: one short transaction per batch, so no
//! long locks, and on PostgreSQL
//! the batch's runs are locked `skip locked`, so the deleters of several
//! nodes split the work instead of queueing behind each other) until a
//! batch comes back short, then sleeps [`PASS_INTERVAL`]. A node killed
//! mid-batch loses nothing: the batch's transaction rolls back and the
//! next pass (on any node) takes those runs again. A run with task rows
//! left (the notice of its close to its parent, say) waits for them.
//! Progress is logged (how many runs each pass deleted) and counted in
//! `baton_retention_deleted_runs_total`.

use std::sync::Arc;

use tokio::sync::watch;

use crate::store::Store;
use crate::time::Clock;

/// Runs deleted per transaction.
pub const BATCH: i64 = 500;

/// The pause between passes.
pub const PASS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The pause between two full batches of one pass, so that a backlog is
/// worked off without crowding out the node's own commits.
pub const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Deletes expired runs until `shutdown`. Store failures are logged and
/// retried on the next pass; the service never stops the node.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let mut deleted = 0;
        loop {
            match store.delete_expired_runs(clock.now(), BATCH).await {
                Ok(n) => {
                    deleted += n;
                    crate::telemetry::retention_deleted(n);
                    if n < BATCH as u64 || *shutdown.borrow() {
                        break;
                    }
                    tokio::time::sleep(BATCH_PAUSE).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention: deleting expired runs failed; retrying");
                    break;
                }
            }
        }
        if deleted > 0 {
            tracing::info!(
                deleted,
                "retention: deleted closed runs past their namespace's retention"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(PASS_INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
