//! Recently written runs, kept by the node that wrote them so the next
//! command for the run (usually the answer to the push this node just
//! sent) starts without reading the run and its history back.
//!
//! Safe without invalidation: every commit names the version it read, so an
//! entry made stale by another node's commit fails with a conflict; `apply`
//! then drops the entry and reloads. History entries are checked against the
//! snapshot's event count before use: events are immutable, so a history
//! with exactly `next_event_id - 1` events is the history.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::engine::{Event, RunState};
use crate::ids::RunId;
use crate::store::RunRecord;

pub struct RunCache {
    entries: Mutex<Entries>,
    capacity: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<RunId, Entry>,
    clock: u64,
}

struct Entry {
    state: Arc<RunState>,
    version: i64,
    history: Option<Arc<Vec<Event>>>,
    used: u64,
}

impl RunCache {
    pub fn new(capacity: usize) -> RunCache {
        RunCache {
            entries: Mutex::default(),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, run_id: RunId) -> Option<RunRecord> {
        let mut entries = self.lock();
        entries.clock += 1;
        let clock = entries.clock;
        let e = entries.map.get_mut(&run_id)?;
        e.used = clock;
        Some(RunRecord {
            state: (*e.state).clone(),
            version: e.version,
        })
    }

    pub fn remove(&self, run_id: RunId) {
        self.lock().map.remove(&run_id);
    }

    /// Records a commit: the run is now at `version` with `state`, after
    /// appending `events` to whatever history was cached.
    pub fn committed(&self, state: Arc<RunState>, version: i64, events: &[Event]) {
        let mut entries = self.lock();
        entries.clock += 1;
        let clock = entries.clock;
        let run_id = state.run_id;
        let previous = entries.map.remove(&run_id);
        let first_new = events.first().map_or(state.next_event_id, |e| e.event_id);
        let history = match previous.and_then(|p| p.history) {
            Some(h) if h.len() as i64 == first_new - 1 => {
                let mut h = Arc::unwrap_or_clone(h);
                h.extend_from_slice(events);
                Some(Arc::new(h))
            }
            // A new run: its events are its whole history.
            None if first_new == 1 => Some(Arc::new(events.to_vec())),
            _ => None,
        };
        entries.map.insert(
            run_id,
            Entry {
                state,
                version,
                history,
                used: clock,
            },
        );
        if entries.map.len() > self.capacity {
            evict(&mut entries, self.capacity);
        }
    }

    /// The complete history of `state`'s run, if cached.
    pub fn history(&self, state: &RunState) -> Option<Arc<Vec<Event>>> {
        let entries = self.lock();
        let h = entries.map.get(&state.run_id)?.history.clone()?;
        (h.len() as i64 == state.next_event_id - 1).then_some(h)
    }

    /// Caches a history read from the store.
    pub fn put_history(&self, state: &RunState, history: Arc<Vec<Event>>) {
        let mut entries = self.lock();
        if let Some(e) = entries.map.get_mut(&state.run_id) {
            if e.state.next_event_id == state.next_event_id {
                e.history = Some(history);
            }
        }
    }
}

/// Drops the least recently used tenth (at least one entry), so eviction
/// costs O(n) only once per n/10 insertions.
fn evict(entries: &mut Entries, capacity: usize) {
    let n = (capacity / 10).max(1);
    let mut used: Vec<u64> = entries.map.values().map(|e| e.used).collect();
    used.sort_unstable();
    let cutoff = used.get(n - 1).copied().unwrap_or(0);
    entries.map.retain(|_, e| e.used > cutoff);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{self, Ctx, Limits, StartRun};
    use crate::ids::{Namespace, TaskQueue, WorkflowId};
    use crate::time::Timestamp;

    fn started(id: &str) -> engine::Transition {
        let start = StartRun {
            namespace: Namespace::from("default"),
            workflow_id: WorkflowId::from(id),
            run_id: RunId::generate(),
            workflow_type: "T".into(),
            task_queue: TaskQueue::from("q"),
            input: serde_json::Value::Null,
            execution_timeout: None,
            run_timeout: None,
            task_timeout: None,
            request_id: None,
            identity: None,
            pinned_version: None,
            parent: None,
            memo: None,
            retry_policy: None,
            chain: None,
        };
        let ctx = Ctx {
            now: Timestamp(1_000),
            limits: Limits::default(),
            next_run_id: RunId::generate(),
        };
        engine::start(start, &ctx).unwrap()
    }

    #[test]
    fn history_is_served_only_when_complete() {
        let cache = RunCache::new(10);
        let t = started("a");
        let state = Arc::new(t.state.clone());
        cache.committed(state.clone(), 1, &t.events);
        assert_eq!(cache.history(&state).map(|h| h.len()), Some(t.events.len()));
        let mut ahead = (*state).clone();
        ahead.next_event_id += 1;
        assert!(cache.history(&ahead).is_none());
        assert_eq!(cache.get(state.run_id).map(|r| r.version), Some(1));
    }

    #[test]
    fn least_recently_used_entries_are_evicted() {
        let cache = RunCache::new(10);
        let first = started("first");
        let first_id = first.state.run_id;
        cache.committed(Arc::new(first.state), 1, &first.events);
        for i in 0..20 {
            let t = started(&format!("w{i}"));
            cache.committed(Arc::new(t.state), 1, &t.events);
            cache.get(first_id);
        }
        assert!(cache.get(first_id).is_some(), "recently used entries stay");
        assert!(cache.lock().map.len() <= 10);
    }
}
