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
    self, Ctx, Effect, Event, EventAttributes, Limits, MarkerRecorded, Queue, StartRun, Task,
    Transition,
};
use baton::ids::{Namespace, RunId, TaskQueue, WorkflowId};
use baton::store::{conformance, PostgresStore, RunChange, Store, Wakeup};
use baton::time::{Duration, Timestamp};
use futures::FutureExt;
use serde_json::json;
use sqlx::{Connection, PgConnection};

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

/// Starts a run, then commits one change after another, each enqueueing a
/// push row due at the change's event time, until `hear` returns true.
async fn commit_due_rows_until(store: &dyn Store, mut hear: impl AsyncFnMut() -> bool) -> bool {
    let ctx = Ctx {
        now: Timestamp(T0),
        limits: Limits::default(),
    };
    let start = StartRun {
        namespace: Namespace::from("default"),
        workflow_id: WorkflowId::from("order-1"),
        run_id: RunId::generate(),
        workflow_type: "Order".to_owned(),
        task_queue: TaskQueue::from("main"),
        input: json!(null),
        execution_timeout: None,
        run_timeout: None,
        task_timeout: None,
        request_id: None,
        identity: None,
    };
    let started = engine::start(start, &ctx).expect("a valid start");
    let mut state = started.state.clone();
    let change = RunChange {
        expected_version: None,
        transition: started,
        request_id: None,
    };
    store.commit(&[change]).await.expect("commit");
    for version in 1..=20 {
        // The listener connects in the background, and notifications sent
        // before it listens are lost: keep sending until one arrives.
        let at = Timestamp(T0 + version);
        let event = Event {
            event_id: state.next_event_id,
            event_time: at,
            attributes: EventAttributes::MarkerRecorded(MarkerRecorded {
                marker_name: "tick".to_owned(),
                details: json!(version),
                workflow_task_completed_event_id: 0,
                failure: None,
            }),
        };
        state.evolve(&event);
        let enqueue = Effect::Enqueue {
            task: Task::ActivityTask {
                scheduled_event_id: version,
            },
            at,
            lease: Duration(1000),
        };
        let transition = Transition {
            state: state.clone(),
            events: vec![event],
            effects: vec![enqueue],
        };
        let change = RunChange {
            expected_version: Some(version),
            transition,
            request_id: None,
        };
        store.commit(&[change]).await.expect("commit");
        if hear().await {
            return true;
        }
    }
    false
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
