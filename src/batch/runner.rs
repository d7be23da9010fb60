//! Carries out batch jobs: claims due `batches` rows with a lease (any
//! node, each job to one holder at a time; a claim bumps the job's
//! version, so a holder whose lease ran out fails its next write and lets
//! go), then works through the job's runs page by page (see the parent
//! module for the paging), paced to the job's runs per second, each run
//! through the one command path (`Applier::apply`, `Applier::reset`) or,
//! for delete, the deletion `DELETE …/workflows/{id}` makes.
//!
//! **Exactly once per run.** Progress (counters, cursor, the runs of the
//! page not yet counted) is committed after each page and at least every
//! [`PROGRESS_EVERY`], each commit renewing the lease. A node that dies
//! leaves the uncounted runs in the job, and the next holder applies each
//! again: signals, cancellation requests and resets carry a request id
//! derived from (job, run), which the command path dedupes; terminate,
//! cancel and signal carry the identity `batch/<job id>`, so a run
//! refusing because it closed is counted done when its history shows the
//! job's own event (its terminate, its cancellation request, its signal)
//! and failed otherwise; a run deleted already counts as deleted.
//!
//! **Schemas.** A signal's input is checked against the schema of the
//! version each run is pinned to (runs of one job may differ) before it is
//! applied; a run whose schema refuses it fails with the violations and
//! nothing is recorded on it.
//!
//! **Stop.** The API marks the row (`Store::request_batch_stop`); the
//! holder reads the row before each run (at most every
//! [`STOP_CHECK`]) and closes the job Stopped with what it counted.
//!
//! **Shutdown.** A node shutting down writes each job's progress and makes
//! it due at once, so another node takes it over without waiting out the
//! lease.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::apply::{self, Applier, InputError, InputTarget};
use crate::batch::{Batch, Operation, Pending, State};
use crate::claim;
use crate::engine::{Command, EventAttributes, Rejection, Reset, ResetPoint, Signal};
use crate::ids::Namespace;
use crate::schema::Target;
use crate::store::{self, BatchRecord, Deletion};
use crate::time::Duration;
use crate::visibility::ListQuery;

/// Jobs run by this node at once.
const IN_FLIGHT: usize = 16;

/// How long a claimed job stays invisible to other claimers; every
/// progress commit renews it.
const LEASE: Duration = Duration(10_000);

/// Progress is committed at least this often (well inside the lease).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The job's row is read for a stop request at most this often.
const STOP_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs per page: two seconds of work at the job's rate, within bounds.
fn page_size(rps: f64) -> i64 {
    ((rps * 2.0).ceil() as i64).clamp(10, 500)
}

/// Transient failures of one run are retried this often before the run
/// counts as failed.
const MAX_ATTEMPTS: u32 = 10;

/// The API wakes the loop through it (a job started, a schedule changed).
pub use crate::claim::Handle;

/// The batch service of a node.
pub struct Service {
    applier: Applier,
    options: claim::Options,
    handle: Handle,
}

impl Service {
    pub fn new(applier: Applier, options: claim::Options) -> Service {
        Service {
            applier,
            options,
            handle: Handle::default(),
        }
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Claims and runs due jobs until `shutdown`, then waits for its jobs
    /// to hand themselves over (each writes its progress and makes itself
    /// due at once, for another node).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let store = self.applier.store().clone();
        let capacity = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut jobs = tokio::task::JoinSet::new();
        loop {
            while jobs.try_join_next().is_some() {}
            if *shutdown.borrow() {
                while jobs.join_next().await.is_some() {}
                return;
            }
            let mut permits = Vec::new();
            while let Ok(p) = capacity.clone().try_acquire_owned() {
                permits.push(p);
            }
            if !permits.is_empty() {
                let now = self.applier.clock().now();
                let asked = i64::try_from(permits.len()).unwrap_or(1);
                match store.claim_batches(now, LEASE, asked).await {
                    Ok(records) => {
                        for (record, permit) in records.into_iter().zip(permits.drain(..)) {
                            let job = Job {
                                applier: self.applier.clone(),
                                record,
                                shutdown: shutdown.clone(),
                            };
                            jobs.spawn(job.run(permit));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming batch jobs failed"),
                }
                drop(permits);
            }
            tokio::select! {
                _ = tokio::time::sleep(self.options.poll_interval.to_std()) => {}
                _ = self.handle.woken() => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// How one attempt at one run went.
enum Attempt {
    Done,
    Failed(String),
    /// Passes by itself (the store is unavailable, the run is contended).
    Transient(String),
}

/// A claimed job on this node.
struct Job {
    applier: Applier,
    record: BatchRecord,
    shutdown: watch::Receiver<bool>,
}

impl Job {
    async fn run(mut self, _permit: OwnedSemaphorePermit) {
        let id = self.record.batch.batch_id.clone();
        if self.record.batch.state != State::Running {
            // Closed by a write that raced the claim: nothing is due.
            self.record.due_at = None;
            let _ = self.write().await;
            return;
        }
        if self.record.stop_requested {
            self.close(State::Stopped).await;
            return;
        }
        let registry = match self
            .applier
            .search_attributes()
            .registry(&self.record.batch.namespace)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // The lease brings the job back.
                tracing::warn!(batch_id = %id, error = %e, "reading search attributes failed");
                return;
            }
        };
        match self.record.batch.page_query(&registry) {
            Ok(query) => self.work(&query).await,
            Err(e) => {
                // Stored before a rule got stricter.
                tracing::warn!(batch_id = %id, error = %e, "batch query no longer checks");
                self.close(State::Failed).await;
            }
        }
    }

    async fn work(&mut self, query: &ListQuery) {
        let interval = std::time::Duration::from_secs_f64(1.0 / self.record.batch.rps);
        let mut next_run = Instant::now();
        let mut last_commit = Instant::now();
        let mut last_stop_check = Instant::now();
        loop {
            if *self.shutdown.borrow() {
                // Hand the job over at once rather than after the lease.
                self.release().await;
                return;
            }
            if self.record.batch.pending.is_empty() {
                let Some(page) = self.next_page(query).await else {
                    return;
                };
                if page.is_empty() {
                    self.close(State::Completed).await;
                    return;
                }
                self.record.batch.pending = page;
                if !self.write().await {
                    return;
                }
                last_commit = Instant::now();
            }
            let Some(run) = self.record.batch.pending.first().cloned() else {
                continue;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(next_run) => {}
                _ = self.shutdown.wait_for(|stop| *stop) => continue,
            }
            next_run = next_run.max(Instant::now()) + interval;
            if last_stop_check.elapsed() >= STOP_CHECK {
                last_stop_check = Instant::now();
                match self.stop_requested().await {
                    Some(true) => {
                        self.close(State::Stopped).await;
                        return;
                    }
                    Some(false) => {}
                    // Another node holds the job now.
                    None => return,
                }
            }
            let outcome = self.operate(&run).await;
            let label = if outcome.is_ok() { "done" } else { "failed" };
            let batch = &mut self.record.batch;
            crate::telemetry::batch_run(&batch.namespace.0, batch.operation.name(), label);
            batch.count(&run, outcome);
            batch.pending.remove(0);
            if last_commit.elapsed() >= PROGRESS_EVERY {
                if !self.write().await {
                    return;
                }
                last_commit = Instant::now();
            }
        }
    }

    /// The next page after the cursor, with the cursor moved past it;
    /// `None` when the store stays unavailable (the lease brings the job
    /// back).
    async fn next_page(&mut self, query: &ListQuery) -> Option<Vec<Pending>> {
        let batch = &self.record.batch;
        let limit = page_size(batch.rps);
        for attempt in 0..MAX_ATTEMPTS {
            match self
                .applier
                .store()
                .list_runs(&batch.namespace, query, batch.cursor.as_ref(), limit)
                .await
            {
                Ok(runs) => {
                    let cursor = runs.last().map(|r| query.cursor_after(r));
                    let page = runs
                        .into_iter()
                        .map(|r| Pending {
                            run_id: r.run_id,
                            workflow_id: r.workflow_id,
                        })
                        .collect();
                    if cursor.is_some() {
                        self.record.batch.cursor = cursor;
                    }
                    return Some(page);
                }
                Err(e) => {
                    tracing::warn!(batch_id = %batch.batch_id, error = %e, "listing a batch page failed");
                    backoff(attempt).await;
                }
            }
        }
        None
    }

    /// Whether the job was asked to stop; `None` if this node no longer
    /// holds it (its version moved on) or the row cannot be read.
    async fn stop_requested(&self) -> Option<bool> {
        let b = &self.record.batch;
        match self
            .applier
            .store()
            .get_batch(&b.namespace, &b.batch_id)
            .await
        {
            Ok(Some(stored)) if stored.version == self.record.version => {
                Some(stored.stop_requested)
            }
            Ok(_) => None,
            // Unreadable now: go on, the next write decides.
            Err(_) => Some(false),
        }
    }

    /// Writes the job with its lease renewed (none once closed); false if
    /// this node no longer holds it or the store stays unavailable.
    async fn write(&mut self) -> bool {
        let now = self.applier.clock().now();
        self.record.due_at = match self.record.batch.state {
            State::Running => Some(now.saturating_add(LEASE)),
            _ => None,
        };
        for attempt in 0..MAX_ATTEMPTS {
            match self.applier.store().update_batch(&self.record).await {
                Ok(()) => {
                    self.record.version += 1;
                    return true;
                }
                Err(store::Error::Conflict) => return false,
                Err(e) => {
                    tracing::warn!(batch_id = %self.record.batch.batch_id, error = %e, "writing batch progress failed");
                    backoff(attempt).await;
                }
            }
        }
        false
    }

    /// Writes the progress and makes the job due now, for any node.
    async fn release(&mut self) {
        let now = self.applier.clock().now();
        self.record.due_at = Some(now);
        if let Err(e) = self.applier.store().update_batch(&self.record).await {
            tracing::warn!(batch_id = %self.record.batch.batch_id, error = %e, "handing a batch job over failed");
        }
    }

    async fn close(&mut self, state: State) {
        let now = self.applier.clock().now();
        self.record.batch.close(state, now);
        if self.write().await {
            let b = &self.record.batch;
            tracing::info!(
                batch_id = %b.batch_id,
                state = b.state.as_str(),
                done = b.done,
                failed = b.failed,
                "batch job closed"
            );
        }
    }

    /// Applies the job's operation to one run, retrying transient failures.
    async fn operate(&self, run: &Pending) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            match attempt_once(&self.applier, &self.record.batch, run).await {
                Attempt::Done => return Ok(()),
                Attempt::Failed(reason) => return Err(reason),
                Attempt::Transient(reason) => {
                    last = reason;
                    backoff(attempt).await;
                }
            }
        }
        Err(last)
    }
}

async fn backoff(attempt: u32) {
    let ms = (50u64 << attempt.min(5)).min(2_000);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

async fn attempt_once(applier: &Applier, batch: &Batch, run: &Pending) -> Attempt {
    let ns = &batch.namespace;
    let marker = batch.marker();
    let request_id = batch.request_id(run.run_id);
    let command = match &batch.operation {
        Operation::Terminate => Command::TerminateWorkflow {
            reason: batch.reason.clone(),
            details: None,
            identity: Some(marker),
        },
        Operation::Cancel => Command::RequestCancelWorkflow {
            reason: batch.reason.clone(),
            request_id: Some(request_id),
            identity: Some(marker),
        },
        Operation::Signal { name, input } => {
            if let Some(refused) = check_signal(applier, ns, run, name, input).await {
                return refused;
            }
            Command::SignalWorkflow(Signal {
                signal_name: name.clone(),
                input: input.clone(),
                request_id: Some(request_id),
                identity: Some(marker),
            })
        }
        Operation::Reset { to_last } => {
            let reset = Reset {
                point: match to_last {
                    true => ResetPoint::LastWorkflowTask,
                    false => ResetPoint::FirstWorkflowTask,
                },
                reason: batch.reason.clone(),
                reapply_signals: true,
                pinned_version: None,
            };
            return match applier.reset(ns, run.run_id, reset, Some(request_id)).await {
                Ok(_) => Attempt::Done,
                Err(e) => classify(e),
            };
        }
        Operation::Delete => {
            return match applier.store().delete_run(ns, run.run_id).await {
                // Gone either way; after a crash, by this job's own hand.
                Ok(Deletion::Deleted | Deletion::NotFound) => Attempt::Done,
                Ok(Deletion::Open) => Attempt::Failed("the run is open".into()),
                Ok(Deletion::Pending) => {
                    Attempt::Transient("work for the closed run is still pending".into())
                }
                Err(e) if e.is_transient() => Attempt::Transient(e.to_string()),
                Err(e) => Attempt::Failed(e.to_string()),
            };
        }
    };
    match applier.apply(ns, run.run_id, command).await {
        Ok(_) => Attempt::Done,
        Err(apply::Error::Rejected(Rejection::RunClosed(status))) => {
            match closed_by(applier, batch, run).await {
                Ok(true) => Attempt::Done,
                Ok(false) => {
                    Attempt::Failed(format!("the run is already closed ({})", status.as_str()))
                }
                Err(e) => classify(e),
            }
        }
        Err(e) => classify(e),
    }
}

/// Checks a batch signal's input against the schema of the version the run
/// is pinned to, as the signal route does: `None` if it passes, else the
/// attempt's outcome (a refused input fails the run, nothing recorded).
async fn check_signal(
    applier: &Applier,
    ns: &Namespace,
    run: &Pending,
    name: &str,
    input: &Value,
) -> Option<Attempt> {
    let record = match applier.store().load_run(ns, run.run_id).await {
        Ok(Some(record)) => record,
        Ok(None) => return Some(Attempt::Failed("the run no longer exists".into())),
        Err(e) => return Some(classify(e.into())),
    };
    let s = &record.state;
    let to = InputTarget {
        namespace: ns,
        task_queue: &s.task_queue,
        version: s.pinned_version.as_deref(),
        target: Target::Signal {
            workflow_type: &s.workflow_type,
            name,
        },
        field: "input",
    };
    match applier.endpoints().validate_input(&to, input).await {
        Ok(()) => None,
        Err(InputError::Invalid(e)) => Some(Attempt::Failed(e.to_string())),
        Err(InputError::Store(e)) => Some(classify(e.into())),
    }
}

/// True if the closed run's history holds this job's own event: its work
/// from before a crash, to count once.
async fn closed_by(applier: &Applier, batch: &Batch, run: &Pending) -> Result<bool, apply::Error> {
    let record = applier
        .store()
        .load_run(&batch.namespace, run.run_id)
        .await?
        .ok_or(apply::Error::RunNotFound(run.run_id))?;
    let history = applier.history(&record.state).await?;
    let marker = Some(batch.marker());
    Ok(history
        .iter()
        .any(|e| match (&batch.operation, &e.attributes) {
            (Operation::Terminate, EventAttributes::WorkflowExecutionTerminated(t)) => {
                t.identity == marker
            }
            (Operation::Cancel, EventAttributes::WorkflowExecutionCancelRequested(c)) => {
                c.identity == marker
            }
            (Operation::Signal { .. }, EventAttributes::WorkflowExecutionSignaled(s)) => {
                s.identity == marker
            }
            _ => false,
        }))
}

fn classify(e: apply::Error) -> Attempt {
    match e {
        apply::Error::Unavailable(m) => Attempt::Transient(m),
        apply::Error::Contended => Attempt::Transient(e.to_string()),
        apply::Error::Store(s) if s.is_transient() => Attempt::Transient(s.to_string()),
        apply::Error::RunNotFound(_) => Attempt::Failed("the run no longer exists".into()),
        e => Attempt::Failed(e.to_string()),
    }
}
