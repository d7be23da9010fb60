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
//! Per endpoint, at most `max_concurrency` pushes are in flight from this
//! node, so a function is never overrun.

mod client;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::apply::{self, Applier, Push};
use crate::claim;
use crate::engine::{
    self, ActivityPhase, ActivityToken, Command, Dispatch, Event, Failure, Queue, Rejection,
    RunState, Task, TaskToken, TokenKind, Update, WorkflowTaskToken,
};
use crate::ids::{Namespace, TaskQueue};
use crate::signing::Secret;
use crate::store::{Endpoint, TaskRow};
use crate::time::{Clock, Duration, SystemClock};

use client::{Client, Delivery};
use wire::{ActivityTaskRequest, ActivityTaskResponse, PushRequest, WorkflowTaskRequest};

#[derive(Clone, Debug)]
pub struct Options {
    /// Largest answer read from an endpoint.
    pub max_response_bytes: usize,
    pub claim: claim::Options,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_response_bytes: 8 * 1024 * 1024,
            claim: claim::Options::default(),
        }
    }
}

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
    client: Client,
    options: Options,
    /// Concurrency limiters by endpoint version, with their size.
    limits: Mutex<HashMap<(QueueKey, String), Limiter>>,
}

/// The size a limiter was made with, and the limiter.
type Limiter = (u32, Arc<Semaphore>);

type QueueKey = (Namespace, TaskQueue);

impl Service {
    pub fn new(applier: Applier, options: Options) -> Service {
        let client = Client::new(options.max_response_bytes);
        Service {
            inner: Arc::new(Inner {
                applier,
                client,
                options,
                limits: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn querier(&self) -> Querier {
        Querier {
            inner: self.inner.clone(),
        }
    }

    /// Pushes until `shutdown`: what `apply` hands over, and due rows.
    pub async fn run(
        self,
        mut pushes: mpsc::UnboundedReceiver<Push>,
        shutdown: watch::Receiver<bool>,
    ) {
        let inner = self.inner.clone();
        let claims = tokio::spawn(claim::run(
            inner.applier.store().clone(),
            inner.applier.clock().clone(),
            Queue::Push,
            inner.options.claim.clone(),
            shutdown.clone(),
            move |row| {
                tokio::spawn(inner.clone().handle_row(row));
            },
        ));
        let mut shutdown = shutdown;
        loop {
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(push) => {
                        tokio::spawn(self.inner.clone().handle_push(push));
                    }
                    None => break,
                },
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        let _ = claims.await;
    }
}

impl Inner {
    async fn handle_push(self: Arc<Self>, push: Push) {
        match push.dispatch {
            Dispatch::WorkflowTask => self.push_workflow_task(&push.state).await,
            Dispatch::ActivityTask { scheduled_event_id } => {
                self.push_activity_task(&push.state, scheduled_event_id)
                    .await;
            }
        }
    }

    /// A row of the push queue came due: a retry after back-off, or work
    /// whose lease ran out (its node died or took too long).
    async fn handle_row(self: Arc<Self>, row: TaskRow) {
        let store = self.applier.store();
        match row.task {
            Task::WorkflowTask => match store.load_run(&row.namespace, row.run_id).await {
                Ok(Some(record)) if record.state.workflow_task.is_some() => {
                    self.push_workflow_task(&record.state).await;
                }
                Ok(_) => self.delete_row(&row).await,
                Err(e) => tracing::warn!(run_id = %row.run_id, error = %e, "loading run failed"),
            },
            Task::ActivityTask { scheduled_event_id } => {
                let cmd = Command::StartActivityAttempt { scheduled_event_id };
                // On success the engine's Dispatch effect comes back through
                // `apply` as a push.
                match self.applier.apply(&row.namespace, row.run_id, cmd).await {
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

    async fn push_workflow_task(&self, state: &RunState) {
        let pinned;
        let state = match &state.pinned_version {
            Some(_) => state,
            None => match self.pin(state).await {
                Some(s) => {
                    pinned = s;
                    &*pinned
                }
                None => return,
            },
        };
        let ctx = self.applier.ctx();
        let Some(view) = engine::workflow_task_view(state, &ctx) else {
            return;
        };
        let ns = &state.namespace;
        let token = view.token;
        let endpoint = match self.route(state, &state.task_queue).await {
            Ok(Some(e)) => e,
            Ok(None) => {
                let error = no_endpoint(state, &state.task_queue);
                self.workflow_undelivered(state, token, false, error).await;
                return;
            }
            Err(e) => {
                tracing::warn!(run_id = %state.run_id, error = %e, "looking up endpoint failed");
                return;
            }
        };
        let persisted = match self.applier.history(state).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(run_id = %state.run_id, error = %e, "reading history failed");
                return;
            }
        };
        let history = wire::History {
            persisted: &persisted,
            transient: &view.transient_events,
        };
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
            history_length: (persisted.len() + view.transient_events.len()) as i64,
            history,
            history_size_bytes: view.history_size_bytes,
            suggest_continue_as_new: view.suggest_continue_as_new,
        });
        let delivery = self
            .send(&endpoint, &request, state.workflow_task_timeout)
            .await;
        let cmd = match delivery {
            Delivery::Answered { status, body } if status == StatusCode::OK => {
                match wire::parse::<wire::WorkflowTaskResponse>(&body) {
                    Ok(wire::WorkflowTaskResponse {
                        commands: Some(commands),
                        failure: None,
                        identity,
                    }) => Command::CompleteWorkflowTask {
                        token,
                        commands,
                        identity,
                    },
                    Ok(wire::WorkflowTaskResponse {
                        commands: None,
                        failure: Some(f),
                        ..
                    }) => Command::FailWorkflowTask {
                        token,
                        cause: f.cause,
                        failure: f.failure,
                    },
                    Ok(_) => undelivered(
                        token,
                        "answer must carry exactly one of `commands` and `failure`",
                    ),
                    Err(e) => undelivered(token, format!("unparseable answer: {e}")),
                }
            }
            Delivery::Answered { status, body } => undelivered(
                token,
                format!("endpoint answered {status}: {}", snippet(&body)),
            ),
            Delivery::Refused(e) | Delivery::Failed(e) => undelivered(token, e),
            Delivery::TimedOut => Command::WorkflowTaskUndelivered {
                token,
                timed_out: true,
                error: format!("no answer within {}", state.workflow_task_timeout),
            },
        };
        let _ = self.report(state, cmd).await;
    }

    /// Pins a run that started unpinned to its queue's current version,
    /// before its first push; returns the pinned state. With no endpoint
    /// registered the task is reported undelivered and retried, and `None`
    /// is returned.
    async fn pin(&self, state: &RunState) -> Option<Arc<RunState>> {
        let current = self
            .applier
            .endpoints()
            .current(&state.namespace, &state.task_queue)
            .await;
        let version = match current {
            Ok(Some(e)) => e.version,
            Ok(None) => {
                if let Some(view) = engine::workflow_task_view(state, &self.applier.ctx()) {
                    let error = no_endpoint(state, &state.task_queue);
                    self.workflow_undelivered(state, view.token, false, error)
                        .await;
                }
                return None;
            }
            Err(e) => {
                tracing::warn!(run_id = %state.run_id, error = %e, "looking up endpoint failed");
                return None;
            }
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

    async fn push_activity_task(&self, state: &RunState, scheduled_event_id: i64) {
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
        let endpoint = match self.route(state, &act.task_queue).await {
            Ok(Some(e)) => e,
            Ok(None) => {
                let error = no_endpoint(state, &act.task_queue);
                let _ = self
                    .report(state, Command::ActivityUndelivered { token, error })
                    .await;
                return;
            }
            Err(e) => {
                tracing::warn!(run_id = %state.run_id, error = %e, "looking up endpoint failed");
                return;
            }
        };
        let mut deadline = since.saturating_add(act.start_to_close_timeout);
        if let Some(s2c) = act.schedule_to_close_timeout {
            deadline = deadline.min(act.scheduled_time.saturating_add(s2c));
        }
        let now = self.applier.clock().now();
        let timeout = deadline.since(now);
        if timeout.is_zero() {
            // Too late to start; the start-to-close timer settles it.
            return;
        }
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
            input: &act.input,
            attempt: act.attempt,
            idempotency_key: format!("{}/{}", state.run_id, act.activity_id),
            scheduled_time: act.scheduled_time,
            started_time: since,
            deadline,
            heartbeat_timeout: act.heartbeat_timeout,
            heartbeat_details: act.heartbeat_details.as_ref(),
        });
        let delivery = self.send(&endpoint, &request, timeout).await;
        let attempt_failed = |message: String, error_type: &str| Command::FailActivity {
            token,
            failure: Failure::new(message, error_type),
        };
        let cmd = match delivery {
            Delivery::Answered { status, body } if status == StatusCode::OK => {
                match wire::parse::<ActivityTaskResponse>(&body) {
                    Ok(ActivityTaskResponse {
                        result: Some(result),
                        failure: None,
                        canceled: None,
                    }) => Command::CompleteActivity { token, result },
                    Ok(ActivityTaskResponse {
                        result: None,
                        failure: Some(failure),
                        canceled: None,
                    }) => Command::FailActivity { token, failure },
                    Ok(ActivityTaskResponse {
                        result: None,
                        failure: None,
                        canceled: Some(c),
                    }) => Command::ReportActivityCanceled {
                        token,
                        details: c.details,
                    },
                    Ok(_) => attempt_failed(
                        "answer must carry exactly one of `result`, `failure` and `canceled`"
                            .into(),
                        "InvalidActivityAnswer",
                    ),
                    Err(e) => {
                        attempt_failed(format!("unparseable answer: {e}"), "InvalidActivityAnswer")
                    }
                }
            }
            // Accepted for asynchronous completion over REST.
            Delivery::Answered { status, .. } if status == StatusCode::ACCEPTED => return,
            // The handler never ran: a routing or signing problem.
            Delivery::Answered { status, body } if status.is_client_error() => {
                Command::ActivityUndelivered {
                    token,
                    error: format!("endpoint answered {status}: {}", snippet(&body)),
                }
            }
            Delivery::Answered { status, body } => attempt_failed(
                format!("endpoint answered {status}: {}", snippet(&body)),
                "HttpError",
            ),
            Delivery::Refused(error) => Command::ActivityUndelivered { token, error },
            Delivery::Failed(e) => attempt_failed(e, "HttpError"),
            // The start-to-close timer fires at the same deadline.
            Delivery::TimedOut => return,
        };
        let answered = matches!(
            cmd,
            Command::CompleteActivity { .. }
                | Command::FailActivity { .. }
                | Command::ReportActivityCanceled { .. }
        );
        match self.report(state, cmd).await {
            // A well-formed answer the engine refuses (a cancellation nobody
            // asked for, oversized details) fails the attempt rather than
            // leaving it to time out.
            Err(apply::Error::Rejected(
                r @ (Rejection::InvalidArgument(_) | Rejection::PayloadTooLarge { .. }),
            )) if answered => {
                let cmd = attempt_failed(format!("answer refused: {r}"), "InvalidActivityAnswer");
                let _ = self.report(state, cmd).await;
            }
            _ => {}
        }
    }

    async fn send(
        &self,
        endpoint: &Endpoint,
        request: &PushRequest<'_>,
        timeout: Duration,
    ) -> Delivery {
        let body = match serde_json::to_vec(request) {
            Ok(b) => b,
            Err(e) => return Delivery::Failed(format!("encoding the request failed: {e}")),
        };
        let secrets: Vec<Secret> = endpoint
            .secrets
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let permits = self.limit(endpoint);
        let Ok(_permit) = permits.acquire().await else {
            return Delivery::Failed("endpoint limiter closed".into());
        };
        self.client
            .push(
                &endpoint.url,
                &secrets,
                body,
                timeout.to_std(),
                // Signatures carry wall-clock time even when a dev server's
                // clock was skipped: receivers check it against theirs.
                SystemClock.now().millis() / 1000,
            )
            .await
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
            .apply(&state.namespace, state.run_id, cmd)
            .await;
        match &res {
            Ok(_) => {}
            Err(apply::Error::Rejected(Rejection::Stale(reason))) => {
                tracing::debug!(run_id = %state.run_id, %reason, "late answer ignored");
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
    /// Pushes a query for the run `state` describes and returns the answer.
    /// Works on closed runs too: the handler replays the full history.
    pub async fn query(
        &self,
        state: &RunState,
        name: &str,
        args: &Value,
    ) -> Result<Value, QueryError> {
        let persisted = self.inner.applier.history(state).await?;
        let request = PushRequest::Query(wire::QueryRequest {
            run: run_history(state, &persisted),
            query_name: name,
            query_args: args,
        });
        match self.call::<wire::QueryResponse>(state, &request).await? {
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
        let persisted = self.inner.applier.history(state).await?;
        let request = PushRequest::UpdateValidation(wire::UpdateValidationRequest {
            run: run_history(state, &persisted),
            update_id: &update.update_id,
            update_name: &update.update_name,
            update_args: &update.input,
        });
        match self
            .call::<wire::UpdateValidationResponse>(state, &request)
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

    /// One synchronous push to the run's endpoint, bounded by the run's
    /// workflow task timeout; the answer parsed as `T`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        state: &RunState,
        request: &PushRequest<'_>,
    ) -> Result<T, QueryError> {
        let inner = &self.inner;
        let endpoint = inner
            .route(state, &state.task_queue)
            .await?
            .ok_or_else(|| QueryError::NoEndpoint(no_endpoint(state, &state.task_queue)))?;
        let timeout = state.workflow_task_timeout.max(Duration::from_secs(1));
        let asked = match request {
            PushRequest::UpdateValidation(_) => "update's validation",
            _ => "query",
        };
        match inner.send(&endpoint, request, timeout).await {
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

/// Why a run's push for `queue` has nowhere to go.
fn no_endpoint(state: &RunState, queue: &TaskQueue) -> String {
    match &state.pinned_version {
        Some(v) if queue == &state.task_queue => format!(
            "version {v} of task queue {queue}, which the run is pinned to, is not registered"
        ),
        _ => format!("no endpoint registered for task queue {queue}"),
    }
}

fn run_history<'a>(state: &'a RunState, persisted: &'a [Event]) -> wire::RunHistory<'a> {
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
        history_length: persisted.len() as i64,
    }
}

fn undelivered(token: WorkflowTaskToken, error: impl Into<String>) -> Command {
    Command::WorkflowTaskUndelivered {
        token,
        timed_out: false,
        error: error.into(),
    }
}

/// The start of an answer body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.trim().to_owned()
}
