//! Activity attempts waiting on this node for their endpoint's turn, and
//! the loop that keeps their timers from firing meanwhile.
//!
//! An attempt's start-to-close and heartbeat clocks run from when its push
//! is sent (a late send records `Command::ActivityAttemptSent`, which
//! restarts them), but the timer rows were armed when the attempt started.
//! While the push waits behind its endpoint's `max_concurrency`, this loop
//! moves the rows that would fire soon a few seconds out, all of them in
//! one statement per tick (`Store::postpone_tasks`), so an attempt is never
//! timed out and retried for time it spent queued. The rows stay in the
//! table: if this node dies, the postponing stops and they fire at most
//! [`HOLD`] later than they would have, and the attempt is retried.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};

use crate::engine::{Task, TimeoutType};
use crate::ids::RunId;
use crate::store::Store;
use crate::time::{Clock, Duration, Timestamp};

/// How often the loop looks at the waiting attempts (and whenever one
/// starts waiting).
const TICK: Duration = Duration(1_000);
/// Rows due within this much of now are postponed on a look.
const LOOKAHEAD: Duration = Duration(4_000);
/// How far out from now a postponed row is moved.
const HOLD: Duration = Duration(10_000);

/// The attempts of this node that wait for their endpoint.
#[derive(Default)]
pub(super) struct Waiting {
    entries: Mutex<HashMap<u64, Entry>>,
    next_id: AtomicU64,
    /// Wakes the loop when an attempt starts waiting: one with a short
    /// timeout may be due before the next tick.
    entered: Notify,
}

struct Entry {
    run_id: RunId,
    /// `Task::key`s of the attempt's start-to-close and heartbeat timers.
    keys: [String; 2],
    /// When the earlier of those rows is due, as far as this node knows.
    fires_at: Timestamp,
}

/// An attempt's place among the waiting; leaving drops it.
pub(super) struct Ticket<'a> {
    waiting: &'a Waiting,
    id: u64,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the attempt `scheduled_event_id` of `run_id`, whose timer
    /// rows are due at `fires_at`.
    pub(super) fn enter(
        &self,
        run_id: RunId,
        scheduled_event_id: i64,
        attempt: u32,
        fires_at: Timestamp,
    ) -> Ticket<'_> {
        let key = |timeout_type| {
            Task::ActivityTimeout {
                scheduled_event_id,
                attempt,
                timeout_type,
            }
            .key()
        };
        let entry = Entry {
            run_id,
            keys: [key(TimeoutType::StartToClose), key(TimeoutType::Heartbeat)],
            fires_at,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, entry);
        self.entered.notify_one();
        Ticket { waiting: self, id }
    }

    /// Postpones the rows of every attempt due within [`LOOKAHEAD`] of
    /// `now` to `now + HOLD`.
    async fn postpone_due(&self, store: &dyn Store, now: Timestamp) {
        let until = now.saturating_add(HOLD);
        let soon = now.saturating_add(LOOKAHEAD);
        let (ids, rows): (Vec<u64>, Vec<(RunId, String)>) = {
            let entries = self.lock();
            let due = entries.iter().filter(|(_, e)| e.fires_at <= soon);
            let mut ids = Vec::new();
            let mut rows = Vec::new();
            for (id, entry) in due {
                ids.push(*id);
                rows.extend(entry.keys.iter().map(|k| (entry.run_id, k.clone())));
            }
            (ids, rows)
        };
        if rows.is_empty() {
            return;
        }
        if let Err(e) = store.postpone_tasks(&rows, until).await {
            // Their timers fire as armed; the attempts are not sent then.
            tracing::warn!(error = %e, attempts = ids.len(), "postponing queued attempts' timers failed");
            return;
        }
        let mut entries = self.lock();
        for id in ids {
            if let Some(entry) = entries.get_mut(&id) {
                entry.fires_at = entry.fires_at.max(until);
            }
        }
    }
}

impl Ticket<'_> {
    /// When the attempt's timer rows are due now.
    pub(super) fn fires_at(&self) -> Timestamp {
        self.waiting.lock()[&self.id].fires_at
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.waiting.lock().remove(&self.id);
    }
}

/// Postpones the waiting attempts' timers every [`TICK`] until `shutdown`.
pub(super) async fn run(
    waiting: Arc<Waiting>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        waiting.postpone_due(&*store, clock.now()).await;
        tokio::select! {
            _ = tokio::time::sleep(TICK.to_std()) => {}
            _ = waiting.entered.notified() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
