//! The push side: turns `Dispatch` effects (handed over by `apply` right
//! after their commit) and due rows of the push queue (retries, and tasks a
//! dead node had leased) into signed HTTP requests, and the answers into
//! engine commands through `apply`.
//!
//! Delivery is at least once. A crash between commit and push loses nothing:
//! a workflow task's row is committed leased and reappears when the lease
//! runs out; an activity attempt's start-to-close timer fires and the
//! attempt is retried. Duplicate answers are refused by the engine's
//! fencing tokens.
//!
//! Admission control: per endpoint, at most `max_concurrency` pushes are in
//! flight from this node, so a function is never overrun, and the pushes
//! beyond that wait their turn in arrival order (tokio's semaphore is
//! FIFO). At most [`ADMITTED`] pushes are taken on at once; past that the
//! dispatcher stops taking pushes from `apply` (whose writers then wait:
//! back-pressure) and its claim loop stops claiming rows, which stay in the
//! table for whichever node has room. While an activity attempt waits for
//! its endpoint, its timers are held off (`waiting`); one sent late has its
//! start-to-close clock restarted at the send (`send_time`,
//! `Command::ActivityAttemptSent`), so queueing never eats the time the
//! handler was promised and never times an attempt out; schedule-to-start
//! and schedule-to-close cover the queueing.
//!
//! Shutdown: pushes still waiting for their endpoint are handed back at
//! once, those already sent get up to the drain timeout for their answers
//! and are then handed back too. Handing back records the push as
//! undelivered, so any node sends it again after the short delivery
//! back-off, instead of waiting for a lease or a timeout to run out.
//!
//! Deadlock freedom: whoever holds an admission permit never waits on
//! `apply` (outcomes are recorded after the permit is given back), so the
//! dispatcher always makes progress while `apply`'s writers wait on it.

mod answer;
mod client;
mod flow;
mod pages;
pub mod payloads;
mod push_errors;
mod send_time;
mod waiting;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tracing::Instrument as _;

use crate::apply::{self, Applier, Push};
use crate::claim;
use crate::engine::{
    self, ActivityPhase, ActivityToken, Command, Dispatch, Failure, Queue, Rejection, RunState,
    Task, TaskToken, TokenKind, TraceContext, Update, WorkflowTaskToken,
};
use crate::ids::{Namespace, TaskQueue};
use crate::signing::Secret;
use crate::store::{Endpoint, TaskRow};
use crate::telemetry::{self, traces, PushGauge, PushTarget, TaskKind};
use crate::time::{Clock, Duration, SystemClock};

use answer::snippet;
pub use client::{Delivery, HttpTransport, Transport};
use pages::PushedHistory;
pub use push_errors::PushError;
use wire::{ActivityTaskRequest, PushRequest, WorkflowTaskRequest};

/// Pushes this node takes on at once (sending, or waiting for their
/// endpoint's concurrency limit).
pub const ADMITTED: usize = 4_096;

#[derive(Clone, Debug)]
pub struct Options {
    /// Largest answer read from an endpoint.
    pub max_response_bytes: usize,
    pub claim: claim::Options,
    /// At shutdown, how long pushes already sent may take to be answered
    /// (see "Shutdown" in the module docs).
    pub drain_timeout: Duration,
    /// The API's URL as handlers reach it, without a trailing slash:
    /// workflow task pushes carry the checkpoint URL built from it
    /// (docs/protocol.md §5.9), and none without it.
    pub public_url: Option<String>,
    /// Past this many history bytes, an endpoint version with the
    /// `history_pages` feature is sent paged pushes (docs/protocol.md
    /// §5.10).
    pub push_history_bytes: u64,
    /// Most bytes of referenced payloads a push to an endpoint version
    /// with the `payload_references` feature inlines (docs/protocol.md
    /// §9.1).
    pub push_payload_bytes: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_response_bytes: 8 * 1024 * 1024,
            claim: claim::Options::default(),
            drain_timeout: Duration::from_secs(20),
            public_url: None,
            push_history_bytes: 1024 * 1024,
            push_payload_bytes: 2 * 1024 * 1024,
        }
    }
}

/// After the drain timeout, how long the handed-back pushes' records may
/// take to commit before the dispatcher stops anyway.
const HAND_BACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long past its push's deadline a history reference stays valid
/// (docs/protocol.md §5.10).
const REFERENCE_GRACE: Duration = Duration(5 * 60 * 1000);

pub struct Service {
    inner: Arc<Inner>,
}

/// Sends queries and update validations: synchronous pushes whose answer
/// goes back to the caller and never into a history. Cheap to clone.
#[derive(Clone)]
pub struct Querier {
    inner: Arc<Inner>,
}

/// Why a query or an update validation got no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    NoEndpoint(String),
    /// What was asked (`query`, `update's validation`) and why it got no
    /// answer.
    #[error("the workflow's endpoint did not answer the {0}: {1}")]
    Unreachable(&'static str, String),
    /// The handler refused: an unknown query name, bad arguments, or a
    /// query handler that raised.
    #[error("query failed: {}", .0.message)]
    Failed(Failure),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

struct Inner {
    applier: Applier,
    client: Arc<dyn Transport>,
    options: Options,
    /// Permits for pushes taken on ([`ADMITTED`]).
    admitted: Arc<Semaphore>,
    /// Concurrency limiters by endpoint version, with their size.
    limits: Mutex<HashMap<(QueueKey, String), Limiter>>,
    /// Activity attempts waiting for their endpoint's limiter.
    waiting: Arc<waiting::Waiting>,
    /// Turns true at shutdown: pushes still waiting for their endpoint are
    /// handed back instead of sent.
    stopping: watch::Sender<bool>,
    /// Turns true when the drain timeout passed: pushes still awaiting
    /// their answer are handed back.
    drain_expired: watch::Sender<bool>,
    /// Push tasks running (until their outcome is recorded): the drain
    /// waits for none.
    tasks: Arc<Tracker>,
    /// The last failed pushes per endpoint version (this node's).
    push_errors: push_errors::PushErrors,
    /// Concurrency keys and rate limits.
    flow: Arc<flow::Gate>,
    /// Runs whose handler keeps their instance (docs/protocol.md §5.10).
    sticky: pages::StickyRuns,
}

/// Counts running tasks.
#[derive(Default)]
struct Tracker {
    open: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One running task of a [`Tracker`].
struct Tracked(Arc<Tracker>);

impl Tracker {
    fn enter(self: &Arc<Self>) -> Tracked {
        self.open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Tracked(self.clone())
    }

    fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until no task runs.
    async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self
            .0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }
}

/// The size a limiter was made with, and the limiter.
type Limiter = (u32, Arc<Semaphore>);

type QueueKey = (Namespace, TaskQueue);

impl Service {
    /// A dispatcher pushing through `client` (an [`HttpTransport`] in a
    /// real node).
    pub fn new(applier: Applier, options: Options, client: Arc<dyn Transport>) -> Service {
        Service {
            inner: Arc::new(Inner {
                applier: applier.clone(),
                client,
                options,
                admitted: Arc::new(Semaphore::new(ADMITTED)),
                limits: Mutex::new(HashMap::new()),
                waiting: Arc::default(),
                stopping: watch::Sender::new(false),
                drain_expired: watch::Sender::new(false),
                tasks: Arc::default(),
                push_errors: push_errors::PushErrors::default(),
                flow: Arc::new(flow::Gate::new(
                    applier.store().clone(),
                    applier.clock().clone(),
                )),
                sticky: pages::StickyRuns::default(),
            }),
        }
    }

    pub fn querier(&self) -> Querier {
        Querier {
            inner: self.inner.clone(),
        }
    }

    /// Pushes until `shutdown`: what `apply` hands over, and due rows,
    /// each once it has an admission permit.
    pub async fn run(self, mut pushes: mpsc::Receiver<Push>, shutdown: watch::Receiver<bool>) {
        let inner = self.inner.clone();
        let claims = tokio::spawn(claim::run(
            inner.applier.store().clone(),
            inner.applier.clock().clone(),
            Queue::Push,
            inner.options.claim.clone(),
            inner.admitted.clone(),
            shutdown.clone(),
            move |row, permit| {
                let task = inner.tasks.enter();
                let inner = inner.clone();
                tokio::spawn(async move {
                    inner.handle_row(row, permit).await;
                    drop(task);
                });
            },
        ));
        let postponing = tokio::spawn(waiting::run(
            self.inner.waiting.clone(),
            self.inner.applier.store().clone(),
            self.inner.applier.clock().clone(),
            shutdown.clone(),
        ));
        let renewing = tokio::spawn(self.inner.flow.clone().renew(shutdown.clone()));
        let mut shutdown = shutdown;
        loop {
            let permit = tokio::select! {
                permit = self.inner.admitted.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(push) => self.spawn_push(push, permit),
                    None => break,
                },
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
        }
        let _ = claims.await;
        let _ = postponing.await;
        let _ = renewing.await;
        // Writers keep handing over pushes while the drain runs (outcomes
        // recorded meanwhile schedule more work): take them, so no writer
        // waits, and hand them back.
        let drain = self.drain();
        let mut drain = std::pin::pin!(drain);
        loop {
            tokio::select! {
                () = &mut drain => break,
                push = pushes.recv() => match push {
                    Some(push) => match self.inner.admitted.clone().acquire_owned().await {
                        Ok(permit) => self.spawn_push(push, permit),
                        Err(_) => break,
                    },
                    None => {
                        drain.await;
                        break;
                    }
                },
            }
        }
    }

    fn spawn_push(&self, push: Push, permit: OwnedSemaphorePermit) {
        let task = self.inner.tasks.enter();
        let inner = self.inner.clone();
        tokio::spawn(async move {
            inner.handle_push(push, permit).await;
            drop(task);
        });
    }

    /// Shutdown (see the module docs): waits for the push tasks, up to the
    /// drain timeout, then hands back those still awaiting answers.
    async fn drain(&self) {
        let inner = &self.inner;
        inner.stopping.send_replace(true);
        let timeout = inner.options.drain_timeout.to_std();
        if tokio::time::timeout(timeout, inner.tasks.idle())
            .await
            .is_ok()
        {
            return;
        }
        let open = inner.tasks.open();
        tracing::warn!(
            pushes = open,
            "drain timeout: handing back the pushes still awaiting answers"
        );
        inner.drain_expired.send_replace(true);
        if tokio::time::timeout(HAND_BACK_TIMEOUT, inner.tasks.idle())
            .await
            .is_err()
        {
            tracing::warn!("handing back pushes timed out; their leases bring them back");
        }
    }
}

impl Inner {
    async fn handle_push(self: Arc<Self>, push: Push, permit: OwnedSemaphorePermit) {
        match push.dispatch {
            Dispatch::WorkflowTask => self.push_workflow_task(&push.state, permit).await,
            Dispatch::ActivityTask { scheduled_event_id } => {
                self.push_activity_task(&push.state, scheduled_event_id, permit)
                    .await;
            }
        }
    }

    /// A row of the push queue came due: a retry after back-off, or work
    /// whose lease ran out (its node died or took too long).
    async fn handle_row(self: Arc<Self>, row: TaskRow, permit: OwnedSemaphorePermit) {
        let store = self.applier.store();
        match row.task {
            Task::WorkflowTask => match store.load_run(&row.namespace, row.run_id).await {
                Ok(Some(record)) if record.state.workflow_task.is_some() => {
                    self.push_workflow_task(&record.state, permit).await;
                }
                Ok(_) => self.delete_row(&row).await,
                Err(e) => tracing::warn!(run_id = %row.run_id, error = %e, "loading run failed"),
            },
            Task::ActivityTask { scheduled_event_id } => {
                // Not a push yet: the attempt starts through `apply`, and
                // its Dispatch effect comes back as a push with its own
                // permit. Holding this one meanwhile could deadlock.
                drop(permit);
                let cmd = Command::StartActivityAttempt { scheduled_event_id };
                match self.applier.record(&row.namespace, row.run_id, cmd).await {
                    Ok(_) => {}
                    Err(apply::Error::Rejected(_) | apply::Error::RunNotFound(_)) => {
                        self.delete_row(&row).await;
                    }
                    Err(e) => {
                        tracing::warn!(run_id = %row.run_id, error = %e, "starting activity attempt failed")
                    }
                }
            }
            _ => tracing::error!(task = ?row.task, "timer row in the push queue"),
        }
    }

    async fn delete_row(&self, row: &TaskRow) {
        if let Err(e) = self.applier.store().delete_task(&row.task_id).await {
            tracing::warn!(task_id = %row.task_id, error = %e, "deleting stale task failed");
        }
    }

    async fn push_workflow_task(&self, state: &RunState, permit: OwnedSemaphorePermit) {
        let pinned;
        let (state, permit) = match &state.pinned_version {
            Some(_) => (state, permit),
            None => {
                // Pinning goes through `apply`: not with a permit held.
                drop(permit);
                let Some(s) = self.pin(state).await else {
                    return;
                };
                pinned = s;
                let Ok(permit) = self.admitted.clone().acquire_owned().await else {
                    return;
                };
                (&*pinned, permit)
            }
        };
        let ns = &state.namespace;
        let queue = &state.task_queue;
        let route = retrying(state, "looking up the endpoint", || {
            self.route(state, queue)
        });
        let endpoint = match route.await {
            Some(Some(e)) => e,
            Some(None) => {
                drop(permit);
                let Some(view) = engine::workflow_task_view(state, &self.applier.ctx()) else {
                    return;
                };
                let error = no_endpoint(state, &state.task_queue);
                self.workflow_undelivered(state, view.token, false, error)
                    .await;
                return;
            }
            // The task's row comes back when its lease runs out.
            None => return,
        };
        // The task starts when the flow control lets it go: its Started
        // event carries that time.
        let (permit, _held) = if endpoint.flow.is_unlimited() {
            (permit, None)
        } else {
            // Held until the outcome is recorded, so the next task of the
            // key starts after this one's Completed event. Waiting holds no
            // admission permit: a slot's holder records its outcome through
            // `apply` (see "Deadlock freedom").
            drop(permit);
            let mut stopping = self.stopping.subscribe();
            // Shutting down: the task's row comes back when its lease runs
            // out.
            let held = self.flow.admit(&endpoint, state, &mut stopping).await;
            let Some(held) = held else {
                return;
            };
            let Ok(permit) = self.admitted.clone().acquire_owned().await else {
                return;
            };
            (permit, Some(held))
        };
        let ctx = self.applier.ctx();
        let Some(view) = engine::workflow_task_view(state, &ctx) else {
            return;
        };
        let token = view.token;
        let deadline = token.started_at.saturating_add(state.workflow_task_timeout);
        let sticky = self
            .sticky
            .take(state.run_id, state.pinned_version.as_deref());
        let history = retrying(state, "reading the history", || {
            self.push_history(state, &endpoint, sticky, deadline)
        });
        let Some((persisted, mut pages, inlined)) = history.await else {
            return;
        };
        pages.history_url = self.history_url(ns);
        let history = wire::History {
            persisted: persisted.bytes(),
            transient: &view.transient_events,
        };
        let persisted_length = state.next_event_id - 1;
        let history_length = persisted_length + view.transient_events.len() as i64;
        let request = PushRequest::WorkflowTask(WorkflowTaskRequest {
            namespace: ns,
            task_token: TaskToken {
                namespace: ns.clone(),
                run_id: state.run_id,
                task: TokenKind::Workflow(token),
            }
            .to_string(),
            workflow_id: &state.workflow_id,
            run_id: state.run_id,
            workflow_type: &state.workflow_type,
            task_queue: &state.task_queue,
            attempt: token.attempt,
            history_length,
            history,
            pages,
            history_size_bytes: view.history_size_bytes,
            suggest_continue_as_new: view.suggest_continue_as_new,
            deadline,
            checkpoint_url: self
                .options
                .public_url
                .as_ref()
                .map(|base| format!("{base}/api/v1/namespaces/{ns}/workflow-tasks/checkpoint")),
            payloads: inlined.as_ref(),
        });
        let target = PushTarget {
            namespace: &ns.0,
            task_queue: &queue.0,
            kind: TaskKind::Workflow,
        };
        if let Some(task) = &state.workflow_task {
            let queued = self.applier.clock().now().since(task.scheduled_time);
            telemetry::push_sent(&target, queued.0 as f64 / 1e3);
        }
        let delivery = self
            .send(
                &endpoint,
                &request,
                state.workflow_task_timeout,
                permit,
                &target,
                state.trace_context.as_ref(),
            )
            .await;
        // A session of checkpoints completed the task already.
        let (cmd, sticky) = answer::workflow_task(token, delivery, state.workflow_task_timeout);
        let Some(mut cmd) = cmd else {
            return;
        };
        if let Command::CompleteWorkflowTask {
            commands,
            search_attributes,
            ..
        } = &mut cmd
        {
            if commands.iter().any(|c| c.sets_search_attributes()) {
                let registry = self.applier.search_attributes();
                let lookup = retrying(state, "looking up the search attributes", || {
                    registry.registry(&state.namespace)
                });
                match lookup.await {
                    Some(r) => *search_attributes = r,
                    // The task's row comes back when its lease runs out.
                    None => return,
                }
            }
        }
        if self.report(state, cmd).await.is_ok() && sticky {
            // Whether the answer was recorded as completed is checked by
            // the next push, against the history (`pages::tail`).
            let version = state.pinned_version.clone();
            self.sticky.keep(state.run_id, history_length, version);
        }
    }

    /// The history a push of `state`'s run to `endpoint` carries
    /// (docs/protocol.md §5.10): the events after `sticky` (the event the
    /// handler's instance ends at), the newest ones when the history is
    /// past the paging bound and the endpoint pages, else all of them
    /// (spliced from the run's kept encoding). A partial one comes with a
    /// reference valid until 5 minutes past `deadline`. With it, the
    /// payloads to inline beside its references, or (for a handler that
    /// does not take references) the events re-encoded with the payloads
    /// in place (docs/protocol.md §9.1).
    async fn push_history(
        &self,
        state: &RunState,
        endpoint: &Endpoint,
        sticky: Option<i64>,
        deadline: crate::time::Timestamp,
    ) -> Result<(PushedHistory, wire::Pages, Option<payloads::Inlined>), crate::store::Error> {
        let (history, pages) = self
            .select_history(state, endpoint, sticky, deadline)
            .await?;
        let resolver = self.resolver(state, endpoint);
        Ok(match resolver.events(history.bytes()).await? {
            payloads::Events::AsTheyAre(inlined) => (history, pages, inlined),
            payloads::Events::InPlace(bytes) => (PushedHistory::InPlace(bytes), pages, None),
        })
    }

    /// Resolves the references of what is sent to `endpoint` about
    /// `state`'s run.
    fn resolver<'a>(&'a self, state: &'a RunState, endpoint: &Endpoint) -> payloads::Resolver<'a> {
        payloads::Resolver {
            store: self.applier.store().as_ref(),
            namespace: &state.namespace,
            run_id: state.run_id,
            references: payloads::takes_references(endpoint),
            budget: self.options.push_payload_bytes,
        }
    }

    /// [`Self::push_history`]'s events, before payloads are looked at.
    async fn select_history(
        &self,
        state: &RunState,
        endpoint: &Endpoint,
        sticky: Option<i64>,
        deadline: crate::time::Timestamp,
    ) -> Result<(PushedHistory, wire::Pages), crate::store::Error> {
        let url = self.history_url(&state.namespace);
        let pages = endpoint.features.iter().any(|f| f == pages::HISTORY_PAGES)
            && state.history_size_bytes > self.options.push_history_bytes;
        let whole = self.applier.encoded_history(state).await?;
        if url.is_none() || sticky.is_none() && !pages {
            return Ok((PushedHistory::Whole(whole), wire::Pages::default()));
        }
        let history = self.applier.history(state).await?;
        let budget = pages.then_some(self.options.push_history_bytes as usize / 4);
        let Some(first) = pages::tail(&history, &whole, sticky, budget) else {
            return Ok((PushedHistory::Whole(whole), wire::Pages::default()));
        };
        let reference = engine::HistoryReference {
            namespace: state.namespace.clone(),
            run_id: state.run_id,
            through: first - 1,
            expires_at: deadline.saturating_add(REFERENCE_GRACE),
        };
        let pages = wire::Pages {
            history_first_event_id: Some(first),
            history_reference: Some(reference.to_string()),
            history_url: url,
        };
        Ok((PushedHistory::Newest(whole, first), pages))
    }

    /// The page route of `ns` (docs/protocol.md §5.10); none without a
    /// public URL, and then no push is partial.
    fn history_url(&self, ns: &Namespace) -> Option<String> {
        let base = self.options.public_url.as_ref()?;
        Some(format!(
            "{base}/api/v1/namespaces/{ns}/workflow-tasks/history"
        ))
    }

    /// Pins a run that started unpinned to its queue's current version,
    /// before its first push; returns the pinned state. With no endpoint
    /// registered the task is reported undelivered and retried, and `None`
    /// is returned.
    async fn pin(&self, state: &RunState) -> Option<Arc<RunState>> {
        let endpoints = self.applier.endpoints();
        let current = retrying(state, "looking up the endpoint", || {
            endpoints.current(&state.namespace, &state.task_queue)
        });
        let version = match current.await {
            Some(Some(e)) => e.version,
            Some(None) => {
                if let Some(view) = engine::workflow_task_view(state, &self.applier.ctx()) {
                    let error = no_endpoint(state, &state.task_queue);
                    self.workflow_undelivered(state, view.token, false, error)
                        .await;
                }
                return None;
            }
            None => return None,
        };
        self.report_with_state(state, Command::PinVersion { version })
            .await
            .ok()
    }

    async fn workflow_undelivered(
        &self,
        state: &RunState,
        token: WorkflowTaskToken,
        timed_out: bool,
        error: String,
    ) {
        let cmd = Command::WorkflowTaskUndelivered {
            token,
            timed_out,
            error,
        };
        let _ = self.report(state, cmd).await;
    }

    async fn push_activity_task(
        &self,
        state: &RunState,
        scheduled_event_id: i64,
        mut permit: OwnedSemaphorePermit,
    ) {
        let Some(act) = state.activities.get(&scheduled_event_id) else {
            return;
        };
        let ActivityPhase::Started { since } = act.phase else {
            return;
        };
        let ns = &state.namespace;
        let token = ActivityToken {
            scheduled_event_id,
            attempt: act.attempt,
        };
        let route = retrying(state, "looking up the endpoint", || {
            self.route(state, &act.task_queue)
        });
        let endpoint = match route.await {
            Some(Some(e)) => e,
            Some(None) => {
                drop(permit);
                let error = no_endpoint(state, &act.task_queue);
                let _ = self
                    .report(state, Command::ActivityUndelivered { token, error })
                    .await;
                return;
            }
            // The attempt's start-to-close timer retries it.
            None => return,
        };
        // Wait for the endpoint's turn first: what is sent depends on when.
        // Meanwhile the attempt's timers are held off (see `waiting`).
        let limiter = self.limit(&endpoint);
        let mut timers_due = since.saturating_add(act.start_to_close_timeout);
        let ready = match endpoint.flow.is_unlimited() {
            true => limiter.clone().try_acquire_owned().map(|p| (p, None)),
            false => Err(TryAcquireError::NoPermits),
        };
        let (endpoint_permit, _held) = match ready {
            Ok(p) => p,
            Err(TryAcquireError::Closed) => return,
            Err(TryAcquireError::NoPermits) => {
                let heartbeat_due = act.heartbeat_timeout.map(|hb| since.saturating_add(hb));
                let first_due = heartbeat_due.map_or(timers_due, |hb| hb.min(timers_due));
                let ticket =
                    self.waiting
                        .enter(state.run_id, scheduled_event_id, act.attempt, first_due);
                let mut stopping = self.stopping.subscribe();
                let admitted = match endpoint.flow.is_unlimited() {
                    true => None,
                    false => {
                        // As for workflow tasks: no admission permit while
                        // waiting for the gate.
                        drop(permit);
                        let held = self.flow.admit(&endpoint, state, &mut stopping).await;
                        match held {
                            Some(h) => match self.admitted.clone().acquire_owned().await {
                                Ok(p) => {
                                    permit = p;
                                    Some(h)
                                }
                                Err(_) => return,
                            },
                            None => {
                                drop(ticket);
                                self.shut_down_before_sending(state, token).await;
                                return;
                            }
                        }
                    }
                };
                let waiting = telemetry::push_gauge(PushGauge::Waiting, &ns.0, &act.task_queue.0);
                let p = tokio::select! {
                    p = limiter.acquire_owned() => Some((p, admitted)),
                    () = turned_true(&mut stopping) => None,
                };
                drop(waiting);
                let Some((p, held)) = p else {
                    drop(ticket);
                    self.shut_down_before_sending(state, token).await;
                    return;
                };
                let Ok(p) = p else {
                    return;
                };
                timers_due = ticket.fires_at();
                (p, held)
            }
        };
        let s2c_deadline = act
            .schedule_to_close_timeout
            .map(|d| act.scheduled_time.saturating_add(d));
        let now = self.applier.clock().now();
        let attempt = send_time::Attempt {
            started: since,
            start_to_close: act.start_to_close_timeout,
            schedule_to_close_deadline: s2c_deadline,
            timers_due,
        };
        let Some(sent) = send_time::decide(&attempt, now) else {
            // Too late to start; the start-to-close timer settles it.
            return;
        };
        let queued_since = since;
        let (since, deadline) = (sent.started, sent.deadline);
        if sent.restarted {
            // Recorded beside the push, never before it: the handler's
            // answer may well arrive first, and then this is refused as
            // stale, which is fine.
            let applier = self.applier.clone();
            let (ns, run_id) = (state.namespace.clone(), state.run_id);
            tokio::spawn(async move {
                let cmd = Command::ActivityAttemptSent { token };
                let _ = applier.record(&ns, run_id, cmd).await;
            });
        }
        let resolver = self.resolver(state, &endpoint);
        let resolved = retrying(state, "reading the activity's payloads", || {
            resolver.activity(&act.input, act.heartbeat_details.as_ref())
        });
        let Some(resolved) = resolved.await else {
            return;
        };
        let (input, heartbeat_details, inlined) = match &resolved {
            Some(r) => (&r.input, r.heartbeat_details.as_ref(), r.inlined.as_ref()),
            None => (&act.input, act.heartbeat_details.as_ref(), None),
        };
        let timeout = deadline.since(now);
        let request = PushRequest::ActivityTask(ActivityTaskRequest {
            namespace: ns,
            task_token: TaskToken {
                namespace: ns.clone(),
                run_id: state.run_id,
                task: TokenKind::Activity(token),
            }
            .to_string(),
            workflow_id: &state.workflow_id,
            run_id: state.run_id,
            workflow_type: &state.workflow_type,
            activity_id: &act.activity_id,
            activity_type: &act.activity_type,
            task_queue: &act.task_queue,
            input,
            attempt: act.attempt,
            idempotency_key: format!("{}/{}", state.run_id, act.activity_id),
            scheduled_time: act.scheduled_time,
            started_time: since,
            deadline,
            heartbeat_timeout: act.heartbeat_timeout,
            heartbeat_details,
            payloads: inlined,
            payloads_url: self
                .options
                .public_url
                .as_ref()
                .map(|base| format!("{base}/api/v1/namespaces/{ns}/payloads")),
        });
        let target = PushTarget {
            namespace: &ns.0,
            task_queue: &act.task_queue.0,
            kind: TaskKind::Activity,
        };
        telemetry::push_sent(&target, now.since(queued_since).0 as f64 / 1e3);
        let delivery = self
            .send_with(
                &endpoint,
                &request,
                timeout,
                (permit, endpoint_permit),
                &target,
                state.trace_context.as_ref(),
            )
            .await;
        let answer = answer::activity_task(token, delivery);
        let outcome = answer::attempt_outcome(&answer);
        telemetry::activity_attempt(&ns.0, &act.activity_type, act.attempt, outcome);
        let cmd = match answer {
            answer::ActivityAnswer::Report(cmd) => cmd,
            // Completed later over REST, or timed out: the start-to-close
            // timer fires at the same deadline.
            answer::ActivityAnswer::Accepted | answer::ActivityAnswer::NoAnswer => return,
        };
        let answered = matches!(
            cmd,
            Command::CompleteActivity { .. }
                | Command::FailActivity { .. }
                | Command::ReportActivityCanceled { .. }
        );
        if let Err(apply::Error::Rejected(r)) = self.report(state, cmd).await {
            if let Some(cmd) = answer::refused(token, answered, &r) {
                let _ = self.report(state, cmd).await;
            }
        }
    }

    /// Hands an activity attempt back at shutdown, before its push was sent.
    async fn shut_down_before_sending(&self, state: &RunState, token: ActivityToken) {
        let error = "the node shut down before sending the push".to_owned();
        let cmd = Command::ActivityUndelivered { token, error };
        let _ = self.report(state, cmd).await;
    }

    /// Sends once the endpoint has room; `permit` (admission) is given back
    /// when the answer is in.
    async fn send(
        &self,
        endpoint: &Endpoint,
        request: &PushRequest<'_>,
        timeout: Duration,
        permit: OwnedSemaphorePermit,
        target: &PushTarget<'_>,
        trace: Option<&TraceContext>,
    ) -> Delivery {
        let limiter = self.limit(endpoint);
        let endpoint_permit = match limiter.clone().try_acquire_owned() {
            Ok(p) => Ok(p),
            Err(_) => {
                let _waiting =
                    telemetry::push_gauge(PushGauge::Waiting, target.namespace, target.task_queue);
                let mut stopping = self.stopping.subscribe();
                tokio::select! {
                    p = limiter.acquire_owned() => p,
                    () = turned_true(&mut stopping) => {
                        return Delivery::Refused("the node shut down before sending the push".into());
                    }
                }
            }
        };
        let Ok(endpoint_permit) = endpoint_permit else {
            return Delivery::Failed("endpoint limiter closed".into());
        };
        self.send_with(
            endpoint,
            request,
            timeout,
            (permit, endpoint_permit),
            target,
            trace,
        )
        .await
    }

    /// Sends now, with the admission and endpoint permits in hand, in a
    /// push span that is a child of the run's trace context `trace`.
    async fn send_with(
        &self,
        endpoint: &Endpoint,
        request: &PushRequest<'_>,
        timeout: Duration,
        _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
        target: &PushTarget<'_>,
        trace: Option<&TraceContext>,
    ) -> Delivery {
        let body = match wire::encode(request) {
            Ok(b) => b,
            Err(e) => return Delivery::Failed(format!("encoding the request failed: {e}")),
        };
        let secrets: Vec<Secret> = endpoint
            .secrets
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let _in_flight =
            telemetry::push_gauge(PushGauge::InFlight, target.namespace, target.task_queue);
        let begun = std::time::Instant::now();
        let mut expired = self.drain_expired.subscribe();
        let (span, headers) = traces::push_span(target, &endpoint.version, trace);
        let push = self
            .client
            .push(
                &endpoint.url,
                &secrets,
                body,
                timeout.to_std(),
                // Signatures carry wall-clock time even when a dev server's
                // clock was skipped: receivers check it against theirs.
                SystemClock.now().millis() / 1000,
                headers.as_ref(),
            )
            .instrument(span.clone());
        let delivery = tokio::select! {
            d = push => {
                let now = self.applier.clock().now();
                self.push_errors.note(&endpoint.namespace, &endpoint.task_queue, &endpoint.version, &d, now);
                d
            }
            // The endpoint may still answer, but nobody would record it:
            // hand the push back so that another node sends it again.
            () = turned_true(&mut expired) => {
                Delivery::Refused("the node shut down before the answer came".into())
            }
        };
        let seconds = begun.elapsed().as_secs_f64();
        let outcome = answer::outcome(&delivery);
        traces::push_done(&span, outcome);
        telemetry::push_done(target, &endpoint.version, outcome, seconds);
        delivery
    }

    /// Feeds an outcome back. A stale refusal is normal (a duplicate or
    /// late answer lost the race) and only logged; the error is returned for
    /// callers that can do better.
    async fn report(&self, state: &RunState, cmd: Command) -> Result<(), apply::Error> {
        self.report_with_state(state, cmd).await.map(|_| ())
    }

    /// [`Self::report`], returning the committed state.
    async fn report_with_state(
        &self,
        state: &RunState,
        cmd: Command,
    ) -> Result<Arc<RunState>, apply::Error> {
        let res = self
            .applier
            .record(&state.namespace, state.run_id, cmd)
            .await;
        match &res {
            Ok(_) => {}
            Err(apply::Error::Rejected(r @ (Rejection::Stale(_) | Rejection::RunClosed(_)))) => {
                tracing::debug!(run_id = %state.run_id, reason = %r, "late answer ignored");
            }
            Err(e) => {
                tracing::warn!(run_id = %state.run_id, error = %e, "recording a push outcome failed")
            }
        }
        res
    }

    /// The endpoint a run's push for `queue` goes to: the version the run
    /// is pinned to on its own queue (Lambda-alias style: a run's code
    /// never changes under it), the current version on any other queue.
    async fn route(
        &self,
        state: &RunState,
        queue: &TaskQueue,
    ) -> Result<Option<Endpoint>, crate::store::Error> {
        let endpoints = self.applier.endpoints();
        match &state.pinned_version {
            Some(v) if queue == &state.task_queue => {
                endpoints.version(&state.namespace, queue, v).await
            }
            _ => endpoints.current(&state.namespace, queue).await,
        }
    }

    fn limit(&self, endpoint: &Endpoint) -> Arc<Semaphore> {
        let key = (
            (endpoint.namespace.clone(), endpoint.task_queue.clone()),
            endpoint.version.clone(),
        );
        let max = endpoint.max_concurrency.max(1);
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        let entry = limits
            .entry(key)
            .or_insert_with(|| (max, Arc::new(Semaphore::new(max as usize))));
        if entry.0 != max {
            *entry = (max, Arc::new(Semaphore::new(max as usize)));
        }
        entry.1.clone()
    }
}

impl Querier {
    /// Resolves the references of what is sent to `endpoint` about the
    /// run (docs/protocol.md §9.1): history pages, checkpoint answers.
    pub fn resolver<'a>(
        &'a self,
        namespace: &'a Namespace,
        run_id: crate::ids::RunId,
        endpoint: &Endpoint,
    ) -> payloads::Resolver<'a> {
        payloads::Resolver {
            store: self.inner.applier.store().as_ref(),
            namespace,
            run_id,
            references: payloads::takes_references(endpoint),
            budget: self.inner.options.push_payload_bytes,
        }
    }

    /// Why a push of the run waits for its endpoint's flow control on this
    /// node, if one does.
    pub fn waiting_reason(&self, run_id: crate::ids::RunId) -> Option<String> {
        self.inner.flow.reason(run_id)
    }

    /// The last failed pushes this node sent to `endpoint`, newest first.
    pub fn push_errors(&self, endpoint: &Endpoint) -> Vec<PushError> {
        self.inner
            .push_errors
            .of(&endpoint.namespace, &endpoint.task_queue, &endpoint.version)
    }

    /// Pushes a query for the run `state` describes and returns the answer.
    /// Works on closed runs too: the handler replays the full history.
    pub async fn query(
        &self,
        state: &RunState,
        name: &str,
        args: &Value,
    ) -> Result<Value, QueryError> {
        let settled = self.settled(state).await?;
        let state = &settled;
        let endpoint = self.endpoint(state).await?;
        let (persisted, pages, inlined) = self.history(state, &endpoint).await?;
        let request = PushRequest::Query(wire::QueryRequest {
            run: run_history(state, persisted.bytes(), pages, inlined.as_ref()),
            query_name: name,
            query_args: args,
        });
        match self
            .call::<wire::QueryResponse>(state, &endpoint, &request)
            .await?
        {
            wire::QueryResponse {
                result: Some(result),
                failure: None,
            } => Ok(result),
            wire::QueryResponse {
                result: None,
                failure: Some(failure),
            } => Err(QueryError::Failed(failure)),
            _ => Err(QueryError::Unreachable(
                "query",
                "the answer must carry exactly one of `result` and `failure`".into(),
            )),
        }
    }

    /// Pushes an update's validation for the run `state` describes: the
    /// handler replays the history and runs the update's validator only.
    /// `Ok(None)` means accepted, `Ok(Some(failure))` rejected.
    pub async fn validate_update(
        &self,
        state: &RunState,
        update: &Update,
    ) -> Result<Option<Failure>, QueryError> {
        let settled = self.settled(state).await?;
        let state = &settled;
        let endpoint = self.endpoint(state).await?;
        let (persisted, pages, inlined) = self.history(state, &endpoint).await?;
        let request = PushRequest::UpdateValidation(wire::UpdateValidationRequest {
            run: run_history(state, persisted.bytes(), pages, inlined.as_ref()),
            update_id: &update.update_id,
            update_name: &update.update_name,
            update_args: &update.input,
        });
        match self
            .call::<wire::UpdateValidationResponse>(state, &endpoint, &request)
            .await?
        {
            wire::UpdateValidationResponse {
                accepted: Some(true),
                failure: None,
            } => Ok(None),
            wire::UpdateValidationResponse {
                accepted: None | Some(false),
                failure: Some(failure),
            } => Ok(Some(failure)),
            _ => Err(QueryError::Unreachable(
                "update's validation",
                "the answer must be `{\"accepted\": true}` or carry a `failure`".into(),
            )),
        }
    }

    /// The run as a query must see it (DESIGN.md invariant 8): with every
    /// event accepted so far in its history. Events accepted while a
    /// workflow task is in flight are buffered until it completes, so a
    /// query or an update validation waits for that (at most
    /// [`sync_wait`]; after that it answers from what is recorded).
    async fn settled(&self, state: &RunState) -> Result<RunState, QueryError> {
        if state.buffered.is_empty() {
            return Ok(state.clone());
        }
        let wait = sync_wait(state);
        self.inner
            .applier
            .wait_for(state.clone(), wait, |s| s.buffered.is_empty())
            .await
            .map_err(|e| match e {
                apply::Error::Store(e) => QueryError::Store(e),
                other => QueryError::Unreachable("query", other.to_string()),
            })
    }

    /// One synchronous push to the run's endpoint, bounded by
    /// [`sync_wait`]; the answer parsed as `T`.
    /// The endpoint a query or an update's validation of the run goes to.
    async fn endpoint(&self, state: &RunState) -> Result<Endpoint, QueryError> {
        self.inner
            .route(state, &state.task_queue)
            .await?
            .ok_or_else(|| QueryError::NoEndpoint(no_endpoint(state, &state.task_queue)))
    }

    /// The history a query or an update's validation carries: all of it,
    /// or paged (docs/protocol.md §5.10), never sticky.
    async fn history(
        &self,
        state: &RunState,
        endpoint: &Endpoint,
    ) -> Result<(PushedHistory, wire::Pages, Option<payloads::Inlined>), QueryError> {
        let deadline = self
            .inner
            .applier
            .clock()
            .now()
            .saturating_add(sync_wait(state));
        Ok(self
            .inner
            .push_history(state, endpoint, None, deadline)
            .await?)
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        state: &RunState,
        endpoint: &Endpoint,
        request: &PushRequest<'_>,
    ) -> Result<T, QueryError> {
        let inner = &self.inner;
        let timeout = sync_wait(state);
        let asked = match request {
            PushRequest::UpdateValidation(_) => "update's validation",
            _ => "query",
        };
        let permit = inner
            .admitted
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| QueryError::Unreachable(asked, "the node is shutting down".into()))?;
        let target = PushTarget {
            namespace: &state.namespace.0,
            task_queue: &state.task_queue.0,
            kind: match request {
                PushRequest::UpdateValidation(_) => TaskKind::UpdateValidation,
                _ => TaskKind::Query,
            },
        };
        match inner
            .send(
                endpoint,
                request,
                timeout,
                permit,
                &target,
                state.trace_context.as_ref(),
            )
            .await
        {
            Delivery::Answered { status, body } if status == StatusCode::OK => wire::parse(&body)
                .map_err(|e| QueryError::Unreachable(asked, format!("unparseable answer: {e}"))),
            Delivery::Answered { status, body } => Err(QueryError::Unreachable(
                asked,
                format!("endpoint answered {status}: {}", snippet(&body)),
            )),
            Delivery::Refused(e) | Delivery::Failed(e) => Err(QueryError::Unreachable(asked, e)),
            Delivery::TimedOut => Err(QueryError::Unreachable(
                asked,
                format!("no answer within {timeout}"),
            )),
        }
    }
}

/// How long a push keeps retrying store reads that fail transiently before
/// leaving the work to its durable row (a workflow task's lease, an
/// activity attempt's start-to-close timer).
const STORE_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `call` until it succeeds, retrying transient store failures with
/// back-off for up to [`STORE_RETRY_FOR`]; `None` (logged once) if it
/// never does or fails for good.
async fn retrying<T, F, Fut>(state: &RunState, what: &str, mut call: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::store::Error>>,
{
    let begun = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        match call().await {
            Ok(v) => return Some(v),
            Err(e) if e.is_transient() && begun.elapsed() < STORE_RETRY_FOR => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(2));
            }
            Err(e) => {
                tracing::warn!(run_id = %state.run_id, error = %e, "{what} failed; the durable task row will redo the push");
                return None;
            }
        }
    }
}

/// Waits until `flag` is true (or its sender is gone).
async fn turned_true(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|on| *on).await;
}

/// Why a run's push for `queue` has nowhere to go.
fn no_endpoint(state: &RunState, queue: &TaskQueue) -> String {
    match &state.pinned_version {
        Some(v) if queue == &state.task_queue => format!(
            "version {v} of task queue {queue}, which the run is pinned to, is not registered"
        ),
        _ => format!("no endpoint registered for task queue {queue}"),
    }
}

fn run_history<'a>(
    state: &'a RunState,
    persisted: &'a [u8],
    pages: wire::Pages,
    payloads: Option<&'a payloads::Inlined>,
) -> wire::RunHistory<'a> {
    wire::RunHistory {
        namespace: &state.namespace,
        workflow_id: &state.workflow_id,
        run_id: state.run_id,
        workflow_type: &state.workflow_type,
        task_queue: &state.task_queue,
        history: wire::History {
            persisted,
            transient: &[],
        },
        history_length: state.next_event_id - 1,
        pages,
        payloads,
    }
}

/// The longest a query or an update's validation waits, for buffered
/// events and then for its push: the run's workflow task timeout, at
/// least 1 s and at most [`SYNC_WAIT_MAX`], so that a caller waiting on a
/// run with a long task timeout and a slow or unreachable handler still
/// gets an answer well within a client's read timeout.
fn sync_wait(state: &RunState) -> Duration {
    state
        .workflow_task_timeout
        .clamp(Duration::from_secs(1), SYNC_WAIT_MAX)
}

/// The bound of [`sync_wait`] (docs/protocol.md §5.5).
const SYNC_WAIT_MAX: Duration = Duration(10_000);
