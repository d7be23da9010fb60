//! The claim loop shared by `dispatch` and `timers`: claim due rows of one
//! queue, hand each to a handler, then sleep until the next row is due, a
//! wake-up hint says something earlier arrived, or the poll interval passes
//! (the safety net that makes lost hints harmless).

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use crate::engine::Queue;
use crate::store::{Store, TaskRow};
use crate::time::{Clock, Duration, Timestamp};

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

/// Runs until `shutdown` turns true. `on_row` must not block: it spawns.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    queue: Queue,
    options: Options,
    mut shutdown: watch::Receiver<bool>,
    mut on_row: impl FnMut(TaskRow),
) {
    let mut wakeups = store.subscribe();
    let mut jumps = clock.jumps();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = clock.now();
        match store.claim_tasks(queue, now, options.batch).await {
            Ok(rows) => {
                let full = rows.len() as i64 >= options.batch;
                rows.into_iter().for_each(&mut on_row);
                if full {
                    continue;
                }
            }
            Err(e) => tracing::warn!(?queue, error = %e, "claiming tasks failed"),
        }
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
