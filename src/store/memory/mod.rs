//! [`MemoryStore`]: the whole [`Store`] trait in memory, for the
//! deterministic simulation (`tests/sim.rs`) and for fast tests. **Not a
//! production backend**: nothing survives the process, one lock serialises
//! every call, and nothing is ever freed (runs, events and endpoints stay
//! until the store is dropped).
//!
//! It keeps the SQL stores' semantics, not only their shape, and passes
//! `conformance` like them:
//! - Rows are the values the SQL stores write, encoded by `rows`: a run's
//!   snapshot, its events and task payloads go through the same JSON round
//!   trip, the listing columns come from the same `RunRow`, and a commit's
//!   effects fold into the same `TaskPlan`. The tables and their unique
//!   keys mirror `migrations/` (an update changes the columns `UPDATE_RUN`
//!   changes and no others).
//! - **Atomicity.** A commit applies its changes one after another, as the
//!   SQL transaction runs its statements, and logs how to undo each write.
//!   The first failure (a stale version: [`Error::Conflict`]; a taken run
//!   id or a second open run of a workflow id: [`Error::AlreadyExists`])
//!   undoes the log in reverse, so a failed commit leaves nothing behind
//!   and announces nothing. Checks see the commit's own earlier changes, so
//!   terminating a workflow id's open run and starting its successor in one
//!   commit passes, as it does per statement in SQL.
//! - **Determinism.** No clock reads (the store writes no audit times), no
//!   background tasks, no randomness: task ids count up (`task-1`, …),
//!   every map is ordered, and the ties SQL leaves open (which of several
//!   rows due at the same time a claim takes first) go to the older row.
//!   Each call yields to the scheduler once before it runs, as a real
//!   store's IO would, so concurrent callers interleave at store calls;
//!   then it runs to completion under the lock.
//! - **Faults.** [`MemoryStore::fail_next`], [`MemoryStore::fail_all`] and
//!   [`MemoryStore::fail_when`] make calls fail with the transient
//!   [`Error::Unavailable`], before doing anything ([`Fault::Fail`]) or
//!   after (an ambiguous [`Fault::ApplyThenFail`], as a connection lost
//!   mid-commit is).

mod faults;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::engine::{Event, Queue, RegisteredAttribute, RunStatus, SearchAttributeType};
use crate::ids::{Namespace, RunId, TaskQueue, WorkflowId};
use crate::payload::StoredPayload;
use crate::schema::Schemas;
use crate::time::Timestamp;
use crate::visibility::{Attributes, CountQuery, Cursor, ListQuery, Value};

use super::rows::{
    self, decode_json, parse_run_id, queue_name, run_id_text, BatchCols, RunRow, RunWrite,
    ScheduleCols,
};
use super::sql::WAKEUP_CAPACITY;
use super::{
    ApiKeyRecord, BatchRecord, Deletion, Delivery, Endpoint, Error, Expired, FlowSlot,
    NamespaceRecord, QueueDepth, Result, RetentionLease, RunChange, RunRecord, RunSummary,
    ScheduleFilter, ScheduleRecord, Store, TaskRow, Wakeup, WebhookRecord,
};
use crate::time::Duration;

pub use faults::{Call, Fault};

use faults::{unavailable, Faults};

/// The in-memory [`Store`]; see the module docs. Cheap to share behind an
/// `Arc`.
pub struct MemoryStore {
    tables: Mutex<Tables>,
    faults: Mutex<Faults>,
    latency: Mutex<Option<Latency>>,
    wakeups: broadcast::Sender<Wakeup>,
}

/// Decides how long a call waits before it runs; see
/// [`MemoryStore::delay_when`].
type Latency = Box<dyn FnMut(Call) -> std::time::Duration + Send>;

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store; it needs no migration (`migrate` does nothing).
    pub fn new() -> MemoryStore {
        MemoryStore {
            tables: Mutex::new(Tables::default()),
            faults: Mutex::new(Faults::default()),
            latency: Mutex::new(None),
            wakeups: broadcast::channel(WAKEUP_CAPACITY).0,
        }
    }

    /// The next `n` calls that `calls` matches fail with `fault`, e.g.
    /// `fail_next(1, |c| c == Call::Commit, Fault::ApplyThenFail)`. Rules
    /// are consulted in the order they were added; the first that matches
    /// a call decides it and uses up one of its `n`.
    pub fn fail_next(&self, n: u64, calls: impl Fn(Call) -> bool + Send + 'static, fault: Fault) {
        self.faults().add(Box::new(calls), Some(n), fault);
    }

    /// Every call that `calls` matches fails with `fault` until
    /// [`MemoryStore::clear_faults`]: an outage (`fail_all(|_| true, …)`)
    /// or a read-only database (`fail_all(Call::is_write, …)`).
    pub fn fail_all(&self, calls: impl Fn(Call) -> bool + Send + 'static, fault: Fault) {
        self.faults().add(Box::new(calls), None, fault);
    }

    /// `decide` is asked about every call no rule caught; it returns the
    /// fault to inject, if any. A simulation hands it its seeded random
    /// generator. Replaces the previous hook.
    pub fn fail_when(&self, decide: impl FnMut(Call) -> Option<Fault> + Send + 'static) {
        self.faults().set_hook(Some(Box::new(decide)));
    }

    /// `latency` is asked about every call how long it waits (on tokio's
    /// clock) before it runs, as a database round trip would: a simulation
    /// on paused time hands it its seeded random generator, so that
    /// concurrent commands interleave as they do against a real database.
    /// Without it a call only yields once.
    pub fn delay_when(&self, latency: impl FnMut(Call) -> std::time::Duration + Send + 'static) {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(latency));
    }

    /// Removes every rule and the hook: the store works again.
    pub fn clear_faults(&self) {
        self.faults().clear();
    }

    /// How many calls have failed by injection so far.
    pub fn injected_faults(&self) -> u64 {
        self.faults().injected()
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults
            .lock()
            .expect("fault rules never panic while the lock is held")
    }

    /// Runs one call: waits (where a real store would wait on IO),
    /// lets the fault rules decide, then runs `op` on the tables.
    async fn call<T>(&self, call: Call, op: impl FnOnce(&mut Tables) -> Result<T>) -> Result<T> {
        let delay = self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .map(|latency| latency(call));
        match delay {
            Some(d) if !d.is_zero() => tokio::time::sleep(d).await,
            _ => tokio::task::yield_now().await,
        }
        let fault = self.faults().decide(call);
        if fault == Some(Fault::Fail) {
            return Err(unavailable(call, Fault::Fail));
        }
        let done = op(&mut self
            .tables
            .lock()
            .expect("table operations never panic while the lock is held"));
        match fault {
            // Whatever `op` did, the caller hears only that the connection
            // went away.
            Some(fault) => Err(unavailable(call, fault)),
            None => done,
        }
    }
}

/// A `runs` row.
struct StoredRun {
    row: RunRow,
    request_id: Option<String>,
    version: i64,
}

impl StoredRun {
    fn is_open(&self) -> bool {
        self.row.status == RunStatus::Running.as_str()
    }

    fn record(&self) -> Result<RunRecord> {
        rows::run_record((self.row.state.clone(), self.version))
    }
}

/// A `tasks` row (its run id and key are where it is kept).
struct StoredTask {
    task_id: String,
    /// Insertion order: breaks ties between rows due at the same time.
    seq: u64,
    namespace: String,
    queue: Queue,
    task_queue: Option<String>,
    payload: String,
    visible_at: i64,
    lease_ms: i64,
    claims: i32,
}

impl StoredTask {
    fn due_key(&self) -> DueKey {
        (queue_name(self.queue), self.visible_at, self.seq)
    }
}

/// A `flow_slots` key: (namespace, task queue, key, slot).
type SlotKey = (String, String, String, u32);

/// The `tasks_due` index: (queue, visible_at, insertion order).
type DueKey = (&'static str, i64, u64);

/// The tables (mirroring `migrations/`) and their indexes. Every write goes
/// through `put_run` / `put_task`, which keep the indexes in step.
#[derive(Default)]
struct Tables {
    namespaces: BTreeMap<String, NamespaceRecord>,
    api_keys: BTreeMap<String, ApiKeyRecord>,
    /// By (namespace, task queue, version): `list_endpoints`' order.
    endpoints: BTreeMap<(String, String, String), Endpoint>,
    /// `flow_slots`: (namespace, task queue, key, slot) → (holder, node,
    /// expires_at).
    flow_slots: BTreeMap<SlotKey, (String, String, i64)>,
    /// `flow_buckets`: (namespace, task queue, version) → (tokens,
    /// updated_at).
    flow_buckets: BTreeMap<(String, String, String), (f64, i64)>,
    /// By run id (as text, as SQL compares them).
    runs: BTreeMap<String, StoredRun>,
    /// `runs_open_workflow_id`: (namespace, workflow id) → its open run.
    open_runs: BTreeMap<(String, String), String>,
    /// `runs_by_start_time`: namespace → (start time, run id).
    by_start: BTreeMap<String, BTreeSet<(i64, String)>>,
    /// `runs_by_workflow_id`: (namespace, workflow id) → (start time, run id).
    by_workflow: BTreeMap<(String, String), BTreeSet<(i64, String)>>,
    /// Run id → event id → the encoded event.
    events: BTreeMap<String, BTreeMap<i64, String>>,
    /// `payloads_pkey` (namespace, digest) → the payload's JSON. Nothing
    /// sweeps unreferenced ones: the simulation's runs are short-lived.
    payloads: BTreeMap<(String, String), String>,
    /// `payload_links_pkey`: (namespace, digest, run id).
    payload_links: BTreeSet<(String, String, String)>,
    /// Run id → task key → row (`tasks_run_id_task_key_key`).
    tasks: BTreeMap<String, BTreeMap<String, StoredTask>>,
    /// `tasks_pkey`: task id → (run id, task key).
    task_ids: BTreeMap<String, (String, String)>,
    /// `tasks_due` → task id.
    due: BTreeMap<DueKey, String>,
    /// Task ids handed out.
    n_task_ids: u64,
    /// Task rows inserted.
    n_task_rows: u64,
    /// `schedules_pkey` (namespace, schedule id) → the row's columns as
    /// the SQL stores read them, and its `paused` column.
    schedules: BTreeMap<(String, String), (ScheduleCols, i64)>,
    /// `search_attributes_pkey` (namespace, name, kind) → the row.
    search_attributes: BTreeMap<(String, String, SearchAttributeType), RegisteredAttribute>,
    /// `batches_pkey` (namespace, batch id) → the row's columns as the SQL
    /// stores read them, and its `created_at` column.
    batches: BTreeMap<(String, String), (BatchCols, i64)>,
    /// `retention_leases_pkey` (namespace) → the row.
    retention_leases: BTreeMap<String, RetentionLease>,
    /// `webhook_sources_pkey` (namespace, source id) → the source.
    webhooks: BTreeMap<(String, String), WebhookRecord>,
    /// `webhook_deliveries_pkey` (namespace, source id, seq) → the
    /// delivery's `doc`.
    deliveries: BTreeMap<(String, String, String), String>,
}

/// How to undo one write of a commit.
enum Undo {
    Run {
        run_id: String,
        /// Boxed: a run row is much larger than the other variants.
        previous: Option<Box<StoredRun>>,
    },
    Event {
        run_id: String,
        event_id: i64,
    },
    Task {
        run_id: String,
        key: String,
        previous: Option<StoredTask>,
    },
}

impl Tables {
    /// Writes (or with `None` removes) a run row, keeping the run indexes
    /// in step; returns the row it replaced. Checks nothing.
    fn put_run(&mut self, run_id: &str, run: Option<StoredRun>) -> Option<StoredRun> {
        let previous = self.runs.remove(run_id);
        if let Some(old) = &previous {
            let row = &old.row;
            let workflow = (row.namespace.clone(), row.workflow_id.clone());
            if old.is_open() && self.open_runs.get(&workflow).map(String::as_str) == Some(run_id) {
                self.open_runs.remove(&workflow);
            }
            let at = (row.start_time, run_id.to_owned());
            if let Some(set) = self.by_start.get_mut(&row.namespace) {
                set.remove(&at);
            }
            if let Some(set) = self.by_workflow.get_mut(&workflow) {
                set.remove(&at);
            }
        }
        if let Some(new) = run {
            let row = &new.row;
            let workflow = (row.namespace.clone(), row.workflow_id.clone());
            if new.is_open() {
                self.open_runs.insert(workflow.clone(), run_id.to_owned());
            }
            let at = (row.start_time, run_id.to_owned());
            let by_start = self.by_start.entry(row.namespace.clone()).or_default();
            by_start.insert(at.clone());
            self.by_workflow.entry(workflow).or_default().insert(at);
            self.runs.insert(run_id.to_owned(), new);
        }
        previous
    }

    /// True if task rows of the run remain.
    fn has_tasks(&self, run_id: &str) -> bool {
        self.tasks.get(run_id).is_some_and(|rows| !rows.is_empty())
    }

    /// Removes a run row and its events (the caller checked it may);
    /// returns how many events went.
    fn delete_run(&mut self, run_id: &str) -> u64 {
        self.payload_links.retain(|(_, _, run)| run != run_id);
        self.put_run(run_id, None);
        self.events.remove(run_id).map_or(0, |e| e.len() as u64)
    }

    /// The lease row `lease` names, if it still has the lease's owner and
    /// epoch (the fence).
    fn fenced(&mut self, lease: &RetentionLease) -> Option<&mut RetentionLease> {
        self.retention_leases
            .get_mut(&lease.namespace.0)
            .filter(|row| row.owner == lease.owner && row.epoch == lease.epoch)
    }

    /// Writes (or with `None` removes) the task row of (run, key), keeping
    /// the task indexes in step; returns the row it replaced.
    fn put_task(
        &mut self,
        run_id: &str,
        key: &str,
        task: Option<StoredTask>,
    ) -> Option<StoredTask> {
        let of_run = self.tasks.entry(run_id.to_owned()).or_default();
        let previous = match task {
            Some(task) => {
                self.task_ids
                    .insert(task.task_id.clone(), (run_id.to_owned(), key.to_owned()));
                self.due.insert(task.due_key(), task.task_id.clone());
                of_run.insert(key.to_owned(), task)
            }
            None => of_run.remove(key),
        };
        if of_run.is_empty() {
            self.tasks.remove(run_id);
        }
        if let Some(old) = &previous {
            self.task_ids.remove(&old.task_id);
            self.due.remove(&old.due_key());
        }
        previous
    }

    /// The run `run_id` names, if it is in namespace `ns`.
    fn run_in(&self, ns: &Namespace, run_id: RunId) -> Option<&StoredRun> {
        let run = self.runs.get(&run_id_text(run_id))?;
        (run.row.namespace == ns.0).then_some(run)
    }

    /// The runs of a workflow id, oldest first.
    fn runs_of(&self, ns: &Namespace, workflow_id: &WorkflowId) -> Vec<&StoredRun> {
        let key = (ns.0.clone(), workflow_id.0.clone());
        let Some(set) = self.by_workflow.get(&key) else {
            return Vec::new();
        };
        set.iter()
            .filter_map(|(_, run_id)| self.runs.get(run_id))
            .collect()
    }

    /// The open runs of a queue.
    fn open_runs_of<'a>(
        &'a self,
        ns: &'a Namespace,
        queue: &'a TaskQueue,
    ) -> impl Iterator<Item = &'a StoredRun> + 'a {
        self.runs.values().filter(move |run| {
            run.is_open() && run.row.namespace == ns.0 && run.row.task_queue == queue.0
        })
    }

    fn new_task_id(&mut self) -> String {
        self.n_task_ids += 1;
        format!("task-{}", self.n_task_ids)
    }

    /// All of `changes` or none of them; returns the wake-ups to send.
    fn commit(&mut self, changes: &[RunChange]) -> Result<Vec<Wakeup>> {
        let writes = changes
            .iter()
            .map(|change| RunWrite::with_task_ids(change, &mut || self.new_task_id()))
            .collect::<Result<Vec<_>>>()?;
        let wakeups = writes.iter().flat_map(|w| w.tasks.wakeups()).collect();
        let links: Vec<(String, String, String)> = writes
            .iter()
            .flat_map(|w| {
                w.links
                    .iter()
                    .map(|l| (w.run.namespace.clone(), l.clone(), w.run.run_id.clone()))
            })
            .collect();
        let mut undo = Vec::new();
        for write in writes {
            if let Err(e) = self.apply(write, &mut undo) {
                for step in undo.into_iter().rev() {
                    self.undo(step);
                }
                return Err(e);
            }
        }
        // Nothing fails past this point: no undo needed.
        self.payload_links.extend(links);
        Ok(wakeups)
    }

    /// One change of a commit, as the SQL transaction's statements for it:
    /// the run's insert or version-checked update, its events, its task
    /// rows. Logs every write it makes in `undo`, also when it fails.
    fn apply(&mut self, write: RunWrite, undo: &mut Vec<Undo>) -> Result<()> {
        let run_id = write.run.run_id.clone();
        let old = self.runs.get(&run_id);
        let (version, request_id, workflow) = match (write.expected_version, old) {
            (None, Some(_)) => return Err(write.run_taken()),
            (None, None) => {
                let workflow = (write.run.namespace.clone(), write.run.workflow_id.clone());
                (1, write.request_id.clone(), workflow)
            }
            (Some(expected), Some(old)) if old.version == expected => {
                let workflow = (old.row.namespace.clone(), old.row.workflow_id.clone());
                (expected + 1, old.request_id.clone(), workflow)
            }
            (Some(_), _) => return Err(Error::Conflict),
        };
        let is_open = write.run.status == RunStatus::Running.as_str();
        if is_open
            && self
                .open_runs
                .get(&workflow)
                .is_some_and(|open| *open != run_id)
        {
            return Err(write.open_run_taken());
        }
        let row = match old {
            None => write.run,
            // The columns `UPDATE_RUN` sets come from the write; the others
            // stay as inserted.
            Some(old) => RunRow {
                run_id: old.row.run_id.clone(),
                namespace: old.row.namespace.clone(),
                workflow_id: old.row.workflow_id.clone(),
                workflow_type: old.row.workflow_type.clone(),
                task_queue: old.row.task_queue.clone(),
                start_time: old.row.start_time,
                ..write.run
            },
        };
        let run = StoredRun {
            row,
            request_id,
            version,
        };
        let namespace = run.row.namespace.clone();
        let previous = self.put_run(&run_id, Some(run));
        undo.push(Undo::Run {
            run_id: run_id.clone(),
            previous: previous.map(Box::new),
        });

        for event in write.events {
            let events = self.events.entry(run_id.clone()).or_default();
            if events.contains_key(&event.event_id) {
                return Err(Error::Corrupt(format!(
                    "event {} of run {run_id} is written twice",
                    event.event_id
                )));
            }
            events.insert(event.event_id, event.data);
            undo.push(Undo::Event {
                run_id: run_id.clone(),
                event_id: event.event_id,
            });
        }

        let plan = write.tasks;
        let deleted: Vec<String> = if plan.delete_all {
            let keys = self.tasks.get(&run_id).into_iter().flat_map(|t| t.keys());
            keys.cloned().collect()
        } else {
            plan.delete_keys
        };
        for key in deleted {
            let previous = self.put_task(&run_id, &key, None);
            if previous.is_some() {
                undo.push(Undo::Task {
                    run_id: run_id.clone(),
                    key,
                    previous,
                });
            }
        }
        for upsert in plan.upserts {
            self.n_task_rows += 1;
            let task = StoredTask {
                task_id: upsert.task_id,
                seq: self.n_task_rows,
                namespace: namespace.clone(),
                queue: upsert.queue,
                task_queue: upsert.task_queue,
                payload: upsert.payload,
                visible_at: upsert.visible_at,
                lease_ms: upsert.lease_ms,
                claims: 0,
            };
            let previous = self.put_task(&run_id, &upsert.key, Some(task));
            undo.push(Undo::Task {
                run_id: run_id.clone(),
                key: upsert.key,
                previous,
            });
        }
        Ok(())
    }

    fn undo(&mut self, step: Undo) {
        match step {
            Undo::Run { run_id, previous } => {
                self.put_run(&run_id, previous.map(|p| *p));
            }
            Undo::Event { run_id, event_id } => {
                if let Some(events) = self.events.get_mut(&run_id) {
                    events.remove(&event_id);
                    if events.is_empty() {
                        self.events.remove(&run_id);
                    }
                }
            }
            Undo::Task {
                run_id,
                key,
                previous,
            } => {
                self.put_task(&run_id, &key, previous);
            }
        }
    }

    fn claim(&mut self, queue: Queue, now: i64, limit: i64) -> Result<Vec<TaskRow>> {
        let name = queue_name(queue);
        let limit = usize::try_from(limit).unwrap_or(0);
        let picked: Vec<(DueKey, String)> = self
            .due
            .range((name, i64::MIN, 0)..=(name, now, u64::MAX))
            .take(limit)
            .map(|(key, task_id)| (*key, task_id.clone()))
            .collect();
        let mut claimed = Vec::with_capacity(picked.len());
        for (due_key, task_id) in picked {
            let (run_id, key) = &self.task_ids[&task_id];
            let task = self
                .tasks
                .get_mut(run_id)
                .and_then(|tasks| tasks.get_mut(key))
                .expect("the task-id index names only stored rows");
            let due_at = task.visible_at;
            task.visible_at = now.saturating_add(task.lease_ms);
            task.claims += 1;
            self.due.remove(&due_key);
            self.due.insert(task.due_key(), task_id.clone());
            claimed.push(rows::task_row((
                task_id,
                task.namespace.clone(),
                run_id.clone(),
                task.payload.clone(),
                due_at,
                task.claims,
            ))?);
        }
        // Taken in due order already (earliest first, then oldest row).
        Ok(claimed)
    }

    /// Every run of `ns` as its summary, in start order.
    fn summaries(&self, ns: &Namespace) -> Result<Vec<RunSummary>> {
        let Some(by_start) = self.by_start.get(&ns.0) else {
            return Ok(Vec::new());
        };
        by_start
            .iter()
            .filter_map(|(_, run_id)| self.runs.get(run_id))
            .map(|run| {
                let row = &run.row;
                rows::summary(
                    (
                        row.namespace.clone(),
                        row.workflow_id.clone(),
                        row.run_id.clone(),
                        row.workflow_type.clone(),
                        row.task_queue.clone(),
                        row.status.to_owned(),
                        row.start_time,
                        row.close_time,
                        row.history_length,
                        row.parent_workflow_id.clone(),
                        row.parent_run_id.clone(),
                        row.pinned_version.clone(),
                    ),
                    &row.slots,
                    row.scheduled_by_id.clone(),
                )
            })
            .collect()
    }

    /// `visibility`'s meaning run directly: filter, order, page.
    fn list_runs(
        &self,
        ns: &Namespace,
        query: &ListQuery,
        cursor: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<RunSummary>> {
        let mut runs: Vec<RunSummary> = self
            .summaries(ns)?
            .into_iter()
            .filter(|run| query.matches(run))
            .filter(|run| cursor.is_none_or(|c| query.is_after(run, c)))
            .collect();
        runs.sort_by(|a, b| query.compare(a, b));
        runs.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(runs)
    }

    fn count_runs(&self, ns: &Namespace, query: &CountQuery) -> Result<Vec<(Option<String>, i64)>> {
        let matching = self
            .summaries(ns)?
            .into_iter()
            .filter(|run| query.filter.as_ref().is_none_or(|f| f.matches(run)));
        let Some(group) = query.group_by else {
            return Ok(vec![(
                None,
                i64::try_from(matching.count()).unwrap_or(i64::MAX),
            )]);
        };
        let mut groups: BTreeMap<Option<String>, i64> = BTreeMap::new();
        for run in matching {
            let key = match run.value(group) {
                Some(Value::Text(s)) => Some(s),
                Some(Value::Int(i)) => Some(i.to_string()),
                // Grouping is by ExecutionStatus only.
                Some(Value::Double(_) | Value::List(_)) | None => None,
            };
            *groups.entry(key).or_default() += 1;
        }
        Ok(groups.into_iter().collect())
    }

    fn upsert_endpoint(&mut self, endpoint: &Endpoint) {
        let ns = &endpoint.namespace.0;
        let queue = &endpoint.task_queue.0;
        self.set_current(ns, queue, &endpoint.version);
        let key = (ns.clone(), queue.clone(), endpoint.version.clone());
        let created_at = self.endpoints.get(&key).map(|e| e.created_at);
        let stored = Endpoint {
            is_current: true,
            // Re-registering a version keeps its first registration time.
            created_at: created_at.unwrap_or(endpoint.created_at),
            ..endpoint.clone()
        };
        self.endpoints.insert(key, stored);
    }

    /// Makes `version` the only current version of its queue (whether or
    /// not it is registered).
    fn set_current(&mut self, ns: &str, queue: &str, version: &str) {
        let of_queue = self
            .endpoints
            .iter_mut()
            .filter(|((n, q, _), _)| n == ns && q == queue);
        for ((_, _, v), endpoint) in of_queue {
            endpoint.is_current = v == version;
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn migrate(&self) -> Result<()> {
        self.call(Call::Migrate, |_| Ok(())).await
    }

    async fn probe_write(&self) -> Result<()> {
        self.call(Call::ProbeWrite, |_| Ok(())).await
    }

    async fn create_namespace(&self, ns: &NamespaceRecord) -> Result<()> {
        self.call(Call::CreateNamespace, |t| {
            if t.namespaces.contains_key(&ns.name.0) {
                return Err(Error::AlreadyExists(format!("namespace `{}`", ns.name)));
            }
            t.namespaces.insert(ns.name.0.clone(), ns.clone());
            Ok(())
        })
        .await
    }

    async fn get_namespace(&self, name: &Namespace) -> Result<Option<NamespaceRecord>> {
        self.call(Call::GetNamespace, |t| {
            Ok(t.namespaces.get(&name.0).cloned())
        })
        .await
    }

    async fn update_namespace(&self, ns: &NamespaceRecord) -> Result<bool> {
        self.call(Call::UpdateNamespace, |t| {
            Ok(match t.namespaces.get_mut(&ns.name.0) {
                Some(stored) => {
                    stored.description = ns.description.clone();
                    stored.retention = ns.retention;
                    true
                }
                None => false,
            })
        })
        .await
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>> {
        self.call(Call::ListNamespaces, |t| {
            Ok(t.namespaces.values().cloned().collect())
        })
        .await
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        self.call(Call::CreateApiKey, |t| {
            if t.api_keys.contains_key(&key.id) {
                return Err(Error::AlreadyExists(format!("API key `{}`", key.id)));
            }
            t.api_keys.insert(key.id.clone(), key.clone());
            Ok(())
        })
        .await
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        self.call(Call::GetApiKey, |t| Ok(t.api_keys.get(id).cloned()))
            .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        self.call(Call::ListApiKeys, |t| {
            let mut keys: Vec<ApiKeyRecord> = t.api_keys.values().cloned().collect();
            keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(keys)
        })
        .await
    }

    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<bool> {
        self.call(Call::RevokeApiKey, |t| {
            Ok(t.api_keys.get_mut(id).is_some_and(|k| {
                k.revoked_at.get_or_insert(at);
                true
            }))
        })
        .await
    }

    async fn touch_api_key(&self, id: &str, at: Timestamp) -> Result<()> {
        self.call(Call::TouchApiKey, |t| {
            if let Some(k) = t.api_keys.get_mut(id) {
                k.last_used_at = Some(at);
            }
            Ok(())
        })
        .await
    }

    async fn search_attributes(&self, ns: &Namespace) -> Result<Vec<RegisteredAttribute>> {
        self.call(Call::SearchAttributes, |t| {
            Ok(t.search_attributes
                .range((ns.0.clone(), String::new(), SearchAttributeType::Keyword)..)
                .take_while(|((n, ..), _)| *n == ns.0)
                .map(|(_, row)| row.clone())
                .collect())
        })
        .await
    }

    async fn add_search_attributes(
        &self,
        ns: &Namespace,
        rows: &[RegisteredAttribute],
    ) -> Result<()> {
        self.call(Call::AddSearchAttributes, |t| {
            // Checked whole first, as the SQL transaction rolls back whole.
            for row in rows {
                let taken = t.search_attributes.iter().any(|((n, name, kind), other)| {
                    *n == ns.0
                        && ((name == &row.name && !other.removed)
                            || (other.slot == row.slot
                                && !(name == &row.name && *kind == row.slot.kind)))
                });
                if taken {
                    return Err(Error::AlreadyExists(format!(
                        "search attribute `{}` (registered, or its slot taken, concurrently)",
                        row.name
                    )));
                }
            }
            for row in rows {
                t.search_attributes.insert(
                    (ns.0.clone(), row.name.clone(), row.slot.kind),
                    RegisteredAttribute {
                        removed: false,
                        ..row.clone()
                    },
                );
            }
            Ok(())
        })
        .await
    }

    async fn remove_search_attribute(&self, ns: &Namespace, name: &str) -> Result<bool> {
        self.call(Call::RemoveSearchAttribute, |t| {
            let active = t
                .search_attributes
                .iter_mut()
                .find(|((n, row_name, _), row)| *n == ns.0 && row_name == name && !row.removed);
            Ok(match active {
                Some((_, row)) => {
                    row.removed = true;
                    true
                }
                None => false,
            })
        })
        .await
    }

    async fn upsert_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        self.call(Call::UpsertEndpoint, |t| {
            t.upsert_endpoint(endpoint);
            Ok(())
        })
        .await
    }

    async fn list_endpoints(&self, ns: &Namespace) -> Result<Vec<Endpoint>> {
        self.call(Call::ListEndpoints, |t| {
            let of_ns = t.endpoints.iter().filter(|((n, ..), _)| *n == ns.0);
            Ok(of_ns.map(|(_, e)| e.clone()).collect())
        })
        .await
    }

    async fn delete_endpoint(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
    ) -> Result<bool> {
        self.call(Call::DeleteEndpoint, |t| {
            let key = (ns.0.clone(), queue.0.clone(), version.to_owned());
            Ok(t.endpoints.remove(&key).is_some())
        })
        .await
    }

    async fn queue_endpoints(&self, ns: &Namespace, queue: &TaskQueue) -> Result<Vec<Endpoint>> {
        self.call(Call::QueueEndpoints, |t| {
            let mut versions: Vec<Endpoint> = t
                .endpoints
                .iter()
                .filter(|((n, q, _), _)| *n == ns.0 && *q == queue.0)
                .map(|(_, e)| e.clone())
                .collect();
            versions.sort_by(|a, b| (a.created_at, &a.version).cmp(&(b.created_at, &b.version)));
            Ok(versions)
        })
        .await
    }

    async fn promote_endpoint(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
    ) -> Result<bool> {
        self.call(Call::PromoteEndpoint, |t| {
            let key = (ns.0.clone(), queue.0.clone(), version.to_owned());
            if !t.endpoints.contains_key(&key) {
                return Ok(false);
            }
            t.set_current(&ns.0, &queue.0, version);
            Ok(true)
        })
        .await
    }

    async fn set_endpoint_schemas(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
        schemas: &Schemas,
    ) -> Result<bool> {
        self.call(Call::SetEndpointSchemas, |t| {
            let key = (ns.0.clone(), queue.0.clone(), version.to_owned());
            let Some(endpoint) = t.endpoints.get_mut(&key) else {
                return Ok(false);
            };
            endpoint.schemas = schemas.clone();
            Ok(true)
        })
        .await
    }

    async fn open_runs_by_version(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
    ) -> Result<Vec<(String, i64)>> {
        self.call(Call::OpenRunsByVersion, |t| {
            let mut counts: BTreeMap<String, i64> = BTreeMap::new();
            let pinned = t
                .open_runs_of(ns, queue)
                .filter_map(|run| run.row.pinned_version.clone());
            for version in pinned {
                *counts.entry(version).or_default() += 1;
            }
            Ok(counts.into_iter().collect())
        })
        .await
    }

    async fn open_runs_pinned_to(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
    ) -> Result<Vec<RunId>> {
        self.call(Call::OpenRunsPinnedTo, |t| {
            let mut runs: Vec<(i64, &str)> = t
                .open_runs_of(ns, queue)
                .filter(|run| run.row.pinned_version.as_deref() == Some(version))
                .map(|run| (run.row.start_time, run.row.run_id.as_str()))
                .collect();
            runs.sort_unstable();
            runs.into_iter().map(|(_, id)| parse_run_id(id)).collect()
        })
        .await
    }

    async fn load_run(&self, ns: &Namespace, run_id: RunId) -> Result<Option<RunRecord>> {
        self.call(Call::LoadRun, |t| {
            t.run_in(ns, run_id).map(StoredRun::record).transpose()
        })
        .await
    }

    async fn latest_run(
        &self,
        ns: &Namespace,
        workflow_id: &WorkflowId,
    ) -> Result<Option<RunRecord>> {
        self.call(Call::LatestRun, |t| {
            let runs = t.runs_of(ns, workflow_id);
            runs.last().map(|run| run.record()).transpose()
        })
        .await
    }

    async fn run_by_request_id(
        &self,
        ns: &Namespace,
        workflow_id: &WorkflowId,
        request_id: &str,
    ) -> Result<Option<RunId>> {
        self.call(Call::RunByRequestId, |t| {
            let runs = t.runs_of(ns, workflow_id);
            let newest = runs
                .into_iter()
                .rev()
                .find(|run| run.request_id.as_deref() == Some(request_id));
            newest.map(|run| parse_run_id(&run.row.run_id)).transpose()
        })
        .await
    }

    async fn create_schedule(&self, record: &ScheduleRecord) -> Result<()> {
        let (doc, paused) = rows::schedule_doc(record)?;
        self.call(Call::CreateSchedule, |t| {
            let key = (record.namespace.0.clone(), record.schedule_id.clone());
            if t.schedules.contains_key(&key) {
                return Err(Error::AlreadyExists(format!(
                    "schedule `{}`",
                    record.schedule_id
                )));
            }
            let cols = (
                key.0.clone(),
                key.1.clone(),
                doc,
                1,
                record.due_at.map(Timestamp::millis),
            );
            t.schedules.insert(key, (cols, paused));
            Ok(())
        })
        .await
    }

    async fn get_schedule(&self, ns: &Namespace, id: &str) -> Result<Option<ScheduleRecord>> {
        let cols = self
            .call(Call::GetSchedule, |t| {
                Ok(t.schedules
                    .get(&(ns.0.clone(), id.to_owned()))
                    .map(|(cols, _)| cols.clone()))
            })
            .await?;
        cols.map(rows::schedule_record).transpose()
    }

    async fn list_schedules(
        &self,
        ns: &Namespace,
        filter: &ScheduleFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ScheduleRecord>> {
        let found = self
            .call(Call::ListSchedules, |t| {
                let from = (ns.0.clone(), after.unwrap_or_default().to_owned());
                Ok(t.schedules
                    .range(from..)
                    .filter(|((n, id), _)| *n == ns.0 && after.is_none_or(|a| id.as_str() > a))
                    .filter(|((_, id), _)| {
                        filter.id_prefix.as_ref().is_none_or(|p| id.starts_with(p))
                    })
                    .filter(|(_, (_, paused))| {
                        filter.paused.is_none_or(|p| i64::from(p) == *paused)
                    })
                    .take(usize::try_from(limit.max(0)).unwrap_or(0))
                    .map(|(_, (cols, _))| cols.clone())
                    .collect::<Vec<_>>())
            })
            .await?;
        found.into_iter().map(rows::schedule_record).collect()
    }

    async fn delete_schedule(&self, ns: &Namespace, id: &str) -> Result<bool> {
        self.call(Call::DeleteSchedule, |t| {
            Ok(t.schedules.remove(&(ns.0.clone(), id.to_owned())).is_some())
        })
        .await
    }

    async fn commit_schedule(&self, record: &ScheduleRecord, runs: &[RunChange]) -> Result<()> {
        let (doc, paused) = rows::schedule_doc(record)?;
        let wakeups = self
            .call(Call::CommitSchedule, |t| {
                let key = (record.namespace.0.clone(), record.schedule_id.clone());
                match t.schedules.get(&key) {
                    Some(((.., version, _), _)) if *version == record.version => {}
                    _ => return Err(Error::Conflict),
                }
                // The runs first: if they fail, the schedule is untouched.
                let wakeups = t.commit(runs)?;
                let cols = (
                    key.0.clone(),
                    key.1.clone(),
                    doc,
                    record.version + 1,
                    record.due_at.map(Timestamp::millis),
                );
                t.schedules.insert(key, (cols, paused));
                Ok(wakeups)
            })
            .await?;
        for wakeup in wakeups {
            let _ = self.wakeups.send(wakeup);
        }
        Ok(())
    }

    async fn claim_schedules(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<ScheduleRecord>> {
        let claimed = self
            .call(Call::ClaimSchedules, |t| {
                let mut due: Vec<(i64, (String, String))> = t
                    .schedules
                    .iter()
                    .filter_map(|(key, ((.., visible_at), _))| {
                        visible_at
                            .filter(|at| *at <= now.millis())
                            .map(|at| (at, key.clone()))
                    })
                    .collect();
                due.sort();
                due.truncate(usize::try_from(limit.max(0)).unwrap_or(0));
                let mut out = Vec::new();
                for (_, key) in due {
                    if let Some((cols, _)) = t.schedules.get_mut(&key) {
                        out.push(cols.clone());
                        cols.4 = Some(now.saturating_add(lease).millis());
                    }
                }
                Ok(out)
            })
            .await?;
        claimed.into_iter().map(rows::schedule_record).collect()
    }

    async fn next_schedule_due(&self, after: Timestamp) -> Result<Option<Timestamp>> {
        self.call(Call::NextScheduleDue, |t| {
            Ok(t.schedules
                .values()
                .filter_map(|((.., visible_at), _)| *visible_at)
                .filter(|at| *at > after.millis())
                .min()
                .map(Timestamp))
        })
        .await
    }

    async fn create_batch(&self, record: &BatchRecord) -> Result<()> {
        let b = &record.batch;
        let doc = rows::encode_json("batch", b)?;
        self.call(Call::CreateBatch, |t| {
            let key = (b.namespace.0.clone(), b.batch_id.clone());
            if t.batches.contains_key(&key) {
                return Err(Error::AlreadyExists(format!("batch `{}`", b.batch_id)));
            }
            let cols = (
                doc,
                1,
                record.due_at.map(Timestamp::millis),
                0,
                record.request_id.clone(),
            );
            t.batches.insert(key, (cols, b.created_at.millis()));
            Ok(())
        })
        .await
    }

    async fn get_batch(&self, ns: &Namespace, id: &str) -> Result<Option<BatchRecord>> {
        let cols = self
            .call(Call::GetBatch, |t| {
                Ok(t.batches
                    .get(&(ns.0.clone(), id.to_owned()))
                    .map(|(cols, _)| cols.clone()))
            })
            .await?;
        cols.map(rows::batch_record).transpose()
    }

    async fn list_batches(
        &self,
        ns: &Namespace,
        after: Option<(Timestamp, &str)>,
        limit: i64,
    ) -> Result<Vec<BatchRecord>> {
        let found = self
            .call(Call::ListBatches, |t| {
                let mut rows: Vec<(i64, &str, &BatchCols)> = t
                    .batches
                    .iter()
                    .filter(|((n, _), _)| *n == ns.0)
                    .map(|((_, id), (cols, created_at))| (*created_at, id.as_str(), cols))
                    .filter(|(created_at, id, _)| {
                        after.is_none_or(|(at, a)| (*created_at, *id) < (at.millis(), a))
                    })
                    .collect();
                rows.sort_by(|x, y| (y.0, y.1).cmp(&(x.0, x.1)));
                Ok(rows
                    .into_iter()
                    .take(usize::try_from(limit.max(0)).unwrap_or(0))
                    .map(|(.., cols)| cols.clone())
                    .collect::<Vec<_>>())
            })
            .await?;
        found.into_iter().map(rows::batch_record).collect()
    }

    async fn update_batch(&self, record: &BatchRecord) -> Result<()> {
        let b = &record.batch;
        let doc = rows::encode_json("batch", b)?;
        self.call(Call::UpdateBatch, |t| {
            match t
                .batches
                .get_mut(&(b.namespace.0.clone(), b.batch_id.clone()))
            {
                Some((cols, _)) if cols.1 == record.version => {
                    cols.0 = doc;
                    cols.1 += 1;
                    cols.2 = record.due_at.map(Timestamp::millis);
                    Ok(())
                }
                _ => Err(Error::Conflict),
            }
        })
        .await
    }

    async fn request_batch_stop(&self, ns: &Namespace, id: &str) -> Result<bool> {
        self.call(Call::RequestBatchStop, |t| {
            match t.batches.get_mut(&(ns.0.clone(), id.to_owned())) {
                Some((cols, _)) => {
                    cols.3 = 1;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
        .await
    }

    async fn claim_batches(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<BatchRecord>> {
        let until = now.saturating_add(lease).millis();
        let claimed = self
            .call(Call::ClaimBatches, |t| {
                let mut due: Vec<(i64, (String, String))> = t
                    .batches
                    .iter()
                    .filter_map(|(key, (cols, _))| {
                        cols.2
                            .filter(|at| *at <= now.millis())
                            .map(|at| (at, key.clone()))
                    })
                    .collect();
                due.sort();
                due.truncate(usize::try_from(limit.max(0)).unwrap_or(0));
                let mut out = Vec::new();
                for (_, key) in due {
                    if let Some((cols, _)) = t.batches.get_mut(&key) {
                        cols.1 += 1;
                        cols.2 = Some(until);
                        out.push(cols.clone());
                    }
                }
                Ok(out)
            })
            .await?;
        claimed.into_iter().map(rows::batch_record).collect()
    }

    async fn commit(&self, changes: &[RunChange]) -> Result<()> {
        let wakeups = self.call(Call::Commit, |t| t.commit(changes)).await?;
        for wakeup in wakeups {
            // No subscribers is fine: hints are only hints.
            let _ = self.wakeups.send(wakeup);
        }
        Ok(())
    }

    async fn read_history(
        &self,
        ns: &Namespace,
        run_id: RunId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>> {
        self.call(Call::ReadHistory, |t| {
            if t.run_in(ns, run_id).is_none() {
                return Ok(Vec::new());
            }
            let Some(events) = t.events.get(&run_id_text(run_id)) else {
                return Ok(Vec::new());
            };
            events
                .range((Bound::Excluded(after), Bound::Unbounded))
                .take(usize::try_from(limit).unwrap_or(0))
                .map(|(_, data)| decode_json("event", data))
                .collect()
        })
        .await
    }

    async fn put_payloads(&self, ns: &Namespace, payloads: &[StoredPayload]) -> Result<()> {
        self.call(Call::PutPayloads, |t| {
            for p in payloads {
                t.payloads
                    .insert((ns.0.clone(), p.sha256.clone()), p.data.clone());
            }
            Ok(())
        })
        .await
    }

    async fn read_payloads(
        &self,
        ns: &Namespace,
        run_id: RunId,
        sha256: &[String],
    ) -> Result<Vec<(String, String)>> {
        self.call(Call::ReadPayloads, |t| {
            let run_id = run_id_text(run_id);
            Ok(sha256
                .iter()
                .filter(|d| {
                    t.payload_links
                        .contains(&(ns.0.clone(), (*d).clone(), run_id.clone()))
                })
                .filter_map(|d| {
                    let data = t.payloads.get(&(ns.0.clone(), d.clone()))?;
                    Some((d.clone(), data.clone()))
                })
                .collect())
        })
        .await
    }

    async fn list_runs(
        &self,
        ns: &Namespace,
        query: &ListQuery,
        cursor: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<RunSummary>> {
        self.call(Call::ListRuns, |t| t.list_runs(ns, query, cursor, limit))
            .await
    }

    async fn count_runs(
        &self,
        ns: &Namespace,
        query: &CountQuery,
    ) -> Result<Vec<(Option<String>, i64)>> {
        self.call(Call::CountRuns, |t| t.count_runs(ns, query))
            .await
    }

    async fn delete_run(&self, ns: &Namespace, run_id: RunId) -> Result<Deletion> {
        self.call(Call::DeleteRun, |t| {
            let run_id = run_id_text(run_id);
            let Some(run) = t.runs.get(&run_id).filter(|r| r.row.namespace == ns.0) else {
                return Ok(Deletion::NotFound);
            };
            if run.is_open() {
                return Ok(Deletion::Open);
            }
            if t.has_tasks(&run_id) {
                return Ok(Deletion::Pending);
            }
            t.delete_run(&run_id);
            Ok(Deletion::Deleted)
        })
        .await
    }

    async fn claim_retention(
        &self,
        ns: &Namespace,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<RetentionLease>> {
        self.call(Call::ClaimRetention, |t| {
            let until = now.saturating_add(lease);
            let row = t
                .retention_leases
                .entry(ns.0.clone())
                .or_insert_with(|| RetentionLease {
                    namespace: ns.clone(),
                    owner: owner.to_owned(),
                    epoch: 0,
                    expires_at: now,
                    runs_deleted: 0,
                    events_deleted: 0,
                    last_pass_at: None,
                });
            let renewal = row.owner == owner && row.expires_at > now;
            if !renewal && row.owner != owner && row.expires_at > now {
                return Ok(None);
            }
            if !renewal {
                row.epoch += 1;
            }
            row.owner = owner.to_owned();
            row.expires_at = until;
            Ok(Some(row.clone()))
        })
        .await
    }

    async fn delete_expired_runs(
        &self,
        lease: &RetentionLease,
        now: Timestamp,
        renew: Duration,
        limit: i64,
    ) -> Result<Option<Expired>> {
        self.call(Call::DeleteExpiredRuns, |t| {
            let Some(row) = t.fenced(lease) else {
                return Ok(None);
            };
            row.expires_at = now.saturating_add(renew);
            let ns = &lease.namespace.0;
            let cutoff = t
                .namespaces
                .get(ns)
                .map(|n| now.millis().saturating_sub(n.retention.millis()));
            // As the SQL stores: oldest close first.
            let mut expired: Vec<(i64, String)> = t
                .runs
                .iter()
                .filter(|(run_id, run)| {
                    &run.row.namespace == ns && !run.is_open() && !t.has_tasks(run_id)
                })
                .filter_map(|(run_id, run)| {
                    let close = run.row.close_time?;
                    (close < cutoff?).then(|| (close, run_id.clone()))
                })
                .collect();
            expired.sort();
            let limit = usize::try_from(limit).unwrap_or(0);
            expired.truncate(limit);
            let mut done = Expired {
                runs: expired.len() as u64,
                events: 0,
            };
            for (_, run_id) in &expired {
                done.events += t.delete_run(run_id);
            }
            if let Some(row) = t.fenced(lease) {
                row.runs_deleted += done.runs as i64;
                row.events_deleted += done.events as i64;
                if expired.len() < limit || expired.is_empty() {
                    row.last_pass_at = Some(now);
                }
            }
            Ok(Some(done))
        })
        .await
    }

    async fn release_retention(&self, lease: &RetentionLease, now: Timestamp) -> Result<()> {
        self.call(Call::ReleaseRetention, |t| {
            if let Some(row) = t.fenced(lease).filter(|row| row.expires_at > now) {
                row.expires_at = now;
            }
            Ok(())
        })
        .await
    }

    async fn claim_tasks(&self, queue: Queue, now: Timestamp, limit: i64) -> Result<Vec<TaskRow>> {
        self.call(Call::ClaimTasks, |t| t.claim(queue, now.millis(), limit))
            .await
    }

    async fn acquire_flow_slot(
        &self,
        slot: &FlowSlot,
        limit: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        self.call(Call::AcquireFlowSlot, |t| {
            for number in 0..limit {
                let key = (
                    slot.namespace.0.clone(),
                    slot.task_queue.0.clone(),
                    slot.key.clone(),
                    number,
                );
                if t.flow_slots.get(&key).is_none_or(|s| s.2 <= now.millis()) {
                    let held = (slot.holder.clone(), slot.node.clone(), until.millis());
                    t.flow_slots.insert(key, held);
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    async fn release_flow_slot(&self, slot: &FlowSlot) -> Result<()> {
        self.call(Call::ReleaseFlowSlot, |t| {
            t.flow_slots.retain(|(ns, q, k, _), (holder, ..)| {
                !(*ns == slot.namespace.0
                    && *q == slot.task_queue.0
                    && *k == slot.key
                    && *holder == slot.holder)
            });
            Ok(())
        })
        .await
    }

    async fn renew_flow_slots(&self, node: &str, now: Timestamp, until: Timestamp) -> Result<()> {
        self.call(Call::RenewFlowSlots, |t| {
            for (_, n, expires) in t.flow_slots.values_mut() {
                if n == node && *expires > now.millis() {
                    *expires = until.millis();
                }
            }
            Ok(())
        })
        .await
    }

    async fn take_flow_token(
        &self,
        endpoint: &Endpoint,
        per_second: f64,
        burst: u32,
        now: Timestamp,
    ) -> Result<Option<Duration>> {
        self.call(Call::TakeFlowToken, |t| {
            let key = (
                endpoint.namespace.0.clone(),
                endpoint.task_queue.0.clone(),
                endpoint.version.clone(),
            );
            let burst = f64::from(burst);
            let (tokens, at) = *t.flow_buckets.get(&key).unwrap_or(&(burst, now.millis()));
            let refilled =
                (tokens + (now.millis() - at).max(0) as f64 * per_second / 1000.0).min(burst);
            if refilled >= 1.0 {
                t.flow_buckets.insert(key, (refilled - 1.0, now.millis()));
                return Ok(None);
            }
            Ok(Some(rows::token_wait(tokens, at, per_second, now)))
        })
        .await
    }

    async fn delete_task(&self, task_id: &str) -> Result<()> {
        self.call(Call::DeleteTask, |t| {
            if let Some((run_id, key)) = t.task_ids.get(task_id).cloned() {
                t.put_task(&run_id, &key, None);
            }
            Ok(())
        })
        .await
    }

    async fn postpone_tasks(&self, tasks: &[(RunId, String)], until: Timestamp) -> Result<()> {
        self.call(Call::PostponeTasks, |t| {
            for (run_id, key) in tasks {
                let row = t
                    .tasks
                    .get_mut(&run_id_text(*run_id))
                    .and_then(|of_run| of_run.get_mut(key))
                    .filter(|row| row.visible_at < until.millis());
                if let Some(row) = row {
                    let task_id = t.due.remove(&row.due_key());
                    row.visible_at = until.millis();
                    if let Some(task_id) = task_id {
                        t.due.insert(row.due_key(), task_id);
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn queue_depths(&self, now: Timestamp) -> Result<Vec<QueueDepth>> {
        self.call(Call::QueueDepths, |t| {
            type Key = (String, &'static str, Option<String>);
            let mut depths: BTreeMap<Key, QueueDepth> = BTreeMap::new();
            for row in t.tasks.values().flat_map(BTreeMap::values) {
                let is_due = row.visible_at <= now.millis();
                if row.queue == Queue::Timer && !is_due {
                    continue;
                }
                let key = (
                    row.namespace.clone(),
                    queue_name(row.queue),
                    row.task_queue.clone(),
                );
                let depth = depths.entry(key).or_insert_with(|| QueueDepth {
                    namespace: Namespace(row.namespace.clone()),
                    queue: row.queue,
                    task_queue: row.task_queue.clone().map(TaskQueue),
                    due: 0,
                    oldest_due: None,
                    rows: 0,
                    in_flight: 0,
                });
                depth.rows += 1;
                if !is_due && row.claims > 0 {
                    depth.in_flight += 1;
                }
                if is_due {
                    depth.due += 1;
                    let at = Timestamp(row.visible_at);
                    depth.oldest_due = Some(depth.oldest_due.map_or(at, |o| o.min(at)));
                }
            }
            Ok(depths.into_values().collect())
        })
        .await
    }

    async fn open_runs(&self) -> Result<Vec<(Namespace, i64)>> {
        self.call(Call::OpenRuns, |t| {
            let mut open: BTreeMap<&str, i64> = BTreeMap::new();
            for (namespace, _) in t.open_runs.keys() {
                *open.entry(namespace).or_default() += 1;
            }
            Ok(open
                .into_iter()
                .map(|(ns, n)| (Namespace(ns.to_owned()), n))
                .collect())
        })
        .await
    }

    async fn next_visible_at(&self, queue: Queue, after: Timestamp) -> Result<Option<Timestamp>> {
        self.call(Call::NextVisibleAt, |t| {
            let name = queue_name(queue);
            let later = (
                Bound::Excluded((name, after.millis(), u64::MAX)),
                Bound::Included((name, i64::MAX, u64::MAX)),
            );
            Ok(t.due
                .range(later)
                .next()
                .map(|((_, at, _), _)| Timestamp(*at)))
        })
        .await
    }

    async fn create_webhook(&self, record: &WebhookRecord) -> Result<()> {
        self.call(Call::CreateWebhook, |t| {
            let key = (record.namespace.0.clone(), record.source_id.clone());
            if t.webhooks.contains_key(&key) {
                return Err(Error::AlreadyExists(format!(
                    "webhook source `{}`",
                    record.source_id
                )));
            }
            t.webhooks.insert(key, record.clone());
            Ok(())
        })
        .await
    }

    async fn get_webhook(&self, ns: &Namespace, id: &str) -> Result<Option<WebhookRecord>> {
        self.call(Call::GetWebhook, |t| {
            Ok(t.webhooks.get(&(ns.0.clone(), id.to_owned())).cloned())
        })
        .await
    }

    async fn list_webhooks(&self, ns: &Namespace) -> Result<Vec<WebhookRecord>> {
        self.call(Call::ListWebhooks, |t| {
            Ok(t.webhooks
                .iter()
                .filter(|((n, _), _)| *n == ns.0)
                .map(|(_, r)| r.clone())
                .collect())
        })
        .await
    }

    async fn delete_webhook(&self, ns: &Namespace, id: &str) -> Result<bool> {
        self.call(Call::DeleteWebhook, |t| {
            t.deliveries.retain(|(n, s, _), _| !(*n == ns.0 && s == id));
            Ok(t.webhooks.remove(&(ns.0.clone(), id.to_owned())).is_some())
        })
        .await
    }

    async fn record_delivery(&self, delivery: &Delivery) -> Result<()> {
        let doc = rows::encode_json("delivery", delivery)?;
        self.call(Call::RecordDelivery, |t| {
            let key = (
                delivery.namespace.0.clone(),
                delivery.source_id.clone(),
                delivery.seq.clone(),
            );
            t.deliveries.insert(key, doc);
            Ok(())
        })
        .await
    }

    async fn get_delivery(
        &self,
        ns: &Namespace,
        source_id: &str,
        seq: &str,
    ) -> Result<Option<Delivery>> {
        let doc = self
            .call(Call::GetDelivery, |t| {
                Ok(t.deliveries
                    .get(&(ns.0.clone(), source_id.to_owned(), seq.to_owned()))
                    .cloned())
            })
            .await?;
        doc.map(|d| decode_json("delivery", &d)).transpose()
    }

    async fn list_deliveries(
        &self,
        ns: &Namespace,
        source_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let docs = self
            .call(Call::ListDeliveries, |t| {
                Ok(t.deliveries
                    .iter()
                    .rev()
                    .filter(|((n, s, seq), _)| {
                        *n == ns.0 && s == source_id && before.is_none_or(|b| seq.as_str() < b)
                    })
                    .take(usize::try_from(limit.max(0)).unwrap_or(0))
                    .map(|(_, d)| d.clone())
                    .collect::<Vec<_>>())
            })
            .await?;
        docs.iter().map(|d| decode_json("delivery", d)).collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<Wakeup> {
        self.wakeups.subscribe()
    }
}

#[cfg(test)]
mod tests;
