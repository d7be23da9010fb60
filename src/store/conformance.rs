//! The store conformance suite: what every [`Store`] backend must do,
//! written once and run against each (tests/store_sqlite.rs,
//! tests/store_postgres.rs).
//!
//! Each case gets a fresh, empty, migrated store from the caller's factory
//! and drives it only through the trait. Times are explicit values, never
//! the clock, so leases are tested by choosing `now` rather than by
//! sleeping. A failing case panics; the suite prints each case's name
//! first, so the failure names its case.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::json;

use crate::engine::{
    self, Command, Ctx, Effect, Event, EventAttributes, Limits, MarkerRecorded, MoveToVersion,
    Queue, RunState, RunStatus, StartRun, Task, Transition,
};
use crate::ids::{Namespace, RunId, TaskQueue, TimerId, WorkflowId};
use crate::time::{Duration, Timestamp};
use crate::visibility::{self, ListQuery};

use super::{
    ApiKeyRecord, BatchRecord, Deletion, Delivery, DeliveryOutcome, Endpoint, Error,
    NamespaceRecord, QueueDepth, RetentionLease, Role, RunChange, RunSummary, ScheduleFilter,
    ScheduleRecord, Store, TaskRow, Wakeup, WebhookRecord,
};
use crate::batch;
use crate::schedule;

/// One case: it gets a fresh store and panics on failure.
pub type Case = fn(Arc<dyn Store>) -> BoxFuture<'static, ()>;

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("namespaces", |s| Box::pin(namespaces(s))),
    ("endpoints", |s| Box::pin(endpoints(s))),
    ("new_run_round_trips", |s| Box::pin(new_run_round_trips(s))),
    ("history_pages", |s| Box::pin(history_pages(s))),
    ("concurrent_commits_conflict", |s| {
        Box::pin(concurrent_commits_conflict(s))
    }),
    ("commit_is_atomic", |s| Box::pin(commit_is_atomic(s))),
    ("one_open_run_per_workflow_id", |s| {
        Box::pin(one_open_run_per_workflow_id(s))
    }),
    ("run_by_request_id", |s| Box::pin(run_by_request_id(s))),
    ("list_runs_filters", |s| Box::pin(list_runs_filters(s))),
    ("list_runs_pages", |s| Box::pin(list_runs_pages(s))),
    ("count_runs", |s| Box::pin(count_runs(s))),
    ("delete_run", |s| Box::pin(delete_run(s))),
    ("payload_links", |s| Box::pin(payload_links(s))),
    ("retention_deletes_expired_runs", |s| {
        Box::pin(retention_deletes_expired_runs(s))
    }),
    ("retention_leases_renew_fence_and_expire", |s| {
        Box::pin(retention_leases_renew_fence_and_expire(s))
    }),
    ("retention_lease_race", |s| {
        Box::pin(retention_lease_race(s))
    }),
    ("tasks_claim_and_lease", |s| {
        Box::pin(tasks_claim_and_lease(s))
    }),
    ("tasks_replace_and_delete", |s| {
        Box::pin(tasks_replace_and_delete(s))
    }),
    ("tasks_dequeue", |s| Box::pin(tasks_dequeue(s))),
    ("tasks_postpone", |s| Box::pin(tasks_postpone(s))),
    ("queue_depths", |s| Box::pin(queue_depths(s))),
    ("dequeue_all_then_enqueue_a_key_again", |s| {
        Box::pin(dequeue_all_then_enqueue_a_key_again(s))
    }),
    ("failed_commits_write_nothing", |s| {
        Box::pin(failed_commits_write_nothing(s))
    }),
    ("claim_race", |s| Box::pin(claim_race(s))),
    ("endpoint_versions_and_pinned_runs", |s| {
        Box::pin(endpoint_versions_and_pinned_runs(s))
    }),
    ("wakeups_on_commit", |s| Box::pin(wakeups_on_commit(s))),
    ("flow_slots_and_buckets", |s| {
        Box::pin(flow_slots_and_buckets(s))
    }),
    ("schedules_round_trip_and_list", |s| {
        Box::pin(schedules_round_trip_and_list(s))
    }),
    ("schedule_commit_is_atomic_with_its_runs", |s| {
        Box::pin(schedule_commit_is_atomic_with_its_runs(s))
    }),
    ("batches_round_trip_list_and_stop", |s| {
        Box::pin(batches_round_trip_list_and_stop(s))
    }),
    ("batches_claim_with_leases_that_fence", |s| {
        Box::pin(batches_claim_with_leases_that_fence(s))
    }),
    ("schedules_claim_with_leases", |s| {
        Box::pin(schedules_claim_with_leases(s))
    }),
    ("api_keys_round_trip_revoke_and_touch", |s| {
        Box::pin(api_keys_round_trip_revoke_and_touch(s))
    }),
    ("webhooks_and_their_delivery_logs", |s| {
        Box::pin(webhooks_and_their_delivery_logs(s))
    }),
];

/// Runs every case, each on a store from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    for (name, case) in CASES {
        eprintln!("store conformance: {name}");
        case(make().await).await;
    }
}

/// A plausible epoch-millisecond time to start from.
pub(crate) const T0: i64 = 1_700_000_000_000;

pub(crate) fn ns() -> Namespace {
    Namespace::from("default")
}

fn ctx(now: i64) -> Ctx {
    Ctx {
        now: Timestamp(now),
        limits: Limits::default(),
        next_run_id: RunId::generate(),
    }
}

/// The transition that starts a run of `workflow_id` at `now`.
pub(crate) fn started(
    ns: &Namespace,
    workflow_id: &str,
    workflow_type: &str,
    now: i64,
) -> Transition {
    let input = json!({"order": workflow_id});
    started_with(ns, workflow_id, workflow_type, now, input)
}

/// [`started`], with this input.
fn started_with(
    ns: &Namespace,
    workflow_id: &str,
    workflow_type: &str,
    now: i64,
    input: serde_json::Value,
) -> Transition {
    let cmd = StartRun {
        trace_context: None,
        namespace: ns.clone(),
        workflow_id: WorkflowId::from(workflow_id),
        run_id: RunId::generate(),
        workflow_type: workflow_type.to_owned(),
        task_queue: TaskQueue::from("main"),
        input,
        execution_timeout: None,
        run_timeout: None,
        task_timeout: None,
        request_id: None,
        identity: None,
        pinned_version: None,
        parent: None,
        memo: None,
        search_attributes: Default::default(),
        retry_policy: None,
        chain: None,
    };
    engine::start(cmd, &ctx(now)).expect("a valid start")
}

pub(crate) fn create(transition: Transition) -> RunChange {
    RunChange {
        expected_version: None,
        transition,
        request_id: None,
    }
}

pub(crate) fn update(version: i64, transition: Transition) -> RunChange {
    RunChange {
        expected_version: Some(version),
        transition,
        request_id: None,
    }
}

/// Starts and commits a run; returns its state (version 1).
async fn start(store: &dyn Store, ns: &Namespace, workflow_id: &str, now: i64) -> RunState {
    let transition = started(ns, workflow_id, "Order", now);
    let state = transition.state.clone();
    store
        .commit(&[create(transition)])
        .await
        .expect("commit a new run");
    state
}

fn terminated(state: &RunState, now: i64, reason: &str) -> Transition {
    let cmd = Command::TerminateWorkflow {
        reason: reason.to_owned(),
        details: None,
        identity: None,
    };
    engine::decide(state, cmd, &ctx(now)).expect("an open run can be terminated")
}

/// A transition that only touches task rows.
pub(crate) fn effects_only(state: &RunState, effects: Vec<Effect>) -> Transition {
    Transition {
        state: state.clone(),
        events: Vec::new(),
        effects,
        next_run: None,
        checkpoint: None,
    }
}

pub(crate) fn timer(name: &str) -> Task {
    Task::UserTimer {
        timer_id: TimerId::from(name),
        started_event_id: 1,
    }
}

pub(crate) fn enqueue(task: Task, at: i64, lease: i64) -> Effect {
    Effect::Enqueue {
        task,
        at: Timestamp(at),
        lease: Duration(lease),
    }
}

async fn claim(store: &dyn Store, queue: Queue, now: i64, limit: i64) -> Vec<TaskRow> {
    store
        .claim_tasks(queue, Timestamp(now), limit)
        .await
        .expect("claim tasks")
}

/// The timer ids of claimed user-timer rows, in order.
fn timer_names(rows: &[TaskRow]) -> Vec<String> {
    rows.iter()
        .map(|row| match &row.task {
            Task::UserTimer { timer_id, .. } => timer_id.to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

fn assert_already_exists<T: std::fmt::Debug>(res: super::Result<T>, needle: &str) {
    match res {
        Err(Error::AlreadyExists(what)) => assert!(
            what.contains(needle),
            "AlreadyExists({what:?}) should name {needle:?}"
        ),
        other => panic!("expected AlreadyExists naming {needle:?}, got {other:?}"),
    }
}

async fn namespaces(store: Arc<dyn Store>) {
    let record = |name: &str, at: i64| NamespaceRecord {
        name: Namespace::from(name),
        description: format!("the {name} namespace"),
        retention: Duration::from_secs(86_400),
        created_at: Timestamp(at),
    };
    store
        .create_namespace(&record("default", T0))
        .await
        .expect("create");
    store
        .create_namespace(&record("alpha", T0 + 1))
        .await
        .expect("create");
    let again = store.create_namespace(&record("default", T0 + 2)).await;
    assert_already_exists(again, "namespace `default`");

    let listed = store.list_namespaces().await.expect("list");
    assert_eq!(listed, vec![record("alpha", T0 + 1), record("default", T0)]);
    let got = store.get_namespace(&ns()).await.expect("get");
    assert_eq!(got, Some(record("default", T0)));
    let missing = store.get_namespace(&Namespace::from("nope")).await;
    assert_eq!(missing.expect("get"), None);

    // An update replaces the description and retention, nothing else.
    let updated = NamespaceRecord {
        description: "production".to_owned(),
        retention: Duration::from_secs(30 * 86_400),
        created_at: Timestamp(0),
        ..record("alpha", T0 + 1)
    };
    assert!(store.update_namespace(&updated).await.expect("update"));
    let got = store.get_namespace(&Namespace::from("alpha")).await;
    assert_eq!(
        got.expect("get"),
        Some(NamespaceRecord {
            created_at: Timestamp(T0 + 1),
            ..updated.clone()
        })
    );
    let nowhere = NamespaceRecord {
        name: Namespace::from("nope"),
        ..updated
    };
    assert!(!store.update_namespace(&nowhere).await.expect("update"));
    assert_eq!(store.get_namespace(&nowhere.name).await.expect("get"), None);
}

async fn api_keys_round_trip_revoke_and_touch(store: Arc<dyn Store>) {
    let key = |id: &str, at: i64, namespace: Option<&str>, role: Role| ApiKeyRecord {
        id: id.to_owned(),
        secret_hash: format!("hash of {id}"),
        namespace: namespace.map(Namespace::from),
        role,
        description: format!("the {id} key"),
        created_at: Timestamp(at),
        expires_at: Some(Timestamp(at + 1_000)),
        revoked_at: None,
        last_used_at: None,
    };
    let writer = key("bk_b", T0, Some("default"), Role::Writer);
    let admin = ApiKeyRecord {
        expires_at: None,
        ..key("bk_a", T0 + 1, None, Role::Admin)
    };
    store.create_api_key(&writer).await.expect("create");
    store.create_api_key(&admin).await.expect("create");
    let again = store.create_api_key(&writer).await;
    assert_already_exists(again, "API key `bk_b`");
    // Oldest first, whatever the ids.
    let listed = store.list_api_keys().await.expect("list");
    assert_eq!(listed, vec![writer.clone(), admin.clone()]);
    assert_eq!(store.get_api_key("bk_a").await.expect("get"), Some(admin));
    assert_eq!(store.get_api_key("bk_nope").await.expect("get"), None);

    store
        .touch_api_key("bk_b", Timestamp(T0 + 5))
        .await
        .expect("touch");
    assert!(store
        .revoke_api_key("bk_b", Timestamp(T0 + 10))
        .await
        .expect("revoke"));
    // A second revocation keeps the first time.
    assert!(store
        .revoke_api_key("bk_b", Timestamp(T0 + 20))
        .await
        .expect("revoke"));
    assert!(!store
        .revoke_api_key("bk_nope", Timestamp(T0))
        .await
        .expect("revoke"));
    let got = store.get_api_key("bk_b").await.expect("get");
    assert_eq!(
        got,
        Some(ApiKeyRecord {
            revoked_at: Some(Timestamp(T0 + 10)),
            last_used_at: Some(Timestamp(T0 + 5)),
            ..writer
        })
    );
}

async fn endpoints(store: Arc<dyn Store>) {
    let queue = TaskQueue::from("orders");
    let endpoint = |version: &str, url: &str, at: i64| Endpoint {
        namespace: ns(),
        task_queue: queue.clone(),
        version: version.to_owned(),
        url: url.to_owned(),
        secrets: vec!["whsec_one".to_owned(), "whsec_two".to_owned()],
        max_concurrency: 8,
        is_current: true,
        created_at: Timestamp(at),
        schemas: Default::default(),
        flow: Default::default(),
        features: vec!["history_pages".to_owned(), "from_a_newer_sdk".to_owned()],
    };
    let not_current = |e: Endpoint| Endpoint {
        is_current: false,
        ..e
    };
    let v1 = endpoint("v1", "https://one.example/", T0);
    let v2 = endpoint("v2", "https://two.example/", T0 + 1);
    store.upsert_endpoint(&v1).await.expect("upsert v1");
    let current = current_version(&*store, &queue).await;
    assert_eq!(current, Some(v1.clone()));

    // A new version becomes current; the old one stays registered.
    store.upsert_endpoint(&v2).await.expect("upsert v2");
    let listed = store.list_endpoints(&ns()).await.expect("list");
    assert_eq!(listed, vec![not_current(v1.clone()), v2.clone()]);
    let current = current_version(&*store, &queue).await;
    assert_eq!(current, Some(v2.clone()));

    // Upserting an old version again replaces it and makes it current; its
    // first registration time stays.
    // Its schemas are stored with it.
    let v1_moved = Endpoint {
        schemas: order_schemas(),
        ..endpoint("v1", "https://moved.example/", T0 + 5)
    };
    store
        .upsert_endpoint(&v1_moved)
        .await
        .expect("upsert v1 again");
    let current = current_version(&*store, &queue).await;
    let expected = Endpoint {
        created_at: Timestamp(T0),
        ..v1_moved
    };
    assert_eq!(current, Some(expected.clone()));
    let listed = store.list_endpoints(&ns()).await.expect("list");
    assert_eq!(listed, vec![expected.clone(), not_current(v2.clone())]);

    // Other queues and namespaces are separate.
    let other_queue = Endpoint {
        task_queue: TaskQueue::from("billing"),
        ..v2.clone()
    };
    store.upsert_endpoint(&other_queue).await.expect("upsert");
    let current = current_version(&*store, &queue).await;
    assert_eq!(current, Some(expected.clone()));
    let elsewhere = store.list_endpoints(&Namespace::from("other")).await;
    assert_eq!(elsewhere.expect("list"), vec![]);

    // A version's schemas are replaced in place; an unknown version is
    // not created.
    let (here, schemas) = (ns(), order_schemas());
    let set = store
        .set_endpoint_schemas(&here, &queue, "v2", &schemas)
        .await;
    assert!(set.expect("set schemas"));
    let set = store
        .set_endpoint_schemas(&here, &queue, "v9", &schemas)
        .await;
    assert!(!set.expect("set schemas"), "no version v9");
    let versions = store
        .queue_endpoints(&here, &queue)
        .await
        .expect("versions");
    let v2_now = versions.iter().find(|e| e.version == "v2").expect("v2");
    assert_eq!(v2_now.schemas, schemas);
    assert!(!v2_now.is_current, "setting schemas does not promote");
    assert!(versions.iter().all(|e| e.version != "v9"));

    let deleted = store.delete_endpoint(&ns(), &queue, "v2").await;
    assert!(deleted.expect("delete"));
    let deleted = store.delete_endpoint(&ns(), &queue, "v2").await;
    assert!(!deleted.expect("delete"), "a second delete finds nothing");
    let listed = store.list_endpoints(&ns()).await.expect("list");
    assert_eq!(listed, vec![other_queue, expected]);
    let none = current_version(&*store, &TaskQueue::from("nope")).await;
    assert_eq!(none, None);
}

/// Schemas with a workflow input and a signal.
fn order_schemas() -> crate::schema::Schemas {
    serde_json::from_value(serde_json::json!({"workflows": {"Order": {
        "input": {"type": "array", "prefixItems": [{"type": "object"}]},
        "signals": {"approve": {"type": "array"}}
    }}}))
    .expect("schemas")
}

/// The current version of a queue, as the dispatcher finds it.
async fn current_version(store: &dyn Store, queue: &TaskQueue) -> Option<Endpoint> {
    let versions = store.queue_endpoints(&ns(), queue).await.expect("versions");
    let mut current = versions.into_iter().filter(|e| e.is_current);
    let found = current.next();
    assert_eq!(current.next(), None, "at most one current version");
    found
}

/// Concurrency slots: at most `limit` live holders, a released or expired
/// slot is taken again, renewal keeps a node's slots; token buckets: a
/// burst, then one token per 1/rate, and flow settings round-trip.
async fn flow_slots_and_buckets(store: Arc<dyn Store>) {
    use crate::flow::{ConcurrencyKey, FlowControl, RateLimit};
    use crate::store::FlowSlot;
    let slot = |holder: &str, node: &str| FlowSlot {
        namespace: ns(),
        task_queue: TaskQueue::from("q"),
        key: "0:42".into(),
        holder: holder.into(),
        node: node.into(),
    };
    let (a, b, c) = (slot("a", "n1"), slot("b", "n2"), slot("c", "n2"));
    let t = |ms: i64| Timestamp(T0 + ms);
    assert!(store
        .acquire_flow_slot(&a, 2, t(0), t(5_000))
        .await
        .expect("store call"));
    assert!(store
        .acquire_flow_slot(&b, 2, t(0), t(5_000))
        .await
        .expect("store call"));
    assert!(!store
        .acquire_flow_slot(&c, 2, t(1), t(5_001))
        .await
        .expect("store call"));
    let other_key = FlowSlot {
        key: "0:43".into(),
        ..c.clone()
    };
    assert!(store
        .acquire_flow_slot(&other_key, 1, t(1), t(5_001))
        .await
        .expect("store call"));
    store.release_flow_slot(&b).await.expect("store call");
    assert!(store
        .acquire_flow_slot(&c, 2, t(2), t(5_002))
        .await
        .expect("store call"));
    // n1 renews its slot; n2's run out.
    store
        .renew_flow_slots("n1", t(4_000), t(9_000))
        .await
        .expect("store call");
    let d = slot("d", "n3");
    assert!(store
        .acquire_flow_slot(&d, 2, t(6_000), t(11_000))
        .await
        .expect("store call"));
    let e = slot("e", "n3");
    assert!(!store
        .acquire_flow_slot(&e, 2, t(6_000), t(11_000))
        .await
        .expect("store call"));
    assert!(store
        .acquire_flow_slot(&e, 2, t(9_000), t(14_000))
        .await
        .expect("store call"));

    let flow = FlowControl {
        rate_limit: Some(RateLimit {
            per_second: 10.0,
            burst: Some(2),
        }),
        concurrency_keys: vec![ConcurrencyKey {
            key: "{input/0}".into(),
            limit: 3,
        }],
    };
    let endpoint = Endpoint {
        namespace: ns(),
        task_queue: TaskQueue::from("rated"),
        version: "v1".into(),
        url: "https://rated.example/".into(),
        secrets: vec![],
        max_concurrency: 1,
        is_current: true,
        created_at: Timestamp(T0),
        schemas: Default::default(),
        flow,
        features: Vec::new(),
    };
    store.upsert_endpoint(&endpoint).await.expect("store call");
    let stored = store.queue_endpoints(&ns(), &endpoint.task_queue).await;
    assert_eq!(stored.expect("store call"), vec![endpoint.clone()]);
    let take = |ms: i64| store.take_flow_token(&endpoint, 10.0, 2, t(ms));
    assert_eq!(take(0).await.expect("store call"), None);
    assert_eq!(take(0).await.expect("store call"), None);
    let wait = take(0)
        .await
        .expect("store call")
        .expect("the burst is spent");
    assert_eq!(wait, Duration(100));
    assert_eq!(take(50).await.expect("store call"), Some(Duration(50)));
    assert_eq!(take(100).await.expect("store call"), None);
    assert!(take(100).await.expect("store call").is_some());
    // Refills cap at the burst.
    assert_eq!(take(10_000).await.expect("store call"), None);
    assert_eq!(take(10_000).await.expect("store call"), None);
    assert!(take(10_000).await.expect("store call").is_some());
}

async fn endpoint_versions_and_pinned_runs(store: Arc<dyn Store>) {
    let queue = TaskQueue::from("main");
    let endpoint = |version: &str, at: i64| Endpoint {
        namespace: ns(),
        task_queue: queue.clone(),
        version: version.to_owned(),
        url: format!("https://{version}.example/"),
        secrets: vec!["whsec_one".to_owned()],
        max_concurrency: 4,
        is_current: true,
        created_at: Timestamp(at),
        schemas: Default::default(),
        flow: Default::default(),
        features: Vec::new(),
    };
    for (v, at) in [("v2", T0 + 1), ("v1", T0)] {
        store
            .upsert_endpoint(&endpoint(v, at))
            .await
            .expect("upsert");
    }
    // Oldest registration first; the last registered is current.
    let versions = store
        .queue_endpoints(&ns(), &queue)
        .await
        .expect("versions");
    let shown: Vec<(&str, bool)> = versions
        .iter()
        .map(|e| (e.version.as_str(), e.is_current))
        .collect();
    assert_eq!(shown, [("v1", true), ("v2", false)]);

    // Promotion (rollback) moves the current flag; an unknown version
    // changes nothing.
    assert!(store
        .promote_endpoint(&ns(), &queue, "v2")
        .await
        .expect("promote"));
    assert_eq!(
        current_version(&*store, &queue).await.map(|e| e.version),
        Some("v2".into())
    );
    assert!(!store
        .promote_endpoint(&ns(), &queue, "v9")
        .await
        .expect("promote"));
    assert_eq!(
        current_version(&*store, &queue).await.map(|e| e.version),
        Some("v2".into())
    );

    // Open runs are counted per pinned version; closed and unpinned runs
    // are not, and a re-pin moves a run between counts.
    let pinned = |workflow_id: &str, version: Option<&str>, now: i64| {
        let mut t = started(&ns(), workflow_id, "Order", now);
        t.state.pinned_version = version.map(str::to_owned);
        t
    };
    let a = pinned("a", Some("v1"), T0);
    let b = pinned("b", Some("v1"), T0 + 1);
    let c = pinned("c", Some("v2"), T0 + 2);
    let d = pinned("d", None, T0 + 3);
    let changes: Vec<RunChange> = [&a, &b, &c, &d].map(|t| create(t.clone())).into();
    store.commit(&changes).await.expect("commit");
    let counts = store
        .open_runs_by_version(&ns(), &queue)
        .await
        .expect("count");
    assert_eq!(counts, [("v1".to_owned(), 2), ("v2".to_owned(), 1)]);
    let on_v1 = store
        .open_runs_pinned_to(&ns(), &queue, "v1")
        .await
        .expect("runs");
    assert_eq!(on_v1, [a.state.run_id, b.state.run_id]);

    let cmd = Command::UpdateWorkflowExecutionOptions(MoveToVersion {
        from_version: "v1".into(),
        to_version: "v2".into(),
        reason: "v1 is broken".into(),
        identity: None,
    });
    let moved = engine::decide(&a.state, cmd, &ctx(T0 + 10)).expect("move");
    let terminate = Command::TerminateWorkflow {
        reason: "done".into(),
        details: None,
        identity: None,
    };
    let closed = engine::decide(&c.state, terminate, &ctx(T0 + 10)).expect("terminate");
    store
        .commit(&[update(1, moved), update(1, closed)])
        .await
        .expect("commit");
    let counts = store
        .open_runs_by_version(&ns(), &queue)
        .await
        .expect("count");
    assert_eq!(counts, [("v1".to_owned(), 1), ("v2".to_owned(), 1)]);
    let on_v2 = store
        .open_runs_pinned_to(&ns(), &queue, "v2")
        .await
        .expect("runs");
    assert_eq!(on_v2, [a.state.run_id]);
    let elsewhere = store
        .open_runs_by_version(&ns(), &TaskQueue::from("other"))
        .await
        .expect("count");
    assert_eq!(elsewhere, []);
}

async fn new_run_round_trips(store: Arc<dyn Store>) {
    let transition = started(&ns(), "order-1", "Order", T0);
    store
        .commit(&[create(transition.clone())])
        .await
        .expect("commit");
    let run_id = transition.state.run_id;

    let record = store.load_run(&ns(), run_id).await.expect("load");
    let record = record.expect("the committed run");
    assert_eq!(record.state, transition.state);
    assert_eq!(record.version, 1);
    let latest = store.latest_run(&ns(), &WorkflowId::from("order-1")).await;
    assert_eq!(latest.expect("latest"), Some(record));

    let history = store.read_history(&ns(), run_id, 0, 100).await;
    assert_eq!(history.expect("history"), transition.events);

    // A run is only visible in its namespace.
    let other = Namespace::from("other");
    assert_eq!(store.load_run(&other, run_id).await.expect("load"), None);
    let history = store.read_history(&other, run_id, 0, 100).await;
    assert_eq!(history.expect("history"), vec![]);
    let unknown = store.load_run(&ns(), RunId::generate()).await;
    assert_eq!(unknown.expect("load"), None);
}

async fn history_pages(store: Arc<dyn Store>) {
    let state = start(&*store, &ns(), "order-1", T0).await;
    let first = state.next_event_id;
    let events: Vec<Event> = (0..7)
        .map(|i| Event {
            event_id: first + i,
            event_time: Timestamp(T0 + 10 + i),
            attributes: EventAttributes::MarkerRecorded(MarkerRecorded {
                marker_name: format!("marker-{i}"),
                details: json!({ "i": i }),
                workflow_task_completed_event_id: 0,
                failure: None,
            }),
        })
        .collect();
    let mut after = state.clone();
    events.iter().for_each(|e| after.evolve(e));
    let transition = Transition {
        state: after,
        events,
        effects: Vec::new(),
        next_run: None,
        checkpoint: None,
    };
    store
        .commit(&[update(1, transition)])
        .await
        .expect("commit");

    let all = store.read_history(&ns(), state.run_id, 0, 1000).await;
    let all = all.expect("history");
    let ids: Vec<i64> = all.iter().map(|e| e.event_id).collect();
    assert_eq!(
        ids,
        (1..first + 7).collect::<Vec<_>>(),
        "dense and ascending"
    );

    let mut paged = Vec::new();
    loop {
        let after = paged.last().map_or(0, |e: &Event| e.event_id);
        let page = store.read_history(&ns(), state.run_id, after, 3).await;
        let page = page.expect("page");
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        paged.extend(page);
    }
    assert_eq!(paged, all);
    let none = store.read_history(&ns(), state.run_id, 2, 0).await;
    assert_eq!(none.expect("history"), vec![]);

    let summaries = store.list_runs(&ns(), &query(""), None, 10).await;
    let summaries = summaries.expect("list");
    assert_eq!(summaries[0].history_length, first - 1 + 7);
}

async fn concurrent_commits_conflict(store: Arc<dyn Store>) {
    let state = start(&*store, &ns(), "order-1", T0).await;
    let a = terminated(&state, T0 + 1, "by a");
    let b = terminated(&state, T0 + 2, "by b");
    let (change_a, change_b) = ([update(1, a.clone())], [update(1, b.clone())]);
    let (res_a, res_b) = tokio::join!(store.commit(&change_a), store.commit(&change_b));
    let winner = match (res_a, res_b) {
        (Ok(()), Err(Error::Conflict)) => a,
        (Err(Error::Conflict), Ok(())) => b,
        other => panic!("expected exactly one Conflict, got {other:?}"),
    };

    let record = store.load_run(&ns(), state.run_id).await.expect("load");
    let record = record.expect("the run");
    assert_eq!(record.version, 2);
    assert_eq!(record.state, winner.state);
    let history = store.read_history(&ns(), state.run_id, 0, 100).await;
    let history = history.expect("history");
    assert_eq!(history.len() as i64, winner.state.history_length());
    assert_eq!(history.last(), winner.events.last());

    // A stale version keeps failing.
    let stale = store.commit(&[update(1, winner.clone())]).await;
    assert!(matches!(stale, Err(Error::Conflict)), "got {stale:?}");
}

async fn commit_is_atomic(store: Arc<dyn Store>) {
    let state = start(&*store, &ns(), "order-1", T0).await;
    // A new run, its task rows, and a stale change of another run: the
    // stale change fails the whole commit.
    let fresh = started(&ns(), "order-2", "Order", T0 + 1);
    let fresh_id = fresh.state.run_id;
    let stale = effects_only(&state, vec![enqueue(timer("t"), T0, 10)]);
    let res = store.commit(&[create(fresh), update(7, stale)]).await;
    assert!(matches!(res, Err(Error::Conflict)), "got {res:?}");

    assert_eq!(store.load_run(&ns(), fresh_id).await.expect("load"), None);
    let history = store.read_history(&ns(), fresh_id, 0, 100).await;
    assert_eq!(history.expect("history"), vec![]);
    let latest = store.latest_run(&ns(), &WorkflowId::from("order-2")).await;
    assert_eq!(latest.expect("latest"), None);
    let rows = claim(&*store, Queue::Timer, i64::MAX / 2, 100).await;
    assert_eq!(timer_names(&rows), Vec::<String>::new());
    let rows = claim(&*store, Queue::Push, i64::MAX / 2, 100).await;
    let runs: Vec<RunId> = rows.iter().map(|row| row.run_id).collect();
    assert_eq!(
        runs,
        vec![state.run_id],
        "only the first run's workflow task"
    );
}

async fn one_open_run_per_workflow_id(store: Arc<dyn Store>) {
    let first = start(&*store, &ns(), "order-1", T0).await;
    let second = started(&ns(), "order-1", "Order", T0 + 1);
    let res = store.commit(&[create(second.clone())]).await;
    assert_already_exists(res, "order-1");

    // The same id in another namespace is another workflow.
    start(&*store, &Namespace::from("other"), "order-1", T0 + 1).await;

    // Once the first run closes, the id is free again.
    let closed = terminated(&first, T0 + 2, "done");
    assert_eq!(closed.state.status, RunStatus::Terminated);
    store.commit(&[update(1, closed)]).await.expect("terminate");
    let third = start(&*store, &ns(), "order-1", T0 + 3).await;
    let latest = store.latest_run(&ns(), &WorkflowId::from("order-1")).await;
    let latest = latest.expect("latest").expect("a run");
    assert_eq!(latest.state.run_id, third.run_id);

    // Terminating the open run and starting its successor in one commit
    // passes the index, which is checked per statement.
    let fourth = started(&ns(), "order-1", "Order", T0 + 4);
    let changes = [
        update(1, terminated(&third, T0 + 4, "replaced")),
        create(fourth.clone()),
    ];
    store.commit(&changes).await.expect("terminate and start");
    let latest = store.latest_run(&ns(), &WorkflowId::from("order-1")).await;
    let latest = latest.expect("latest").expect("a run");
    assert_eq!(latest.state.run_id, fourth.state.run_id);
    assert_eq!(latest.version, 1);
    let missing = store.latest_run(&ns(), &WorkflowId::from("nope")).await;
    assert_eq!(missing.expect("latest"), None);
}

async fn run_by_request_id(store: Arc<dyn Store>) {
    let transition = started(&ns(), "order-1", "Order", T0);
    let run_id = transition.state.run_id;
    let change = RunChange {
        request_id: Some("req-1".to_owned()),
        ..create(transition)
    };
    store.commit(&[change]).await.expect("commit");
    let wf = WorkflowId::from("order-1");
    let found = store.run_by_request_id(&ns(), &wf, "req-1").await;
    assert_eq!(found.expect("lookup"), Some(run_id));
    let found = store.run_by_request_id(&ns(), &wf, "req-2").await;
    assert_eq!(found.expect("lookup"), None);
    let other = WorkflowId::from("order-2");
    let found = store.run_by_request_id(&ns(), &other, "req-1").await;
    assert_eq!(found.expect("lookup"), None);
}

/// Five runs `wf-0` … `wf-4`, one second apart, types A/B alternating;
/// `wf-1` terminated. Returns them in start order.
async fn five_runs(store: &dyn Store) -> Vec<RunState> {
    let mut states = Vec::new();
    for i in 0..5 {
        let kind = if i % 2 == 0 { "A" } else { "B" };
        let transition = started(&ns(), &format!("wf-{i}"), kind, T0 + i * 1000);
        states.push(transition.state.clone());
        store.commit(&[create(transition)]).await.expect("commit");
    }
    let closed = terminated(&states[1], T0 + 9000, "stop");
    store
        .commit(&[update(1, closed.clone())])
        .await
        .expect("terminate");
    states[1] = closed.state;
    states
}

fn workflow_ids(runs: &[RunSummary]) -> Vec<String> {
    runs.iter().map(|r| r.workflow_id.to_string()).collect()
}

fn query(text: &str) -> ListQuery {
    visibility::parse_list(text, &Default::default()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// A list filter's time literal for `ms`.
fn at(ms: i64) -> String {
    format!("'{}'", Timestamp(ms))
}

async fn list_runs_filters(store: Arc<dyn Store>) {
    let states = five_runs(&*store).await;
    let list = |text: String| {
        let store = store.clone();
        async move {
            store
                .list_runs(&ns(), &query(&text), None, 100)
                .await
                .expect("list")
        }
    };

    let all = list(String::new()).await;
    assert_eq!(workflow_ids(&all), ["wf-4", "wf-3", "wf-2", "wf-1", "wf-0"]);
    let s = &states[1];
    let expected = RunSummary {
        namespace: ns(),
        workflow_id: s.workflow_id.clone(),
        run_id: s.run_id,
        workflow_type: "B".to_owned(),
        task_queue: TaskQueue::from("main"),
        status: RunStatus::Terminated,
        start_time: Timestamp(T0 + 1000),
        close_time: Some(Timestamp(T0 + 9000)),
        history_length: s.history_length(),
        parent_workflow_id: None,
        parent_run_id: None,
        pinned_version: None,
        scheduled_by_id: None,
        slots: Default::default(),
    };
    assert_eq!(all[3], expected);

    let cases = [
        (
            "WorkflowType = 'A'".to_owned(),
            vec!["wf-4", "wf-2", "wf-0"],
        ),
        ("ExecutionStatus = 'Terminated'".to_owned(), vec!["wf-1"]),
        (
            "ExecutionStatus = 'Running' and WorkflowType = 'B'".to_owned(),
            vec!["wf-3"],
        ),
        (
            format!(
                "StartTime >= {} AND StartTime < {}",
                at(T0 + 1000),
                at(T0 + 3000)
            ),
            vec!["wf-2", "wf-1"],
        ),
        (
            format!("StartTime BETWEEN {} AND {}", at(T0 + 1000), at(T0 + 3000)),
            vec!["wf-3", "wf-2", "wf-1"],
        ),
        ("WorkflowId = 'wf-3'".to_owned(), vec!["wf-3"]),
        (
            "WorkflowId IN ('wf-3', 'wf-0', 'nope')".to_owned(),
            vec!["wf-3", "wf-0"],
        ),
        (
            "WorkflowId STARTS_WITH 'wf-'".to_owned(),
            vec!["wf-4", "wf-3", "wf-2", "wf-1", "wf-0"],
        ),
        ("WorkflowId STARTS_WITH 'wf-4x'".to_owned(), vec![]),
        ("CloseTime IS NOT NULL".to_owned(), vec!["wf-1"]),
        (
            "CloseTime IS NULL AND WorkflowType != 'A'".to_owned(),
            vec!["wf-3"],
        ),
        ("ExecutionDuration = '8s'".to_owned(), vec!["wf-1"]),
        ("ExecutionDuration != '8s'".to_owned(), vec![]),
        (
            "WorkflowId > 'wf-2' OR WorkflowId <= 'wf-0'".to_owned(),
            vec!["wf-4", "wf-3", "wf-0"],
        ),
        (
            "ParentWorkflowId IS NULL AND BatonPinnedVersion IS NULL".to_owned(),
            vec!["wf-4", "wf-3", "wf-2", "wf-1", "wf-0"],
        ),
        (
            "HistoryLength > 0 AND TaskQueue = 'main' AND RunId = 'x'".to_owned(),
            vec![],
        ),
        // A value that looks like SQL is only ever a bound value.
        ("WorkflowId = 'x'' or ''1''=''1'".to_owned(), vec![]),
    ];
    for (text, expected) in cases {
        assert_eq!(workflow_ids(&list(text.clone()).await), expected, "{text}");
    }
    let elsewhere = store
        .list_runs(&Namespace::from("other"), &query(""), None, 100)
        .await;
    assert_eq!(elsewhere.expect("list"), vec![]);
}

async fn list_runs_pages(store: Arc<dyn Store>) {
    five_runs(&*store).await;
    // Two more runs that start in the same millisecond: the run id breaks
    // the tie, so paging neither skips nor repeats one of them.
    for wf in ["tie-a", "tie-b"] {
        start(&*store, &ns(), wf, T0 + 2000).await;
    }
    for text in [
        "",
        "ORDER BY CloseTime DESC",
        "ORDER BY CloseTime",
        "ORDER BY WorkflowType DESC, StartTime",
        "ExecutionStatus = 'Running' ORDER BY WorkflowId",
        "ORDER BY ExecutionDuration, RunId",
    ] {
        let q = query(text);
        let all = store.list_runs(&ns(), &q, None, 100).await;
        let all = all.expect("list");
        // The order is visibility's, on every backend.
        let mut sorted = all.clone();
        sorted.sort_by(|a, b| q.compare(a, b));
        assert_eq!(workflow_ids(&all), workflow_ids(&sorted), "{text}");
        if !text.contains("Running") {
            assert_eq!(all.len(), 7, "{text}");
        }
        for page_size in [1, 2, 3] {
            let mut paged: Vec<RunSummary> = Vec::new();
            loop {
                let cursor = paged.last().map(|r| q.cursor_after(r));
                let page = store
                    .list_runs(&ns(), &q, cursor.as_ref(), page_size)
                    .await
                    .expect("page");
                assert!(page.len() as i64 <= page_size);
                if page.is_empty() {
                    break;
                }
                paged.extend(page);
            }
            assert_eq!(paged, all, "{text}: pages of {page_size}");
        }
    }
    let all = store.list_runs(&ns(), &query(""), None, 100).await;
    let all = all.expect("list");
    let ties: Vec<&RunSummary> = all
        .iter()
        .filter(|r| r.start_time == Timestamp(T0 + 2000))
        .collect();
    assert_eq!(ties.len(), 3);
    assert!(ties.windows(2).all(|w| w[0].run_id > w[1].run_id));
}

async fn count_runs(store: Arc<dyn Store>) {
    five_runs(&*store).await;
    let count = |text: &str| {
        let store = store.clone();
        let q = visibility::parse_count(text, &Default::default()).expect("a count query");
        async move { store.count_runs(&ns(), &q).await.expect("count") }
    };
    assert_eq!(count("").await, [(None, 5)]);
    assert_eq!(count("WorkflowType = 'B'").await, [(None, 2)]);
    assert_eq!(count("WorkflowType = 'C'").await, [(None, 0)]);
    assert_eq!(
        count("GROUP BY ExecutionStatus").await,
        [
            (Some("RUNNING".to_owned()), 4),
            (Some("TERMINATED".to_owned()), 1)
        ]
    );
    assert_eq!(
        count("WorkflowType = 'A' GROUP BY ExecutionStatus").await,
        [(Some("RUNNING".to_owned()), 3)]
    );
    assert_eq!(
        count("WorkflowType = 'C' GROUP BY ExecutionStatus").await,
        []
    );
    let q = visibility::parse_count("", &Default::default()).expect("a count query");
    let elsewhere = store.count_runs(&Namespace::from("other"), &q).await;
    assert_eq!(elsewhere.expect("count"), [(None, 0)]);
}

const DAY: i64 = 86_400_000;

async fn namespace_with_retention(store: &dyn Store, name: &str, retention_days: i64) {
    let record = NamespaceRecord {
        name: Namespace::from(name),
        description: String::new(),
        retention: Duration(retention_days * DAY),
        created_at: Timestamp(T0),
    };
    store.create_namespace(&record).await.expect("create");
}

/// A run of `ns` started at `start` and, if `close` is given, terminated
/// then.
async fn run_closed_at(
    store: &dyn Store,
    ns: &Namespace,
    workflow_id: &str,
    start: i64,
    close: Option<i64>,
) -> RunState {
    let state = self::start(store, ns, workflow_id, start).await;
    let Some(close) = close else {
        return state;
    };
    let closed = terminated(&state, close, "done");
    store
        .commit(&[update(1, closed.clone())])
        .await
        .expect("terminate");
    closed.state
}

async fn delete_run(store: Arc<dyn Store>) {
    namespace_with_retention(&*store, "default", 1).await;
    let open = run_closed_at(&*store, &ns(), "open", T0, None).await;
    let closed = run_closed_at(&*store, &ns(), "closed", T0, Some(T0 + 10)).await;
    let pending = run_closed_at(&*store, &ns(), "pending", T0, Some(T0 + 10)).await;
    let with_task = effects_only(&pending, vec![enqueue(timer("late"), T0, 50)]);
    store
        .commit(&[update(2, with_task)])
        .await
        .expect("a task row");

    let delete = |run_id| {
        let store = store.clone();
        async move { store.delete_run(&ns(), run_id).await.expect("delete") }
    };
    assert_eq!(delete(open.run_id).await, Deletion::Open);
    assert_eq!(delete(pending.run_id).await, Deletion::Pending);
    let elsewhere = store
        .delete_run(&Namespace::from("other"), closed.run_id)
        .await;
    assert_eq!(elsewhere.expect("delete"), Deletion::NotFound);
    assert_eq!(delete(closed.run_id).await, Deletion::Deleted);
    assert_eq!(delete(closed.run_id).await, Deletion::NotFound);
    // The run and its history are gone; the others are untouched.
    assert_eq!(
        store.load_run(&ns(), closed.run_id).await.expect("load"),
        None
    );
    let history = store.read_history(&ns(), closed.run_id, 0, 100).await;
    assert_eq!(history.expect("history"), vec![]);
    let left = store.list_runs(&ns(), &query(""), None, 100).await;
    assert_eq!(workflow_ids(&left.expect("list")), ["pending", "open"]);
    let history = store.read_history(&ns(), open.run_id, 0, 100).await;
    assert!(!history.expect("history").is_empty());
}

/// A run reads back the stored payloads its events and snapshot
/// reference, and only those; deleting it unlinks them, not another
/// run's links to the same payload (docs/protocol.md §9.1).
async fn payload_links(store: Arc<dyn Store>) {
    let stored = |tag: &str| {
        let data = json!({"pad": tag.repeat(300)}).to_string();
        let sha256 = format!(
            "{:x}",
            <sha2::Sha256 as sha2::Digest>::digest(data.as_bytes())
        );
        crate::payload::StoredPayload { sha256, data }
    };
    let reference = |p: &crate::payload::StoredPayload| json!({crate::payload::MARKER: {"sha256": p.sha256, "size_bytes": p.data.len()}});
    let (a, b) = (stored("a"), stored("b"));
    let both = [a.sha256.clone(), b.sha256.clone()];
    store
        .put_payloads(&ns(), &[a.clone(), b.clone()])
        .await
        .expect("put");
    // Storing again is harmless.
    store
        .put_payloads(&ns(), std::slice::from_ref(&a))
        .await
        .expect("put");
    let read = |run_id| {
        let (store, both) = (store.clone(), both.clone());
        async move {
            let mut found = store
                .read_payloads(&ns(), run_id, &both)
                .await
                .expect("read");
            found.sort();
            found
        }
    };

    let first = started_with(&ns(), "first", "Order", T0, reference(&a));
    store.commit(&[create(first.clone())]).await.expect("first");
    let first = first.state;
    assert_eq!(
        read(first.run_id).await,
        vec![(a.sha256.clone(), a.data.clone())]
    );

    let second = started_with(&ns(), "second", "Order", T0, reference(&a));
    store
        .commit(&[create(second.clone())])
        .await
        .expect("second");
    let signal = Command::SignalWorkflow(engine::Signal {
        signal_name: "go".into(),
        input: reference(&b),
        request_id: None,
        identity: None,
    });
    let signalled = engine::decide(&second.state, signal, &ctx(T0 + 1)).expect("signal");
    store
        .commit(&[update(1, signalled.clone())])
        .await
        .expect("signalled");
    let mut expected = vec![
        (a.sha256.clone(), a.data.clone()),
        (b.sha256.clone(), b.data.clone()),
    ];
    expected.sort();
    assert_eq!(read(second.state.run_id).await, expected);

    let other = store
        .read_payloads(&Namespace::from("other"), second.state.run_id, &both)
        .await
        .expect("read");
    assert_eq!(other, vec![], "another namespace's run id reads nothing");

    let closed = terminated(&first, T0 + 10, "done");
    store.commit(&[update(1, closed)]).await.expect("terminate");
    let deleted = store.delete_run(&ns(), first.run_id).await.expect("delete");
    assert_eq!(deleted, Deletion::Deleted);
    assert_eq!(read(first.run_id).await, vec![]);
    assert_eq!(
        read(second.state.run_id).await,
        expected,
        "the other run keeps its payloads"
    );
}

/// How long the retention cases' leases last.
const RETENTION_LEASE: Duration = Duration(10_000);

/// Claims `ns`'s retention lease for `owner` at `now`; `None` while
/// another owner holds it.
async fn claim_retention(
    store: &dyn Store,
    ns: &Namespace,
    owner: &str,
    now: Timestamp,
) -> Option<RetentionLease> {
    store
        .claim_retention(ns, owner, now, RETENTION_LEASE)
        .await
        .expect("claim retention")
}

/// One retention batch in `ns` at `now` under a lease claimed for it:
/// the runs it deleted.
async fn gc(store: &dyn Store, ns: &Namespace, now: Timestamp, limit: i64) -> u64 {
    let lease = claim_retention(store, ns, "gc", now).await.expect("free");
    let batch = store
        .delete_expired_runs(&lease, now, RETENTION_LEASE, limit)
        .await
        .expect("gc");
    batch.expect("not fenced").runs
}

async fn history_len(store: &dyn Store, ns: &Namespace, run: &RunState) -> i64 {
    let history = store.read_history(ns, run.run_id, 0, 1_000).await;
    history.expect("history").len() as i64
}

async fn retention_deletes_expired_runs(store: Arc<dyn Store>) {
    namespace_with_retention(&*store, "default", 1).await;
    namespace_with_retention(&*store, "long", 10).await;
    let long = Namespace::from("long");
    let s = &*store;
    let old_1 = run_closed_at(s, &ns(), "old-1", T0, Some(T0 + 100)).await;
    let old_2 = run_closed_at(s, &ns(), "old-2", T0, Some(T0 + 200)).await;
    run_closed_at(s, &ns(), "open", T0, None).await;
    run_closed_at(s, &ns(), "recent", T0, Some(T0 + 2 * DAY)).await;
    run_closed_at(s, &long, "kept", T0, Some(T0 + 100)).await;
    let pending = run_closed_at(s, &ns(), "pending", T0, Some(T0 + 50)).await;
    let with_task = effects_only(&pending, vec![enqueue(timer("late"), T0, 50)]);
    store
        .commit(&[update(2, with_task)])
        .await
        .expect("a task row");
    let old_1_events = history_len(s, &ns(), &old_1).await;
    let old_events = old_1_events + history_len(s, &ns(), &old_2).await;
    assert!(old_1_events > 0);

    let now = Timestamp(T0 + DAY + 1_000);
    // Bounded batches, oldest close first, one namespace at a time.
    let lease = claim_retention(s, &ns(), "gc", now).await.expect("free");
    let first = store
        .delete_expired_runs(&lease, now, RETENTION_LEASE, 1)
        .await;
    let first = first.expect("gc").expect("not fenced");
    assert_eq!(first.runs, 1);
    assert_eq!(first.events, old_1_events as u64);
    assert_eq!(
        store.load_run(&ns(), old_1.run_id).await.expect("load"),
        None
    );
    assert!(store
        .load_run(&ns(), old_2.run_id)
        .await
        .expect("load")
        .is_some());
    // A full batch leaves the pass unfinished.
    let progress = claim_retention(s, &ns(), "gc", now).await.expect("held");
    assert_eq!((progress.runs_deleted, progress.last_pass_at), (1, None));
    assert_eq!(gc(s, &ns(), now, 100).await, 1);
    assert_eq!(gc(s, &ns(), now, 100).await, 0);
    for run in [&old_1, &old_2] {
        let history = store.read_history(&ns(), run.run_id, 0, 100).await;
        assert_eq!(history.expect("history"), vec![]);
    }
    // The lease row keeps the counts, and when a pass caught up.
    let progress = claim_retention(s, &ns(), "gc", now).await.expect("held");
    assert_eq!(
        (
            progress.runs_deleted,
            progress.events_deleted,
            progress.last_pass_at
        ),
        (2, old_events, Some(now))
    );
    let left = store.list_runs(&ns(), &query(""), None, 100).await;
    let mut left = workflow_ids(&left.expect("list"));
    left.sort();
    assert_eq!(left, ["open", "pending", "recent"]);
    assert_eq!(gc(s, &long, now, 100).await, 0);
    let kept = store.list_runs(&long, &query(""), None, 100).await;
    assert_eq!(workflow_ids(&kept.expect("list")), ["kept"]);

    // Once its pending work is done, the run goes too.
    let done = effects_only(&pending, vec![Effect::DequeueAll]);
    store
        .commit(&[update(3, done)])
        .await
        .expect("no task rows");
    assert_eq!(gc(s, &ns(), now, 100).await, 1);
    // Much later everything closed goes, never an open run.
    let later = Timestamp(T0 + 20 * DAY);
    assert_eq!(gc(s, &ns(), later, 100).await, 1);
    assert_eq!(gc(s, &long, later, 100).await, 1);
    let left = store.list_runs(&ns(), &query(""), None, 100).await;
    assert_eq!(workflow_ids(&left.expect("list")), ["open"]);
    let gone = store.list_runs(&long, &query(""), None, 100).await;
    assert_eq!(gone.expect("list"), vec![]);
}

async fn retention_leases_renew_fence_and_expire(store: Arc<dyn Store>) {
    namespace_with_retention(&*store, "default", 1).await;
    let s = &*store;
    for i in 0..4 {
        run_closed_at(s, &ns(), &format!("old-{i}"), T0, Some(T0 + i)).await;
    }
    let t = T0 + 2 * DAY;
    let lease_ms = RETENTION_LEASE.millis();

    // The first claim takes the free lease at epoch 1; its owner renews it
    // (same epoch, later expiry); another node is refused while it lasts.
    let a = claim_retention(s, &ns(), "a", Timestamp(t))
        .await
        .expect("free");
    assert_eq!(
        (a.owner.as_str(), a.epoch, a.expires_at),
        ("a", 1, Timestamp(t + lease_ms))
    );
    assert_eq!(claim_retention(s, &ns(), "b", Timestamp(t + 1)).await, None);
    let renewed = claim_retention(s, &ns(), "a", Timestamp(t + 5_000)).await;
    let renewed = renewed.expect("its owner renews");
    assert_eq!(
        (renewed.epoch, renewed.expires_at),
        (1, Timestamp(t + 5_000 + lease_ms))
    );
    let b_early = Timestamp(t + lease_ms + 1);
    assert_eq!(claim_retention(s, &ns(), "b", b_early).await, None);
    // A batch renews it too.
    let batch = store
        .delete_expired_runs(&a, Timestamp(t + 9_000), RETENTION_LEASE, 1)
        .await;
    assert_eq!(batch.expect("gc").map(|b| b.runs), Some(1));
    let a_until = t + 9_000 + lease_ms;
    let b_early = Timestamp(a_until - 1);
    assert_eq!(claim_retention(s, &ns(), "b", b_early).await, None);

    // Once it has expired another node takes it over with a new epoch,
    // and the old holder's next batch deletes nothing.
    let b = claim_retention(s, &ns(), "b", Timestamp(a_until)).await;
    let b = b.expect("expired: taken over");
    assert_eq!((b.owner.as_str(), b.epoch), ("b", 2));
    assert_eq!(
        (b.runs_deleted, b.last_pass_at),
        (1, None),
        "progress stays"
    );
    let fenced = store
        .delete_expired_runs(&a, Timestamp(a_until + 1), RETENTION_LEASE, 100)
        .await;
    assert_eq!(fenced.expect("fenced batch"), None);
    let left = store.list_runs(&ns(), &query(""), None, 100).await;
    assert_eq!(
        left.expect("list").len(),
        3,
        "the fenced batch deleted nothing"
    );
    assert_eq!(
        claim_retention(s, &ns(), "a", Timestamp(a_until + 2)).await,
        None
    );
    // The old holder's release changes nothing either.
    store
        .release_retention(&a, Timestamp(a_until + 3))
        .await
        .expect("release");
    assert_eq!(
        claim_retention(s, &ns(), "a", Timestamp(a_until + 4)).await,
        None
    );

    // A released lease is free at once; the next claim bumps the epoch
    // even for the same owner.
    store
        .release_retention(&b, Timestamp(a_until + 5))
        .await
        .expect("release");
    let back = claim_retention(s, &ns(), "b", Timestamp(a_until + 5)).await;
    assert_eq!(back.expect("released").epoch, 3);
    let c = claim_retention(s, &ns(), "c", Timestamp(a_until + 5 + lease_ms)).await;
    let c = c.expect("expired");
    assert_eq!(c.epoch, 4);
    let batch = store
        .delete_expired_runs(&c, Timestamp(a_until + 6 + lease_ms), RETENTION_LEASE, 100)
        .await;
    assert_eq!(batch.expect("gc").map(|b| b.runs), Some(3));
    let c = claim_retention(s, &ns(), "c", Timestamp(a_until + 7 + lease_ms)).await;
    assert_eq!(c.expect("held").runs_deleted, 4);
}

async fn retention_lease_race(store: Arc<dyn Store>) {
    const CLAIMERS: usize = 8;
    namespace_with_retention(&*store, "default", 1).await;
    let t = Timestamp(T0);
    let claimers = (0..CLAIMERS).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { claim_retention(&*store, &ns(), &format!("node-{i}"), t).await })
    });
    let mut won = Vec::new();
    for claimer in futures::future::join_all(claimers).await {
        won.extend(claimer.expect("a claimer panicked"));
    }
    assert_eq!(won.len(), 1, "one claim wins: {won:?}");
    assert_eq!(won[0].epoch, 1);
}

async fn tasks_claim_and_lease(store: Arc<dyn Store>) {
    let state = start(&*store, &ns(), "order-1", T0).await;
    let t = T0 + 100_000;
    let effects = vec![
        enqueue(timer("a"), t, 50),
        enqueue(timer("b"), t + 100, 50),
        enqueue(
            Task::ActivityTask {
                scheduled_event_id: 5,
            },
            t,
            1000,
        ),
    ];
    store
        .commit(&[update(1, effects_only(&state, effects))])
        .await
        .expect("commit");
    let next = store
        .next_visible_at(Queue::Timer, Timestamp(0))
        .await
        .expect("next");
    assert_eq!(next, Some(Timestamp(t)));
    // Only rows due strictly later than `after` count.
    let next = store
        .next_visible_at(Queue::Timer, Timestamp(t))
        .await
        .expect("next");
    assert_eq!(next, Some(Timestamp(t + 100)));

    // Nothing is due before its time.
    assert_eq!(claim(&*store, Queue::Timer, t - 1, 10).await, vec![]);

    let rows = claim(&*store, Queue::Timer, t + 10, 10).await;
    assert_eq!(timer_names(&rows), ["a"]);
    let a = &rows[0];
    assert_eq!((a.due_at, a.claims), (Timestamp(t), 1));
    assert_eq!((a.namespace.clone(), a.run_id), (ns(), state.run_id));
    // Claimed rows stay invisible for their lease.
    assert_eq!(claim(&*store, Queue::Timer, t + 59, 10).await, vec![]);
    let next = store
        .next_visible_at(Queue::Timer, Timestamp(0))
        .await
        .expect("next");
    assert_eq!(next, Some(Timestamp(t + 60)));

    // The lease ran out: `a` reappears, with `b` now due too.
    let rows = claim(&*store, Queue::Timer, t + 100, 10).await;
    assert_eq!(timer_names(&rows), ["a", "b"]);
    assert_eq!(rows[0].task_id, a.task_id, "a claim keeps the task id");
    assert_eq!((rows[0].due_at, rows[0].claims), (Timestamp(t + 60), 2));
    assert_eq!((rows[1].due_at, rows[1].claims), (Timestamp(t + 100), 1));

    // `limit` caps a claim; queues are separate.
    let rows = claim(&*store, Queue::Timer, t + 1000, 1).await;
    assert_eq!(timer_names(&rows), ["a"]);
    let rows = claim(&*store, Queue::Push, t + 1000, 10).await;
    let tasks: Vec<Task> = rows.into_iter().map(|row| row.task).collect();
    let activity = Task::ActivityTask {
        scheduled_event_id: 5,
    };
    assert_eq!(
        tasks,
        vec![Task::WorkflowTask, activity],
        "earliest due first"
    );
}

async fn tasks_replace_and_delete(store: Arc<dyn Store>) {
    let state = start(&*store, &ns(), "order-1", T0).await;
    let t = T0 + 100_000;
    let arm = |at: i64| effects_only(&state, vec![enqueue(timer("a"), at, 50)]);
    store.commit(&[update(1, arm(t))]).await.expect("commit");
    let first = claim(&*store, Queue::Timer, t, 10).await;
    assert_eq!(timer_names(&first), ["a"]);

    // Enqueueing the same key replaces the row: new id, time and claims.
    store
        .commit(&[update(2, arm(t + 5))])
        .await
        .expect("commit");
    let next = store
        .next_visible_at(Queue::Timer, Timestamp(0))
        .await
        .expect("next");
    assert_eq!(next, Some(Timestamp(t + 5)));
    let second = claim(&*store, Queue::Timer, t + 5, 10).await;
    assert_eq!(timer_names(&second), ["a"]);
    assert_ne!(second[0].task_id, first[0].task_id);
    assert_eq!((second[0].due_at, second[0].claims), (Timestamp(t + 5), 1));

    // A stale claimer's delete misses the replacement; the current one's
    // delete removes it.
    store.delete_task(&first[0].task_id).await.expect("delete");
    let next = store
        .next_visible_at(Queue::Timer, Timestamp(0))
        .await
        .expect("next");
    assert_eq!(next, Some(Timestamp(t + 55)));
    store.delete_task(&second[0].task_id).await.expect("delete");
    assert_eq!(
        store
            .next_visible_at(Queue::Timer, Timestamp(0))
            .await
            .expect("next"),
        None
    );
    store
        .delete_task(&second[0].task_id)
        .await
        .expect("deleting twice is fine");
}

async fn tasks_postpone(store: Arc<dyn Store>) {
    let state = start(&*store, &ns(), "order-1", T0).await;
    let other = start(&*store, &ns(), "order-2", T0).await;
    let t = T0 + 100_000;
    let arm = |state: &RunState| {
        effects_only(
            state,
            vec![
                enqueue(timer("a"), t, 50),
                enqueue(timer("b"), t + 5_000, 50),
            ],
        )
    };
    store
        .commit(&[update(1, arm(&state)), update(1, arm(&other))])
        .await
        .expect("commit");
    let key = |name: &str| timer(name).key();
    let keys = [
        (state.run_id, key("a")),
        (state.run_id, key("b")),
        (state.run_id, key("missing")),
    ];
    store
        .postpone_tasks(&keys, Timestamp(t + 2_000))
        .await
        .expect("postpone");
    // `a` moved out to t + 2000; `b` was later already and stays; the
    // other run's rows are untouched; a missing key is skipped.
    let rows = claim(&*store, Queue::Timer, t + 1_999, 10).await;
    assert_eq!(timer_names(&rows), ["a"], "only the other run's row is due");
    assert_eq!(rows[0].run_id, other.run_id);
    let rows = claim(&*store, Queue::Timer, t + 2_000, 10).await;
    assert_eq!(timer_names(&rows), ["a"]);
    assert_eq!(
        (rows[0].run_id, rows[0].due_at),
        (state.run_id, Timestamp(t + 2_000))
    );
    // Both `b` rows kept their time; the `a` rows' leases ran out.
    let rows = claim(&*store, Queue::Timer, t + 5_000, 10).await;
    assert_eq!(timer_names(&rows), ["a", "a", "b", "b"]);
}

async fn queue_depths(store: Arc<dyn Store>) {
    let state = start(&*store, &ns(), "order-1", T0).await;
    let t = T0 + 100_000;
    let activity = |id| Task::ActivityTask {
        scheduled_event_id: id,
    };
    let effects = vec![
        enqueue(timer("due"), t - 10, 50),
        enqueue(timer("later"), t + 60_000, 50),
        enqueue(activity(5), t - 20, 1000),
        enqueue(activity(6), t + 5_000, 1000),
    ];
    store
        .commit(&[update(1, effects_only(&state, effects))])
        .await
        .expect("commit");
    let mut depths = store.queue_depths(Timestamp(t)).await.expect("depths");
    depths.sort_by_key(|d| (format!("{:?}", d.queue), d.task_queue.clone()));
    // Push rows group by their task queue, read off the state at write
    // time: the start's workflow task row is on the run's queue (committed
    // leased: its lease, the task timeout, ended at T0 + 15 s); these
    // activity rows name activities the state does not have, so no queue.
    let unknown = QueueDepth {
        namespace: ns(),
        queue: Queue::Push,
        task_queue: None,
        due: 1,
        oldest_due: Some(Timestamp(t - 20)),
        rows: 2,
        in_flight: 0,
    };
    let main = QueueDepth {
        namespace: ns(),
        queue: Queue::Push,
        task_queue: Some(TaskQueue::from("main")),
        due: 1,
        oldest_due: Some(Timestamp(T0 + 15_000)),
        rows: 1,
        in_flight: 0,
    };
    let timer_depth = QueueDepth {
        namespace: ns(),
        queue: Queue::Timer,
        task_queue: None,
        due: 1,
        oldest_due: Some(Timestamp(t - 10)),
        rows: 1,
        in_flight: 0,
    };
    assert_eq!(depths, vec![unknown, main, timer_depth]);
    // A claimed row is not due while its lease runs: in flight.
    claim(&*store, Queue::Timer, t, 10).await;
    let claimed = claim(&*store, Queue::Push, t, 10).await;
    assert_eq!(claimed.len(), 2);
    let depths = store.queue_depths(Timestamp(t)).await.expect("depths");
    assert!(depths.iter().all(|d| d.queue != Queue::Timer), "{depths:?}");
    let push: Vec<(Option<TaskQueue>, i64, i64)> = {
        let mut p: Vec<_> = depths
            .iter()
            .map(|d| (d.task_queue.clone(), d.due, d.in_flight))
            .collect();
        p.sort();
        p
    };
    assert_eq!(
        push,
        vec![(None, 0, 1), (Some(TaskQueue::from("main")), 0, 1)],
        "{depths:?}"
    );
}

async fn tasks_dequeue(store: Arc<dyn Store>) {
    let one = start(&*store, &ns(), "order-1", T0).await;
    let two = start(&*store, &ns(), "order-2", T0).await;
    let t = T0 + 100_000;
    let timers = |names: &[&str]| -> Vec<Effect> {
        names.iter().map(|n| enqueue(timer(n), t, 10)).collect()
    };
    // Each look claims every row, so each looks later than the last
    // claim's leases.
    let all_timers = |now: i64| {
        let store = store.clone();
        async move {
            let mut names = timer_names(&claim(&*store, Queue::Timer, now, 100).await);
            names.sort();
            names
        }
    };
    store
        .commit(&[
            update(1, effects_only(&one, timers(&["a", "b", "c"]))),
            update(1, effects_only(&two, timers(&["z"]))),
        ])
        .await
        .expect("commit");

    // Effects apply in order: `b` is dequeued, `c` dequeued then enqueued.
    let effects = vec![
        Effect::Dequeue {
            key: timer("b").key(),
        },
        Effect::Dequeue {
            key: timer("c").key(),
        },
        enqueue(timer("c"), t, 10),
        Effect::Dequeue {
            key: "no-such-key".to_owned(),
        },
    ];
    store
        .commit(&[update(2, effects_only(&one, effects))])
        .await
        .expect("commit");
    assert_eq!(all_timers(t + 1000).await, ["a", "c", "z"]);

    // DequeueAll empties one run's rows only; an Enqueue after it stands.
    let effects = vec![
        enqueue(timer("d"), t, 10),
        Effect::DequeueAll,
        enqueue(timer("e"), t, 10),
    ];
    store
        .commit(&[update(3, effects_only(&one, effects))])
        .await
        .expect("commit");
    assert_eq!(all_timers(t + 2000).await, ["e", "z"]);

    // Closing a run (the engine's DequeueAll) clears its rows.
    store
        .commit(&[update(2, terminated(&two, t, "stop"))])
        .await
        .expect("terminate");
    assert_eq!(all_timers(t + 3000).await, ["e"]);
}

async fn dequeue_all_then_enqueue_a_key_again(store: Arc<dyn Store>) {
    let state = start(&*store, &ns(), "order-1", T0).await;
    let t = T0 + 100_000;
    let effects = vec![enqueue(timer("a"), t, 50), enqueue(timer("b"), t, 50)];
    store
        .commit(&[update(1, effects_only(&state, effects))])
        .await
        .expect("commit");
    let claimed = claim(&*store, Queue::Timer, t, 10).await;
    assert_eq!(timer_names(&claimed), ["a", "b"]);

    // The key `a` exists (claimed once) when the run's rows are cleared and
    // `a` is enqueued again: one new row, as if inserted afresh.
    let effects = vec![Effect::DequeueAll, enqueue(timer("a"), t + 500, 50)];
    store
        .commit(&[update(2, effects_only(&state, effects))])
        .await
        .expect("commit");
    let rows = claim(&*store, Queue::Timer, t + 1000, 10).await;
    assert_eq!(timer_names(&rows), ["a"]);
    assert_ne!(rows[0].task_id, claimed[0].task_id);
    assert_eq!((rows[0].due_at, rows[0].claims), (Timestamp(t + 500), 1));
    let pushes = claim(&*store, Queue::Push, i64::MAX / 2, 10).await;
    assert_eq!(
        pushes,
        vec![],
        "DequeueAll removed the start's workflow task"
    );
}

/// A commit that fails — a stale version, or a second open run — writes no
/// part of itself: no run, no events, no task rows, no wake-ups.
async fn failed_commits_write_nothing(store: Arc<dyn Store>) {
    let mut wakeups = store.subscribe();
    let state = start(&*store, &ns(), "order-1", T0).await;
    let t = T0 + 100_000;
    let effects = vec![enqueue(timer("a"), t, 50), enqueue(timer("b"), t, 50)];
    let armed = effects_only(&state, effects);
    store
        .commit(&[update(1, armed.clone())])
        .await
        .expect("commit");
    let history = store.read_history(&ns(), state.run_id, 0, 100).await;
    let history = history.expect("history");

    // Stale changes: events and DequeueAll (a termination), and events
    // with every kind of task-row write.
    let stale_at = t + 7;
    let mut rewritten = terminated(&state, T0 + 1, "stale");
    rewritten.effects.extend([
        Effect::Dequeue {
            key: timer("a").key(),
        },
        enqueue(timer("b"), stale_at, 50),
        enqueue(timer("c"), stale_at, 50),
    ]);
    let closing = terminated(&state, T0 + 1, "stale");
    for stale in [closing, rewritten] {
        for version in [1, 3] {
            let res = store.commit(&[update(version, stale.clone())]).await;
            assert!(matches!(res, Err(Error::Conflict)), "got {res:?}");
        }
    }
    // A second open run of the workflow id, with a request id.
    let second = started(&ns(), "order-1", "Order", T0 + 2);
    let second_id = second.state.run_id;
    let change = RunChange {
        request_id: Some("req-1".to_owned()),
        ..create(second)
    };
    assert_already_exists(store.commit(&[change]).await, "order-1");

    let record = store.load_run(&ns(), state.run_id).await.expect("load");
    let record = record.expect("the run");
    assert_eq!((record.version, &record.state), (2, &armed.state));
    let after = store.read_history(&ns(), state.run_id, 0, 100).await;
    assert_eq!(after.expect("history"), history);
    assert_eq!(store.load_run(&ns(), second_id).await.expect("load"), None);
    let wf = WorkflowId::from("order-1");
    let found = store.run_by_request_id(&ns(), &wf, "req-1").await;
    assert_eq!(found.expect("lookup"), None);

    let rows = claim(&*store, Queue::Timer, i64::MAX / 2, 10).await;
    assert_eq!(timer_names(&rows), ["a", "b"]);
    let untouched = |row: &TaskRow| (row.due_at, row.claims) == (Timestamp(t), 1);
    assert!(rows.iter().all(untouched), "timer rows changed: {rows:?}");
    let rows = claim(&*store, Queue::Push, i64::MAX / 2, 10).await;
    let runs: Vec<(RunId, &Task)> = rows.iter().map(|row| (row.run_id, &row.task)).collect();
    assert_eq!(runs, vec![(state.run_id, &Task::WorkflowTask)]);

    let mut received = Vec::new();
    while let Ok(wakeup) = wakeups.try_recv() {
        received.push(wakeup);
    }
    assert!(
        received.iter().all(|w| w.at != Timestamp(stale_at)),
        "a failed commit announced its rows: {received:?}"
    );
}

async fn claim_race(store: Arc<dyn Store>) {
    const ROWS: usize = 200;
    const CLAIMERS: usize = 8;
    let t = T0 + 100_000;
    for (i, wf) in ["order-1", "order-2"].into_iter().enumerate() {
        let state = start(&*store, &ns(), wf, T0).await;
        let effects = (0..ROWS / 2)
            .map(|n| enqueue(timer(&format!("{i}-{n}")), t, 60_000))
            .collect();
        store
            .commit(&[update(1, effects_only(&state, effects))])
            .await
            .expect("commit");
    }

    let claimers = (0..CLAIMERS).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let rows = claim(&*store, Queue::Timer, t + 1, 7).await;
                if rows.is_empty() {
                    return mine;
                }
                mine.extend(rows.into_iter().map(|row| row.task_id));
                tokio::task::yield_now().await;
            }
        })
    });
    let mut claimed = Vec::new();
    for claimer in futures::future::join_all(claimers).await {
        claimed.extend(claimer.expect("a claimer panicked"));
    }
    let distinct: HashSet<&String> = claimed.iter().collect();
    assert_eq!(distinct.len(), claimed.len(), "a row was claimed twice");
    assert_eq!(claimed.len(), ROWS, "every row was claimed");
    assert_eq!(claim(&*store, Queue::Timer, t + 1, 1000).await, vec![]);
}

async fn wakeups_on_commit(store: Arc<dyn Store>) {
    let mut wakeups = store.subscribe();
    let state = start(&*store, &ns(), "order-1", T0).await;
    let t = T0 + 100_000;
    let effects = vec![
        enqueue(timer("a"), t, 10),
        Effect::Dequeue {
            key: timer("b").key(),
        },
        enqueue(
            Task::ActivityTask {
                scheduled_event_id: 5,
            },
            t + 1,
            10,
        ),
    ];
    store
        .commit(&[update(1, effects_only(&state, effects.clone()))])
        .await
        .expect("commit");
    // A conflicting commit announces nothing.
    let res = store
        .commit(&[update(1, effects_only(&state, effects))])
        .await;
    assert!(matches!(res, Err(Error::Conflict)), "got {res:?}");

    // Hints with `at` zero come from other nodes (LISTEN/NOTIFY); skip them.
    let mut received = Vec::new();
    while let Ok(wakeup) = wakeups.try_recv() {
        if wakeup.at != Timestamp(0) {
            received.push(wakeup);
        }
    }
    let start_wakeups: Vec<Wakeup> = started(&ns(), "x", "Order", T0)
        .effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Enqueue { task, at, .. } => Some(Wakeup {
                queue: task.queue(),
                at: *at,
            }),
            _ => None,
        })
        .collect();
    let mut expected = start_wakeups;
    expected.push(Wakeup {
        queue: Queue::Timer,
        at: Timestamp(t),
    });
    expected.push(Wakeup {
        queue: Queue::Push,
        at: Timestamp(t + 1),
    });
    let key = |w: &Wakeup| (w.at, w.queue == Queue::Push);
    received.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(received, expected);
}

fn a_schedule(id: &str, paused: bool, due_at: Option<i64>) -> ScheduleRecord {
    let schedule = schedule::Schedule {
        spec: schedule::Spec {
            cron_expressions: vec!["0 9 * * 1-5".to_owned()],
            ..schedule::Spec::default()
        },
        action: schedule::Action {
            start_workflow: schedule::StartWorkflowAction {
                workflow_id: format!("{id}-wf"),
                workflow_type: "Report".to_owned(),
                task_queue: "main".to_owned(),
                input: json!(["daily"]),
                workflow_execution_timeout: None,
                workflow_run_timeout: None,
                workflow_task_timeout: None,
                memo: None,
                retry_policy: None,
            },
        },
        policies: schedule::Policies::default(),
        state: schedule::State {
            paused,
            note: "n".to_owned(),
            ..schedule::State::default()
        },
    };
    ScheduleRecord {
        namespace: ns(),
        schedule_id: id.to_owned(),
        schedule,
        info: schedule::create(Timestamp(T0)),
        version: 1,
        due_at: due_at.map(Timestamp),
    }
}

fn schedule_ids(records: &[ScheduleRecord]) -> Vec<&str> {
    records.iter().map(|r| r.schedule_id.as_str()).collect()
}

async fn schedules_round_trip_and_list(store: Arc<dyn Store>) {
    for (id, paused) in [("b-2", false), ("a_1", true), ("b-1", false), ("b%", true)] {
        store
            .create_schedule(&a_schedule(id, paused, Some(T0)))
            .await
            .expect("create schedule");
    }
    assert_already_exists(
        store.create_schedule(&a_schedule("b-1", true, None)).await,
        "b-1",
    );
    let got = store.get_schedule(&ns(), "b-1").await.expect("get");
    assert_eq!(got, Some(a_schedule("b-1", false, Some(T0))));
    let other = Namespace::from("other");
    assert_eq!(store.get_schedule(&other, "b-1").await.expect("get"), None);

    let list = |filter: ScheduleFilter, after: Option<&'static str>, limit: i64| {
        let store = store.clone();
        async move {
            store
                .list_schedules(&ns(), &filter, after, limit)
                .await
                .expect("list schedules")
        }
    };
    let all = list(ScheduleFilter::default(), None, 10).await;
    assert_eq!(schedule_ids(&all), ["a_1", "b%", "b-1", "b-2"]);
    let prefix = |p: &str| ScheduleFilter {
        id_prefix: Some(p.to_owned()),
        paused: None,
    };
    assert_eq!(
        schedule_ids(&list(prefix("b-"), None, 10).await),
        ["b-1", "b-2"]
    );
    // The prefix is literal: `%` and `_` are no wildcards.
    assert_eq!(schedule_ids(&list(prefix("b%"), None, 10).await), ["b%"]);
    assert_eq!(schedule_ids(&list(prefix("a_"), None, 10).await), ["a_1"]);
    let paused = ScheduleFilter {
        id_prefix: None,
        paused: Some(true),
    };
    assert_eq!(schedule_ids(&list(paused, None, 10).await), ["a_1", "b%"]);
    let page = list(ScheduleFilter::default(), Some("b%"), 1).await;
    assert_eq!(schedule_ids(&page), ["b-1"]);

    assert!(store.delete_schedule(&ns(), "b-1").await.expect("delete"));
    assert!(!store.delete_schedule(&ns(), "b-1").await.expect("delete"));
    assert_eq!(store.get_schedule(&ns(), "b-1").await.expect("get"), None);
    // A deleted schedule cannot be written by a tick that read it before.
    let stale = a_schedule("b-1", false, None);
    let res = store.commit_schedule(&stale, &[]).await;
    assert!(matches!(res, Err(Error::Conflict)), "got {res:?}");
}

async fn schedule_commit_is_atomic_with_its_runs(store: Arc<dyn Store>) {
    let mut record = a_schedule("s", false, Some(T0));
    store.create_schedule(&record).await.expect("create");
    // A tick: the schedule advances and a run starts, together.
    record.info.action_count = 1;
    record.due_at = Some(Timestamp(T0 + 60_000));
    let run = started(&ns(), "s-wf-1", "Report", T0);
    let run_id = run.state.run_id;
    store
        .commit_schedule(&record, &[create(run)])
        .await
        .expect("commit schedule");
    let stored = store
        .get_schedule(&ns(), "s")
        .await
        .expect("get")
        .expect("s");
    assert_eq!(stored.version, 2);
    assert_eq!(stored.info.action_count, 1);
    assert_eq!(stored.due_at, Some(Timestamp(T0 + 60_000)));
    assert!(store.load_run(&ns(), run_id).await.expect("load").is_some());

    // A stale version writes neither the schedule nor the run.
    let run = started(&ns(), "s-wf-2", "Report", T0);
    let lost = run.state.run_id;
    record.info.action_count = 99;
    let res = store.commit_schedule(&record, &[create(run)]).await;
    assert!(matches!(res, Err(Error::Conflict)), "got {res:?}");
    assert_eq!(store.load_run(&ns(), lost).await.expect("load"), None);
    let stored = store
        .get_schedule(&ns(), "s")
        .await
        .expect("get")
        .expect("s");
    assert_eq!(stored.info.action_count, 1);

    // A run that cannot be written (its workflow id is open) leaves the
    // schedule as it was.
    record.version = 2;
    let dup = started(&ns(), "s-wf-1", "Report", T0 + 1);
    let res = store.commit_schedule(&record, &[create(dup)]).await;
    assert!(matches!(res, Err(Error::AlreadyExists(_))), "got {res:?}");
    let stored = store
        .get_schedule(&ns(), "s")
        .await
        .expect("get")
        .expect("s");
    assert_eq!((stored.version, stored.info.action_count), (2, 1));
}

async fn schedules_claim_with_leases(store: Arc<dyn Store>) {
    for (id, due) in [("late", Some(T0 + 10)), ("early", Some(T0)), ("idle", None)] {
        store
            .create_schedule(&a_schedule(id, false, due))
            .await
            .expect("create");
    }
    let claim = |now: i64, limit: i64| {
        let store = store.clone();
        async move {
            store
                .claim_schedules(Timestamp(now), Duration(1_000), limit)
                .await
                .expect("claim schedules")
        }
    };
    assert!(claim(T0 - 1, 10).await.is_empty());
    assert_eq!(
        store
            .next_schedule_due(Timestamp(T0 - 1))
            .await
            .expect("next"),
        Some(Timestamp(T0))
    );
    let first = claim(T0 + 10, 1).await;
    assert_eq!(schedule_ids(&first), ["early"]);
    assert_eq!(
        first[0].due_at,
        Some(Timestamp(T0)),
        "as it was before the claim"
    );
    assert_eq!(first[0].version, 1, "a claim changes no version");
    let second = claim(T0 + 10, 10).await;
    assert_eq!(schedule_ids(&second), ["late"], "early is leased");
    assert!(claim(T0 + 500, 10).await.is_empty());
    // Leases run out.
    let again = claim(T0 + 1_010, 10).await;
    let mut ids = schedule_ids(&again);
    ids.sort_unstable();
    assert_eq!(ids, ["early", "late"]);

    // Many claimers at once: each due schedule goes to one of them.
    for i in 0..20 {
        store
            .create_schedule(&a_schedule(&format!("race-{i:02}"), false, Some(T0)))
            .await
            .expect("create");
    }
    let claims = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .claim_schedules(Timestamp(T0 + 1_500), Duration(60_000), 8)
                .await
                .expect("claim")
        })
    });
    let mut seen = HashSet::new();
    for claimed in futures::future::join_all(claims).await {
        for record in claimed.expect("claimer") {
            assert!(seen.insert(record.schedule_id.clone()), "claimed twice");
        }
    }
    assert_eq!(seen.iter().filter(|id| id.starts_with("race-")).count(), 20);
}

fn a_batch(id: &str, created_at: i64, due: Option<i64>) -> BatchRecord {
    let checked = batch::Request {
        query: Some("WorkflowType = \"T\"".into()),
        operation: Some("terminate".into()),
        ..batch::Request::default()
    }
    .check(100.0, &crate::engine::Registry::default())
    .expect("a valid batch");
    BatchRecord {
        batch: batch::Batch::new(ns(), id.to_owned(), checked, 3, Timestamp(created_at)),
        version: 1,
        due_at: due.map(Timestamp),
        stop_requested: false,
        request_id: Some(format!("req-{id}")),
    }
}

fn batch_ids(records: &[BatchRecord]) -> Vec<&str> {
    records.iter().map(|r| r.batch.batch_id.as_str()).collect()
}

async fn batches_round_trip_list_and_stop(store: Arc<dyn Store>) {
    for (id, at) in [("a", T0), ("b", T0 + 1), ("c", T0 + 1), ("d", T0 + 2)] {
        store
            .create_batch(&a_batch(id, at, Some(at)))
            .await
            .expect("create");
    }
    let taken = store.create_batch(&a_batch("a", T0, None)).await;
    assert!(matches!(taken, Err(Error::AlreadyExists(_))), "{taken:?}");
    let got = store.get_batch(&ns(), "b").await.expect("get");
    assert_eq!(got, Some(a_batch("b", T0 + 1, Some(T0 + 1))));
    assert_eq!(store.get_batch(&ns(), "x").await.expect("get"), None);
    let other = Namespace::from("other");
    assert_eq!(store.get_batch(&other, "b").await.expect("get"), None);
    // Newest first, ties by id descending, keyset pages.
    let page = store.list_batches(&ns(), None, 3).await.expect("list");
    assert_eq!(batch_ids(&page), ["d", "c", "b"]);
    let last = &page[2].batch;
    let rest = store
        .list_batches(&ns(), Some((last.created_at, &last.batch_id)), 3)
        .await
        .expect("list");
    assert_eq!(batch_ids(&rest), ["a"]);
    assert!(store
        .list_batches(&other, None, 3)
        .await
        .expect("list")
        .is_empty());
    // An update names the version it read; stop needs none and keeps it.
    let mut record = got.expect("stored");
    record.batch.done = 2;
    record.due_at = None;
    store.update_batch(&record).await.expect("update");
    let stale = store.update_batch(&record).await;
    assert!(matches!(stale, Err(Error::Conflict)), "{stale:?}");
    assert!(store.request_batch_stop(&ns(), "b").await.expect("stop"));
    assert!(!store.request_batch_stop(&ns(), "x").await.expect("stop"));
    let stored = store.get_batch(&ns(), "b").await.expect("get").expect("b");
    assert_eq!((stored.version, stored.batch.done), (2, 2));
    assert!(stored.stop_requested);
    assert_eq!(stored.due_at, None);
}

async fn batches_claim_with_leases_that_fence(store: Arc<dyn Store>) {
    for (id, due) in [
        ("late", Some(T0 + 10)),
        ("early", Some(T0)),
        ("closed", None),
    ] {
        store
            .create_batch(&a_batch(id, T0, due))
            .await
            .expect("create");
    }
    let claim = |now: i64, limit: i64| {
        let store = store.clone();
        async move {
            store
                .claim_batches(Timestamp(now), Duration(1_000), limit)
                .await
                .expect("claim batches")
        }
    };
    assert!(claim(T0 - 1, 10).await.is_empty());
    let first = claim(T0 + 10, 1).await;
    assert_eq!(batch_ids(&first), ["early"]);
    assert_eq!(first[0].version, 2, "a claim bumps the version");
    assert_eq!(first[0].due_at, Some(Timestamp(T0 + 1_010)));
    assert_eq!(batch_ids(&claim(T0 + 10, 10).await), ["late"]);
    assert!(claim(T0 + 500, 10).await.is_empty());
    // The lease runs out; the next claim fences the first holder off.
    let again = claim(T0 + 1_010, 10).await;
    let mut ids = batch_ids(&again);
    ids.sort_unstable();
    assert_eq!(ids, ["early", "late"]);
    let fenced = store.update_batch(&first[0]).await;
    assert!(matches!(fenced, Err(Error::Conflict)), "{fenced:?}");
    for holder in &again {
        store.update_batch(holder).await.expect("the holder writes");
    }

    // Many claimers at once: each due job goes to one of them.
    for i in 0..20 {
        store
            .create_batch(&a_batch(&format!("race-{i:02}"), T0, Some(T0)))
            .await
            .expect("create");
    }
    let claims = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .claim_batches(Timestamp(T0 + 5_000), Duration(60_000), 8)
                .await
                .expect("claim")
        })
    });
    let mut seen = HashSet::new();
    for claimed in futures::future::join_all(claims).await {
        for record in claimed.expect("claimer") {
            assert!(seen.insert(record.batch.batch_id.clone()), "claimed twice");
        }
    }
    assert_eq!(seen.iter().filter(|id| id.starts_with("race-")).count(), 20);
}

fn a_webhook(id: &str) -> WebhookRecord {
    WebhookRecord {
        namespace: ns(),
        source_id: id.to_owned(),
        source: crate::webhook::Source {
            scheme: crate::webhook::Scheme::GitHub,
            secrets: vec!["old".into(), "new".into()],
            tolerance_secs: 300,
            rules: serde_json::from_value(json!([{"name": "r", "events": ["push"],
                "action": {"type": "signal", "workflow_id": "w-{/n}", "signal": "s"}}]))
            .expect("rules"),
            description: Some("a source".into()),
        },
        created_at: Timestamp(T0),
    }
}

fn a_delivery(source: &str, seq: &str, outcome: DeliveryOutcome) -> Delivery {
    let verified = outcome != DeliveryOutcome::Refused;
    Delivery {
        namespace: ns(),
        source_id: source.to_owned(),
        seq: seq.to_owned(),
        received_at: Timestamp(T0),
        delivery_id: verified.then(|| format!("github:{seq}")),
        verified,
        outcome,
        rule: verified.then(|| "r".into()),
        action: None,
        workflow_id: None,
        run_id: None,
        error: (!verified).then(|| "no signature matches".into()),
        replay_of: None,
        headers: verified.then(|| [("x-github-event".into(), "push".into())].into()),
        // A raw NUL in a body is escaped in the JSON document, so
        // PostgreSQL's text stores it too.
        body: verified.then(|| "{\"n\":1}\u{0}".into()),
    }
}

async fn webhooks_and_their_delivery_logs(store: Arc<dyn Store>) {
    for id in ["b", "a", "B"] {
        store.create_webhook(&a_webhook(id)).await.expect("create");
    }
    let taken = store.create_webhook(&a_webhook("a")).await;
    assert!(matches!(taken, Err(Error::AlreadyExists(_))), "{taken:?}");
    assert_eq!(
        store.get_webhook(&ns(), "a").await.expect("get"),
        Some(a_webhook("a"))
    );
    assert_eq!(store.get_webhook(&ns(), "x").await.expect("get"), None);
    let other = Namespace("other".into());
    assert_eq!(store.get_webhook(&other, "a").await.expect("get"), None);
    let ids: Vec<String> = store
        .list_webhooks(&ns())
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.source_id)
        .collect();
    assert_eq!(ids, ["B", "a", "b"], "bytewise order");

    // Seqs are UUIDv7 text: their order is arrival order.
    let seqs = [
        "0190a000-0000-7000-8000-000000000001",
        "0190a000-0000-7000-8000-000000000002",
        "0190a000-0000-7000-8000-000000000003",
    ];
    let outcomes = [
        DeliveryOutcome::Refused,
        DeliveryOutcome::Acted,
        DeliveryOutcome::Ignored,
    ];
    for (seq, outcome) in seqs.iter().zip(outcomes) {
        store
            .record_delivery(&a_delivery("a", seq, outcome))
            .await
            .expect("record");
    }
    store
        .record_delivery(&a_delivery("b", seqs[0], DeliveryOutcome::Acted))
        .await
        .expect("record in another source");
    let page = store
        .list_deliveries(&ns(), "a", None, 2)
        .await
        .expect("list");
    assert_eq!(
        page.iter().map(|d| d.seq.as_str()).collect::<Vec<_>>(),
        [seqs[2], seqs[1]]
    );
    let rest = store
        .list_deliveries(&ns(), "a", Some(seqs[1]), 10)
        .await
        .expect("list");
    assert_eq!(
        rest,
        vec![a_delivery("a", seqs[0], DeliveryOutcome::Refused)]
    );
    assert_eq!(
        store.get_delivery(&ns(), "a", seqs[1]).await.expect("get"),
        Some(a_delivery("a", seqs[1], DeliveryOutcome::Acted))
    );

    // Deleting a source deletes its log, and nothing of another source.
    assert!(store.delete_webhook(&ns(), "a").await.expect("delete"));
    assert!(!store
        .delete_webhook(&ns(), "a")
        .await
        .expect("delete again"));
    assert_eq!(
        store.get_delivery(&ns(), "a", seqs[1]).await.expect("get"),
        None
    );
    assert!(store
        .list_deliveries(&ns(), "a", None, 10)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        store
            .list_deliveries(&ns(), "b", None, 10)
            .await
            .expect("list")
            .len(),
        1
    );
}
