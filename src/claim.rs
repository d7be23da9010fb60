//! The claim loop shared by `dispatch`, `timers` and `transfer`: claim due
//! rows of one queue, hand each to a handler, then sleep until the next row
//! is due, a wake-up hint says something earlier arrived, or the poll
//! interval passes (the safety net that makes lost hints harmless). Also
//! the wake-up [`Handle`] through which the API hints the services that
//! claim leased rows of their own (schedules, batch jobs).
//!
//! Admission control: the loop claims only as many rows as its service has
//! room for (permits of its capacity semaphore), and each row carries its
//! permit until the handler is done with it. A backlog stays in the table,
//! visible to other nodes, instead of in this node's memory under a lease.

use std::sync::Arc;

use tokio::sync::{broadcast, watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::engine::Queue;
use crate::store::{Store, TaskRow};
use crate::time::{Clock, Duration, Timestamp};

/// Cheap to clone: lets the API wake a service that claims leased rows
/// (schedules, batch jobs) after it changed one, so the service claims at
/// once rather than at its next poll.
#[derive(Clone, Default)]
pub struct Handle {
    wake: Arc<Notify>,
}

impl Handle {
    /// Something is due now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves at the next [`Handle::wake`] (or at once for one made
    /// before this call).
    pub async fn woken(&self) {
        self.wake.notified().await
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Rows claimed per round trip.
    pub batch: i64,
    /// Longest sleep between claims, whatever the hints say.
    pub poll_interval: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            batch: 64,
            poll_interval: Duration(1_000),
        }
    }
}

/// Runs until `shutdown` turns true. `on_row` must not block: it spawns,
/// and the spawned work holds the row's permit (of `capacity`) until done.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    queue: Queue,
    options: Options,
    capacity: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
    mut on_row: impl FnMut(TaskRow, OwnedSemaphorePermit),
) {
    let mut wakeups = store.subscribe();
    let mut jumps = clock.jumps();
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Room for at least one row, and as many more as are free now.
        let first = tokio::select! {
            permit = capacity.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let mut permits = vec![first];
        while (permits.len() as i64) < options.batch {
            match capacity.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let asked = permits.len() as i64;
        let now = clock.now();
        match store.claim_tasks(queue, now, asked).await {
            Ok(rows) => {
                let full = rows.len() as i64 >= asked;
                for (row, permit) in rows.into_iter().zip(permits.drain(..)) {
                    on_row(row, permit);
                }
                if full {
                    continue;
                }
            }
            Err(e) => tracing::warn!(?queue, error = %e, "claiming tasks failed"),
        }
        drop(permits);
        let mut target = now.saturating_add(options.poll_interval);
        match store.next_visible_at(queue, now).await {
            Ok(Some(next)) => target = target.min(next),
            Ok(None) => {}
            Err(e) => tracing::warn!(?queue, error = %e, "reading the next due task failed"),
        }
        loop {
            let sleep = tokio::time::sleep(until(&*clock, target));
            tokio::select! {
                _ = sleep => break,
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
                // Time was skipped: whatever was due may be due now.
                Some(()) = jumped(&mut jumps) => break,
                hint = wakeups.recv() => match hint {
                    Ok(w) if w.queue == queue && w.at < target => {
                        target = w.at;
                    }
                    Ok(_) => {}
                    // Missed hints: look at the table again.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => {
                        wakeups = store.subscribe();
                    }
                },
            }
            if clock.now() >= target {
                break;
            }
        }
    }
}

async fn jumped(jumps: &mut Option<watch::Receiver<Duration>>) -> Option<()> {
    match jumps {
        Some(rx) => rx.changed().await.ok(),
        None => std::future::pending().await,
    }
}

fn until(clock: &dyn Clock, target: Timestamp) -> std::time::Duration {
    target.since(clock.now()).to_std()
}
