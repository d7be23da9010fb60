//! The store conformance suite on PostgreSQL, plus what only PostgreSQL
//! does: wake-ups across nodes through LISTEN/NOTIFY, and a listener that
//! goes away with its store.
//!
//! The server is `DATABASE_URL`, or `postgres://postgres@127.0.0.1:5432/postgres`.
//! Every case runs in a database of its own (`baton_test_<uuid>`), dropped
//! afterwards, so concurrent test runs never collide. An unreachable server
//! fails the tests with a message saying so, unless `BATON_SKIP_POSTGRES=1`
//! (CI always has PostgreSQL).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use baton::engine::{
    self, Ctx, Effect, Event, EventAttributes, Limits, MarkerRecorded, Queue, RunState, StartRun,
    Task, Transition,
};
use baton::ids::{Namespace, RunId, TaskQueue, TimerId, WorkflowId};
use baton::store::{conformance, PostgresStore, RunChange, Store, Wakeup};
use baton::time::{Duration, Timestamp};
use futures::FutureExt;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use tokio::sync::broadcast;

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The databases a test created, dropped by [`Databases::drop_all`].
struct Databases {
    admin: String,
    created: Mutex<Vec<String>>,
}

impl Databases {
    /// `None` (after saying so) when the server is unreachable and the
    /// caller asked to skip; otherwise an unreachable server is a failure.
    async fn open() -> Option<Databases> {
        let admin = admin_url();
        if let Err(e) = PgConnection::connect(&admin).await {
            if std::env::var("BATON_SKIP_POSTGRES").as_deref() == Ok("1") {
                eprintln!("skipping: PostgreSQL at {admin} is unreachable ({e})");
                return None;
            }
            panic!(
                "PostgreSQL at {admin} is unreachable: {e}\n\
                 Start one (scripts/ensure-postgres.sh prints a DATABASE_URL), or set \
                 BATON_SKIP_POSTGRES=1 to skip these tests."
            );
        }
        Some(Databases {
            admin,
            created: Mutex::new(Vec::new()),
        })
    }

    /// Creates an empty database and returns its URL.
    async fn create(&self) -> String {
        let name = format!("baton_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&self.admin).await.expect("connect");
        sqlx::query(&format!("create database {name}"))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        self.created
            .lock()
            .expect("not poisoned")
            .push(name.clone());
        let mut url = reqwest::Url::parse(&self.admin).expect("DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        url.to_string()
    }

    async fn drop_all(&self) {
        let names = std::mem::take(&mut *self.created.lock().expect("not poisoned"));
        let mut conn = PgConnection::connect(&self.admin).await.expect("connect");
        for name in names {
            // `force` ends the sessions a dropped store may not have closed yet.
            sqlx::query(&format!("drop database if exists {name} with (force)"))
                .execute(&mut conn)
                .await
                .expect("drop the test database");
        }
    }

    /// Runs `test`, then drops the databases whether it passed or not.
    async fn cleanup_after(&self, test: impl std::future::Future<Output = ()>) {
        let result = AssertUnwindSafe(test).catch_unwind().await;
        self.drop_all().await;
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}

async fn migrated(url: &str) -> PostgresStore {
    let store = PostgresStore::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_conforms() {
    let Some(dbs) = Databases::open().await else {
        return;
    };
    let suite = conformance::run_all(|| async {
        let store: Arc<dyn Store> = Arc::new(migrated(&dbs.create().await).await);
        store
    });
    dbs.cleanup_after(suite).await;
}

const T0: i64 = 1_700_000_000_000;

/// Commits the start of a run of `workflow_id`; returns the run's state.
async fn start_run(store: &dyn Store, workflow_id: &str) -> RunState {
    let change = start_change(workflow_id);
    let state = change.transition.state.clone();
    store.commit(&[change]).await.expect("commit");
    state
}

/// The start of a run of `workflow_id`, plus a push row due at once (the
/// engine commits the first workflow task leased, so not due).
fn start_change(workflow_id: &str) -> RunChange {
    let ctx = Ctx {
        now: Timestamp(T0),
        limits: Limits::default(),
        next_run_id: RunId::generate(),
    };
    let start = StartRun {
        trace_context: None,
        namespace: Namespace::from("default"),
        workflow_id: WorkflowId::from(workflow_id),
        run_id: RunId::generate(),
        workflow_type: "Order".to_owned(),
        task_queue: TaskQueue::from("main"),
        input: json!(null),
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
    let mut transition = engine::start(start, &ctx).expect("a valid start");
    transition.effects.push(Effect::Enqueue {
        task: Task::ActivityTask {
            scheduled_event_id: 0,
        },
        at: Timestamp(T0),
        lease: Duration(1000),
    });
    RunChange {
        expected_version: None,
        transition,
        request_id: None,
    }
}

/// A change of the run `state` (advanced in place) that records a marker
/// at `T0 + tick` and enqueues `task` due at that time, so the commit
/// announces the task's queue to other nodes.
fn tick(state: &mut RunState, expected_version: i64, tick: i64, task: Task) -> RunChange {
    let at = Timestamp(T0 + tick);
    let event = Event {
        event_id: state.next_event_id,
        event_time: at,
        attributes: EventAttributes::MarkerRecorded(MarkerRecorded {
            marker_name: "tick".to_owned(),
            details: json!(tick),
            workflow_task_completed_event_id: 0,
            failure: None,
        }),
    };
    state.evolve(&event);
    let enqueue = Effect::Enqueue {
        task,
        at,
        lease: Duration(1000),
    };
    let transition = Transition {
        state: state.clone(),
        events: vec![event],
        effects: vec![enqueue],
        next_run: None,
        checkpoint: None,
    };
    RunChange {
        expected_version: Some(expected_version),
        transition,
        request_id: None,
    }
}

/// Starts a run, then commits one change after another, each enqueueing a
/// push row due at the change's event time, until `hear` returns true.
async fn commit_due_rows_until(store: &dyn Store, mut hear: impl AsyncFnMut() -> bool) -> bool {
    let mut state = start_run(store, "order-1").await;
    for version in 1..=20 {
        // The listener connects in the background, and notifications sent
        // before it listens are lost: keep sending until one arrives.
        let task = Task::ActivityTask {
            scheduled_event_id: version,
        };
        let change = tick(&mut state, version, version, task);
        store.commit(&[change]).await.expect("commit");
        if hear().await {
            return true;
        }
    }
    false
}

/// The next hint from another node, if one comes within two seconds.
async fn next_remote(wakeups: &mut broadcast::Receiver<Wakeup>) -> Option<Queue> {
    loop {
        let wait = tokio::time::timeout(StdDuration::from_secs(2), wakeups.recv());
        match wait.await {
            Ok(Ok(Wakeup {
                queue,
                at: Timestamp(0),
            })) => return Some(queue),
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => panic!("wake-ups: {e}"),
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn due_rows_wake_other_nodes() {
    let Some(dbs) = Databases::open().await else {
        return;
    };
    dbs.cleanup_after(async {
        let url = dbs.create().await;
        let (a, b) = (migrated(&url).await, migrated(&url).await);
        let mut wakeups = b.subscribe();
        let heard = commit_due_rows_until(&a, async || {
            let wait = tokio::time::timeout(StdDuration::from_millis(500), wakeups.recv());
            matches!(
                wait.await,
                Ok(Ok(Wakeup {
                    queue: Queue::Push,
                    at: Timestamp(0)
                }))
            )
        })
        .await;
        assert!(heard, "node b never heard of node a's due push rows");
    })
    .await;
}

/// Notifications go out with their commit, so one that fails sends none.
/// Hints arrive in commit order and name only a queue, so the test
/// alternates queues: after a timer hint everything before it has arrived;
/// a new run's push hint arrives; a failed start and a stale change, both
/// with push rows due, fail; and the next hint is the next commit's, due
/// on the timer queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_commits_wake_no_other_node() {
    let Some(dbs) = Databases::open().await else {
        return;
    };
    dbs.cleanup_after(async {
        let url = dbs.create().await;
        let (a, b) = (migrated(&url).await, migrated(&url).await);
        let mut wakeups = b.subscribe();
        let heard = commit_due_rows_until(&a, async || {
            let wait = tokio::time::timeout(StdDuration::from_millis(500), wakeups.recv());
            matches!(
                wait.await,
                Ok(Ok(Wakeup {
                    at: Timestamp(0),
                    ..
                }))
            )
        })
        .await;
        assert!(heard, "node b never heard of node a's due push rows");
        let timer = |name: &str| Task::UserTimer {
            timer_id: TimerId::from(name),
            started_event_id: 1,
        };
        let mut state = start_run(&a, "order-2").await;
        let change = tick(&mut state, 1, 1, timer("sync"));
        a.commit(&[change]).await.expect("commit");
        while next_remote(&mut wakeups).await.expect("a hint") != Queue::Timer {}

        start_run(&a, "order-3").await;
        assert_eq!(next_remote(&mut wakeups).await, Some(Queue::Push));
        let again = a.commit(&[start_change("order-3")]).await;
        assert!(
            matches!(again, Err(baton::store::Error::AlreadyExists(_))),
            "got {again:?}"
        );
        let push = Task::ActivityTask {
            scheduled_event_id: 1,
        };
        let stale = tick(&mut state.clone(), 1, 2, push);
        let res = a.commit(&[stale]).await;
        assert!(
            matches!(res, Err(baton::store::Error::Conflict)),
            "got {res:?}"
        );
        let change = tick(&mut state, 2, 3, timer("after"));
        a.commit(&[change]).await.expect("commit");
        assert_eq!(next_remote(&mut wakeups).await, Some(Queue::Timer));
    })
    .await;
}

/// The pool skips sqlx's ping on the busy path, but a connection that sat
/// idle (here: killed by the server meanwhile) is checked before use and
/// replaced, so the call after a database restart still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_while_idle_are_replaced() {
    let Some(dbs) = Databases::open().await else {
        return;
    };
    dbs.cleanup_after(async {
        let url = dbs.create().await;
        let database = url.rsplit('/').next().expect("a path").to_owned();
        let store = migrated(&url).await;
        let mut state = start_run(&store, "order-1").await;
        let mut admin = PgConnection::connect(&dbs.admin).await.expect("connect");
        let killed: Vec<bool> = sqlx::query_scalar(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1",
        )
        .bind(&database)
        .fetch_all(&mut admin)
        .await
        .expect("terminate the store's sessions");
        assert!(!killed.is_empty(), "the store had sessions");
        // Longer than the idle time after which a connection is pinged.
        tokio::time::sleep(StdDuration::from_millis(1500)).await;
        let ns = Namespace::from("default");
        let loaded = store.load_run(&ns, state.run_id).await;
        assert_eq!(
            loaded.expect("load after the kill").map(|r| r.version),
            Some(1)
        );
        let timer = Task::UserTimer {
            timer_id: TimerId::from("t"),
            started_event_id: 1,
        };
        let change = tick(&mut state, 1, 1, timer);
        store
            .commit(&[change])
            .await
            .expect("commit after the kill");
    })
    .await;
}

/// Waits (up to five seconds) until `expected` sessions on `database` are
/// listening; returns the last count seen.
async fn await_listeners(admin: &mut PgConnection, database: &str, expected: i64) -> i64 {
    let mut count = -1;
    for _ in 0..100 {
        count = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = $1 and query ilike 'listen%'",
        )
        .bind(database)
        .fetch_one(&mut *admin)
        .await
        .expect("count listeners");
        if count == expected {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_stops_its_listener() {
    let Some(dbs) = Databases::open().await else {
        return;
    };
    dbs.cleanup_after(async {
        let url = dbs.create().await;
        let database = url.rsplit('/').next().expect("a path").to_owned();
        let mut admin = PgConnection::connect(&dbs.admin).await.expect("connect");
        let store = migrated(&url).await;
        let count = await_listeners(&mut admin, &database, 1).await;
        assert_eq!(count, 1, "the store listens");
        drop(store);
        let count = await_listeners(&mut admin, &database, 0).await;
        assert_eq!(count, 0, "the listener outlived its store");
    })
    .await;
}
