//! The SQLite backend (`baton dev`, embedded, one process).
//!
//! SQLite has a single writer, so it owns two choices: every write
//! transaction starts with `begin immediate`, taking the write lock up front
//! (a deferred transaction that reads first and writes later can fail with
//! SQLITE_BUSY when it tries to upgrade, which no busy timeout cures); and a
//! claim is a select plus an update inside one such transaction, with no row
//! locks needed. Everything else is the shared [`SqlStore`].
//!
//! Connections: a file database uses WAL (readers never wait for the
//! writer), a 5 s busy timeout and a small pool. `sqlite::memory:` is a
//! named shared-cache database (sqlx names it), which lives while any
//! connection to it is open: the pool has one connection, and the store
//! holds a second, idle one for as long as it lives, because sqlx closes a
//! connection whose query was cancelled (a client hung up mid-request) and
//! the last one to close would discard the database.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
    SqliteQueryResult, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Connection as _, QueryBuilder, Sqlite, SqlitePool, Transaction};
use tokio::sync::broadcast;

use crate::engine::Queue;

use super::rows::{queue_name, RunWrite, TaskCols};
use super::sql::{Dialect, SqlStore, WAKEUP_CAPACITY};
use super::Result;

/// The store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

/// Connections to a file database: enough for concurrent readers, while
/// writers queue on SQLite's lock anyway.
const MAX_CONNECTIONS: u32 = 4;

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(5);

const SELECT_DUE: &str = "select task_id, visible_at from tasks \
    where queue = $1 and visible_at <= $2 order by visible_at limit $3";

impl SqlStore<Sqlite> {
    /// Opens (creating if missing) the database `url` names: `sqlite:path`,
    /// `sqlite://path` or `sqlite::memory:`.
    pub async fn connect(url: &str) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?.busy_timeout(BUSY_TIMEOUT);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut anchor = None;
        let pool = if in_memory {
            let keep = options.connect().await?;
            anchor = Some(tokio::spawn(async move {
                let _keep = keep;
                std::future::pending::<()>().await
            }));
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .after_release(no_open_transaction)
                .connect_with(options)
                .await?
        } else {
            // NORMAL is durable against process crashes under WAL; only a
            // power loss can drop the last commits, which suits a dev
            // server.
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .after_release(no_open_transaction)
                .connect_with(options)
                .await?
        };
        let (wakeups, _) = broadcast::channel(WAKEUP_CAPACITY);
        Ok(SqlStore::new(pool, wakeups, anchor))
    }
}

/// Refuses a connection handed back to the pool with its transaction still
/// open, so the pool closes it (rolling the transaction back) rather than
/// lending it out again. sqlx 0.8 leaves one so when a `begin` is cancelled
/// after SQLite began the transaction but before sqlx made the
/// `Transaction` that would roll it back (a timed-out probe, an API call
/// whose client hung up); its open `begin immediate` would hold SQLite's
/// write lock for good. A rollback queued by a dropped `Transaction` runs
/// before the ping, so only a transaction nobody owns is counted.
fn no_open_transaction(
    conn: &mut SqliteConnection,
    _: PoolConnectionMetadata,
) -> BoxFuture<'_, std::result::Result<bool, sqlx::Error>> {
    Box::pin(async move {
        if !conn.is_in_transaction() {
            return Ok(true);
        }
        conn.ping().await?;
        let open = conn.is_in_transaction();
        if open {
            tracing::warn!("closing a SQLite connection handed back with a transaction open");
        }
        Ok(!open)
    })
}

#[async_trait]
impl Dialect for Sqlite {
    const SKIP_LOCKED: &'static str = "";
    const BYTEWISE: &'static str = "";
    const CONTAINS: super::query::Contains = super::query::Contains::JsonEach;
    const LOCK_SKIP_LOCKED: &'static str = "";

    async fn migrate(pool: &SqlitePool) -> Result<()> {
        sqlx::migrate!("./migrations/sqlite").run(pool).await?;
        Ok(())
    }

    async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>> {
        Ok(pool.begin_with("begin immediate").await?)
    }

    async fn claim(pool: &SqlitePool, queue: Queue, now: i64, limit: i64) -> Result<Vec<TaskCols>> {
        let mut tx = Sqlite::begin_write(pool).await?;
        let due: Vec<(String, i64)> = sqlx::query_as(SELECT_DUE)
            .bind(queue_name(queue))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        // SQLite's `returning` sees only the updated table, so the old
        // `visible_at` comes from the select above.
        let mut update = QueryBuilder::<Sqlite>::new("update tasks set visible_at = ");
        update
            .push_bind(now)
            .push(" + lease_ms, claims = claims + 1 where task_id in (");
        let mut ids = update.separated(", ");
        for (task_id, _) in &due {
            ids.push_bind(task_id.as_str());
        }
        ids.push_unseparated(") returning task_id, namespace, run_id, payload, claims");
        let claimed: Vec<(String, String, String, String, i32)> =
            update.build_query_as().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let due_at: HashMap<String, i64> = due.into_iter().collect();
        let rows = claimed
            .into_iter()
            .filter_map(|(task_id, namespace, run_id, payload, claims)| {
                let due_at = *due_at.get(&task_id)?;
                Some((task_id, namespace, run_id, payload, due_at, claims))
            })
            .collect();
        Ok(rows)
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn notify(_tx: &mut Transaction<'static, Sqlite>, _queues: &[Queue]) -> Result<()> {
        // One process: the local wake-ups after commit reach everyone.
        Ok(())
    }

    async fn commit_one(_pool: &SqlitePool, _write: &RunWrite, _now: i64) -> Option<Result<()>> {
        // SQLite has no data-modifying CTEs, and an embedded database has
        // no round trips to save: the transaction it is.
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::Store as _;

    /// A write cancelled at any point (a timed-out probe, an API call whose
    /// client hung up) must not hand its connection back to the pool with
    /// its transaction open: SQLite's write lock would then be held for
    /// good, and every later write on any connection would fail.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_writes_leave_no_transaction_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("baton.db").display());
        let store = SqliteStore::connect(&url).await.expect("store");
        store.migrate().await.expect("migrate");
        for i in 0..2_000u64 {
            // Cancel after a few microseconds: anywhere from waiting for a
            // connection to committing.
            let cut = Duration::from_micros(i % 300);
            let _ = tokio::time::timeout(cut, store.probe_write()).await;
        }
        for _ in 0..(2 * MAX_CONNECTIONS) {
            let write = tokio::time::timeout(Duration::from_secs(20), store.probe_write());
            write
                .await
                .expect("a write finishes")
                .expect("a write succeeds after cancelled ones");
        }
    }
}
