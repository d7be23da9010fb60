//! The store conformance suite on SQLite: a file database in a temporary
//! directory (WAL, a pool of several connections) and `sqlite::memory:`
//! (one pooled connection). Always runs; needs nothing outside the process.

use std::sync::Arc;

use baton::store::{conformance, SqliteStore, Store};

async fn migrated(url: &str) -> Arc<dyn Store> {
    let store = SqliteStore::connect(url).await.expect("open SQLite");
    store.migrate().await.expect("migrate SQLite");
    Arc::new(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_database_conforms() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let n = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.path().join(format!("case-{i}.db"));
        async move { migrated(&format!("sqlite://{}", path.display())).await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_database_conforms() {
    conformance::run_all(|| migrated("sqlite::memory:")).await;
}

#[tokio::test]
async fn migrating_twice_is_a_no_op() {
    let store = migrated("sqlite::memory:").await;
    store.migrate().await.expect("second migration");
}

#[tokio::test]
async fn a_file_database_keeps_its_data() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("baton.db").display());
    let record = baton::store::NamespaceRecord {
        name: baton::ids::Namespace::from("default"),
        description: String::new(),
        retention: baton::store::DEFAULT_RETENTION,
        created_at: baton::time::Timestamp(1),
    };
    migrated(&url)
        .await
        .create_namespace(&record)
        .await
        .expect("create");
    let reopened = migrated(&url).await;
    let got = reopened.get_namespace(&record.name).await.expect("get");
    assert_eq!(got, Some(record));
}

/// sqlx closes a connection whose query was cancelled mid-way (a client
/// that hung up) and the pool opens another: an in-memory database must
/// outlive that, since `baton dev --db :memory:` serves browsers and
/// SDK test environments that abort requests all the time.
#[tokio::test]
async fn a_memory_database_survives_its_connection_being_closed() {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("open SQLite");
    store.migrate().await.expect("migrate SQLite");
    let record = baton::store::NamespaceRecord {
        name: baton::ids::Namespace::from("kept"),
        description: String::new(),
        retention: baton::store::DEFAULT_RETENTION,
        created_at: baton::time::Timestamp(1),
    };
    store.create_namespace(&record).await.expect("create");
    for _ in 0..3 {
        let conn = store.pool().acquire().await.expect("a connection");
        // Out of the pool and closed, as a cancelled query's connection is.
        sqlx::Connection::close(conn.detach()).await.expect("close");
        let got = store.get_namespace(&record.name).await.expect("get");
        assert_eq!(got.as_ref(), Some(&record));
    }
}
