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
