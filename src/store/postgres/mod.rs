//! The PostgreSQL backend (production; any number of nodes on one database).
//!
//! It owns what only PostgreSQL does: claiming with `for update skip
//! locked`, so concurrent nodes each take different rows without waiting on
//! one another; and LISTEN/NOTIFY on the `baton_tasks` channel, so a row
//! committed by one node as due at once wakes the claim loops of the others
//! (a hint only: the loops poll anyway). Everything else is the shared
//! [`SqlStore`].

use std::sync::LazyLock;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPoolOptions, PgQueryResult};
use sqlx::{Connection, PgPool, Postgres, Transaction};
use tokio::sync::broadcast;

use crate::engine::Queue;
use crate::time::Timestamp;

use super::query::Contains;
use super::rows::{parse_queue, queue_name, RunWrite, SlotArg, TaskCols};
use super::sql::{
    bound_slots, slot_assignments, slot_params, written_columns, Dialect, SqlStore, WAKEUP_CAPACITY,
};
use super::{Error, Result, Wakeup};

/// The store on PostgreSQL.
pub type PostgresStore = SqlStore<Postgres>;

/// Pool size unless the caller says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// A pooled connection idle this long is pinged before use; a dead one is
/// then replaced instead of failing the call. Under load connections are
/// idle for milliseconds, so the hot path never pings.
const PING_AFTER_IDLE: StdDuration = StdDuration::from_secs(1);

/// The longest wait for a pooled connection.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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

/// The single-statement commit of one run, after the run's own write `r`
/// (see [`COMMIT_UPDATE`] and [`COMMIT_INSERT`]). Every other part is gated
/// on `r` returning the run, so a lost optimistic-concurrency race writes
/// and announces nothing; a failure anywhere fails the whole statement,
/// which is atomic by itself. Rows come in as arrays, so the text (and the
/// prepared statement) is the same whatever the number of rows.
///
/// All parts see one snapshot, so none may touch a row another part
/// touches: `TaskPlan::fold` leaves each key in at most one of the delete
/// keys and the upserts, and a delete-all spares the keys upserted right
/// after it (the upsert then replaces every column of such a row, as a
/// delete and insert would). `n` is a plain select, which PostgreSQL runs
/// only as far as the final select reads it: that select counts its rows.
///
/// Parameters: $1 run id, $2 now; events $3 ids, $4 types, $5 times, $6
/// data; $7 delete all, $8 keys to delete; tasks $9 namespace, $10 keys, $11
/// task ids, $12 queues, $13 payloads, $14 visible at, $15 leases; $16 the
/// channel, $17 queues to announce; the run's $18 status, $19 close time,
/// $20 history length, $21 state; then the run write's own from $22.
/// Whatever the write, the pinned version follows (an insert then binds
/// the parent).
macro_rules! commit_after_run {
    () => {
        "e as (insert into events (run_id, event_id, event_type, event_time, data) \
            select $1, e.* from unnest($3::bigint[], $4::text[], $5::bigint[], $6::text[]) as e \
            where exists (select 1 from r)), \
        d as (delete from tasks where run_id = $1 and ($7 or task_key = any($8::text[])) \
            and task_key <> all($10::text[]) and exists (select 1 from r)), \
        u as (insert into tasks (task_id, namespace, run_id, task_key, queue, payload, \
                visible_at, lease_ms, created_at, claims) \
            select t.task_id, $9, $1, t.task_key, t.queue, t.payload, t.visible_at, t.lease_ms, \
                $2, 0 \
            from unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[], \
                $15::bigint[]) as t(task_key, task_id, queue, payload, visible_at, lease_ms) \
            where exists (select 1 from r) \
            on conflict (run_id, task_key) do update set task_id = excluded.task_id, \
            namespace = excluded.namespace, queue = excluded.queue, payload = excluded.payload, \
            visible_at = excluded.visible_at, lease_ms = excluded.lease_ms, claims = 0, \
            created_at = excluded.created_at), \
        n as (select pg_notify($16, q) from unnest($17::text[]) as q \
            where exists (select 1 from r)) \
        select (select count(*) from n) from r"
    };
}

/// Updates a run if its version is still $22 (optimistic concurrency); no
/// row back means it is not. The slot columns (and `scheduled_by_id`)
/// from $24.
static COMMIT_UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with r as (update runs set status = $18, close_time = $19, history_length = $20, \
         state = $21, version = version + 1, updated_at = $2, pinned_version = $23, {} \
         where run_id = $1 and version = $22 returning run_id), {}",
        slot_assignments(24),
        commit_after_run!()
    )
});

/// Inserts a run: $22 workflow id, $23 workflow type, $24 task queue, $25
/// start time, $26 request id, $27 pinned version, $28 parent workflow id,
/// $29 parent run id, the slot columns (and `scheduled_by_id`) from $30. A second open run of the
/// workflow id fails the statement on `runs_open_workflow_id`.
static COMMIT_INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with r as (insert into runs (run_id, namespace, workflow_id, workflow_type, task_queue, \
         status, start_time, close_time, history_length, request_id, version, state, \
         created_at, updated_at, pinned_version, parent_workflow_id, parent_run_id, {}) \
         values ($1, $9, $22, $23, $24, $18, $25, $19, $20, $26, 1, $21, $2, $2, $27, $28, \
         $29, {}) \
         returning run_id), {}",
        written_columns().join(", "),
        slot_params(30),
        commit_after_run!()
    )
});

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
            // During an outage a call waits this long for a connection,
            // then fails as transient (503 to API clients, a retry for
            // outcomes) instead of hanging for sqlx's default 30 s.
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // sqlx would ping every connection it hands out: a round trip
            // per store call, a third of all of them on the hot path (it
            // pings again on release, off the caller's path). Only a
            // connection that sat idle long enough to have died unnoticed
            // (a restart, a proxy's idle cut) is worth the round trip.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await?;
        let (wakeups, _) = broadcast::channel(WAKEUP_CAPACITY);
        let listener = tokio::spawn(listen(url.to_owned(), wakeups.clone()));
        Ok(SqlStore::new(pool, wakeups, Some(listener)))
    }
}

#[async_trait]
impl Dialect for Postgres {
    const SKIP_LOCKED: &'static str = " for update skip locked";
    const BYTEWISE: &'static str = " collate \"C\"";
    const CONTAINS: Contains = Contains::Jsonb;
    const LOCK_SKIP_LOCKED: &'static str = " for update of r skip locked";

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

    async fn commit_one(pool: &PgPool, write: &RunWrite, now: i64) -> Option<Result<()>> {
        Some(commit_one(pool, write, now).await)
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

/// See [`commit_after_run`].
async fn commit_one(pool: &PgPool, write: &RunWrite, now: i64) -> Result<()> {
    let (run, events, tasks) = (&write.run, &write.events, &write.tasks.upserts);
    let query: &str = match write.expected_version {
        Some(_) => &COMMIT_UPDATE,
        None => &COMMIT_INSERT,
    };
    let query = sqlx::query_scalar::<_, i64>(query)
        .bind(run.run_id.as_str())
        .bind(now)
        .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_type).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_time).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.data.as_str()).collect::<Vec<_>>())
        .bind(write.tasks.delete_all)
        .bind(write.tasks.delete_keys.as_slice())
        .bind(run.namespace.as_str())
        .bind(tasks.iter().map(|t| t.key.as_str()).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| t.task_id.as_str()).collect::<Vec<_>>())
        .bind(
            tasks
                .iter()
                .map(|t| queue_name(t.queue))
                .collect::<Vec<_>>(),
        )
        .bind(tasks.iter().map(|t| t.payload.as_str()).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| t.visible_at).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| t.lease_ms).collect::<Vec<_>>())
        .bind(CHANNEL)
        .bind(write.due.iter().map(|q| queue_name(*q)).collect::<Vec<_>>())
        .bind(run.status)
        .bind(run.close_time)
        .bind(run.history_length)
        .bind(run.state.as_str());
    let query = match write.expected_version {
        Some(version) => query.bind(version),
        None => query
            .bind(run.workflow_id.as_str())
            .bind(run.workflow_type.as_str())
            .bind(run.task_queue.as_str())
            .bind(run.start_time)
            .bind(write.request_id.as_deref()),
    }
    .bind(run.pinned_version.as_deref());
    let query = match write.expected_version {
        Some(_) => query,
        None => query
            .bind(run.parent_workflow_id.as_deref())
            .bind(run.parent_run_id.as_deref()),
    };
    let query = bound_slots!(query, run);
    match query.fetch_optional(pool).await {
        Ok(Some(_announced)) => Ok(()),
        // `r` returned nothing: the version moved on.
        Ok(None) => Err(Error::Conflict),
        Err(e) => Err(write.error(e)),
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
        for queue in [Queue::Push, Queue::Timer, Queue::Transfer] {
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
