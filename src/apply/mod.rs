//! The one command path. API requests, push outcomes and due timers all
//! arrive here as engine commands:
//!
//! ```text
//! load run (snapshot) → engine::decide → store.commit (events + snapshot + task rows, one txn)
//!                                      → after commit: hand Dispatch effects to the dispatcher
//! ```
//!
//! A commit that loses an optimistic-concurrency race is retried from a
//! fresh load, a bounded number of times. Nothing is pushed before its
//! commit succeeded, so no effect happens without a committed event.
//!
//! Runs this node wrote recently are served from [`cache`], so the common
//! path (answer to a push this node sent) reads nothing back.

mod cache;
mod endpoints;
mod mailbox;
mod moves;
mod search;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use crate::dispatch::wire::EncodedEvents;
use crate::engine::{
    self, start_decision, Command, Ctx, Dispatch, Effect, Event, IdConflictPolicy, IdReusePolicy,
    Limits, Rejection, Reset, RunState, Signal, StartDecision, StartRun, Transition,
};
use crate::ids::{Namespace, RunId, TaskQueue};
use crate::payload::{Offloader, StoredPayload};
use crate::readiness;
use crate::store::{self, NamespaceRecord, RunChange, RunRecord, ScheduleRecord, Store};
use crate::telemetry;
use crate::time::{Clock, Duration};

pub use endpoints::{Endpoints, InputError, InputTarget};
pub use moves::MoveRuns;
pub use search::SearchAttributeCache;

/// How often a start or reset that loses an optimistic-concurrency race
/// (to another node, or to this node's writer of the run) decides again
/// before giving up with [`Error::Contended`].
const MAX_CONFLICT_RETRIES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("workflow run {0} not found")]
    RunNotFound(RunId),
    #[error("namespace {0} not found")]
    NamespaceNotFound(Namespace),
    /// A start refused by the id reuse or conflict policy.
    #[error("workflow {workflow_id} already {}", if *.running { "has an open run" } else { "ran, and its id reuse policy forbids another run" })]
    AlreadyStarted {
        workflow_id: String,
        run_id: RunId,
        running: bool,
    },
    #[error("the run kept changing concurrently; try again")]
    Contended,
    /// The store is unreachable or refused for a reason that passes (a
    /// lost connection, a failover, a full pool): retry later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A failure shared by every command of a batch (the store's own error
    /// went to the log).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Something to push, handed to the dispatcher after its commit.
#[derive(Clone, Debug)]
pub struct Push {
    pub state: Arc<RunState>,
    pub dispatch: Dispatch,
}

/// A start request after parsing.
#[derive(Clone, Debug)]
pub struct StartRequest {
    pub run: StartRun,
    pub reuse_policy: IdReusePolicy,
    pub conflict_policy: IdConflictPolicy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    pub run_id: RunId,
    /// False when an existing run was returned (request id replay or
    /// USE_EXISTING).
    pub started: bool,
}

/// Cheap to clone; every edge holds one.
/// Cheap to clone (one reference count): every API request and push
/// holds one.
#[derive(Clone)]
pub struct Applier(Arc<Parts>);

/// What an [`Applier`]'s clones share.
pub struct Parts {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    /// Bounded: a writer waits for the dispatcher (back-pressure).
    pushes: mpsc::Sender<Push>,
    mailboxes: Arc<mailbox::Mailboxes>,
    closing: watch::Receiver<bool>,
    closing_tx: Arc<watch::Sender<bool>>,
    readiness: readiness::Handle,
    /// Runs someone on this node waits on, each with a channel its
    /// commits tick, so a commit wakes only the waiters of its own run.
    watched: Arc<std::sync::Mutex<std::collections::HashMap<RunId, watch::Sender<()>>>>,
    cache: Arc<cache::RunCache>,
    endpoints: Arc<Endpoints>,
    search_attributes: Arc<SearchAttributeCache>,
    namespaces: Arc<std::sync::Mutex<std::collections::HashMap<Namespace, NamespaceRecord>>>,
    offloader: Offloader,
}

/// How a node's command path is sized.
#[derive(Clone, Debug)]
pub struct Options {
    /// Memory budget of the run cache, in (estimated) bytes.
    pub run_cache_bytes: usize,
    /// Payloads larger than this are stored by reference
    /// (docs/protocol.md §9.1); 0: only those that hold the marker.
    pub payload_reference_bytes: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            run_cache_bytes: 64 * 1024 * 1024,
            payload_reference_bytes: 128 * 1024,
        }
    }
}

/// Commands queued on a node at once, over all runs.
const QUEUED_COMMANDS: usize = 16_384;

/// Pushes handed to the dispatcher and not yet taken by it.
const QUEUED_PUSHES: usize = 1_024;

impl std::ops::Deref for Applier {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl Applier {
    /// Returns the applier and the stream of pushes for the dispatcher.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        limits: Limits,
        options: Options,
    ) -> (Applier, mpsc::Receiver<Push>) {
        let (pushes, rx) = mpsc::channel(QUEUED_PUSHES);
        let (closing_tx, closing) = watch::channel(false);
        let applier = Applier(Arc::new(Parts {
            endpoints: Arc::new(Endpoints::new(store.clone(), clock.clone())),
            search_attributes: Arc::new(SearchAttributeCache::new(store.clone(), clock.clone())),
            store,
            clock,
            limits: limits.clone(),
            pushes,
            mailboxes: Arc::new(mailbox::Mailboxes::new(QUEUED_COMMANDS)),
            closing,
            closing_tx: Arc::new(closing_tx),
            readiness: readiness::Handle::new(),
            watched: Arc::default(),
            cache: Arc::new(cache::RunCache::new(options.run_cache_bytes)),
            namespaces: Arc::default(),
            offloader: Offloader {
                threshold: options.payload_reference_bytes,
                limit: limits.max_payload_bytes,
            },
        }));
        (applier, rx)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Whether this node can commit now (`/readyz`).
    pub fn readiness(&self) -> &readiness::Handle {
        &self.readiness
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Each namespace's registry of custom search attributes.
    pub fn search_attributes(&self) -> &SearchAttributeCache {
        &self.search_attributes
    }

    pub fn ctx(&self) -> Ctx {
        Ctx {
            now: self.clock.now(),
            limits: self.limits.clone(),
            next_run_id: RunId::generate(),
        }
    }

    /// Applies `cmd` to a run and returns the committed state (which may
    /// include commands folded into the same commit). Queued behind the
    /// run's other commands on this node; a transient store failure is
    /// returned at once as [`Error::Unavailable`] for the caller to retry.
    pub async fn apply(
        &self,
        ns: &Namespace,
        run_id: RunId,
        cmd: Command,
    ) -> Result<Arc<RunState>, Error> {
        Ok(self.submit(ns, run_id, cmd, false).await?.0)
    }

    /// Applies a checkpoint (docs/protocol.md §5.9) as [`Self::apply`]
    /// would, and returns what it did with the committed state.
    pub async fn checkpoint(
        &self,
        ns: &Namespace,
        run_id: RunId,
        checkpoint: engine::Checkpoint,
    ) -> Result<(Arc<RunState>, engine::CheckpointReport), Error> {
        let cmd = Command::Checkpoint(Box::new(checkpoint));
        let (state, report) = self.submit(ns, run_id, cmd, false).await?;
        Ok((state, report.map(|r| *r).unwrap_or_default()))
    }

    /// Records the outcome of work this node carried out (a push's answer,
    /// a fired timer, a transfer step): like [`Self::apply`], but retried
    /// through transient store failures until it commits or the engine
    /// refuses it, so an outcome is never dropped while the node runs. At
    /// shutdown it gives up with [`Error::Unavailable`]; the durable task
    /// rows then bring the work back.
    pub async fn record(
        &self,
        ns: &Namespace,
        run_id: RunId,
        cmd: Command,
    ) -> Result<Arc<RunState>, Error> {
        Ok(self.submit(ns, run_id, cmd, true).await?.0)
    }

    async fn submit(
        &self,
        ns: &Namespace,
        run_id: RunId,
        mut cmd: Command,
        durable: bool,
    ) -> Result<mailbox::Applied, Error> {
        let mut payloads = Vec::new();
        self.offloader.command(&mut cmd, &mut payloads);
        self.put_payloads(ns, &payloads, durable).await?;
        let permit = self.mailboxes.permit().await;
        let (reply, rx) = oneshot::channel();
        let op = mailbox::Op::Command(mailbox::CommandOp {
            ns: ns.clone(),
            cmd,
            durable,
            reply,
            _permit: permit,
        });
        if self.mailboxes.push(run_id, op) {
            tokio::spawn(self.clone().run_writer(run_id));
        }
        rx.await
            .unwrap_or_else(|_| Err(Error::Failed("the run's writer stopped".into())))
    }

    /// Stores the payloads a command or start brings by reference
    /// (docs/protocol.md §9.1) before the command is decided: a payload
    /// stored for a command the engine then refuses is swept later. A
    /// durable op retries through transient failures, as its commit would.
    async fn put_payloads(
        &self,
        ns: &Namespace,
        payloads: &[StoredPayload],
        durable: bool,
    ) -> Result<(), Error> {
        if payloads.is_empty() {
            return Ok(());
        }
        let mut failures = 0;
        loop {
            match self.store.put_payloads(ns, payloads).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() && durable && !*self.closing.borrow() => {
                    failures += 1;
                    tokio::time::sleep(backoff(failures)).await;
                }
                Err(e) if e.is_transient() => return Err(Error::Unavailable(e.to_string())),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Pins a new run (see [`Self::pin`]) and stores its input by
    /// reference if it is large: what every start does first.
    async fn prepare_start(&self, run: &mut StartRun) -> Result<(), Error> {
        self.pin(run).await?;
        let mut payloads = Vec::new();
        self.offloader.start(run, &mut payloads);
        self.put_payloads(&run.namespace, &payloads, false).await
    }

    /// Runs `fut` with `run_id`'s writer held: no command of this node
    /// changes the run meanwhile. `fut` must not wait on this run's
    /// mailbox (it would wait on itself).
    async fn exclusive<T: Send + 'static>(
        &self,
        run_id: RunId,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let permit = self.mailboxes.permit().await;
        let (reply, rx) = oneshot::channel();
        let op = mailbox::Op::Exclusive(Box::pin(async move {
            let _permit = permit;
            let _ = reply.send(fut.await);
        }));
        if self.mailboxes.push(run_id, op) {
            tokio::spawn(self.clone().run_writer(run_id));
        }
        rx.await
            .expect("an exclusive op always answers unless the writer panicked")
    }

    /// The worker that owns `run_id` while its mailbox has work.
    async fn run_writer(self, run_id: RunId) {
        let mut guard = mailbox::WorkerGuard {
            mailboxes: &self.mailboxes,
            run_id,
            done: false,
        };
        while let Some(batch) = self.mailboxes.next_batch(run_id) {
            match batch {
                mailbox::Batch::Exclusive(fut) => fut.await,
                mailbox::Batch::Commands(ops) => self.write_batch(run_id, ops).await,
            }
        }
        guard.done = true;
    }

    /// Folds `ops` into one commit and answers each. A lost version check
    /// (another node wrote the run) re-folds from a fresh load; transient
    /// store failures fail the API calls and retry the durable ops.
    async fn write_batch(&self, run_id: RunId, mut ops: Vec<mailbox::CommandOp>) {
        let mut use_cache = true;
        let mut failures = 0u32;
        loop {
            let cached = use_cache.then(|| self.cache.get(run_id)).flatten();
            let from_cache = cached.is_some();
            let record = match cached {
                Some(r) => r,
                None => match self.store.load_run(&ops[0].ns, run_id).await {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        reply_all(ops, |_| Err(Error::RunNotFound(run_id)));
                        return;
                    }
                    Err(e) => {
                        failures += 1;
                        match self.store_failed(&mut ops, e, failures).await {
                            true => continue,
                            false => return,
                        }
                    }
                },
            };
            // A run id names one run in one namespace.
            let (here, elsewhere): (Vec<_>, Vec<_>) = ops
                .into_iter()
                .partition(|op| op.ns == record.state.namespace);
            reply_all(elsewhere, |_| Err(Error::RunNotFound(run_id)));
            ops = here;
            if ops.is_empty() {
                return;
            }
            let ctx = self.ctx();
            let cmds = ops.iter().map(|op| op.cmd.clone()).collect();
            let batch = engine::decide_all(&record.state, cmds, &ctx);
            if from_cache && batch.results.iter().any(Result::is_err) {
                // A refusal may come from a cache entry another node's
                // commit made stale: decide again on what is stored.
                use_cache = false;
                continue;
            }
            if !batch.changed() {
                reply_each(ops, batch.results, batch.reports, None);
                return;
            }
            let engine::Batch {
                transition,
                results,
                reports,
            } = batch;
            // The next run of the chain (continue-as-new, a retry) starts
            // in the same commit that closes this one.
            let next = match transition.next_run.as_deref() {
                Some(run) => {
                    let mut run = run.clone();
                    if let Err(e) = self.pin(&mut run).await {
                        failures += 1;
                        match self.apply_failed(&mut ops, e, failures).await {
                            true => continue,
                            false => return,
                        }
                    }
                    match new_run(run, &ctx) {
                        Ok(change) => Some(change),
                        Err(r) => {
                            reply_all(ops, |_| Err(Error::Rejected(r.clone())));
                            return;
                        }
                    }
                }
                None => None,
            };
            let change = RunChange {
                expected_version: Some(record.version),
                transition,
                request_id: None,
            };
            match self
                .commit([change].into_iter().chain(next).collect())
                .await
            {
                Ok(mut states) => {
                    reply_each(ops, results, reports, Some(states.remove(0)));
                    return;
                }
                Err(store::Error::Conflict) => {
                    self.cache.remove(run_id);
                    use_cache = false;
                    failures += 1;
                    if failures > 3 {
                        // Another node keeps writing the run: let it finish.
                        tokio::time::sleep(backoff(failures)).await;
                    }
                }
                Err(e) => {
                    // The commit may or may not have happened: forget what
                    // this node believed about the run.
                    self.cache.remove(run_id);
                    use_cache = false;
                    failures += 1;
                    if !self.store_failed(&mut ops, e, failures).await {
                        return;
                    }
                }
            }
        }
    }

    async fn apply_failed(
        &self,
        ops: &mut Vec<mailbox::CommandOp>,
        e: Error,
        failures: u32,
    ) -> bool {
        match e {
            Error::Store(e) => self.store_failed(ops, e, failures).await,
            other => {
                let message = other.to_string();
                reply_all(std::mem::take(ops), |_| Err(Error::Failed(message.clone())));
                false
            }
        }
    }

    /// A store call of a batch failed. Transient: API calls get
    /// [`Error::Unavailable`], durable ops stay and are retried after a
    /// back-off (true). Otherwise, or at shutdown, everyone gets the error
    /// (false).
    async fn store_failed(
        &self,
        ops: &mut Vec<mailbox::CommandOp>,
        e: store::Error,
        failures: u32,
    ) -> bool {
        let message = e.to_string();
        if !e.is_transient() {
            tracing::error!(error = %message, "a run's commands failed on the store");
            reply_all(std::mem::take(ops), |_| Err(Error::Failed(message.clone())));
            return false;
        }
        let (durable, calls): (Vec<_>, Vec<_>) =
            std::mem::take(ops).into_iter().partition(|op| op.durable);
        reply_all(calls, |_| Err(Error::Unavailable(message.clone())));
        *ops = durable;
        if ops.is_empty() {
            return false;
        }
        if failures == 1 || failures.is_multiple_of(20) {
            tracing::warn!(error = %message, failures, pending = ops.len(), "the store is failing; retrying the run's outcomes");
        }
        let mut closing = self.closing.clone();
        tokio::select! {
            _ = tokio::time::sleep(backoff(failures)) => true,
            _ = closing.wait_for(|c| *c) => {
                reply_all(std::mem::take(ops), |_| Err(Error::Unavailable("the node is shutting down".into())));
                false
            }
        }
    }

    /// Makes `record` give up retrying: the node is shutting down.
    pub fn close(&self) {
        self.closing_tx.send_replace(true);
    }

    /// Starts a run, honouring the request id and the id policies.
    pub async fn start(&self, mut req: StartRequest) -> Result<Started, Error> {
        let ns = req.run.namespace.clone();
        self.namespace(&ns).await?;
        self.prepare_start(&mut req.run).await?;
        // The common case needs no look-up: with ALLOW_DUPLICATE a closed run
        // never blocks a start, and an open one is caught by the store's
        // unique index, after which the policies are decided in full.
        let mut optimistic =
            req.reuse_policy == IdReusePolicy::AllowDuplicate && req.run.request_id.is_none();
        for _ in 0..MAX_CONFLICT_RETRIES {
            if std::mem::take(&mut optimistic) {
                let change = new_run(req.run.clone(), &self.ctx())?;
                match self.commit(vec![change]).await {
                    Ok(_) => {
                        return Ok(Started {
                            run_id: req.run.run_id,
                            started: true,
                        })
                    }
                    Err(store::Error::AlreadyExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(request_id) = &req.run.request_id {
                let found = self
                    .store
                    .run_by_request_id(&ns, &req.run.workflow_id, request_id)
                    .await?;
                if let Some(run_id) = found {
                    return Ok(Started {
                        run_id,
                        started: false,
                    });
                }
            }
            let latest = self.store.latest_run(&ns, &req.run.workflow_id).await?;
            let decision = start_decision(
                latest.as_ref().map(|r| r.state.status),
                req.reuse_policy,
                req.conflict_policy,
            );
            let ctx = self.ctx();
            let mut changes = Vec::new();
            match (decision, latest) {
                (StartDecision::UseExisting, Some(existing)) => {
                    return Ok(Started {
                        run_id: existing.state.run_id,
                        started: false,
                    })
                }
                (StartDecision::Reject { running }, Some(existing)) => {
                    return Err(Error::AlreadyStarted {
                        workflow_id: req.run.workflow_id.to_string(),
                        run_id: existing.state.run_id,
                        running,
                    })
                }
                (StartDecision::TerminateExistingAndStart, Some(existing)) => {
                    let reason = format!(
                        "terminated by a new start of the same workflow id (run {})",
                        req.run.run_id
                    );
                    changes.push(terminate(&existing, reason, &ctx)?);
                }
                _ => {}
            }
            changes.push(new_run(req.run.clone(), &ctx)?);
            // Terminating the open run goes through its writer, so the
            // commands queued for it wait for the replacement.
            let replaced = changes
                .first()
                .filter(|c| c.expected_version.is_some())
                .map(|c| c.transition.state.run_id);
            let committed = match replaced {
                Some(run_id) => {
                    let this = self.clone();
                    self.exclusive(run_id, async move { this.commit(changes).await.map(drop) })
                        .await
                }
                None => self.commit(changes).await.map(drop),
            };
            match committed {
                Ok(()) => {
                    return Ok(Started {
                        run_id: req.run.run_id,
                        started: true,
                    })
                }
                // Lost a race with another start or change; decide again.
                Err(store::Error::Conflict | store::Error::AlreadyExists(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Contended)
    }

    /// Signal-with-start (Temporal's conflict policy USE_EXISTING): signals
    /// the workflow id's open run if there is one, else starts a run (as
    /// the id reuse policy allows) whose history records the signal before
    /// the first workflow task, in the same commit.
    pub async fn signal_with_start(
        &self,
        mut req: StartRequest,
        mut signal: Signal,
    ) -> Result<Started, Error> {
        let ns = req.run.namespace.clone();
        self.namespace(&ns).await?;
        self.prepare_start(&mut req.run).await?;
        let mut payloads = Vec::new();
        self.offloader.signal(&mut signal, &mut payloads);
        self.put_payloads(&ns, &payloads, false).await?;
        for _ in 0..MAX_CONFLICT_RETRIES {
            if let Some(request_id) = &req.run.request_id {
                let found = self
                    .store
                    .run_by_request_id(&ns, &req.run.workflow_id, request_id)
                    .await?;
                if let Some(run_id) = found {
                    // A retry of a request that started a run: the signal
                    // went with it (and its request id dedupes it if the
                    // run is still open).
                    return Ok(Started {
                        run_id,
                        started: false,
                    });
                }
            }
            let latest = self.store.latest_run(&ns, &req.run.workflow_id).await?;
            let ctx = self.ctx();
            let change = match latest {
                Some(existing) if !existing.state.status.is_closed() => {
                    // Signal the open run through its writer; if it closed
                    // meanwhile, decide again.
                    let run_id = existing.state.run_id;
                    let cmd = Command::SignalWorkflow(signal.clone());
                    match self.apply(&ns, run_id, cmd).await {
                        Ok(_) => {
                            return Ok(Started {
                                run_id,
                                started: false,
                            })
                        }
                        Err(Error::Rejected(Rejection::RunClosed(_)) | Error::RunNotFound(_)) => {
                            continue
                        }
                        Err(e) => return Err(e),
                    }
                }
                latest => {
                    let decision = start_decision(
                        latest.as_ref().map(|r| r.state.status),
                        req.reuse_policy,
                        IdConflictPolicy::UseExisting,
                    );
                    if let (StartDecision::Reject { running }, Some(existing)) = (decision, latest)
                    {
                        return Err(Error::AlreadyStarted {
                            workflow_id: req.run.workflow_id.to_string(),
                            run_id: existing.state.run_id,
                            running,
                        });
                    }
                    RunChange {
                        expected_version: None,
                        transition: engine::start_with_signal(
                            req.run.clone(),
                            signal.clone(),
                            &ctx,
                        )?,
                        request_id: req.run.request_id.clone(),
                    }
                }
            };
            let started = change.expected_version.is_none();
            let run_id = change.transition.state.run_id;
            match self.commit(vec![change]).await {
                Ok(_) => return Ok(Started { run_id, started }),
                // Lost a race with another start or change; decide again.
                Err(store::Error::Conflict | store::Error::AlreadyExists(_)) => {
                    self.cache.remove(run_id);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Contended)
    }

    /// Pins a new run to its queue's current endpoint version, unless the
    /// caller chose one. Every start goes through here, so whatever starts
    /// a run (a client, a parent, a schedule) pins it the same way. With no
    /// endpoint registered the run starts unpinned and its first push pins
    /// it (`Command::PinVersion`).
    async fn pin(&self, run: &mut StartRun) -> Result<(), Error> {
        if run.pinned_version.is_none() {
            let current = self
                .endpoints
                .current(&run.namespace, &run.task_queue)
                .await?;
            run.pinned_version = current.map(|e| e.version);
        }
        Ok(())
    }

    /// Resets the run `base` (Temporal's ResetWorkflowExecution): a new run
    /// with `base`'s history up to the reset point (`engine::reset`), and
    /// the workflow id's open run, `base` or a newer one, terminated with
    /// a reason naming the new run, in one commit. A request id makes
    /// retries return the run the first request created.
    ///
    /// Runs with `base`'s writer held, so the commands queued for it on
    /// this node wait for the reset instead of racing it.
    pub async fn reset(
        &self,
        ns: &Namespace,
        base_run_id: RunId,
        reset: Reset,
        request_id: Option<String>,
    ) -> Result<RunId, Error> {
        let this = self.clone();
        let ns = ns.clone();
        self.exclusive(base_run_id, async move {
            this.reset_now(&ns, base_run_id, reset, request_id).await
        })
        .await
    }

    async fn reset_now(
        &self,
        ns: &Namespace,
        base_run_id: RunId,
        reset: Reset,
        request_id: Option<String>,
    ) -> Result<RunId, Error> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let base = self
                .store
                .load_run(ns, base_run_id)
                .await?
                .ok_or(Error::RunNotFound(base_run_id))?;
            let workflow_id = &base.state.workflow_id;
            if let Some(request_id) = &request_id {
                if let Some(run_id) = self
                    .store
                    .run_by_request_id(ns, workflow_id, request_id)
                    .await?
                {
                    return Ok(run_id);
                }
            }
            let ctx = self.ctx();
            let new_run_id = ctx.next_run_id;
            let open = match base.state.status.is_closed() {
                false => Some(base.clone()),
                true => self
                    .store
                    .latest_run(ns, workflow_id)
                    .await?
                    .filter(|r| !r.state.status.is_closed()),
            };
            let terminated = open
                .map(|open| -> Result<RunChange, Rejection> {
                    let reason = format!("reset to run {new_run_id}: {}", reset.reason);
                    Ok(RunChange {
                        expected_version: Some(open.version),
                        transition: engine::terminate_for_reset(
                            &open.state,
                            new_run_id,
                            reason,
                            &ctx,
                        )?,
                        request_id: None,
                    })
                })
                .transpose()?;
            // The history to copy from. Terminating an open base appends
            // the events buffered behind its in-flight workflow task
            // (signals among them, to re-apply), so copy from after that.
            let mut history = self.history(&base.state).await?;
            if let Some(t) = terminated
                .as_ref()
                .filter(|t| t.transition.state.run_id == base_run_id)
            {
                let mut all = history.as_ref().clone();
                all.extend(t.transition.events.iter().cloned());
                history = Arc::new(all);
            }
            // Like any new run, the reset run starts on the queue's current
            // endpoint version (the fix a reset usually follows).
            let mut reset = reset.clone();
            reset.pinned_version = self
                .endpoints
                .current(ns, &base.state.task_queue)
                .await?
                .map(|e| e.version);
            let transition = engine::reset(&base.state, &history, reset, &ctx)?;
            let changes: Vec<RunChange> = terminated
                .into_iter()
                .chain([RunChange {
                    expected_version: None,
                    transition,
                    request_id: request_id.clone(),
                }])
                .collect();
            match self.commit(changes).await {
                Ok(_) => return Ok(new_run_id),
                // Lost a race with another change; decide again.
                Err(store::Error::Conflict | store::Error::AlreadyExists(_)) => {
                    self.cache.remove(base_run_id);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Contended)
    }

    /// The namespace record. Namespaces cannot be deleted (and their
    /// records do not change), so one seen once is served from memory.
    pub async fn namespace(&self, ns: &Namespace) -> Result<NamespaceRecord, Error> {
        let cached = self
            .namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(ns)
            .cloned();
        if let Some(record) = cached {
            return Ok(record);
        }
        let record = self
            .store
            .get_namespace(ns)
            .await?
            .ok_or_else(|| Error::NamespaceNotFound(ns.clone()))?;
        self.namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ns.clone(), record.clone());
        Ok(record)
    }

    /// Commits, then hands pushes to the dispatcher and announces the
    /// changes to waiters.
    async fn commit(&self, changes: Vec<RunChange>) -> Result<Vec<Arc<RunState>>, store::Error> {
        let begun = std::time::Instant::now();
        let committed = self.store.commit(&changes).await;
        let outcome = match &committed {
            Ok(()) => "ok",
            Err(store::Error::Conflict) => "conflict",
            Err(_) => "error",
        };
        telemetry::store_commit(outcome, begun.elapsed().as_secs_f64());
        committed?;
        Ok(self.committed(changes).await)
    }

    /// A schedule's tick: starts `runs` (each pinned to its queue's current
    /// endpoint version) and writes `schedule`, in ONE transaction guarded
    /// by the schedule's version; then hands the new runs' first pushes to
    /// the dispatcher. A start the engine refuses fails the whole tick.
    pub async fn start_scheduled(
        &self,
        schedule: &ScheduleRecord,
        runs: Vec<StartRun>,
    ) -> Result<(), Error> {
        let ctx = self.ctx();
        let mut changes = Vec::with_capacity(runs.len());
        for mut run in runs {
            self.prepare_start(&mut run).await?;
            changes.push(new_run(run, &ctx)?);
        }
        match self.store.commit_schedule(schedule, &changes).await {
            Ok(()) => {
                self.committed(changes).await;
                Ok(())
            }
            Err(e) if e.is_transient() => Err(Error::Unavailable(e.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// After a commit of `changes`: caches the new states, hands their
    /// pushes to the dispatcher and wakes their waiters.
    async fn committed(&self, changes: Vec<RunChange>) -> Vec<Arc<RunState>> {
        let mut states = Vec::with_capacity(changes.len());
        for change in changes {
            let Transition {
                state,
                effects,
                events,
                ..
            } = change.transition;
            let state = Arc::new(state);
            telemetry::committed(&state, &events);
            let version = change.expected_version.map_or(1, |v| v + 1);
            self.cache.committed(state.clone(), version, &events);
            for effect in effects {
                if let Effect::Dispatch(dispatch) = effect {
                    // The receiver only goes away at shutdown; the committed
                    // rows then bring the work back on the next start.
                    let push = Push {
                        state: state.clone(),
                        dispatch,
                    };
                    let _ = self.pushes.send(push).await;
                }
            }
            if let Some(tx) = self.watched().get(&state.run_id) {
                tx.send_replace(());
            }
            states.push(state);
        }
        states
    }

    /// The task queue and pinned endpoint version of a run, from this
    /// node's cache or the store; `None` if there is no such run.
    pub async fn pin_of(
        &self,
        ns: &Namespace,
        run_id: RunId,
    ) -> Result<Option<(TaskQueue, Option<String>)>, store::Error> {
        let record = match self.cache.get(run_id) {
            Some(r) => Some(r),
            None => self.store.load_run(ns, run_id).await?,
        };
        Ok(record
            .filter(|r| r.state.namespace == *ns)
            .map(|r| (r.state.task_queue, r.state.pinned_version)))
    }

    /// The whole persisted history of the run `state` describes.
    pub async fn history(&self, state: &RunState) -> Result<Arc<Vec<Event>>, store::Error> {
        if let Some(h) = self.cache.history(state) {
            return Ok(h);
        }
        let events = self
            .store
            .read_history(&state.namespace, state.run_id, 0, state.next_event_id - 1)
            .await?;
        let events = Arc::new(events);
        self.cache.put_history(state, events.clone());
        Ok(events)
    }

    /// The encoded events this node holds in its cache for a run, if any:
    /// a prefix of its history (events never change, so a history page
    /// may be served from them).
    pub fn cached_encoded(&self, run_id: RunId) -> Option<Arc<EncodedEvents>> {
        self.cache.encoded_events(run_id)
    }

    /// The whole persisted history of the run `state` describes, encoded
    /// as a push carries it (`wire::EncodedEvents`). Cached with the run
    /// and appended to: only events not encoded before are serialised
    /// (all of them when the run is not cached).
    pub async fn encoded_history(
        &self,
        state: &RunState,
    ) -> Result<Arc<EncodedEvents>, store::Error> {
        let to = state.next_event_id - 1;
        let have = self.cache.encoded(state);
        if let Some(e) = have.as_ref().filter(|e| e.events() == to) {
            return Ok(e.clone());
        }
        let history = self.history(state).await?;
        let from = have.map_or(0, |e| e.events());
        let tail = encoded(&history[from as usize..])?;
        if let Some(e) = self.cache.extend_encoded(state, from, &tail) {
            return Ok(e);
        }
        Ok(Arc::new(if from == 0 { tail } else { encoded(&history)? }))
    }

    /// Waits until `done` holds for the run `state` describes, it is closed,
    /// or `timeout` passes; returns the last state seen. `done` must be
    /// monotonic (once true, true for every later state), like a closed
    /// run or an update's stage, so that a state seen once is the truth.
    /// Local commits wake it at once; changes on other nodes are seen by a
    /// short poll.
    pub async fn wait_for(
        &self,
        state: RunState,
        timeout: Duration,
        done: impl Fn(&RunState) -> bool,
    ) -> Result<RunState, Error> {
        let finished = move |s: &RunState| s.status.is_closed() || done(s);
        let run_id = state.run_id;
        let mut changed = self
            .watched()
            .entry(state.run_id)
            .or_insert_with(|| watch::channel(()).0)
            .subscribe();
        let result = self
            .wait_watched(&mut changed, state, timeout, finished)
            .await;
        drop(changed);
        let mut watched = self.watched();
        if let std::collections::hash_map::Entry::Occupied(e) = watched.entry(run_id) {
            if e.get().receiver_count() == 0 {
                e.remove();
            }
        }
        result
    }

    fn watched(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<RunId, watch::Sender<()>>> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn wait_watched(
        &self,
        changed: &mut watch::Receiver<()>,
        state: RunState,
        timeout: Duration,
        finished: impl Fn(&RunState) -> bool,
    ) -> Result<RunState, Error> {
        let deadline = tokio::time::Instant::now() + timeout.to_std();
        let (ns, run_id) = (state.namespace.clone(), state.run_id);
        let mut state = state;
        loop {
            // Checked after subscribing, so a change in between is seen.
            if let Some(c) = self.cache.get(run_id).filter(|r| finished(&r.state)) {
                return Ok(c.state);
            }
            if finished(&state) || tokio::time::Instant::now() >= deadline {
                return Ok(state);
            }
            // Wake on this run's local change, after a short poll (changes
            // on other nodes), or at the deadline.
            let local = tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => false,
                _ = tokio::time::sleep_until(deadline) => false,
                _ = changed.changed() => true,
            };
            // A local commit is in the cache before it is announced, so
            // reading it back would only cost a round trip; the poll, which
            // stands for changes on other nodes, reads the store.
            if let Some(cached) = self.cache.get(run_id).filter(|_| local) {
                state = cached.state;
                continue;
            }
            state = self
                .store
                .load_run(&ns, run_id)
                .await?
                .ok_or(Error::RunNotFound(run_id))?
                .state;
        }
    }
}

fn reply_all(
    ops: Vec<mailbox::CommandOp>,
    result: impl Fn(&mailbox::CommandOp) -> Result<Arc<RunState>, Error>,
) {
    for op in ops {
        let res = result(&op).map(|state| (state, None));
        let _ = op.reply.send(res);
    }
}

/// Answers each op with its own result from the fold; accepted ones get
/// the committed state.
fn reply_each(
    ops: Vec<mailbox::CommandOp>,
    results: Vec<Result<(), Rejection>>,
    reports: Vec<Option<Box<engine::CheckpointReport>>>,
    state: Option<Arc<RunState>>,
) {
    for ((op, res), report) in ops.into_iter().zip(results).zip(reports) {
        let res = match (res, &state) {
            (Ok(()), Some(state)) => Ok((state.clone(), report)),
            (Ok(()), None) => Err(Error::Failed("nothing was committed".into())),
            (Err(r), _) => Err(Error::Rejected(r)),
        };
        let _ = op.reply.send(res);
    }
}

/// Wait before retrying a store call that failed `failures` times: 50 ms
/// doubling up to 2 s, with jitter so that nodes do not retry in step.
fn backoff(failures: u32) -> std::time::Duration {
    let base = 50u64.saturating_mul(1 << failures.min(6)).min(2_000);
    let jitter = rand::random::<u64>() % (base / 2 + 1);
    std::time::Duration::from_millis(base / 2 + jitter)
}

/// The change that creates a run. Every new run goes through here: a
/// start, and the next run of a chain (continue-as-new, a retry).
fn new_run(run: StartRun, ctx: &Ctx) -> Result<RunChange, Rejection> {
    Ok(RunChange {
        expected_version: None,
        request_id: run.request_id.clone(),
        transition: engine::start(run, ctx)?,
    })
}

/// Terminates `existing` because a new run of its workflow id replaces it.
fn terminate(existing: &RunRecord, reason: String, ctx: &Ctx) -> Result<RunChange, Error> {
    let cmd = Command::TerminateWorkflow {
        reason,
        details: None,
        identity: Some("baton".to_owned()),
    };
    Ok(RunChange {
        expected_version: Some(existing.version),
        transition: engine::decide(&existing.state, cmd, ctx)?,
        request_id: None,
    })
}

fn encoded(events: &[Event]) -> Result<EncodedEvents, store::Error> {
    EncodedEvents::encode(events)
        .map_err(|e| store::Error::Corrupt(format!("encoding events: {e}")))
}
