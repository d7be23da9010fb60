//! Recently written runs, kept by the node that wrote them so the next
//! command for the run (usually the answer to the push this node just
//! sent) starts without reading the run and its history back.
//!
//! An entry also keeps its history's events as a push carries them (each
//! event's JSON, comma-joined): encoded once, appended to as the run grows,
//! so a push copies bytes instead of re-serialising every event.
//!
//! Bounded in bytes, not in runs: an entry's size is estimated from its
//! snapshot (a fixed part plus its open activities, timers and children)
//! and its history's encoded size, plus the encoded events' actual length,
//! and the least recently used entries go
//! when the total passes the budget. Memory thus depends on configuration,
//! not on how many runs are open; an evicted run is read back on its next
//! command.
//!
//! Safe without invalidation: every commit names the version it read, so an
//! entry made stale by another node's commit fails with a conflict; `apply`
//! then drops the entry and reloads. History entries are checked against the
//! snapshot's event count before use: events are immutable, so a history
//! with exactly `next_event_id - 1` events is the history.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::dispatch::wire::EncodedEvents;
use crate::engine::{Event, RunState};
use crate::ids::RunId;
use crate::store::RunRecord;

pub struct RunCache {
    entries: Mutex<Entries>,
    /// The budget, in estimated bytes.
    capacity: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<RunId, Entry>,
    clock: u64,
    /// Sum of the entries' `bytes`.
    bytes: usize,
}

struct Entry {
    state: Arc<RunState>,
    version: i64,
    history: Option<Arc<Vec<Event>>>,
    /// Shared with the pushes that copy from it; appending copies it only
    /// while one still holds it.
    encoded: Option<Arc<EncodedEvents>>,
    used: u64,
    bytes: usize,
}

/// Estimated memory of a snapshot beyond its history: a fixed part and a
/// share per open activity, timer and child (their payloads are counted in
/// the history's encoded size, which the snapshot repeats at most once).
fn estimate(
    state: &RunState,
    history: Option<&Arc<Vec<Event>>>,
    encoded: Option<&Arc<EncodedEvents>>,
) -> usize {
    let open = state.activities.len() + state.timers.len() + state.children.len();
    let snapshot = 1_024 + 384 * open;
    let history = history.map_or(0, |_| state.history_size_bytes as usize);
    let encoded = encoded.map_or(0, |e| e.size());
    snapshot + state.history_size_bytes.min(64 * 1024) as usize + 2 * history + encoded
}

impl RunCache {
    /// A cache of about `capacity` bytes.
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
        let mut entries = self.lock();
        if let Some(e) = entries.map.remove(&run_id) {
            entries.bytes -= e.bytes;
        }
    }

    /// Records a commit: the run is now at `version` with `state`, after
    /// appending `events` to whatever history was cached.
    pub fn committed(&self, state: Arc<RunState>, version: i64, events: &[Event]) {
        let mut entries = self.lock();
        entries.clock += 1;
        let clock = entries.clock;
        let run_id = state.run_id;
        let previous = entries.map.remove(&run_id);
        if let Some(p) = &previous {
            entries.bytes -= p.bytes;
        }
        let first_new = events.first().map_or(state.next_event_id, |e| e.event_id);
        // Encoded events stay valid while they are a prefix of the history:
        // the next push appends what is missing.
        let encoded = previous
            .as_ref()
            .and_then(|p| p.encoded.clone())
            .filter(|e| e.events() < first_new);
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
        let bytes = estimate(&state, history.as_ref(), encoded.as_ref());
        entries.bytes += bytes;
        entries.map.insert(
            run_id,
            Entry {
                state,
                version,
                history,
                encoded,
                used: clock,
                bytes,
            },
        );
        if entries.bytes > self.capacity {
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
        let entries = &mut *entries;
        if let Some(e) = entries.map.get_mut(&state.run_id) {
            if e.state.next_event_id == state.next_event_id {
                let bytes = estimate(&e.state, Some(&history), e.encoded.as_ref());
                entries.bytes = entries.bytes - e.bytes + bytes;
                e.bytes = bytes;
                e.history = Some(history);
            }
        }
        if entries.bytes > self.capacity {
            evict(entries, self.capacity);
        }
    }

    /// The encoded events cached for `state`'s run, if they are a prefix of
    /// its history (possibly all of it).
    pub fn encoded(&self, state: &RunState) -> Option<Arc<EncodedEvents>> {
        self.encoded_events(state.run_id)
            .filter(|e| e.events() < state.next_event_id)
    }

    /// The run's cached encoded events, whatever its state: events never
    /// change, so any cached prefix of a history stays one.
    pub fn encoded_events(&self, run_id: RunId) -> Option<Arc<EncodedEvents>> {
        self.lock().map.get(&run_id)?.encoded.clone()
    }

    /// Appends `tail`, the encoding of the events after `from`, to the
    /// cached encoding of `state`'s run if that ends at event `from` (or is
    /// absent and `from` is 0) and the entry is at `state`; returns the
    /// result. `None` when the entry is gone or moved on.
    pub fn extend_encoded(
        &self,
        state: &RunState,
        from: i64,
        tail: &EncodedEvents,
    ) -> Option<Arc<EncodedEvents>> {
        let mut entries = self.lock();
        let entries = &mut *entries;
        let e = entries.map.get_mut(&state.run_id)?;
        if e.state.next_event_id != state.next_event_id {
            return None;
        }
        let mut encoded = match e.encoded.take() {
            Some(have) if have.events() == from => have,
            None if from == 0 => Arc::default(),
            other => {
                e.encoded = other;
                return None;
            }
        };
        Arc::make_mut(&mut encoded).extend(tail);
        e.encoded = Some(encoded.clone());
        let size = estimate(&e.state, e.history.as_ref(), e.encoded.as_ref());
        entries.bytes = entries.bytes - e.bytes + size;
        e.bytes = size;
        if entries.bytes > self.capacity {
            evict(entries, self.capacity);
        }
        Some(encoded)
    }
}

/// Drops least recently used entries until the total is at most nine
/// tenths of the budget, so eviction (O(n log n)) runs only after about a
/// tenth of the budget was added again.
fn evict(entries: &mut Entries, capacity: usize) {
    let target = capacity / 10 * 9;
    let mut by_use: Vec<(u64, usize)> = entries.map.values().map(|e| (e.used, e.bytes)).collect();
    by_use.sort_unstable();
    let mut total = entries.bytes;
    let mut cutoff = 0;
    for (used, bytes) in by_use {
        if total <= target {
            break;
        }
        total -= bytes;
        cutoff = used;
    }
    entries.map.retain(|_, e| e.used > cutoff);
    entries.bytes = entries.map.values().map(|e| e.bytes).sum();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{self, Ctx, Limits, StartRun};
    use crate::ids::{Namespace, TaskQueue, WorkflowId};
    use crate::time::Timestamp;

    fn started(id: &str) -> engine::Transition {
        let start = StartRun {
            trace_context: None,
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
            search_attributes: Default::default(),
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
        let cache = RunCache::new(1 << 20);
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
    fn least_recently_used_entries_are_evicted_past_the_byte_budget() {
        let one = {
            let t = started("probe");
            estimate(&t.state, Some(&Arc::new(t.events)), None)
        };
        let cache = RunCache::new(10 * one);
        let first = started("first");
        let first_id = first.state.run_id;
        cache.committed(Arc::new(first.state), 1, &first.events);
        for i in 0..20 {
            let t = started(&format!("w{i}"));
            cache.committed(Arc::new(t.state), 1, &t.events);
            cache.get(first_id);
        }
        assert!(cache.get(first_id).is_some(), "recently used entries stay");
        let entries = cache.lock();
        assert!(entries.map.len() <= 10);
        assert!(entries.bytes <= 10 * one, "within the budget");
        assert_eq!(
            entries.bytes,
            entries.map.values().map(|e| e.bytes).sum::<usize>()
        );
    }
}
