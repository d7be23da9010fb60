//! [`Endpoints`]: the registered endpoint versions of each task queue, as
//! the start path (which pins new runs to the current version) and the
//! dispatcher (which pushes to a run's pinned version) look them up.
//!
//! Look-ups are reused for [`TTL`], so a busy queue costs one read per
//! second per node instead of one per start or push. Changes made through
//! this node's API are seen at once ([`Endpoints::forget`]); other nodes
//! see them within the TTL, which is the window in which a new run may
//! still pin the previous current version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::ids::{Namespace, TaskQueue};
use crate::store::{self, Endpoint, Store};
use crate::time::{Clock, Duration, Timestamp};

/// How long a look-up is reused.
const TTL: Duration = Duration(1_000);

type QueueKey = (Namespace, TaskQueue);

/// Every version of a queue, with when it was read.
type Lookup = (Arc<Vec<Endpoint>>, Timestamp);

pub struct Endpoints {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    queues: Mutex<HashMap<QueueKey, Lookup>>,
}

impl Endpoints {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Endpoints {
        Endpoints {
            store,
            clock,
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// The queue's current version, which new runs are pinned to.
    pub async fn current(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
    ) -> Result<Option<Endpoint>, store::Error> {
        let versions = self.queue(ns, queue).await?;
        Ok(versions.iter().find(|e| e.is_current).cloned())
    }

    /// One registered version of the queue.
    pub async fn version(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
    ) -> Result<Option<Endpoint>, store::Error> {
        let versions = self.queue(ns, queue).await?;
        Ok(versions.iter().find(|e| e.version == version).cloned())
    }

    /// Drops what is known about a queue whose endpoints just changed.
    pub fn forget(&self, ns: &Namespace, queue: &TaskQueue) {
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(ns.clone(), queue.clone()));
    }

    async fn queue(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
    ) -> Result<Arc<Vec<Endpoint>>, store::Error> {
        let now = self.clock.now();
        let key = (ns.clone(), queue.clone());
        if let Some((versions, at)) = self
            .queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            if now.since(*at) < TTL {
                return Ok(versions.clone());
            }
        }
        let versions = Arc::new(self.store.queue_endpoints(ns, queue).await?);
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (versions.clone(), now));
        Ok(versions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    /// A clock that moves only when told, so no assertion depends on how
    /// fast the test runs.
    #[derive(Default)]
    struct StoppedClock(Mutex<Timestamp>);

    impl StoppedClock {
        fn advance(&self, d: Duration) {
            let mut now = self.0.lock().unwrap();
            *now = now.saturating_add(d);
        }
    }

    impl Clock for StoppedClock {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }
    }

    fn endpoint(version: &str) -> Endpoint {
        Endpoint {
            namespace: Namespace::from("default"),
            task_queue: TaskQueue::from("orders"),
            version: version.to_owned(),
            url: format!("http://{version}.example/"),
            secrets: vec![],
            max_concurrency: 1,
            is_current: true,
            created_at: Timestamp(0),
        }
    }

    #[tokio::test]
    async fn lookups_are_reused_until_forgotten_or_stale() {
        let store = SqliteStore::connect("sqlite::memory:").await.expect("open");
        store.migrate().await.expect("migrate");
        let store: Arc<dyn Store> = Arc::new(store);
        let clock = Arc::new(StoppedClock::default());
        let endpoints = Endpoints::new(store.clone(), clock.clone());
        let (ns, queue) = (Namespace::from("default"), TaskQueue::from("orders"));
        let current = || async { endpoints.current(&ns, &queue).await.expect("look up") };
        let version = |v: &'static str| {
            let endpoints = &endpoints;
            let (ns, queue) = (&ns, &queue);
            async move { endpoints.version(ns, queue, v).await.expect("look up") }
        };

        store
            .upsert_endpoint(&endpoint("v1"))
            .await
            .expect("upsert");
        assert_eq!(current().await.map(|e| e.version), Some("v1".into()));
        // A change this node did not announce is not seen within the TTL...
        store
            .upsert_endpoint(&endpoint("v2"))
            .await
            .expect("upsert");
        assert_eq!(current().await.map(|e| e.version), Some("v1".into()));
        assert_eq!(version("v2").await, None);
        // ...and is once the entry is forgotten,
        endpoints.forget(&ns, &queue);
        assert_eq!(current().await.map(|e| e.version), Some("v2".into()));
        assert_eq!(version("v1").await.map(|e| e.is_current), Some(false));
        // or has aged past the TTL.
        store
            .promote_endpoint(&ns, &queue, "v1")
            .await
            .expect("promote");
        assert_eq!(current().await.map(|e| e.version), Some("v2".into()));
        clock.advance(TTL);
        assert_eq!(current().await.map(|e| e.version), Some("v1".into()));
    }
}
