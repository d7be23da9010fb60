//! Prometheus metrics: every name, label and bucket a node reports lives
//! here, behind one typed function per measurement, and `/metrics` renders
//! them (the `metrics` facade with `metrics-exporter-prometheus`'s
//! recorder; no hand-formatted exposition).
//!
//! Names follow Prometheus conventions (`baton_` prefix, base units,
//! `_total` counters, `_seconds` histograms) and Temporal's meaning where
//! one exists (schedule-to-start latency, workflow closes by status).
//! Labels are bounded: namespaces, task queues, workflow and activity
//! types, endpoint versions, route templates, outcomes; never a run or
//! workflow id.
//!
//! The recorder is process-wide (the `metrics` facade has one global
//! recorder), installed once by [`install`]; a process running several
//! nodes (tests) reports their sum. Until it is installed the functions
//! here record nothing and cost next to nothing.

pub mod logs;
pub mod traces;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::engine::{Event, EventAttributes, Queue, RunState};
use crate::store::Store;
use crate::time::Clock;

/// How often the queue-depth, open-runs and pool gauges are read from the
/// store.
const DEPTH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Latency buckets in seconds, from 1 ms to 1 min.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Workflow durations in seconds, from 10 ms to a day.
const WORKFLOW_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same
/// handle) and describes every metric.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("baton_workflow_duration_seconds".into()),
                    WORKFLOW_BUCKETS,
                )
                .and_then(|b| b.set_buckets(LATENCY_BUCKETS));
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                // Only non-empty constant bucket lists are passed above.
                Err(e) => unreachable!("invalid histogram buckets: {e}"),
            };
            let handle = recorder.handle();
            // Another recorder may have been installed first (a test
            // harness); the handle then renders nothing, which is all
            // that can be done.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

/// The exposition text of everything recorded so far.
pub fn render() -> String {
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "baton_api_requests_total",
        "API requests answered, by method, route template and status class."
    );
    describe_histogram!(
        "baton_api_request_duration_seconds",
        Unit::Seconds,
        "API request latency, by method and route template."
    );
    describe_counter!(
        "baton_workflows_started_total",
        "Workflow runs started, by namespace and workflow type."
    );
    describe_counter!(
        "baton_workflows_closed_total",
        "Workflow runs closed, by namespace, workflow type and status (completed, failed, timed_out, canceled, terminated, continued_as_new)."
    );
    describe_histogram!(
        "baton_workflow_duration_seconds",
        Unit::Seconds,
        "Run start to close, by namespace and workflow type."
    );
    describe_counter!(
        "baton_pushes_total",
        "Pushes sent, by namespace, task queue, endpoint version, kind (workflow, activity, query, update_validation) and outcome (answered, unauthorized, client_error, server_error, refused, timeout, failed)."
    );
    describe_histogram!(
        "baton_push_duration_seconds",
        Unit::Seconds,
        "Push send to answer, by namespace, task queue and kind."
    );
    describe_histogram!(
        "baton_task_schedule_to_start_seconds",
        Unit::Seconds,
        "Queueing delay of a task: scheduled (or, for an activity, attempt started) to push sent, by namespace, task queue and kind."
    );
    describe_counter!(
        "baton_activity_attempts_total",
        "Activity attempts answered, by namespace, activity type and outcome (completed, failed, canceled, async, undelivered, no_answer)."
    );
    describe_counter!(
        "baton_activity_retries_total",
        "Activity attempts after the first sent, by namespace and activity type."
    );
    describe_gauge!(
        "baton_pushes_in_flight",
        "Pushes this node has sent and awaits answers for, by namespace and task queue."
    );
    describe_gauge!(
        "baton_pushes_waiting",
        "Pushes waiting on this node for their endpoint's max_concurrency, by namespace and task queue: the backlog an autoscaler reads."
    );
    describe_gauge!(
        "baton_pushes_waiting_on_keys",
        "Pushes waiting on this node for a concurrency-key slot of their endpoint, by namespace and task queue (never by key value: cardinality)."
    );
    describe_counter!(
        "baton_pushes_throttled_total",
        "Pushes that had to wait for their endpoint's flow control, by namespace, task queue and reason (concurrency_key, rate_limit)."
    );
    describe_gauge!(
        "baton_tasks_due",
        "Task rows due and not claimed, by namespace, queue (push, timer, transfer) and task queue (push rows; empty otherwise): the backlog an autoscaler reads. Read from the store: every node reports the cluster's value."
    );
    describe_gauge!(
        "baton_tasks_in_flight",
        "Task rows claimed and not yet due again (pushes in flight under their lease), by namespace, queue and task queue. Every node reports the cluster's value."
    );
    describe_gauge!(
        "baton_tasks",
        "Task rows by namespace, queue and task queue: pending pushes (due, backing off or in flight) and transfers; timer rows only once due. Every node reports the cluster's value."
    );
    describe_gauge!(
        "baton_task_oldest_due_age_seconds",
        Unit::Seconds,
        "How long the oldest due, unclaimed task row has been due, by namespace, queue and task queue."
    );
    describe_gauge!(
        "baton_workflows_open",
        "Open (running) workflow runs by namespace, counted in the store every 5 s. Every node reports the cluster's value."
    );
    describe_counter!(
        "baton_store_conflicts_total",
        "Run commits that lost an optimistic-concurrency race (another writer moved the run's version first) and were retried."
    );
    describe_gauge!(
        "baton_db_connections",
        "This node's database connections by state (in_use, idle), sampled every 5 s."
    );
    describe_gauge!(
        "baton_db_connections_max",
        "The most database connections this node's pool opens."
    );
    describe_histogram!(
        "baton_store_commit_duration_seconds",
        Unit::Seconds,
        "Store commits of run changes, by outcome (ok, conflict, error)."
    );
    describe_counter!(
        "baton_api_denied_total",
        "API requests refused by key checks, by reason (unknown_key, revoked, expired, namespace, role)."
    );
    describe_counter!(
        "baton_schedule_actions_total",
        "Workflows started by schedules, by namespace."
    );
    describe_counter!(
        "baton_batch_runs_total",
        "Runs a batch job operated on, by namespace, operation and outcome (done, failed)."
    );
    describe_counter!(
        "baton_retention_deleted_runs_total",
        "Closed runs deleted by the retention deleter (with their history), by namespace."
    );
    describe_counter!(
        "baton_retention_deleted_events_total",
        "History events deleted by the retention deleter with their runs, by namespace."
    );
    describe_gauge!(
        "baton_retention_lease_held",
        "1 for each namespace whose retention lease this node holds, 0 once it let go."
    );
    describe_gauge!(
        "baton_retention_last_pass_timestamp_seconds",
        "When this node last finished a retention pass of a namespace (it had caught up), by namespace."
    );
    describe_histogram!(
        "baton_timer_lateness_seconds",
        Unit::Seconds,
        "Due time to firing of durable timers and other timer-queue rows."
    );
}

/// Status classes of API answers (`2xx` …).
fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// An API request was answered; `route` is the matched route template
/// (or `unmatched`).
pub fn api_request(method: &str, route: &str, status: u16, seconds: f64) {
    let (method, route) = (method.to_owned(), route.to_owned());
    counter!("baton_api_requests_total", "method" => method.clone(), "route" => route.clone(), "status_class" => status_class(status))
        .increment(1);
    histogram!("baton_api_request_duration_seconds", "method" => method, "route" => route)
        .record(seconds);
}

/// An API request was refused by `api::access`; `reason` is one of a
/// fixed few (unknown_key, revoked, expired, namespace, role).
pub fn api_denied(reason: &'static str) {
    counter!("baton_api_denied_total", "reason" => reason).increment(1);
}

/// The run-lifecycle events of a committed change of `state`'s run.
pub fn committed(state: &RunState, events: &[Event]) {
    let labels = || {
        [
            ("namespace", state.namespace.0.clone()),
            ("workflow_type", state.workflow_type.clone()),
        ]
    };
    for event in events {
        let status = match &event.attributes {
            EventAttributes::WorkflowExecutionStarted(_) => {
                counter!("baton_workflows_started_total", &labels()).increment(1);
                continue;
            }
            EventAttributes::WorkflowExecutionCompleted(_) => "completed",
            EventAttributes::WorkflowExecutionFailed(_) => "failed",
            EventAttributes::WorkflowExecutionTimedOut(_) => "timed_out",
            EventAttributes::WorkflowExecutionCanceled(_) => "canceled",
            EventAttributes::WorkflowExecutionTerminated(_) => "terminated",
            EventAttributes::WorkflowExecutionContinuedAsNew(_) => "continued_as_new",
            _ => continue,
        };
        let mut closed = labels().to_vec();
        closed.push(("status", status.to_owned()));
        counter!("baton_workflows_closed_total", &closed).increment(1);
        let seconds = event.event_time.since(state.start_time).0 as f64 / 1e3;
        histogram!("baton_workflow_duration_seconds", &labels()).record(seconds);
    }
}

/// What kind of task a push carried.
#[derive(Clone, Copy)]
pub enum TaskKind {
    Workflow,
    Activity,
    Query,
    UpdateValidation,
}

impl TaskKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TaskKind::Workflow => "workflow",
            TaskKind::Activity => "activity",
            TaskKind::Query => "query",
            TaskKind::UpdateValidation => "update_validation",
        }
    }
}

/// Where a push went.
pub struct PushTarget<'a> {
    pub namespace: &'a str,
    pub task_queue: &'a str,
    pub kind: TaskKind,
}

impl PushTarget<'_> {
    fn labels(&self) -> [(&'static str, String); 3] {
        [
            ("namespace", self.namespace.to_owned()),
            ("task_queue", self.task_queue.to_owned()),
            ("kind", self.kind.as_str().to_owned()),
        ]
    }
}

/// A push is about to be sent, `queued_seconds` after its task was
/// scheduled (an activity: after its attempt started).
pub fn push_sent(target: &PushTarget<'_>, queued_seconds: f64) {
    histogram!("baton_task_schedule_to_start_seconds", &target.labels()).record(queued_seconds);
}

/// A push's answer (or the lack of one) came back after `seconds`.
pub fn push_done(target: &PushTarget<'_>, version: &str, outcome: &'static str, seconds: f64) {
    let labels = target.labels();
    histogram!("baton_push_duration_seconds", &labels).record(seconds);
    let mut labels = labels.to_vec();
    labels.push(("version", version.to_owned()));
    labels.push(("outcome", outcome.to_owned()));
    counter!("baton_pushes_total", &labels).increment(1);
}

/// A node-local gauge of pushes by namespace and task queue.
#[derive(Clone, Copy)]
pub enum PushGauge {
    /// Sent, awaiting the answer.
    InFlight,
    /// Waiting for the endpoint's `max_concurrency`.
    Waiting,
    /// Waiting for a slot of one of the endpoint's concurrency keys.
    WaitingOnKeys,
}

/// Counts one push in `gauge` until the returned guard is dropped.
pub fn push_gauge(gauge: PushGauge, namespace: &str, task_queue: &str) -> GaugeGuard {
    let name = match gauge {
        PushGauge::InFlight => "baton_pushes_in_flight",
        PushGauge::Waiting => "baton_pushes_waiting",
        PushGauge::WaitingOnKeys => "baton_pushes_waiting_on_keys",
    };
    let gauge =
        gauge!(name, "namespace" => namespace.to_owned(), "task_queue" => task_queue.to_owned());
    gauge.increment(1.0);
    GaugeGuard(gauge)
}

/// A push had to wait for its endpoint's flow control (`reason`:
/// `concurrency_key` or `rate_limit`).
pub fn push_throttled(namespace: &str, task_queue: &str, reason: &'static str) {
    counter!("baton_pushes_throttled_total", "namespace" => namespace.to_owned(),
        "task_queue" => task_queue.to_owned(), "reason" => reason)
    .increment(1);
}

/// Takes its push out of a gauge when dropped.
pub struct GaugeGuard(metrics::Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// An activity attempt's push was answered (or not) with `outcome`.
pub fn activity_attempt(namespace: &str, activity_type: &str, attempt: u32, outcome: &'static str) {
    let labels = [
        ("namespace", namespace.to_owned()),
        ("activity_type", activity_type.to_owned()),
    ];
    if attempt > 1 {
        counter!("baton_activity_retries_total", &labels).increment(1);
    }
    let mut labels = labels.to_vec();
    labels.push(("outcome", outcome.to_owned()));
    counter!("baton_activity_attempts_total", &labels).increment(1);
}

/// A store commit of run changes ended with `outcome` (ok, conflict,
/// error) after `seconds`.
pub fn store_commit(outcome: &'static str, seconds: f64) {
    histogram!("baton_store_commit_duration_seconds", "outcome" => outcome).record(seconds);
    if outcome == "conflict" {
        counter!("baton_store_conflicts_total").increment(1);
    }
}

/// A schedule of `namespace` started `runs` workflows in one tick.
pub fn schedule_actions(namespace: &str, runs: usize) {
    if runs > 0 {
        counter!("baton_schedule_actions_total", "namespace" => namespace.to_owned())
            .increment(runs as u64);
    }
}

/// A batch job of `namespace` carried out `operation` on one run, with
/// `outcome` `done` or `failed`.
pub fn batch_run(namespace: &str, operation: &'static str, outcome: &'static str) {
    counter!(
        "baton_batch_runs_total",
        "namespace" => namespace.to_owned(),
        "operation" => operation,
        "outcome" => outcome
    )
    .increment(1);
}

/// A batch of the retention deleter removed `runs` closed runs of `ns`
/// and `events` events of theirs.
pub fn retention_deleted(ns: &str, runs: u64, events: u64) {
    let ns = ns.to_owned();
    counter!("baton_retention_deleted_runs_total", "namespace" => ns.clone()).increment(runs);
    counter!("baton_retention_deleted_events_total", "namespace" => ns).increment(events);
}

/// This node took (`true`) or let go of (`false`) the retention lease of
/// `ns`.
pub fn retention_lease_held(ns: &str, held: bool) {
    gauge!("baton_retention_lease_held", "namespace" => ns.to_owned())
        .set(f64::from(u8::from(held)));
}

/// This node finished a retention pass of `ns` at `at` (Unix seconds).
pub fn retention_pass_finished(ns: &str, at: f64) {
    gauge!("baton_retention_last_pass_timestamp_seconds", "namespace" => ns.to_owned()).set(at);
}

/// A timer-queue row fired `seconds` after it was due.
pub fn timer_fired(seconds: f64) {
    histogram!("baton_timer_lateness_seconds").record(seconds);
}

fn queue_label(queue: Queue) -> &'static str {
    match queue {
        Queue::Push => "push",
        Queue::Timer => "timer",
        Queue::Transfer => "transfer",
    }
}

/// Refreshes the store-wide gauges every [`DEPTH_INTERVAL`] until
/// `shutdown`, never per scrape: the queue depths by (namespace, queue,
/// task queue) and the open runs by namespace (two grouped counts over
/// indexes; a series that emptied is set back to zero), and this node's
/// connection pool usage.
pub async fn queue_depths(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut seen: BTreeSet<[(&'static str, String); 3]> = BTreeSet::new();
    let mut open_seen: BTreeSet<String> = BTreeSet::new();
    loop {
        let now = clock.now();
        match store.queue_depths(now).await {
            Ok(depths) => {
                let mut current = BTreeSet::new();
                for d in depths {
                    let labels = [
                        ("namespace", d.namespace.0.clone()),
                        ("queue", queue_label(d.queue).to_owned()),
                        ("task_queue", d.task_queue.map(|q| q.0).unwrap_or_default()),
                    ];
                    gauge!("baton_tasks_due", &labels).set(d.due as f64);
                    gauge!("baton_tasks", &labels).set(d.rows as f64);
                    gauge!("baton_tasks_in_flight", &labels).set(d.in_flight as f64);
                    let age = d.oldest_due.map_or(0, |at| now.since(at).0);
                    gauge!("baton_task_oldest_due_age_seconds", &labels).set(age as f64 / 1e3);
                    current.insert(labels);
                }
                for labels in seen.difference(&current) {
                    for name in [
                        "baton_tasks_due",
                        "baton_tasks",
                        "baton_tasks_in_flight",
                        "baton_task_oldest_due_age_seconds",
                    ] {
                        gauge!(name, labels).set(0.0);
                    }
                }
                seen = current;
            }
            Err(e) => tracing::debug!(error = %e, "reading queue depths failed"),
        }
        match store.open_runs().await {
            Ok(open) => {
                let current: BTreeSet<String> = open.iter().map(|(ns, _)| ns.0.clone()).collect();
                for (ns, runs) in open {
                    gauge!("baton_workflows_open", "namespace" => ns.0).set(runs as f64);
                }
                for ns in open_seen.difference(&current) {
                    gauge!("baton_workflows_open", "namespace" => ns.clone()).set(0.0);
                }
                open_seen = current;
            }
            Err(e) => tracing::debug!(error = %e, "counting open runs failed"),
        }
        if let Some(pool) = store.pool_usage() {
            gauge!("baton_db_connections", "state" => "in_use").set(pool.in_use as f64);
            gauge!("baton_db_connections", "state" => "idle").set(pool.idle as f64);
            gauge!("baton_db_connections_max").set(pool.max as f64);
        }
        tokio::select! {
            _ = tokio::time::sleep(DEPTH_INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::status_class;

    #[test]
    fn status_classes() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(201), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(101), "1xx");
    }
}
