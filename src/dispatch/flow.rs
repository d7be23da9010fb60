//! The flow-control gate a push passes before it is sent: its endpoint
//! version's concurrency keys (`src/flow.rs`), then its rate limit, both
//! shared by all nodes through the store.
//!
//! * Concurrency keys: a push takes one slot of each key's value (the
//!   `flow_slots` table), held until its answer is in, so at most `limit`
//!   workflow tasks or activity attempts of one value are in flight across
//!   the cluster. Slots are leased for [`LEASE`] and renewed every
//!   [`RENEW_EVERY`] by the node's renewal loop: a killed node's slots free
//!   up when their lease runs out.
//! * Rate limit: a token bucket per endpoint version in the `flow_buckets`
//!   table, taken from with one atomic upsert; a push that finds it empty
//!   sleeps until the next token is due.
//!
//! Fairness: on each node the pushes waiting for one key value (or one
//! bucket) queue FIFO behind a local async mutex, in the order they reached
//! the gate, and only the head asks the store (at most every [`POLL`],
//! sooner when a local push frees a slot). Pushes of other values have
//! queues of their own, so a busy key never holds them up. Across nodes the
//! heads race for the freed slot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{watch, Notify};

use crate::engine::{EventAttributes, RunState};
use crate::ids::RunId;
use crate::store::{Endpoint, FlowSlot, Store};
use crate::telemetry::{self, PushGauge};
use crate::time::{Clock, Duration};

/// How long a held slot's lease lasts past its last renewal.
pub const LEASE: Duration = Duration(5_000);
/// How often a node renews its slots' leases.
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_millis(1_000);
/// Longest pause between a waiting head's attempts at a slot.
const POLL: std::time::Duration = std::time::Duration::from_millis(100);
/// Start inputs cached (for keys over `input`) before the cache is cleared.
const INPUTS_CACHED: usize = 10_000;

pub(super) struct Gate {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// This node's id on the slots it holds.
    node: String,
    holders: AtomicU64,
    /// Local FIFO queues, by key value or bucket, and their release hints.
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    /// Start inputs by run.
    inputs: Mutex<HashMap<RunId, Arc<Value>>>,
    /// Why a run's push waits, by run (this node's).
    reasons: Mutex<HashMap<RunId, String>>,
}

#[derive(Default)]
struct Queue {
    turn: tokio::sync::Mutex<()>,
    freed: Notify,
}

impl Queue {
    /// The queue's turn: at once if nobody holds it, else after the pushes
    /// ahead, calling `waiting` first; `None` if `stopping` turned true.
    async fn take_turn(
        &self,
        waiting: impl FnOnce(),
        stopping: &mut watch::Receiver<bool>,
    ) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        if let Ok(turn) = self.turn.try_lock() {
            return Some(turn);
        }
        waiting();
        tokio::select! {
            t = self.turn.lock() => Some(t),
            () = super::turned_true(stopping) => None,
        }
    }
}

/// The slots a push holds; freed when dropped.
pub(super) struct Held {
    slots: Vec<FlowSlot>,
    gate: Arc<Gate>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.slots.is_empty() {
            return;
        }
        let slots = std::mem::take(&mut self.slots);
        let gate = self.gate.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for slot in &slots {
                    if let Err(e) = gate.store.release_flow_slot(slot).await {
                        tracing::warn!(key = %slot.key, error = %e, "freeing a concurrency slot failed; its lease frees it");
                    }
                    gate.queue(&slot_queue(slot)).freed.notify_waiters();
                }
            });
        }
    }
}

/// Clears a run's waiting reason when dropped.
struct Reason<'a> {
    gate: &'a Gate,
    run_id: RunId,
}

impl Drop for Reason<'_> {
    fn drop(&mut self) {
        self.gate.lock_reasons().remove(&self.run_id);
    }
}

fn slot_queue(slot: &FlowSlot) -> String {
    format!("k/{}/{}/{}", slot.namespace, slot.task_queue, slot.key)
}

impl Gate {
    pub(super) fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Gate {
        let random = uuid::Uuid::new_v4().simple().to_string();
        Gate {
            store,
            clock,
            node: format!("{}-{}", std::process::id(), &random[..12]),
            holders: AtomicU64::new(0),
            queues: Mutex::default(),
            inputs: Mutex::default(),
            reasons: Mutex::default(),
        }
    }

    fn lock_reasons(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, String>> {
        self.reasons.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self, name: &str) -> Arc<Queue> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        queues.entry(name.to_owned()).or_default().clone()
    }

    /// Why the run's push waits on this node, if it does.
    pub(super) fn reason(&self, run_id: RunId) -> Option<String> {
        self.lock_reasons().get(&run_id).cloned()
    }

    /// Renews this node's slots until `shutdown`.
    pub(super) async fn renew(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(RENEW_EVERY) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            let now = self.clock.now();
            let until = now.saturating_add(LEASE);
            if let Err(e) = self.store.renew_flow_slots(&self.node, now, until).await {
                tracing::warn!(error = %e, "renewing concurrency slots failed");
            }
        }
    }

    /// Waits until `endpoint`'s flow control lets the run's push go: the
    /// held slots, or `None` if `stopping` turned true first (or the start
    /// input could not be read).
    pub(super) async fn admit(
        self: &Arc<Self>,
        endpoint: &Endpoint,
        state: &RunState,
        stopping: &mut watch::Receiver<bool>,
    ) -> Option<Held> {
        let mut held = Held {
            slots: Vec::new(),
            gate: self.clone(),
        };
        let flow = &endpoint.flow;
        if !flow.concurrency_keys.is_empty() {
            let input = self.input(state).await?;
            for (i, k) in flow.concurrency_keys.iter().enumerate() {
                let Some(value) = crate::flow::evaluate(&k.key, &input, &state.search_attributes)
                else {
                    continue;
                };
                let slot = FlowSlot {
                    namespace: endpoint.namespace.clone(),
                    task_queue: endpoint.task_queue.clone(),
                    key: format!("{i}:{value}"),
                    holder: format!(
                        "{}-{}",
                        self.node,
                        self.holders.fetch_add(1, Ordering::Relaxed)
                    ),
                    node: self.node.clone(),
                };
                let why = format!("waiting for concurrency key {value} (limit {})", k.limit);
                if !self.take_slot(&slot, k.limit, state, why, stopping).await {
                    return None;
                }
                held.slots.push(slot);
            }
        }
        if let Some(rate) = &flow.rate_limit {
            if !self.take_token(endpoint, rate, state, stopping).await {
                return None;
            }
        }
        Some(held)
    }

    /// True once the slot is held, false if stopping first. The push counts
    /// as waiting (reason, metrics) from the moment it finds the slot taken
    /// or another push of its value ahead of it in the local queue.
    async fn take_slot(
        &self,
        slot: &FlowSlot,
        limit: u32,
        state: &RunState,
        why: String,
        stopping: &mut watch::Receiver<bool>,
    ) -> bool {
        let queue = self.queue(&slot_queue(slot));
        let mut waited = None;
        let wait = |waited: &mut Option<_>| {
            if waited.is_none() {
                let (ns, tq) = (&slot.namespace.0, &slot.task_queue.0);
                telemetry::push_throttled(ns, tq, "concurrency_key");
                let gauge = telemetry::push_gauge(PushGauge::WaitingOnKeys, ns, tq);
                *waited = Some((gauge, self.waiting(state.run_id, why.clone())));
            }
        };
        let Some(_turn) = queue.take_turn(|| wait(&mut waited), stopping).await else {
            return false;
        };
        loop {
            let freed = queue.freed.notified();
            let now = self.clock.now();
            let until = now.saturating_add(LEASE);
            match self.store.acquire_flow_slot(slot, limit, now, until).await {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(run_id = %state.run_id, error = %e, "taking a concurrency slot failed");
                }
            }
            wait(&mut waited);
            tokio::select! {
                () = freed => {}
                () = tokio::time::sleep(POLL) => {}
                () = super::turned_true(stopping) => return false,
            }
        }
    }

    /// True once a token is taken, false if stopping first. Waiting, as for
    /// a slot, starts at an empty bucket or a push ahead in the local queue.
    async fn take_token(
        &self,
        endpoint: &Endpoint,
        rate: &crate::flow::RateLimit,
        state: &RunState,
        stopping: &mut watch::Receiver<bool>,
    ) -> bool {
        let name = format!(
            "r/{}/{}/{}",
            endpoint.namespace, endpoint.task_queue, endpoint.version
        );
        let queue = self.queue(&name);
        let mut waited = None;
        let wait = |waited: &mut Option<_>| {
            if waited.is_none() {
                let (ns, tq) = (&endpoint.namespace.0, &endpoint.task_queue.0);
                telemetry::push_throttled(ns, tq, "rate_limit");
                *waited = Some(self.waiting(state.run_id, "waiting for rate limit".to_owned()));
            }
        };
        let Some(_turn) = queue.take_turn(|| wait(&mut waited), stopping).await else {
            return false;
        };
        loop {
            let now = self.clock.now();
            let pause = match self
                .store
                .take_flow_token(endpoint, rate.per_second, rate.burst(), now)
                .await
            {
                Ok(None) => return true,
                Ok(Some(wait)) => wait.to_std().min(POLL * 10),
                Err(e) => {
                    tracing::warn!(run_id = %state.run_id, error = %e, "taking a rate-limit token failed");
                    POLL
                }
            };
            wait(&mut waited);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = super::turned_true(stopping) => return false,
            }
        }
    }

    /// Records why the run's push waits, until the guard is dropped.
    fn waiting(&self, run_id: RunId, why: String) -> Reason<'_> {
        self.lock_reasons().insert(run_id, why);
        Reason { gate: self, run_id }
    }

    /// The run's start input (from its first event), cached.
    async fn input(&self, state: &RunState) -> Option<Arc<Value>> {
        let cached = {
            let inputs = self.inputs.lock().unwrap_or_else(|p| p.into_inner());
            inputs.get(&state.run_id).cloned()
        };
        if let Some(input) = cached {
            return Some(input);
        }
        let first = super::retrying(state, "reading the start input", || {
            self.store
                .read_history(&state.namespace, state.run_id, 0, 1)
        })
        .await?;
        let input = match first.first().map(|e| &e.attributes) {
            Some(EventAttributes::WorkflowExecutionStarted(a)) => Arc::new(a.input.clone()),
            _ => Arc::new(Value::Null),
        };
        let mut inputs = self.inputs.lock().unwrap_or_else(|p| p.into_inner());
        if inputs.len() >= INPUTS_CACHED {
            inputs.clear();
        }
        inputs.insert(state.run_id, input.clone());
        Some(input)
    }
}
