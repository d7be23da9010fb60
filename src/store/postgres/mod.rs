//! The PostgreSQL backend (production; any number of nodes on one database).
//!
//! It owns what only PostgreSQL does: claiming with `for update skip
//! locked`, so concurrent nodes each take different rows without waiting on
//! one another; and LISTEN/NOTIFY on the `baton_tasks` channel, so a row
//! committed by one node as due at once wakes the claim loops of the others
//! (a hint only: the loops poll anyway). Everything else is the shared
//! [`SqlStore`].

use std::time::Duration as StdDuration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPoolOptions, PgQueryResult};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::broadcast;

use crate::engine::Queue;
use crate::time::Timestamp;

use super::rows::{parse_queue, queue_name, TaskCols};
use super::sql::{Dialect, SqlStore, WAKEUP_CAPACITY};
use super::{Result, Wakeup};

/// The store on PostgreSQL.
pub type PostgresStore = SqlStore<Postgres>;

/// Pool size unless the caller says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// The first pause before the listener reconnects after an error.
const RECONNECT_DELAY: StdDuration = StdDuration::from_secs(1);

/// The longest pause between the listener's reconnection attempts.
const MAX_RECONNECT_DELAY: StdDuration = StdDuration::from_secs(30);

/// The NOTIFY channel; the payload is the queue name (`push`, `timer`).
const CHANNEL: &str = "baton_tasks";

/// Locks the chosen rows, skipping rows another claimer holds, and moves
/// them out of sight for their lease. The CTE carries each row's old
/// `visible_at` out as its due time.
const CLAIM: &str = "with due as ( \
        select task_id, visible_at from tasks \
        where queue = $1 and visible_at <= $2 \
        order by visible_at limit $3 \
        for update skip locked) \
    update tasks t set visible_at = $2 + t.lease_ms, claims = t.claims + 1 \
    from due where t.task_id = due.task_id \
    returning t.task_id, t.namespace, t.run_id, t.payload, due.visible_at, t.claims";

impl SqlStore<Postgres> {
    /// Connects with [`DEFAULT_MAX_CONNECTIONS`] and starts the listener.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        PostgresStore::connect_with(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// Connects with a pool of at most `max_connections` (plus the
    /// listener's own connection) and starts the listener, which runs until
    /// the store is dropped.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        let (wakeups, _) = broadcast::channel(WAKEUP_CAPACITY);
        let listener = tokio::spawn(listen(url.to_owned(), wakeups.clone()));
        Ok(SqlStore::new(pool, wakeups, Some(listener)))
    }
}

#[async_trait]
impl Dialect for Postgres {
    async fn migrate(pool: &PgPool) -> Result<()> {
        // sqlx serializes concurrent migrators with an advisory lock, so
        // nodes starting together are safe.
        sqlx::migrate!("./migrations/postgres").run(pool).await?;
        Ok(())
    }

    async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
        Ok(pool.begin().await?)
    }

    async fn claim(pool: &PgPool, queue: Queue, now: i64, limit: i64) -> Result<Vec<TaskCols>> {
        let rows = sqlx::query_as(CLAIM)
            .bind(queue_name(queue))
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?;
        Ok(rows)
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn notify(tx: &mut Transaction<'static, Postgres>, queues: &[Queue]) -> Result<()> {
        // Delivered only if the transaction commits.
        for queue in queues {
            sqlx::query("select pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(queue_name(*queue))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// Forwards notifications on [`CHANNEL`] as wake-ups until the store drops
/// (which aborts this task). On an error it waits and connects again, the
/// wait doubling from [`RECONNECT_DELAY`] up to [`MAX_RECONNECT_DELAY`]
/// while the database stays away. Notifications sent while it was away are
/// lost, so after every reconnect it wakes each queue once and the claim
/// loops look at the table.
async fn listen(url: String, wakeups: broadcast::Sender<Wakeup>) {
    let wake_all = || {
        for queue in [Queue::Push, Queue::Timer] {
            let _ = wakeups.send(Wakeup {
                queue,
                at: Timestamp(0),
            });
        }
    };
    let mut delay = RECONNECT_DELAY;
    loop {
        match subscribe(&url).await {
            Ok(mut listener) => loop {
                delay = RECONNECT_DELAY;
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        if let Some(queue) = parse_queue(notification.payload()) {
                            let _ = wakeups.send(Wakeup {
                                queue,
                                at: Timestamp(0),
                            });
                        }
                    }
                    // The connection dropped; the next call reconnects.
                    Ok(None) => wake_all(),
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN {CHANNEL} failed; reconnecting");
                        break;
                    }
                }
            },
            Err(e) => tracing::warn!(error = %e, "LISTEN {CHANNEL} could not start; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
        wake_all();
    }
}

async fn subscribe(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
