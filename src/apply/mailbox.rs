//! One writer per run on this node (DESIGN.md invariant 7).
//!
//! Every command for a run, whoever sends it (an API call, a push outcome,
//! a fired timer, a transfer step), is queued in the run's mailbox. While a
//! mailbox has work, one worker task owns the run: it takes everything
//! queued (up to [`MAX_BATCH`] commands), folds it through the engine in
//! one pass (`engine::decide_all`), commits once (group commit) and answers
//! each caller with its own result. Nothing else on this node writes the
//! run, so commands never race each other into optimistic-concurrency
//! failures; the version check stays as the guard against other nodes, and
//! losing it re-folds the batch from a fresh load.
//!
//! Why per-run mailboxes and not a fixed set of shard writers: a shard
//! would serialise unrelated runs behind one slow commit, while a mailbox
//! costs nothing for a run that has no work (its entry and worker go away
//! when its queue drains), and commits of different runs still proceed in
//! parallel up to the store's pool size.
//!
//! The queue is bounded node-wide by [`Mailboxes`]' permits: a caller waits
//! for a permit before queueing (back-pressure), and gives it back when its
//! result is delivered.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::engine::{CheckpointReport, Command, RunState};
use crate::ids::{Namespace, RunId};

use super::Error;

/// Most commands folded into one commit.
pub(super) const MAX_BATCH: usize = 512;

/// The per-run queues of this node.
pub(super) struct Mailboxes {
    queues: Mutex<HashMap<RunId, VecDeque<Op>>>,
    permits: Arc<Semaphore>,
}

/// What a run's worker is asked to do.
// Command ops are nearly all ops; boxing them to shrink the rare exclusive
// one would cost an allocation per command.
#[allow(clippy::large_enum_variant)]
pub(super) enum Op {
    /// Decide a command, folded with whatever else is queued.
    Command(CommandOp),
    /// Run a future alone, with the run's writer held: used by changes that
    /// span runs (reset, terminate-and-start), which commit themselves.
    Exclusive(BoxFuture<'static, ()>),
}

pub(super) struct CommandOp {
    pub ns: Namespace,
    pub cmd: Command,
    /// A push outcome, fired timer or transfer step: retried through
    /// transient store failures until it commits or is refused, since no
    /// caller could retry it. API calls fail fast instead (their client
    /// retries).
    pub durable: bool,
    pub reply: oneshot::Sender<Result<Applied, Error>>,
    pub _permit: OwnedSemaphorePermit,
}

/// An accepted command's answer: the committed state, and what a
/// checkpoint did.
pub(super) type Applied = (Arc<RunState>, Option<Box<CheckpointReport>>);

/// A batch taken from a mailbox.
pub(super) enum Batch {
    Commands(Vec<CommandOp>),
    Exclusive(BoxFuture<'static, ()>),
}

impl Mailboxes {
    pub(super) fn new(capacity: usize) -> Mailboxes {
        Mailboxes {
            queues: Mutex::default(),
            permits: Arc::new(Semaphore::new(capacity)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, VecDeque<Op>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for room in the node's queue.
    pub(super) async fn permit(&self) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .expect("the mailbox semaphore is never closed")
    }

    /// Queues `op` for `run_id`; true if the run had no worker, so the
    /// caller must start one.
    pub(super) fn push(&self, run_id: RunId, op: Op) -> bool {
        match self.lock().entry(run_id) {
            Entry::Occupied(mut e) => {
                e.get_mut().push_back(op);
                false
            }
            Entry::Vacant(e) => {
                e.insert(VecDeque::from([op]));
                true
            }
        }
    }

    /// The next batch for `run_id`'s worker: the queued commands up to the
    /// first exclusive op, or that op alone. `None` when the queue is empty:
    /// the mailbox is then removed, under the same lock, so the next `push`
    /// starts a new worker.
    pub(super) fn next_batch(&self, run_id: RunId) -> Option<Batch> {
        let mut queues = self.lock();
        let queue = queues.get_mut(&run_id)?;
        match queue.pop_front() {
            None => {
                queues.remove(&run_id);
                None
            }
            Some(Op::Exclusive(fut)) => Some(Batch::Exclusive(fut)),
            Some(Op::Command(first)) => {
                let mut ops = vec![first];
                while ops.len() < MAX_BATCH {
                    match queue.pop_front() {
                        Some(Op::Command(op)) => ops.push(op),
                        Some(exclusive) => {
                            queue.push_front(exclusive);
                            break;
                        }
                        None => break,
                    }
                }
                Some(Batch::Commands(ops))
            }
        }
    }

    /// Drops a run's mailbox after its worker died: the queued callers'
    /// reply channels close, and they see an error instead of hanging.
    pub(super) fn abandon(&self, run_id: RunId) {
        let dropped = self.lock().remove(&run_id);
        drop(dropped);
    }
}

/// Held by a worker; if the worker panics, its mailbox is abandoned so that
/// later commands start a fresh worker.
pub(super) struct WorkerGuard<'a> {
    pub mailboxes: &'a Mailboxes,
    pub run_id: RunId,
    pub done: bool,
}

impl Drop for WorkerGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.mailboxes.abandon(self.run_id);
        }
    }
}
