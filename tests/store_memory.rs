//! The store conformance suite on the in-memory store, the simulation's
//! backend: it must keep the SQL stores' semantics, or the simulation
//! tests something else than production runs.

use std::sync::Arc;

use baton::store::{conformance, MemoryStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    conformance::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> }).await;
}

/// The simulation runs on one thread; the suite must pass there too.
#[tokio::test(flavor = "current_thread")]
async fn memory_store_conforms_on_one_thread() {
    conformance::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> }).await;
}
