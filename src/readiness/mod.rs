//! Readiness: can this node commit right now? A background probe makes a
//! cheap write (`Store::probe_write`) every [`PROBE_INTERVAL`], bounded by
//! [`PROBE_TIMEOUT`], and `/readyz` answers from the last outcome, so a
//! load balancer stops sending traffic within about a second and a half of
//! the database going away (or hanging) and sends it again once a probe
//! succeeds. A read would not do: a read-only standby after a failover
//! answers reads.
//!
//! At shutdown the node turns unready first ([`Handle::drain`]), before
//! it stops claiming work, and stays so while it drains: load balancers
//! and Kubernetes stop routing to it while it still answers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use crate::store::Store;

/// Time between probes.
pub const PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);
/// A probe that takes longer counts as failed (a stopped database hangs
/// rather than refusing).
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the last probe succeeded, and whether the node is shutting
/// down. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Handle {
    ready: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
}

impl Handle {
    /// Ready until a probe says otherwise: a node starts right after it
    /// opened the store and applied migrations.
    pub fn new() -> Handle {
        Handle {
            ready: Arc::new(AtomicBool::new(true)),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && !self.is_draining()
    }

    /// The node is shutting down (see [`Handle::drain`]).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Marks the node as shutting down: unready from now on.
    pub fn drain(&self) {
        if !self.draining.swap(true, Ordering::SeqCst) {
            tracing::info!("shutting down: not ready");
        }
    }

    fn set(&self, ready: bool) {
        let was = self.ready.swap(ready, Ordering::Relaxed);
        match (was, ready) {
            (true, false) => tracing::warn!("the store cannot commit: not ready"),
            (false, true) => tracing::info!("the store commits again: ready"),
            _ => {}
        }
    }
}

impl Default for Handle {
    fn default() -> Handle {
        Handle::new()
    }
}

/// Probes until `shutdown`; the node reports unready from then on.
pub async fn run(store: Arc<dyn Store>, handle: Handle, mut shutdown: watch::Receiver<bool>) {
    loop {
        let probe = tokio::time::timeout(PROBE_TIMEOUT, store.probe_write());
        let ok = tokio::select! {
            res = probe => matches!(res, Ok(Ok(()))),
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        handle.set(ok);
        tokio::select! {
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    handle.drain();
}
