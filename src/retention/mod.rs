//! Retention: closed runs older than their namespace's retention are
//! deleted, with their history, by a background deleter on every node,
//! each namespace's work held by one node at a time under a lease.
//!
//! **Leases.** Every [`PASS_INTERVAL`] the deleter goes through the
//! namespaces and claims each one's retention lease
//! (`Store::claim_retention`, a row of `retention_leases`): it gets it if
//! nobody holds it, if the holder's lease ran out, or if it holds it
//! already (a renewal). A namespace another node holds is skipped. A claim
//! that changes hands bumps the lease's epoch, the fence.
//!
//! **Bounded batches under the fence.** A held namespace is worked off
//! [`BATCH`] runs at a time, [`BATCH_PAUSE`] apart, until a batch comes
//! back short (`Store::delete_expired_runs`: one short transaction per
//! batch, so no long locks). Each batch first renews the lease where its
//! epoch is still the one claimed, in the batch's own transaction, so a
//! node whose lease was taken (it stalled past [`LEASE`]) deletes nothing
//! and lets go. The lease row counts the runs and events deleted and when
//! a pass last finished.
//!
//! **Failure.** A node killed mid-batch loses nothing: the batch's
//! transaction rolls back, and once the lease runs out (at most [`LEASE`]
//! after the last renewal) another node claims the namespace and carries
//! on. A node shutting down hands its leases back, so another node takes
//! over at once. A run with task rows left (the notice of its close to its
//! parent, say) waits for them.
//!
//! **Progress.** Each pass that deleted something is logged with its
//! namespace and counts; `baton_retention_deleted_runs_total` and
//! `baton_retention_deleted_events_total` count by namespace,
//! `baton_retention_lease_held` shows which namespaces this node holds and
//! `baton_retention_last_pass_timestamp_seconds` when it last caught up.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::ids::Namespace;
use crate::store::{RetentionLease, Store};
use crate::time::{Clock, Duration};

/// Runs deleted per transaction.
pub const BATCH: i64 = 500;

/// The pause between passes.
pub const PASS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The pause between two full batches of one pass, so that a backlog is
/// worked off without crowding out the node's own commits.
pub const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// How long a claim or a batch holds a namespace's lease: well past a
/// pass interval and a batch, so a live holder keeps it.
pub const LEASE: Duration = Duration(10_000);

/// Deletes expired runs until `shutdown`, then hands the leases back.
/// Store failures are logged and retried on the next pass; the service
/// never stops the node.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut deleter = Deleter {
        store,
        clock,
        owner: node_id(),
        held: BTreeMap::new(),
    };
    tracing::debug!(owner = %deleter.owner, "retention deleter started");
    loop {
        match deleter.store.list_namespaces().await {
            Ok(namespaces) => {
                for ns in namespaces {
                    if *shutdown.borrow() {
                        break;
                    }
                    deleter.pass(&ns.name, &shutdown).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "retention: listing namespaces failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PASS_INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    deleter.release_all().await;
}

/// This process's owner id on leases: its pid (which tells an operator
/// which process on a host holds a lease) and a random part (which tells
/// apart processes on different hosts, and a restarted one).
fn node_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", std::process::id(), &random[..12])
}

struct Deleter {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    owner: String,
    /// The leases this node holds, as last claimed.
    held: BTreeMap<Namespace, RetentionLease>,
}

impl Deleter {
    /// Claims `ns`'s lease and deletes its expired runs, batch by batch,
    /// until it has caught up, lost the lease or is told to stop.
    async fn pass(&mut self, ns: &Namespace, shutdown: &watch::Receiver<bool>) {
        let lease = match self
            .store
            .claim_retention(ns, &self.owner, self.clock.now(), LEASE)
            .await
        {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                // Another node holds it.
                self.let_go(ns);
                return;
            }
            Err(e) => {
                tracing::warn!(namespace = %ns, error = %e, "retention: claiming the lease failed");
                return;
            }
        };
        let epoch = lease.epoch;
        if self
            .held
            .insert(ns.clone(), lease.clone())
            .is_none_or(|before| before.epoch != epoch)
        {
            tracing::info!(namespace = %ns, epoch, "retention: took the namespace's lease");
            crate::telemetry::retention_lease_held(&ns.0, true);
        }
        let (mut runs, mut events) = (0, 0);
        loop {
            let now = self.clock.now();
            match self
                .store
                .delete_expired_runs(&lease, now, LEASE, BATCH)
                .await
            {
                Ok(Some(batch)) => {
                    runs += batch.runs;
                    events += batch.events;
                    crate::telemetry::retention_deleted(&ns.0, batch.runs, batch.events);
                    if batch.runs < BATCH as u64 {
                        crate::telemetry::retention_pass_finished(
                            &ns.0,
                            now.millis() as f64 / 1000.0,
                        );
                        break;
                    }
                    if *shutdown.borrow() {
                        break;
                    }
                    tokio::time::sleep(BATCH_PAUSE).await;
                }
                Ok(None) => {
                    tracing::warn!(namespace = %ns, epoch, "retention: the lease was taken over; letting go");
                    self.let_go(ns);
                    break;
                }
                Err(e) => {
                    tracing::warn!(namespace = %ns, error = %e, "retention: deleting expired runs failed; retrying");
                    break;
                }
            }
        }
        if runs > 0 {
            tracing::info!(
                namespace = %ns,
                runs,
                events,
                epoch,
                "retention: deleted closed runs past the namespace's retention"
            );
        }
    }

    fn let_go(&mut self, ns: &Namespace) {
        if self.held.remove(ns).is_some() {
            crate::telemetry::retention_lease_held(&ns.0, false);
        }
    }

    /// Hands every held lease back, for another node to take at once.
    async fn release_all(&mut self) {
        let now = self.clock.now();
        for (ns, lease) in std::mem::take(&mut self.held) {
            if let Err(e) = self.store.release_retention(&lease, now).await {
                tracing::warn!(namespace = %ns, error = %e, "retention: handing the lease back failed");
            }
            crate::telemetry::retention_lease_held(&ns.0, false);
        }
    }
}
