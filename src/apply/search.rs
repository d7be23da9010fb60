//! [`SearchAttributeCache`]: each namespace's registry of custom search
//! attributes, as the start path, the dispatcher (workflow task answers
//! that set attributes) and list queries look it up.
//!
//! A look-up is reused for [`TTL`]. Changes made through this node's API
//! are seen at once ([`SearchAttributeCache::forget`]); other nodes see
//! them within the TTL. Slots are never reused for another name, so a
//! stale registry can only refuse a just-added name or accept a
//! just-removed one for a moment, never index a value under another name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::engine::Registry;
use crate::ids::Namespace;
use crate::store::{self, Store};
use crate::time::{Clock, Duration, Timestamp};

/// How long a look-up is reused.
const TTL: Duration = Duration(1_000);

pub struct SearchAttributeCache {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    namespaces: Mutex<HashMap<Namespace, (Registry, Timestamp)>>,
}

impl SearchAttributeCache {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> SearchAttributeCache {
        SearchAttributeCache {
            store,
            clock,
            namespaces: Mutex::new(HashMap::new()),
        }
    }

    /// The namespace's registered (not removed) attributes.
    pub async fn registry(&self, ns: &Namespace) -> Result<Registry, store::Error> {
        let now = self.clock.now();
        if let Some((registry, at)) = self
            .namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(ns)
        {
            if now.since(*at) < TTL {
                return Ok(registry.clone());
            }
        }
        let rows = self.store.search_attributes(ns).await?;
        let registry = Registry::new(
            rows.into_iter()
                .filter(|r| !r.removed)
                .map(|r| (r.name, r.slot)),
        );
        self.namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ns.clone(), (registry.clone(), now));
        Ok(registry)
    }

    /// Drops what is known about a namespace whose registry just changed.
    pub fn forget(&self, ns: &Namespace) {
        self.namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ns);
    }
}
