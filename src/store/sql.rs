//! [`SqlStore`]: the one [`Store`] implementation behind both backends.
//!
//! PostgreSQL and SQLite (3.35+) understand the same SQL for almost
//! everything, so the queries live here once, written for both: `$n`
//! placeholders (sqlx's SQLite driver accepts them), `on conflict … do
//! update`, `returning`, partial indexes and row-value comparisons. What
//! differs — migrations, how a write transaction begins, the claim query,
//! cross-node notifications, and PostgreSQL's single-statement commit of
//! one run — is the small [`Dialect`] trait, implemented in `postgres/` and
//! `sqlite/`. Column values come from and go to the pure helpers in `rows`.

use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Transaction, Type,
};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::engine::{Event, Queue, RegisteredAttribute};
use crate::ids::{Namespace, RunId, TaskQueue, WorkflowId};
use crate::payload::StoredPayload;
use crate::schema::Schemas;
use crate::time::Timestamp;
use crate::visibility::{CountQuery, Cursor, ListQuery};

use super::query::{self, Compiler};
use super::rows::{
    self, audit_now, decode_json, encode_json, on_unique, parse_run_id, queue_name, run_id_text,
    ApiKeyCols, Arg, BatchCols, EndpointCols, LeaseCols, NamespaceCols, RunRecordCols, RunWrite,
    ScheduleCols, SlotArg, Sql, SummaryCols, TaskCols, TaskUpsert, UniqueKey, WebhookCols,
    API_KEY_COLUMNS, BATCH_COLUMNS, ENDPOINT_COLUMNS, LEASE_COLUMNS, NAMESPACE_COLUMNS,
    SCHEDULE_COLUMNS, SLOT_COLUMNS, SUMMARY_COLUMNS, WEBHOOK_COLUMNS, WRITTEN_AFTER_SLOTS,
};
use super::{
    ApiKeyRecord, BatchRecord, Deletion, Delivery, Endpoint, Error, Expired, FlowSlot,
    NamespaceRecord, PoolUsage, QueueDepth, Result, RetentionLease, RunChange, RunRecord,
    RunSummary, ScheduleFilter, ScheduleRecord, Store, TaskRow, Wakeup, WebhookRecord,
};
use crate::time::Duration;

/// How many columns [`SUMMARY_COLUMNS`] names (the slots follow them).
const SUMMARY_WIDTH: usize = 12;

/// Hints buffered per subscriber before it lags (and then re-reads the
/// table, which is always correct).
pub(super) const WAKEUP_CAPACITY: usize = 1024;

/// Rows per multi-row insert: a commit writes all its events (or tasks)
/// with one statement, split only past this many rows so the bind count
/// stays under both backends' limits (SQLite: 32766, PostgreSQL: 65535).
const MAX_ROWS_PER_INSERT: usize = 500;

/// Binds a run's slot columns (`rows::SLOT_COLUMNS` order), then
/// `scheduled_by_id` ([`written_columns`]), to a query.
macro_rules! bound_slots {
    ($query:expr, $run:expr) => {
        $run.slots
            .iter()
            .fold($query, |query, arg| match arg {
                SlotArg::Text(text) => query.bind(text.clone()),
                SlotArg::Int(int) => query.bind(*int),
                SlotArg::Double(double) => query.bind(*double),
            })
            .bind($run.scheduled_by_id.clone())
    };
}
pub(super) use bound_slots;

/// Binds the args of a [`Sql`] to the query made from its text.
macro_rules! bound {
    ($query:expr, $args:expr) => {
        $args.into_iter().fold($query, |query, arg| match arg {
            Arg::Text(text) => query.bind(text),
            Arg::OptText(text) => query.bind(text),
            Arg::Int(int) => query.bind(int),
            Arg::Double(double) => query.bind(double),
        })
    };
}

/// What the backends do differently. Implemented for `sqlx::Postgres` and
/// `sqlx::Sqlite` only (the trait is unnameable outside `store`).
#[async_trait]
pub trait Dialect: Database {
    /// Appended to the select of a schedule claim: PostgreSQL's `for update
    /// skip locked`, so concurrent claims take different rows; empty on
    /// SQLite, whose write transaction already excludes other writers.
    const SKIP_LOCKED: &'static str;
    /// Appended to a text column that is compared by order, so that it
    /// compares by bytes (see `query`).
    const BYTEWISE: &'static str;
    /// How a KeywordList slot is asked whether it holds a keyword.
    const CONTAINS: query::Contains;
    /// Ends the retention deleter's choice of runs: PostgreSQL locks them
    /// `skip locked` (SQLite has one writer anyway).
    const LOCK_SKIP_LOCKED: &'static str;
    /// Applies the embedded migrations.
    async fn migrate(pool: &Pool<Self>) -> Result<()>;
    /// Begins a transaction that will write.
    async fn begin_write(pool: &Pool<Self>) -> Result<Transaction<'static, Self>>;
    /// Claims due rows (see [`Store::claim_tasks`]), returning each with
    /// its `visible_at` from before the claim.
    async fn claim(pool: &Pool<Self>, queue: Queue, now: i64, limit: i64) -> Result<Vec<TaskCols>>;
    /// Rows an insert, update or delete touched.
    fn rows_affected(result: &Self::QueryResult) -> u64;
    /// Inside a commit: tells other nodes that rows of `queues` are due.
    async fn notify(tx: &mut Transaction<'static, Self>, queues: &[Queue]) -> Result<()>;
    /// Commits the change of a single run with a single statement, which
    /// is atomic without a transaction (one round trip instead of one per
    /// statement plus `begin` and `commit`), with the same outcome as the
    /// transaction [`Store::commit`] otherwise runs. `None` when the
    /// backend has no such statement.
    async fn commit_one(pool: &Pool<Self>, write: &RunWrite, now: i64) -> Option<Result<()>>;
}

/// A [`Store`] on a sqlx pool. Cheap to share behind an `Arc`; dropping
/// the last reference stops its background work.
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
    wakeups: broadcast::Sender<Wakeup>,
    /// Work that lives as long as the store (PostgreSQL's LISTEN loop).
    _background: Option<AbortOnDrop>,
}

impl<DB: Database> SqlStore<DB> {
    pub(super) fn new(
        pool: Pool<DB>,
        wakeups: broadcast::Sender<Wakeup>,
        background: Option<JoinHandle<()>>,
    ) -> SqlStore<DB> {
        SqlStore {
            pool,
            wakeups,
            _background: background.map(AbortOnDrop),
        }
    }

    /// The connection pool, for health checks and tests.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

/// Aborts a background task when the store goes away, so the task neither
/// outlives the store nor keeps the runtime busy.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

const INSERT_NAMESPACE: &str = "insert into namespaces (name, description, retention_ms, \
    created_at, updated_at) values ($1, $2, $3, $4, $5)";
const UPDATE_NAMESPACE: &str = "update namespaces set description = $2, retention_ms = $3, \
    updated_at = $4 where name = $1";
const SEARCH_ATTRIBUTES: &str = "select name, kind, slot, removed from search_attributes \
    where namespace = $1 order by name, kind";
/// A removed row of the same name and type comes back; an active one
/// matches nothing (so the caller sees the name is taken).
const ADD_SEARCH_ATTRIBUTE: &str = "insert into search_attributes (namespace, name, kind, slot, \
    removed, created_at, updated_at) values ($1, $2, $3, $4, 0, $5, $5) \
    on conflict (namespace, name, kind) do update set removed = 0, updated_at = excluded.updated_at \
    where search_attributes.removed = 1";
const REMOVE_SEARCH_ATTRIBUTE: &str = "update search_attributes set removed = 1, updated_at = $3 \
    where namespace = $1 and name = $2 and removed = 0";

/// Readiness: a write that matches no row.
const PROBE_WRITE: &str = "update namespaces set description = description where false";

/// Step one of an upsert: the queue's other versions stop being current.
const CLEAR_CURRENT_ENDPOINT: &str = "update endpoints set is_current = false, updated_at = $4 \
    where namespace = $1 and task_queue = $2 and version <> $3 and is_current";
/// Step two: the upserted version is current. Re-registering a version
/// keeps its first `created_at`.
const UPSERT_ENDPOINT: &str = "insert into endpoints (namespace, task_queue, version, url, \
    secrets, max_concurrency, is_current, created_at, updated_at, schemas, flow, features) \
    values ($1, $2, $3, $4, $5, $6, true, $7, $8, $9, $10, $11) \
    on conflict (namespace, task_queue, version) do update set url = excluded.url, \
    secrets = excluded.secrets, max_concurrency = excluded.max_concurrency, is_current = true, \
    updated_at = excluded.updated_at, schemas = excluded.schemas, flow = excluded.flow, \
    features = excluded.features";
/// Takes slot `$4` of a key where its lease ran out: the upsert's `where`
/// is checked on the locked row, so two nodes never both take it.
const ACQUIRE_FLOW_SLOT: &str = "insert into flow_slots (namespace, task_queue, key, slot, \
    holder, node, expires_at) values ($1, $2, $3, $4, $5, $6, $8) \
    on conflict (namespace, task_queue, key, slot) do update set holder = excluded.holder, \
    node = excluded.node, expires_at = excluded.expires_at where flow_slots.expires_at <= $7";
const RELEASE_FLOW_SLOT: &str = "delete from flow_slots \
    where namespace = $1 and task_queue = $2 and key = $3 and holder = $4";
const RENEW_FLOW_SLOTS: &str = "update flow_slots set expires_at = $3 \
    where node = $1 and expires_at > $2";
/// The bucket's tokens at `$4` (ms), refilled at `$5` per second up to `$6`.
const REFILLED: &str = "case when flow_buckets.tokens + \
    (case when $4 > flow_buckets.updated_at then $4 - flow_buckets.updated_at else 0 end) \
    * $5 / 1000.0 > $6 then $6 else flow_buckets.tokens + \
    (case when $4 > flow_buckets.updated_at then $4 - flow_buckets.updated_at else 0 end) \
    * $5 / 1000.0 end";
static TAKE_FLOW_TOKEN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "insert into flow_buckets (namespace, task_queue, version, tokens, updated_at) \
         values ($1, $2, $3, $6 - 1.0, $4) \
         on conflict (namespace, task_queue, version) do update \
         set tokens = {REFILLED} - 1.0, updated_at = $4 where {REFILLED} >= 1.0 \
         returning tokens"
    )
});
const FLOW_TOKENS: &str = "select tokens, updated_at from flow_buckets \
    where namespace = $1 and task_queue = $2 and version = $3";
const SET_ENDPOINT_SCHEMAS: &str = "update endpoints set schemas = $4, updated_at = $5 \
    where namespace = $1 and task_queue = $2 and version = $3";
/// A promotion is the upsert's two steps without the insert; the second
/// step tells whether the version exists.
const SET_CURRENT_ENDPOINT: &str = "update endpoints set is_current = true, updated_at = $4 \
    where namespace = $1 and task_queue = $2 and version = $3";
const OPEN_RUNS_BY_VERSION: &str = "select pinned_version, count(*) from runs \
    where namespace = $1 and task_queue = $2 and status = 'RUNNING' \
    and pinned_version is not null group by pinned_version order by pinned_version";
const OPEN_RUNS_PINNED_TO: &str = "select run_id from runs where namespace = $1 \
    and task_queue = $2 and status = 'RUNNING' and pinned_version = $3 \
    order by start_time, run_id";
const DELETE_ENDPOINT: &str =
    "delete from endpoints where namespace = $1 and task_queue = $2 and version = $3";

const LOAD_RUN: &str = "select state, version from runs where namespace = $1 and run_id = $2";
/// Ties on start time (a run terminated and replaced within a millisecond)
/// go to the larger run id, which for UUID v7 ids is the later one.
const LATEST_RUN: &str = "select state, version from runs where namespace = $1 \
    and workflow_id = $2 order by start_time desc, run_id desc limit 1";
const RUN_BY_REQUEST_ID: &str = "select run_id from runs where namespace = $1 \
    and workflow_id = $2 and request_id = $3 order by start_time desc limit 1";
/// Then the slot columns from $16.
static INSERT_RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "insert into runs (run_id, namespace, workflow_id, workflow_type, \
         task_queue, status, start_time, close_time, history_length, request_id, version, state, \
         created_at, updated_at, pinned_version, parent_workflow_id, parent_run_id, {}) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $12, $12, $13, $14, $15, {})",
        written_columns().join(", "),
        slot_params(16)
    )
});
/// The optimistic-concurrency guard: no row matches if another commit
/// bumped the version since the caller loaded the run. The slot columns
/// from $9.
static UPDATE_RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "update runs set status = $2, close_time = $3, history_length = $4, \
         state = $5, version = version + 1, updated_at = $6, pinned_version = $8, {} \
         where run_id = $1 and version = $7",
        slot_assignments(9)
    )
});

/// The listing columns every commit writes from the state besides the
/// fixed ones: the slots, then `scheduled_by_id`.
pub(super) fn written_columns() -> Vec<&'static str> {
    let mut columns = SLOT_COLUMNS.to_vec();
    columns.push(WRITTEN_AFTER_SLOTS);
    columns
}

/// `$from, $from+1, …`, one per [`written_columns`].
pub(super) fn slot_params(from: usize) -> String {
    (0..written_columns().len())
        .map(|i| format!("${}", from + i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `column = $from, …`, one per [`written_columns`].
pub(super) fn slot_assignments(from: usize) -> String {
    written_columns()
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", from + i))
        .collect::<Vec<_>>()
        .join(", ")
}

const RUN_STATUS: &str = "select status from runs where namespace = $1 and run_id = $2";
const RUN_TASKS: &str = "select count(*) from tasks where run_id = $1";
const DELETE_RUN_EVENTS: &str = "delete from events where run_id = $1";
const DELETE_RUN: &str = "delete from runs where run_id = $1";
const DELETE_RUN_PAYLOAD_LINKS: &str = "delete from payload_links where run_id = $1";
/// Deletes the payloads of namespace $1 that no run references and that
/// nobody stored since $2 (a commit about to reference one stored it
/// moments ago).
const SWEEP_PAYLOADS: &str = "delete from payloads where namespace = $1 and touched_at < $2 \
     and not exists (select 1 from payload_links l \
     where l.namespace = payloads.namespace and l.sha256 = payloads.sha256)";
/// How long an unreferenced payload is kept after it was last stored.
const PAYLOAD_GRACE_MS: i64 = 3_600_000;
const NAMESPACE_RETENTION: &str = "select retention_ms from namespaces where name = $1";
/// Takes (or, for its owner, renews) the lease of namespace $1 for owner
/// $2 until $3, unless another owner's lease is unexpired at $4; $5 is
/// the audit time. Assignments read the row as it was.
static CLAIM_RETENTION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "insert into retention_leases (namespace, owner, epoch, expires_at, updated_at) \
         values ($1, $2, 1, $3, $5) on conflict (namespace) do update set \
         epoch = case when retention_leases.owner = excluded.owner \
             and retention_leases.expires_at > $4 \
             then retention_leases.epoch else retention_leases.epoch + 1 end, \
         owner = excluded.owner, expires_at = excluded.expires_at, \
         updated_at = excluded.updated_at \
         where retention_leases.owner = excluded.owner or retention_leases.expires_at <= $4 \
         returning {LEASE_COLUMNS}"
    )
});
/// The fence: renews the lease of ($1, owner $2, epoch $3) to $4.
const RENEW_RETENTION: &str = "update retention_leases set expires_at = $4, updated_at = $5 \
    where namespace = $1 and owner = $2 and epoch = $3";
/// A batch's progress on the lease row it renewed; $4 (the pass's end,
/// or null mid-pass) replaces `last_pass_at` when set.
const RETENTION_PROGRESS: &str = "update retention_leases \
    set runs_deleted = runs_deleted + $2, events_deleted = events_deleted + $3, \
    last_pass_at = coalesce($4, last_pass_at) where namespace = $1";
const RELEASE_RETENTION: &str = "update retention_leases set expires_at = $4, updated_at = $5 \
    where namespace = $1 and owner = $2 and epoch = $3 and expires_at > $4";
/// Closed runs of namespace $1 that closed before $2 with no pending
/// work, oldest first, at most $3: one range of `runs_by_close_time`.
const EXPIRED_RUNS: &str = "select r.run_id from runs r \
    where r.namespace = $1 and r.close_time < $2 and r.status <> 'RUNNING' \
    and not exists (select 1 from tasks t where t.run_id = r.run_id) \
    order by r.close_time limit $3";

/// The namespace check makes a run id from another namespace read as
/// missing, like `load_run` does.
const READ_HISTORY: &str = "select e.data from events e join runs r on r.run_id = e.run_id \
    where r.namespace = $1 and e.run_id = $2 and e.event_id > $3 \
    order by e.event_id limit $4";

/// Replacing a row resets it: a new task id, due time and lease, and no
/// claims. The multi-row VALUES precede this.
const UPSERT_TASKS_CONFLICT: &str = " on conflict (run_id, task_key) do update set \
    task_id = excluded.task_id, namespace = excluded.namespace, queue = excluded.queue, \
    payload = excluded.payload, visible_at = excluded.visible_at, \
    lease_ms = excluded.lease_ms, claims = 0, created_at = excluded.created_at, \
    task_queue = excluded.task_queue";
const DELETE_TASK: &str = "delete from tasks where task_id = $1";
/// Timer rows count only once due (see `QueueDepth::rows`).
const QUEUE_DEPTHS: &str = "select namespace, queue, task_queue, \
     sum(case when visible_at <= $1 then 1 else 0 end), \
     min(case when visible_at <= $1 then visible_at end), count(*), \
     sum(case when visible_at > $1 and claims > 0 then 1 else 0 end) \
     from tasks where queue <> 'timer' or visible_at <= $1 \
     group by namespace, queue, task_queue";
/// Served by `runs_by_status` (namespace, status, …): an index range per
/// namespace.
const OPEN_RUNS: &str =
    "select namespace, count(*) from runs where status = 'RUNNING' group by namespace";
const NEXT_VISIBLE_AT: &str =
    "select min(visible_at) from tasks where queue = $1 and visible_at > $2";

const INSERT_SCHEDULE: &str = "insert into schedules (namespace, schedule_id, doc, version, \
    visible_at, paused, created_at, updated_at) values ($1, $2, $3, 1, $4, $5, $6, $6)";
/// The optimistic-concurrency guard of schedules, as `UPDATE_RUN`'s.
const UPDATE_SCHEDULE: &str = "update schedules set doc = $3, version = version + 1, \
    visible_at = $4, paused = $5, updated_at = $6 \
    where namespace = $1 and schedule_id = $2 and version = $7";
const DELETE_SCHEDULE: &str = "delete from schedules where namespace = $1 and schedule_id = $2";
/// The lease: the row stays due for no one else until it runs out.
const LEASE_SCHEDULE: &str = "update schedules set visible_at = $3 \
    where namespace = $1 and schedule_id = $2";
const NEXT_SCHEDULE_DUE: &str =
    "select min(visible_at) from schedules where visible_at is not null and visible_at > $1";

const INSERT_BATCH: &str = "insert into batches (namespace, batch_id, doc, state, version, \
    visible_at, stop_requested, request_id, created_at, updated_at) \
    values ($1, $2, $3, $4, 1, $5, 0, $6, $7, $8)";
/// The optimistic-concurrency guard of batch jobs, as `UPDATE_RUN`'s.
const UPDATE_BATCH: &str = "update batches set doc = $3, state = $4, version = version + 1, \
    visible_at = $5, updated_at = $6 where namespace = $1 and batch_id = $2 and version = $7";
const STOP_BATCH: &str =
    "update batches set stop_requested = 1 where namespace = $1 and batch_id = $2";
/// A claim's lease, bumping the version so the previous holder lets go.
const LEASE_BATCH: &str = "update batches set visible_at = $3, version = version + 1 \
    where namespace = $1 and batch_id = $2";

const INSERT_WEBHOOK: &str = "insert into webhook_sources (namespace, source_id, doc, created_at) \
    values ($1, $2, $3, $4)";
const INSERT_DELIVERY: &str =
    "insert into webhook_deliveries (namespace, source_id, delivery_seq, \
    received_at, doc) values ($1, $2, $3, $4, $5)";

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB>,
    for<'q> i64: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> f64: Encode<'q, DB>,
    for<'q> Option<f64>: Encode<'q, DB>,
    f64: Type<DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> i32: Decode<'r, DB>,
    for<'r> bool: Decode<'r, DB>,
    for<'r> f64: Decode<'r, DB>,
    String: Type<DB>,
    i64: Type<DB>,
    i32: Type<DB>,
    bool: Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    async fn migrate(&self) -> Result<()> {
        DB::migrate(&self.pool).await
    }

    async fn create_namespace(&self, ns: &NamespaceRecord) -> Result<()> {
        sqlx::query(INSERT_NAMESPACE)
            .bind(ns.name.0.clone())
            .bind(ns.description.clone())
            .bind(ns.retention.millis())
            .bind(ns.created_at.millis())
            .bind(audit_now())
            .execute(&self.pool)
            .await
            .map_err(on_unique(UniqueKey::Namespace, || {
                format!("namespace `{}`", ns.name)
            }))?;
        Ok(())
    }

    async fn get_namespace(&self, name: &Namespace) -> Result<Option<NamespaceRecord>> {
        let sql = format!("select {NAMESPACE_COLUMNS} from namespaces where name = $1");
        let row: Option<NamespaceCols> = sqlx::query_as(&sql)
            .bind(name.0.clone())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(rows::namespace))
    }

    async fn update_namespace(&self, ns: &NamespaceRecord) -> Result<bool> {
        let done = sqlx::query(UPDATE_NAMESPACE)
            .bind(ns.name.0.clone())
            .bind(ns.description.clone())
            .bind(ns.retention.millis())
            .bind(audit_now())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn search_attributes(&self, ns: &Namespace) -> Result<Vec<RegisteredAttribute>> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(SEARCH_ATTRIBUTES)
            .bind(ns.0.clone())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(rows::registered_attribute).collect()
    }

    async fn add_search_attributes(
        &self,
        ns: &Namespace,
        attributes: &[RegisteredAttribute],
    ) -> Result<()> {
        let mut tx = DB::begin_write(&self.pool).await?;
        let now = audit_now();
        for a in attributes {
            let taken = || {
                Error::AlreadyExists(format!(
                    "search attribute `{}` (registered, or its slot taken, concurrently)",
                    a.name
                ))
            };
            let done = sqlx::query(ADD_SEARCH_ATTRIBUTE)
                .bind(ns.0.clone())
                .bind(a.name.clone())
                .bind(a.slot.kind.as_str().to_owned())
                .bind(i64::from(a.slot.index))
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| match e.as_database_error() {
                    Some(db) if db.is_unique_violation() => taken(),
                    _ => Error::from(e),
                })?;
            if DB::rows_affected(&done) == 0 {
                return Err(taken());
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remove_search_attribute(&self, ns: &Namespace, name: &str) -> Result<bool> {
        let done = sqlx::query(REMOVE_SEARCH_ATTRIBUTE)
            .bind(ns.0.clone())
            .bind(name.to_owned())
            .bind(audit_now())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn probe_write(&self) -> Result<()> {
        // A write statement is refused by a read-only server even when it
        // matches no row, and it takes SQLite's write lock.
        let mut tx = DB::begin_write(&self.pool).await?;
        sqlx::query(PROBE_WRITE).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>> {
        let sql = format!("select {NAMESPACE_COLUMNS} from namespaces order by name");
        let rows: Vec<NamespaceCols> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(rows::namespace).collect())
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        let sql = format!(
            "insert into api_keys ({API_KEY_COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        sqlx::query(&sql)
            .bind(key.id.clone())
            .bind(key.secret_hash.clone())
            .bind(key.namespace.as_ref().map(|n| n.0.clone()))
            .bind(key.role.as_str().to_owned())
            .bind(key.description.clone())
            .bind(key.created_at.millis())
            .bind(key.expires_at.map(Timestamp::millis))
            .bind(key.revoked_at.map(Timestamp::millis))
            .bind(key.last_used_at.map(Timestamp::millis))
            .execute(&self.pool)
            .await
            .map_err(on_unique(UniqueKey::ApiKey, || {
                format!("API key `{}`", key.id)
            }))?;
        Ok(())
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let sql = format!("select {API_KEY_COLUMNS} from api_keys where id = $1");
        let row: Option<ApiKeyCols> = sqlx::query_as(&sql)
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(rows::api_key).transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let sql = format!("select {API_KEY_COLUMNS} from api_keys order by created_at, id");
        let rows: Vec<ApiKeyCols> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
        rows.into_iter().map(rows::api_key).collect()
    }

    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<bool> {
        let done =
            sqlx::query("update api_keys set revoked_at = coalesce(revoked_at, $2) where id = $1")
                .bind(id.to_owned())
                .bind(at.millis())
                .execute(&self.pool)
                .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn touch_api_key(&self, id: &str, at: Timestamp) -> Result<()> {
        sqlx::query("update api_keys set last_used_at = $2 where id = $1")
            .bind(id.to_owned())
            .bind(at.millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn upsert_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        let now = audit_now();
        let secrets = encode_json("endpoint secrets", &endpoint.secrets)?;
        let schemas = encode_json("endpoint schemas", &endpoint.schemas)?;
        let flow = encode_json("endpoint flow control", &endpoint.flow)?;
        let features = encode_json("endpoint features", &endpoint.features)?;
        let mut tx = DB::begin_write(&self.pool).await?;
        sqlx::query(CLEAR_CURRENT_ENDPOINT)
            .bind(endpoint.namespace.0.clone())
            .bind(endpoint.task_queue.0.clone())
            .bind(endpoint.version.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(UPSERT_ENDPOINT)
            .bind(endpoint.namespace.0.clone())
            .bind(endpoint.task_queue.0.clone())
            .bind(endpoint.version.clone())
            .bind(endpoint.url.clone())
            .bind(secrets)
            .bind(i64::from(endpoint.max_concurrency))
            .bind(endpoint.created_at.millis())
            .bind(now)
            .bind(schemas)
            .bind(flow)
            .bind(features)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_endpoints(&self, ns: &Namespace) -> Result<Vec<Endpoint>> {
        let sql = format!(
            "select {ENDPOINT_COLUMNS} from endpoints where namespace = $1 \
             order by task_queue, version"
        );
        let rows: Vec<EndpointCols> = sqlx::query_as(&sql)
            .bind(ns.0.clone())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(rows::endpoint).collect()
    }

    async fn delete_endpoint(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
    ) -> Result<bool> {
        let done = sqlx::query(DELETE_ENDPOINT)
            .bind(ns.0.clone())
            .bind(queue.0.clone())
            .bind(version.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn queue_endpoints(&self, ns: &Namespace, queue: &TaskQueue) -> Result<Vec<Endpoint>> {
        let sql = format!(
            "select {ENDPOINT_COLUMNS} from endpoints where namespace = $1 \
             and task_queue = $2 order by created_at, version"
        );
        let rows: Vec<EndpointCols> = sqlx::query_as(&sql)
            .bind(ns.0.clone())
            .bind(queue.0.clone())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(rows::endpoint).collect()
    }

    async fn promote_endpoint(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
    ) -> Result<bool> {
        let now = audit_now();
        let mut tx = DB::begin_write(&self.pool).await?;
        for step in [CLEAR_CURRENT_ENDPOINT, SET_CURRENT_ENDPOINT] {
            let done = sqlx::query(step)
                .bind(ns.0.clone())
                .bind(queue.0.clone())
                .bind(version.to_owned())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if step == SET_CURRENT_ENDPOINT && DB::rows_affected(&done) == 0 {
                // Dropping `tx` rolls the first step back.
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn set_endpoint_schemas(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
        schemas: &Schemas,
    ) -> Result<bool> {
        let done = sqlx::query(SET_ENDPOINT_SCHEMAS)
            .bind(ns.0.clone())
            .bind(queue.0.clone())
            .bind(version.to_owned())
            .bind(encode_json("endpoint schemas", schemas)?)
            .bind(audit_now())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn open_runs_by_version(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
    ) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(OPEN_RUNS_BY_VERSION)
            .bind(ns.0.clone())
            .bind(queue.0.clone())
            .fetch_all(&self.pool)
            .await?)
    }

    async fn open_runs_pinned_to(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
    ) -> Result<Vec<RunId>> {
        let ids: Vec<String> = sqlx::query_scalar(OPEN_RUNS_PINNED_TO)
            .bind(ns.0.clone())
            .bind(queue.0.clone())
            .bind(version.to_owned())
            .fetch_all(&self.pool)
            .await?;
        ids.iter().map(|id| parse_run_id(id)).collect()
    }

    async fn load_run(&self, ns: &Namespace, run_id: RunId) -> Result<Option<RunRecord>> {
        let row: Option<RunRecordCols> = sqlx::query_as(LOAD_RUN)
            .bind(ns.0.clone())
            .bind(run_id_text(run_id))
            .fetch_optional(&self.pool)
            .await?;
        row.map(rows::run_record).transpose()
    }

    async fn latest_run(
        &self,
        ns: &Namespace,
        workflow_id: &WorkflowId,
    ) -> Result<Option<RunRecord>> {
        let row: Option<RunRecordCols> = sqlx::query_as(LATEST_RUN)
            .bind(ns.0.clone())
            .bind(workflow_id.0.clone())
            .fetch_optional(&self.pool)
            .await?;
        row.map(rows::run_record).transpose()
    }

    async fn run_by_request_id(
        &self,
        ns: &Namespace,
        workflow_id: &WorkflowId,
        request_id: &str,
    ) -> Result<Option<RunId>> {
        let run_id: Option<String> = sqlx::query_scalar(RUN_BY_REQUEST_ID)
            .bind(ns.0.clone())
            .bind(workflow_id.0.clone())
            .bind(request_id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        run_id.as_deref().map(parse_run_id).transpose()
    }

    async fn commit(&self, changes: &[RunChange]) -> Result<()> {
        let now = audit_now();
        let writes = changes
            .iter()
            .map(RunWrite::new)
            .collect::<Result<Vec<_>>>()?;
        let wakeups: Vec<Wakeup> = writes.iter().flat_map(|w| w.tasks.wakeups()).collect();
        let one_statement = match writes.as_slice() {
            [write] if write.links.is_empty() => DB::commit_one(&self.pool, write, now).await,
            _ => None,
        };
        match one_statement {
            Some(done) => done?,
            None => commit_in_transaction::<DB>(&self.pool, None, writes, now).await?,
        }
        for wakeup in wakeups {
            // No subscribers is fine: hints are only hints.
            let _ = self.wakeups.send(wakeup);
        }
        Ok(())
    }

    async fn read_history(
        &self,
        ns: &Namespace,
        run_id: RunId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>> {
        let rows: Vec<String> = sqlx::query_scalar(READ_HISTORY)
            .bind(ns.0.clone())
            .bind(run_id_text(run_id))
            .bind(after)
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|data| decode_json("event", data)).collect()
    }

    async fn put_payloads(&self, ns: &Namespace, payloads: &[StoredPayload]) -> Result<()> {
        let now = audit_now();
        for chunk in payloads.chunks(MAX_ROWS_PER_INSERT) {
            let mut put = Sql::new("insert into payloads (namespace, sha256, data, touched_at) ");
            put.values(chunk, "", |p: &StoredPayload| {
                vec![
                    Arg::Text(ns.0.clone()),
                    Arg::Text(p.sha256.clone()),
                    Arg::Text(p.data.clone()),
                    Arg::Int(now),
                ]
            })
            .push(
                " on conflict (namespace, sha256) do update set touched_at = excluded.touched_at",
            );
            bound!(sqlx::query(&put.text), put.args)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn read_payloads(
        &self,
        ns: &Namespace,
        run_id: RunId,
        sha256: &[String],
    ) -> Result<Vec<(String, String)>> {
        if sha256.is_empty() {
            return Ok(Vec::new());
        }
        let mut read = Sql::new(
            "select p.sha256, p.data from payloads p join payload_links l \
             on l.namespace = p.namespace and l.sha256 = p.sha256 where p.namespace = ",
        );
        read.bind(ns.0.clone())
            .push(" and l.run_id = ")
            .bind(run_id_text(run_id))
            .push(" and p.sha256 in (")
            .list(sha256.iter().cloned().map(Arg::Text))
            .push(")");
        let rows: Vec<(String, String)> = bound!(sqlx::query_as(&read.text), read.args)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    async fn list_runs(
        &self,
        ns: &Namespace,
        query: &ListQuery,
        cursor: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<RunSummary>> {
        // The filter is compiled to its own predicates, so each query
        // shape gets a plan that fits it (see migrations/*/0003 and 0004).
        let compiler = Compiler {
            bytewise: DB::BYTEWISE,
            contains: DB::CONTAINS,
        };
        let mut sql = Sql::new(format!(
            "select {SUMMARY_COLUMNS}, {}, {WRITTEN_AFTER_SLOTS} from runs where namespace = ",
            SLOT_COLUMNS.join(", ")
        ));
        sql.bind(ns.0.clone());
        if let Some(filter) = &query.filter {
            compiler.push_filter(&mut sql, filter);
        }
        if let Some(cursor) = cursor {
            compiler.push_after(&mut sql, query, cursor);
        }
        compiler.push_order(&mut sql, query);
        sql.push(" limit ").bind(limit.max(0));
        let rows = bound!(sqlx::query(&sql.text), sql.args)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let cols = <SummaryCols as sqlx::FromRow<'_, DB::Row>>::from_row(row)?;
                let mut slots = Vec::with_capacity(SLOT_COLUMNS.len());
                for (i, slot) in rows::all_slots().enumerate() {
                    let at = SUMMARY_WIDTH + i;
                    slots.push(match rows::empty_slot(slot.kind) {
                        SlotArg::Text(_) => SlotArg::Text(row.try_get(at)?),
                        SlotArg::Int(_) => SlotArg::Int(row.try_get(at)?),
                        SlotArg::Double(_) => SlotArg::Double(row.try_get(at)?),
                    });
                }
                let scheduled_by_id = row.try_get(SUMMARY_WIDTH + SLOT_COLUMNS.len())?;
                rows::summary(cols, &slots, scheduled_by_id)
            })
            .collect()
    }

    async fn count_runs(
        &self,
        ns: &Namespace,
        query: &CountQuery,
    ) -> Result<Vec<(Option<String>, i64)>> {
        let compiler = Compiler {
            bytewise: DB::BYTEWISE,
            contains: DB::CONTAINS,
        };
        let group = query.group_by.map(query::column);
        let mut sql = Sql::new(match group {
            Some(col) => format!("select {col}, count(*) from runs where namespace = "),
            None => "select count(*) from runs where namespace = ".to_owned(),
        });
        sql.bind(ns.0.clone());
        if let Some(filter) = &query.filter {
            compiler.push_filter(&mut sql, filter);
        }
        match group {
            Some(col) => {
                sql.push(&format!(" group by {col} order by {col}"));
                Ok(bound!(sqlx::query_as(&sql.text), sql.args)
                    .fetch_all(&self.pool)
                    .await?)
            }
            None => {
                let n: i64 = bound!(sqlx::query_scalar(&sql.text), sql.args)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(vec![(None, n)])
            }
        }
    }

    async fn delete_run(&self, ns: &Namespace, run_id: RunId) -> Result<Deletion> {
        let run_id = run_id_text(run_id);
        let mut tx = DB::begin_write(&self.pool).await?;
        let status: Option<String> = sqlx::query_scalar(RUN_STATUS)
            .bind(ns.0.clone())
            .bind(run_id.clone())
            .fetch_optional(&mut *tx)
            .await?;
        match status.as_deref() {
            None => return Ok(Deletion::NotFound),
            Some("RUNNING") => return Ok(Deletion::Open),
            Some(_) => {}
        }
        let pending: i64 = sqlx::query_scalar(RUN_TASKS)
            .bind(run_id.clone())
            .fetch_one(&mut *tx)
            .await?;
        if pending > 0 {
            return Ok(Deletion::Pending);
        }
        for delete in [DELETE_RUN_EVENTS, DELETE_RUN_PAYLOAD_LINKS, DELETE_RUN] {
            sqlx::query(delete)
                .bind(run_id.clone())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(SWEEP_PAYLOADS)
            .bind(ns.0.clone())
            .bind(audit_now() - PAYLOAD_GRACE_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Deletion::Deleted)
    }

    async fn claim_retention(
        &self,
        ns: &Namespace,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<RetentionLease>> {
        let mut tx = DB::begin_write(&self.pool).await?;
        let row: Option<LeaseCols> = sqlx::query_as(&CLAIM_RETENTION)
            .bind(ns.0.clone())
            .bind(owner.to_owned())
            .bind(now.saturating_add(lease).millis())
            .bind(now.millis())
            .bind(audit_now())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row.map(rows::retention_lease))
    }

    async fn delete_expired_runs(
        &self,
        lease: &RetentionLease,
        now: Timestamp,
        renew: Duration,
        limit: i64,
    ) -> Result<Option<Expired>> {
        let mut tx = DB::begin_write(&self.pool).await?;
        // The fence first: on PostgreSQL this also locks the lease row, so
        // a claim cannot change hands until the batch is done.
        let renewed = sqlx::query(RENEW_RETENTION)
            .bind(lease.namespace.0.clone())
            .bind(lease.owner.clone())
            .bind(lease.epoch)
            .bind(now.saturating_add(renew).millis())
            .bind(audit_now())
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&renewed) == 0 {
            return Ok(None);
        }
        let retention_ms: Option<i64> = sqlx::query_scalar(NAMESPACE_RETENTION)
            .bind(lease.namespace.0.clone())
            .fetch_optional(&mut *tx)
            .await?;
        let mut run_ids: Vec<String> = Vec::new();
        if let Some(retention_ms) = retention_ms {
            // One range of `runs_by_close_time`.
            run_ids = sqlx::query_scalar(&format!("{EXPIRED_RUNS}{}", DB::LOCK_SKIP_LOCKED))
                .bind(lease.namespace.0.clone())
                .bind(now.millis().saturating_sub(retention_ms))
                .bind(limit.max(0))
                .fetch_all(&mut *tx)
                .await?;
        }
        let mut expired = Expired {
            runs: run_ids.len() as u64,
            events: 0,
        };
        if !run_ids.is_empty() {
            for table in ["events", "payload_links", "runs"] {
                let mut delete = Sql::new(format!("delete from {table} where run_id in ("));
                delete
                    .list(run_ids.iter().cloned().map(Arg::Text))
                    .push(")");
                let done = bound!(sqlx::query(&delete.text), delete.args)
                    .execute(&mut *tx)
                    .await?;
                if table == "events" {
                    expired.events = DB::rows_affected(&done);
                }
            }
        }
        if !run_ids.is_empty() {
            sqlx::query(SWEEP_PAYLOADS)
                .bind(lease.namespace.0.clone())
                .bind(audit_now() - PAYLOAD_GRACE_MS)
                .execute(&mut *tx)
                .await?;
        }
        let caught_up = (run_ids.len() as i64) < limit.max(0) || run_ids.is_empty();
        sqlx::query(RETENTION_PROGRESS)
            .bind(lease.namespace.0.clone())
            .bind(expired.runs as i64)
            .bind(expired.events as i64)
            .bind(caught_up.then_some(now.millis()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(expired))
    }

    async fn release_retention(&self, lease: &RetentionLease, now: Timestamp) -> Result<()> {
        sqlx::query(RELEASE_RETENTION)
            .bind(lease.namespace.0.clone())
            .bind(lease.owner.clone())
            .bind(lease.epoch)
            .bind(now.millis())
            .bind(audit_now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim_tasks(&self, queue: Queue, now: Timestamp, limit: i64) -> Result<Vec<TaskRow>> {
        let mut rows = DB::claim(&self.pool, queue, now.millis(), limit.max(0)).await?;
        // Earliest due first, whatever order the backend returned.
        rows.sort_by_key(|cols| cols.4);
        rows.into_iter().map(rows::task_row).collect()
    }

    async fn acquire_flow_slot(
        &self,
        slot: &FlowSlot,
        limit: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        for number in 0..i64::from(limit) {
            let done = sqlx::query(ACQUIRE_FLOW_SLOT)
                .bind(slot.namespace.0.clone())
                .bind(slot.task_queue.0.clone())
                .bind(slot.key.clone())
                .bind(number)
                .bind(slot.holder.clone())
                .bind(slot.node.clone())
                .bind(now.millis())
                .bind(until.millis())
                .execute(&self.pool)
                .await?;
            if DB::rows_affected(&done) > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn release_flow_slot(&self, slot: &FlowSlot) -> Result<()> {
        sqlx::query(RELEASE_FLOW_SLOT)
            .bind(slot.namespace.0.clone())
            .bind(slot.task_queue.0.clone())
            .bind(slot.key.clone())
            .bind(slot.holder.clone())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn renew_flow_slots(&self, node: &str, now: Timestamp, until: Timestamp) -> Result<()> {
        sqlx::query(RENEW_FLOW_SLOTS)
            .bind(node.to_owned())
            .bind(now.millis())
            .bind(until.millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_flow_token(
        &self,
        endpoint: &Endpoint,
        per_second: f64,
        burst: u32,
        now: Timestamp,
    ) -> Result<Option<Duration>> {
        let taken: Option<f64> = sqlx::query_scalar(&TAKE_FLOW_TOKEN)
            .bind(endpoint.namespace.0.clone())
            .bind(endpoint.task_queue.0.clone())
            .bind(endpoint.version.clone())
            .bind(now.millis())
            .bind(per_second)
            .bind(f64::from(burst))
            .fetch_optional(&self.pool)
            .await?;
        if taken.is_some() {
            return Ok(None);
        }
        let row: Option<(f64, i64)> = sqlx::query_as(FLOW_TOKENS)
            .bind(endpoint.namespace.0.clone())
            .bind(endpoint.task_queue.0.clone())
            .bind(endpoint.version.clone())
            .fetch_optional(&self.pool)
            .await?;
        let (tokens, at) = row.unwrap_or((0.0, now.millis()));
        Ok(Some(rows::token_wait(tokens, at, per_second, now)))
    }

    async fn delete_task(&self, task_id: &str) -> Result<()> {
        sqlx::query(DELETE_TASK)
            .bind(task_id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn postpone_tasks(&self, tasks: &[(RunId, String)], until: Timestamp) -> Result<()> {
        for chunk in tasks.chunks(MAX_ROWS_PER_INSERT) {
            let mut update = Sql::new("update tasks set visible_at = ");
            update
                .bind(until.millis())
                .push(" where visible_at < ")
                .bind(until.millis())
                .push(" and (run_id, task_key) in (");
            for (i, (run_id, key)) in chunk.iter().enumerate() {
                update.push(if i == 0 { "(" } else { ", (" });
                update.list(vec![
                    Arg::Text(run_id_text(*run_id)),
                    Arg::Text(key.clone()),
                ]);
                update.push(")");
            }
            update.push(")");
            bound!(sqlx::query(&update.text), update.args)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn queue_depths(&self, now: Timestamp) -> Result<Vec<QueueDepth>> {
        type Depth = (String, String, Option<String>, i64, Option<i64>, i64, i64);
        let rows: Vec<Depth> = sqlx::query_as(QUEUE_DEPTHS)
            .bind(now.millis())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(
                |(namespace, queue, task_queue, due, oldest, rows, in_flight)| {
                    Ok(QueueDepth {
                        namespace: Namespace(namespace),
                        queue: rows::parse_queue(&queue).ok_or_else(|| {
                            Error::Corrupt(format!("unknown task queue `{queue}`"))
                        })?,
                        task_queue: task_queue.map(TaskQueue),
                        due,
                        oldest_due: oldest.map(Timestamp),
                        rows,
                        in_flight,
                    })
                },
            )
            .collect()
    }

    async fn open_runs(&self) -> Result<Vec<(Namespace, i64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(OPEN_RUNS).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(ns, n)| (Namespace(ns), n)).collect())
    }

    fn pool_usage(&self) -> Option<PoolUsage> {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        Some(PoolUsage {
            in_use: size.saturating_sub(idle),
            idle,
            max: self.pool.options().get_max_connections(),
        })
    }

    async fn next_visible_at(&self, queue: Queue, after: Timestamp) -> Result<Option<Timestamp>> {
        let next: Option<i64> = sqlx::query_scalar(NEXT_VISIBLE_AT)
            .bind(queue_name(queue).to_owned())
            .bind(after.millis())
            .fetch_one(&self.pool)
            .await?;
        Ok(next.map(Timestamp))
    }

    async fn create_schedule(&self, record: &ScheduleRecord) -> Result<()> {
        let (doc, paused) = rows::schedule_doc(record)?;
        sqlx::query(INSERT_SCHEDULE)
            .bind(record.namespace.0.clone())
            .bind(record.schedule_id.clone())
            .bind(doc)
            .bind(record.due_at.map(Timestamp::millis))
            .bind(paused)
            .bind(audit_now())
            .execute(&self.pool)
            .await
            .map_err(on_unique(UniqueKey::Schedule, || {
                format!("schedule `{}`", record.schedule_id)
            }))?;
        Ok(())
    }

    async fn get_schedule(&self, ns: &Namespace, id: &str) -> Result<Option<ScheduleRecord>> {
        let sql = format!(
            "select {SCHEDULE_COLUMNS} from schedules where namespace = $1 and schedule_id = $2"
        );
        let row: Option<ScheduleCols> = sqlx::query_as(&sql)
            .bind(ns.0.clone())
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(rows::schedule_record).transpose()
    }

    async fn list_schedules(
        &self,
        ns: &Namespace,
        filter: &ScheduleFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ScheduleRecord>> {
        let mut query = Sql::new(format!(
            "select {SCHEDULE_COLUMNS} from schedules where namespace = "
        ));
        query.bind(ns.0.clone());
        if let Some(prefix) = &filter.id_prefix {
            // Neither `like`, whose wildcards the prefix may contain, nor a
            // range, which a collation that ignores punctuation would
            // bend: the id's first characters are the prefix.
            query
                .push(" and substr(schedule_id, 1, length(")
                .bind(prefix.clone())
                .push(")) = ")
                .bind(prefix.clone());
        }
        if let Some(paused) = filter.paused {
            query.push(" and paused = ").bind(i64::from(paused));
        }
        if let Some(after) = after {
            query.push(" and schedule_id > ").bind(after.to_owned());
        }
        query
            .push(" order by schedule_id limit ")
            .bind(limit.max(0));
        let rows: Vec<ScheduleCols> = bound!(sqlx::query_as(&query.text), query.args)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(rows::schedule_record).collect()
    }

    async fn delete_schedule(&self, ns: &Namespace, id: &str) -> Result<bool> {
        let done = sqlx::query(DELETE_SCHEDULE)
            .bind(ns.0.clone())
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn commit_schedule(&self, record: &ScheduleRecord, runs: &[RunChange]) -> Result<()> {
        let now = audit_now();
        let writes = runs.iter().map(RunWrite::new).collect::<Result<Vec<_>>>()?;
        let wakeups: Vec<Wakeup> = writes.iter().flat_map(|w| w.tasks.wakeups()).collect();
        commit_in_transaction::<DB>(&self.pool, Some(record), writes, now).await?;
        for wakeup in wakeups {
            let _ = self.wakeups.send(wakeup);
        }
        Ok(())
    }

    async fn claim_schedules(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<ScheduleRecord>> {
        let select = format!(
            "select {SCHEDULE_COLUMNS} from schedules where visible_at is not null \
             and visible_at <= $1 order by visible_at limit $2{}",
            DB::SKIP_LOCKED
        );
        let mut tx = DB::begin_write(&self.pool).await?;
        let due: Vec<ScheduleCols> = sqlx::query_as(&select)
            .bind(now.millis())
            .bind(limit.max(0))
            .fetch_all(&mut *tx)
            .await?;
        for (namespace, id, ..) in &due {
            sqlx::query(LEASE_SCHEDULE)
                .bind(namespace.clone())
                .bind(id.clone())
                .bind(now.saturating_add(lease).millis())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        due.into_iter().map(rows::schedule_record).collect()
    }

    async fn next_schedule_due(&self, after: Timestamp) -> Result<Option<Timestamp>> {
        let next: Option<i64> = sqlx::query_scalar(NEXT_SCHEDULE_DUE)
            .bind(after.millis())
            .fetch_one(&self.pool)
            .await?;
        Ok(next.map(Timestamp))
    }

    async fn create_batch(&self, record: &BatchRecord) -> Result<()> {
        let b = &record.batch;
        sqlx::query(INSERT_BATCH)
            .bind(b.namespace.0.clone())
            .bind(b.batch_id.clone())
            .bind(encode_json("batch", b)?)
            .bind(b.state.as_str().to_owned())
            .bind(record.due_at.map(Timestamp::millis))
            .bind(record.request_id.clone())
            .bind(b.created_at.millis())
            .bind(audit_now())
            .execute(&self.pool)
            .await
            .map_err(on_unique(UniqueKey::Batch, || {
                format!("batch `{}`", b.batch_id)
            }))?;
        Ok(())
    }

    async fn get_batch(&self, ns: &Namespace, id: &str) -> Result<Option<BatchRecord>> {
        let sql =
            format!("select {BATCH_COLUMNS} from batches where namespace = $1 and batch_id = $2");
        let row: Option<BatchCols> = sqlx::query_as(&sql)
            .bind(ns.0.clone())
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(rows::batch_record).transpose()
    }

    async fn list_batches(
        &self,
        ns: &Namespace,
        after: Option<(Timestamp, &str)>,
        limit: i64,
    ) -> Result<Vec<BatchRecord>> {
        let mut query = Sql::new(format!(
            "select {BATCH_COLUMNS} from batches where namespace = "
        ));
        query.bind(ns.0.clone());
        if let Some((created_at, id)) = after {
            query
                .push(" and (created_at, batch_id) < (")
                .bind(created_at.millis())
                .push(", ")
                .bind(id.to_owned())
                .push(")");
        }
        query
            .push(" order by created_at desc, batch_id desc limit ")
            .bind(limit.max(0));
        let rows: Vec<BatchCols> = bound!(sqlx::query_as(&query.text), query.args)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(rows::batch_record).collect()
    }

    async fn update_batch(&self, record: &BatchRecord) -> Result<()> {
        let b = &record.batch;
        let written = sqlx::query(UPDATE_BATCH)
            .bind(b.namespace.0.clone())
            .bind(b.batch_id.clone())
            .bind(encode_json("batch", b)?)
            .bind(b.state.as_str().to_owned())
            .bind(record.due_at.map(Timestamp::millis))
            .bind(audit_now())
            .bind(record.version)
            .execute(&self.pool)
            .await?;
        match DB::rows_affected(&written) {
            0 => Err(Error::Conflict),
            _ => Ok(()),
        }
    }

    async fn request_batch_stop(&self, ns: &Namespace, id: &str) -> Result<bool> {
        let done = sqlx::query(STOP_BATCH)
            .bind(ns.0.clone())
            .bind(id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn claim_batches(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<BatchRecord>> {
        let select = format!(
            "select {BATCH_COLUMNS} from batches where visible_at is not null \
             and visible_at <= $1 order by visible_at limit $2{}",
            DB::SKIP_LOCKED
        );
        let until = now.saturating_add(lease);
        let mut tx = DB::begin_write(&self.pool).await?;
        let due: Vec<BatchCols> = sqlx::query_as(&select)
            .bind(now.millis())
            .bind(limit.max(0))
            .fetch_all(&mut *tx)
            .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for cols in due {
            let mut record = rows::batch_record(cols)?;
            sqlx::query(LEASE_BATCH)
                .bind(record.batch.namespace.0.clone())
                .bind(record.batch.batch_id.clone())
                .bind(until.millis())
                .execute(&mut *tx)
                .await?;
            record.version += 1;
            record.due_at = Some(until);
            claimed.push(record);
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn create_webhook(&self, record: &WebhookRecord) -> Result<()> {
        sqlx::query(INSERT_WEBHOOK)
            .bind(record.namespace.0.clone())
            .bind(record.source_id.clone())
            .bind(encode_json("webhook source", &record.source)?)
            .bind(record.created_at.millis())
            .execute(&self.pool)
            .await
            .map_err(on_unique(UniqueKey::Webhook, || {
                format!("webhook source `{}`", record.source_id)
            }))?;
        Ok(())
    }

    async fn get_webhook(&self, ns: &Namespace, id: &str) -> Result<Option<WebhookRecord>> {
        let sql = format!(
            "select {WEBHOOK_COLUMNS} from webhook_sources where namespace = $1 and source_id = $2"
        );
        let row: Option<WebhookCols> = sqlx::query_as(&sql)
            .bind(ns.0.clone())
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(rows::webhook_record).transpose()
    }

    async fn list_webhooks(&self, ns: &Namespace) -> Result<Vec<WebhookRecord>> {
        let sql = format!(
            "select {WEBHOOK_COLUMNS} from webhook_sources where namespace = $1 order by source_id{}",
            DB::BYTEWISE
        );
        let rows: Vec<WebhookCols> = sqlx::query_as(&sql)
            .bind(ns.0.clone())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(rows::webhook_record).collect()
    }

    async fn delete_webhook(&self, ns: &Namespace, id: &str) -> Result<bool> {
        let mut tx = DB::begin_write(&self.pool).await?;
        sqlx::query("delete from webhook_deliveries where namespace = $1 and source_id = $2")
            .bind(ns.0.clone())
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        let done =
            sqlx::query("delete from webhook_sources where namespace = $1 and source_id = $2")
                .bind(ns.0.clone())
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn record_delivery(&self, delivery: &Delivery) -> Result<()> {
        sqlx::query(INSERT_DELIVERY)
            .bind(delivery.namespace.0.clone())
            .bind(delivery.source_id.clone())
            .bind(delivery.seq.clone())
            .bind(delivery.received_at.millis())
            .bind(encode_json("delivery", delivery)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_delivery(
        &self,
        ns: &Namespace,
        source_id: &str,
        seq: &str,
    ) -> Result<Option<Delivery>> {
        let doc: Option<String> = sqlx::query_scalar(
            "select doc from webhook_deliveries \
             where namespace = $1 and source_id = $2 and delivery_seq = $3",
        )
        .bind(ns.0.clone())
        .bind(source_id.to_owned())
        .bind(seq.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        doc.map(|d| decode_json("delivery", &d)).transpose()
    }

    async fn list_deliveries(
        &self,
        ns: &Namespace,
        source_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let mut query =
            Sql::new("select doc from webhook_deliveries where namespace = ".to_owned());
        query.bind(ns.0.clone());
        query.push(" and source_id = ").bind(source_id.to_owned());
        if let Some(seq) = before {
            query
                .push(&format!(" and delivery_seq{} < ", DB::BYTEWISE))
                .bind(seq.to_owned());
        }
        query
            .push(&format!(
                " order by delivery_seq{} desc limit ",
                DB::BYTEWISE
            ))
            .bind(limit.max(0));
        let docs: Vec<(String,)> = bound!(sqlx::query_as(&query.text), query.args)
            .fetch_all(&self.pool)
            .await?;
        docs.into_iter()
            .map(|(d,)| decode_json("delivery", &d))
            .collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<Wakeup> {
        self.wakeups.subscribe()
    }
}

/// Commits `writes` in one transaction, a statement per table and run: how
/// SQLite commits everything, and PostgreSQL a change of several runs. A
/// `schedule` is written first, guarded by its version: a schedule's tick
/// and the runs it starts commit together or not at all.
async fn commit_in_transaction<DB>(
    pool: &Pool<DB>,
    schedule: Option<&ScheduleRecord>,
    writes: Vec<RunWrite>,
    now: i64,
) -> Result<()>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB>,
    for<'q> i64: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> f64: Encode<'q, DB>,
    for<'q> Option<f64>: Encode<'q, DB>,
    f64: Type<DB>,
    String: Type<DB>,
    i64: Type<DB>,
{
    // Dropping `tx` on an early return rolls everything back.
    let mut tx = DB::begin_write(pool).await?;
    if let Some(record) = schedule {
        let (doc, paused) = rows::schedule_doc(record)?;
        let written = sqlx::query(UPDATE_SCHEDULE)
            .bind(record.namespace.0.clone())
            .bind(record.schedule_id.clone())
            .bind(doc)
            .bind(record.due_at.map(Timestamp::millis))
            .bind(paused)
            .bind(now)
            .bind(record.version)
            .execute(&mut *tx)
            .await?;
        if DB::rows_affected(&written) == 0 {
            return Err(Error::Conflict);
        }
    }
    for mut write in writes {
        // Moved out rather than cloned; `write.error` needs neither.
        let state = std::mem::take(&mut write.run.state);
        let events = std::mem::take(&mut write.events);
        let run = &write.run;
        let written = match write.expected_version {
            None => bound_slots!(
                sqlx::query(&INSERT_RUN)
                    .bind(run.run_id.clone())
                    .bind(run.namespace.clone())
                    .bind(run.workflow_id.clone())
                    .bind(run.workflow_type.clone())
                    .bind(run.task_queue.clone())
                    .bind(run.status.to_owned())
                    .bind(run.start_time)
                    .bind(run.close_time)
                    .bind(run.history_length)
                    .bind(write.request_id.clone())
                    .bind(state)
                    .bind(now)
                    .bind(run.pinned_version.clone())
                    .bind(run.parent_workflow_id.clone())
                    .bind(run.parent_run_id.clone()),
                run
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| write.error(e))?,
            Some(version) => bound_slots!(
                sqlx::query(&UPDATE_RUN)
                    .bind(run.run_id.clone())
                    .bind(run.status.to_owned())
                    .bind(run.close_time)
                    .bind(run.history_length)
                    .bind(state)
                    .bind(now)
                    .bind(version)
                    .bind(run.pinned_version.clone()),
                run
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| write.error(e))?,
        };
        if DB::rows_affected(&written) == 0 {
            return Err(Error::Conflict);
        }

        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let mut insert =
                Sql::new("insert into events (run_id, event_id, event_type, event_time, data) ");
            insert.values(events.by_ref().take(MAX_ROWS_PER_INSERT), "", |e| {
                vec![
                    Arg::Text(run.run_id.clone()),
                    Arg::Int(e.event_id),
                    Arg::Text(e.event_type.to_owned()),
                    Arg::Int(e.event_time),
                    Arg::Text(e.data),
                ]
            });
            bound!(sqlx::query(&insert.text), insert.args)
                .execute(&mut *tx)
                .await?;
        }

        let plan = &write.tasks;
        if plan.delete_all || !plan.delete_keys.is_empty() {
            let mut delete = Sql::new("delete from tasks where run_id = ");
            delete.bind(run.run_id.clone());
            if !plan.delete_all {
                let keys = plan.delete_keys.iter().cloned().map(Arg::Text);
                delete.push(" and task_key in (").list(keys).push(")");
            }
            bound!(sqlx::query(&delete.text), delete.args)
                .execute(&mut *tx)
                .await?;
        }
        for chunk in plan.upserts.chunks(MAX_ROWS_PER_INSERT) {
            let mut upsert = Sql::new(
                "insert into tasks (task_id, namespace, run_id, task_key, queue, payload, \
                 visible_at, lease_ms, created_at, task_queue, claims) ",
            );
            upsert
                .values(chunk, ", 0", |row: &TaskUpsert| {
                    vec![
                        Arg::Text(row.task_id.clone()),
                        Arg::Text(run.namespace.clone()),
                        Arg::Text(run.run_id.clone()),
                        Arg::Text(row.key.clone()),
                        Arg::Text(queue_name(row.queue).to_owned()),
                        Arg::Text(row.payload.clone()),
                        Arg::Int(row.visible_at),
                        Arg::Int(row.lease_ms),
                        Arg::Int(now),
                        Arg::OptText(row.task_queue.clone()),
                    ]
                })
                .push(UPSERT_TASKS_CONFLICT);
            bound!(sqlx::query(&upsert.text), upsert.args)
                .execute(&mut *tx)
                .await?;
        }

        for chunk in write.links.chunks(MAX_ROWS_PER_INSERT) {
            let mut link = Sql::new("insert into payload_links (namespace, sha256, run_id) ");
            link.values(chunk, "", |sha256: &String| {
                vec![
                    Arg::Text(run.namespace.clone()),
                    Arg::Text(sha256.clone()),
                    Arg::Text(run.run_id.clone()),
                ]
            })
            .push(" on conflict do nothing");
            bound!(sqlx::query(&link.text), link.args)
                .execute(&mut *tx)
                .await?;
        }

        if !write.due.is_empty() {
            DB::notify(&mut tx, &write.due).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
