//! [`Endpoints`]: the registered endpoint versions of each task queue, as
//! the start path (which pins new runs to the current version) and the
//! dispatcher (which pushes to a run's pinned version) look them up.
//!
//! Look-ups are reused for [`TTL`], so a busy queue costs one read per
//! second per node instead of one per start or push. Changes made through
//! this node's API are seen at once ([`Endpoints::forget`]); other nodes
//! see them within the TTL, which is the window in which a new run may
//! still pin the previous current version.
//!
//! It also holds each version's compiled input schemas and
//! [`Endpoints::validate_input`], the one check every path that takes an
//! input from outside (start, signal, signal-with-start, update, query,
//! webhook actions) runs before anything is written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::ids::{Namespace, TaskQueue};
use crate::schema::{Compiled, InvalidInput, Schemas, Target};
use crate::store::{self, Endpoint, Store};
use crate::time::{Clock, Duration, Timestamp};

/// How long a look-up is reused.
const TTL: Duration = Duration(1_000);

type QueueKey = (Namespace, TaskQueue);

/// Every version of a queue, with when it was read.
type Lookup = (Arc<Vec<Endpoint>>, Timestamp);

/// A version's schemas compiled, with what they were compiled from (a
/// re-registered version may bring other schemas).
type CompiledVersion = (Schemas, Arc<Compiled>);

/// Why an input was refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Where an input goes: the queue, the version whose schemas apply
/// (`None`: the queue's current one, which a new run pins), and what
/// the payload is the input of.
pub struct InputTarget<'a> {
    pub namespace: &'a Namespace,
    pub task_queue: &'a TaskQueue,
    pub version: Option<&'a str>,
    pub target: Target<'a>,
    /// The request member holding the payload, for the problem.
    pub field: &'static str,
}

pub struct Endpoints {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    queues: Mutex<HashMap<QueueKey, Lookup>>,
    compiled: Mutex<HashMap<(Namespace, TaskQueue, String), CompiledVersion>>,
}

impl Endpoints {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Endpoints {
        Endpoints {
            store,
            clock,
            queues: Mutex::new(HashMap::new()),
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `payload` against the schema the target's version publishes
    /// for it. No registered version, or no schema for the target, accepts
    /// anything. Reads nothing but the (cached) endpoint look-up.
    pub async fn validate_input(
        &self,
        to: &InputTarget<'_>,
        payload: &Value,
    ) -> Result<(), InputError> {
        let endpoint = match to.version {
            Some(v) => self.version(to.namespace, to.task_queue, v).await?,
            None => self.current(to.namespace, to.task_queue).await?,
        };
        let Some(endpoint) = endpoint else {
            return Ok(());
        };
        if endpoint.schemas == Schemas::default() {
            return Ok(());
        }
        let compiled = self.compiled(&endpoint)?;
        compiled.check(to.target, to.field, payload)?;
        Ok(())
    }

    /// The version's schemas compiled, compiling them on first use. They
    /// were checked at registration, so a failure here means a row written
    /// behind the API's back.
    fn compiled(&self, endpoint: &Endpoint) -> Result<Arc<Compiled>, store::Error> {
        let key = (
            endpoint.namespace.clone(),
            endpoint.task_queue.clone(),
            endpoint.version.clone(),
        );
        let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((schemas, compiled)) = cache.get(&key) {
            if *schemas == endpoint.schemas {
                return Ok(compiled.clone());
            }
        }
        let compiled = Arc::new(
            endpoint
                .schemas
                .compile()
                .map_err(|e| store::Error::Corrupt(format!("stored endpoint schemas: {e}")))?,
        );
        cache.insert(key, (endpoint.schemas.clone(), compiled.clone()));
        Ok(compiled)
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
            schemas: Default::default(),
            flow: Default::default(),
            features: Vec::new(),
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
