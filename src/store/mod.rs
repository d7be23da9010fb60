//! Persistence behind one trait, [`Store`]. SQL lives here only.
//!
//! Consistency contract (DESIGN.md invariants 1 and 5):
//! - [`Store::commit`] writes a run's new events, its snapshot and the task
//!   rows its effects imply in ONE transaction, guarded by optimistic
//!   concurrency on the run's `version`; a concurrent writer gets
//!   [`Error::Conflict`] and nothing is written. (On PostgreSQL the change
//!   of a single run is one statement — its own transaction, and one round
//!   trip.)
//! - At most one open run per (namespace, workflow id), enforced by a unique
//!   index; a second one is [`Error::AlreadyExists`].
//! - Task rows are claimed with leases: a claim makes a row invisible for
//!   its lease; a claimer that dies simply lets the lease run out. On
//!   PostgreSQL claims use `FOR UPDATE SKIP LOCKED`, so many nodes can claim
//!   concurrently and each row goes to one of them.
//!
//! Backends: `postgres` (production, many nodes) and `sqlite` (embedded,
//! `baton dev`); `memory` (the simulation and fast tests, not for
//! production). All pass `conformance`.

pub mod conformance;
mod memory;
mod postgres;
mod query;
mod rows;
mod snapshot;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::engine::RegisteredAttribute;
use crate::engine::{Event, Queue, RunState, RunStatus, Task, Transition};
use crate::ids::{Namespace, RunId, TaskQueue, WorkflowId};
use crate::payload::StoredPayload;
use crate::schedule::{Info, Schedule};
use crate::schema::Schemas;
use crate::time::{Duration, Timestamp};
use crate::visibility::{Attribute, Attributes, CountQuery, Cursor, ListQuery, Value};

pub use memory::{Call, Fault, MemoryStore};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The run changed since it was loaded (optimistic concurrency).
    #[error("the run was changed concurrently")]
    Conflict,
    /// A unique key is taken: a namespace name, or an open run's workflow id.
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data that does not decode: a bug or a manual edit.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The store cannot serve the call now, for a reason that passes by
    /// itself: so far only the faults injected into [`MemoryStore`] (the
    /// SQL stores report theirs as [`Error::Database`]). Transient, with
    /// the same caveat as a lost connection: the call may have taken effect.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl Error {
    /// True for failures that pass by themselves, after which the same call
    /// may succeed: a lost or refused connection, a full or closed pool, a
    /// failover (the server shutting down, a read-only standby), a
    /// serialization failure or deadlock, a busy SQLite file. Such a
    /// failure leaves stored data unchanged or (a connection lost during a
    /// commit) changed as if the call had succeeded; callers that retry
    /// must re-read first.
    pub fn is_transient(&self) -> bool {
        let e = match self {
            Error::Database(e) => e,
            Error::Unavailable(_) => return true,
            _ => return false,
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
            _ => false,
        }
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes that pass by themselves.
fn transient_code(code: &str) -> bool {
    // PostgreSQL: connection exceptions, serialization failure, deadlock,
    // read-only transaction (a standby during failover), insufficient
    // resources, operator intervention (shutdown, crash recovery).
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(code, "40001" | "40P01" | "25006")
        // SQLite: SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
        || matches!(code, "5" | "6" | "261" | "262" | "517" | "773")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The retention of a namespace created without one (the `default`
/// namespace's included): 30 days, production's usual choice.
pub const DEFAULT_RETENTION: Duration = Duration(30 * 86_400_000);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamespaceRecord {
    pub name: Namespace,
    pub description: String,
    /// How long closed runs are kept (Temporal's workflow execution
    /// retention).
    pub retention: Duration,
    pub created_at: Timestamp,
}

/// What an API key may do (`api::access` maps routes to the role they
/// need). Ordered: each role may do everything the one below it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// List, describe, history, count, query.
    Reader,
    /// The reader's routes and every change to runs, schedules, endpoints
    /// and activities of its namespace.
    Writer,
    /// Everything, in every namespace: namespaces, search attributes,
    /// API keys, the dev routes.
    Admin,
}

impl Role {
    const ALL: [Role; 3] = [Role::Admin, Role::Writer, Role::Reader];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A stored API key: never its secret, only the secret's SHA-256.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKeyRecord {
    /// Public: `bk_` and random hex digits.
    pub id: String,
    /// Lowercase hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The one namespace the key may use; `None` (admin keys): all.
    pub namespace: Option<Namespace>,
    pub role: Role,
    pub description: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// A handler URL registered for a task queue. Several versions may exist
/// per queue; new work goes to the current one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub namespace: Namespace,
    pub task_queue: TaskQueue,
    pub version: String,
    pub url: String,
    /// `whsec_...` signing secrets; pushes carry one signature per secret,
    /// so a secret can be rotated without downtime.
    pub secrets: Vec<String>,
    /// Most pushes in flight to this endpoint at once, per server node.
    pub max_concurrency: u32,
    pub is_current: bool,
    pub created_at: Timestamp,
    /// The JSON Schemas of the version's inputs (none: anything goes).
    pub schemas: Schemas,
    /// Rate limit and concurrency keys (none by default).
    #[serde(default)]
    pub flow: crate::flow::FlowControl,
    /// Protocol features the handler supports (docs/protocol.md §1.5),
    /// unknown names included.
    #[serde(default)]
    pub features: Vec<String>,
}

/// A concurrency-key slot a push asks for (see `flow_slots` in the
/// migrations): one of the `limit` slots of `key`'s value on a queue.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowSlot {
    pub namespace: Namespace,
    pub task_queue: TaskQueue,
    /// The evaluated key: the template's index and value.
    pub key: String,
    /// Unique per push.
    pub holder: String,
    /// The node that renews the slot's lease.
    pub node: String,
}

/// A run as loaded for a change: its state and the version a commit must
/// name.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub state: RunState,
    pub version: i64,
}

/// One run's part of a [`Store::commit`].
#[derive(Clone, Debug)]
pub struct RunChange {
    /// `None` creates the run; `Some(v)` requires the stored version to be
    /// `v` (it becomes `v + 1`).
    pub expected_version: Option<i64>,
    pub transition: Transition,
    /// Idempotency key of the start request that created the run.
    pub request_id: Option<String>,
}

/// The listing shape of a run (the columns of `runs`, not its snapshot).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub namespace: Namespace,
    pub workflow_id: WorkflowId,
    pub run_id: RunId,
    pub workflow_type: String,
    pub task_queue: TaskQueue,
    pub status: RunStatus,
    pub start_time: Timestamp,
    pub close_time: Option<Timestamp>,
    pub history_length: i64,
    /// Set for a child workflow.
    pub parent_workflow_id: Option<WorkflowId>,
    pub parent_run_id: Option<RunId>,
    pub pinned_version: Option<String>,
    /// Set for a run a schedule started: the schedule's id.
    pub scheduled_by_id: Option<String>,
    /// The custom search attributes' listing columns, by slot (what
    /// filters on them see: a Text value as its words).
    #[serde(skip)]
    pub slots: std::collections::BTreeMap<crate::engine::Slot, Value>,
}

/// What list filters see of a run: the columns of its summary.
impl Attributes for RunSummary {
    fn value(&self, attribute: Attribute) -> Option<Value> {
        let text = |s: &str| Some(Value::Text(s.to_owned()));
        match attribute {
            Attribute::WorkflowId => text(self.workflow_id.as_str()),
            Attribute::RunId => text(&rows::run_id_text(self.run_id)),
            Attribute::WorkflowType => text(&self.workflow_type),
            Attribute::TaskQueue => text(&self.task_queue.0),
            Attribute::ExecutionStatus => text(self.status.as_str()),
            Attribute::StartTime => Some(Value::Int(self.start_time.millis())),
            Attribute::CloseTime => self.close_time.map(|t| Value::Int(t.millis())),
            Attribute::ExecutionDuration => self
                .close_time
                .map(|t| Value::Int(t.millis() - self.start_time.millis())),
            Attribute::HistoryLength => Some(Value::Int(self.history_length)),
            Attribute::ParentWorkflowId => self
                .parent_workflow_id
                .as_ref()
                .and_then(|w| text(w.as_str())),
            Attribute::ParentRunId => self.parent_run_id.and_then(|r| text(&rows::run_id_text(r))),
            Attribute::BatonPinnedVersion => self.pinned_version.as_deref().and_then(text),
            Attribute::TemporalScheduledById => self.scheduled_by_id.as_deref().and_then(text),
            Attribute::Custom(slot) => self.slots.get(&slot).cloned(),
        }
    }
}

/// What [`Store::delete_run`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// The run and its history are gone.
    Deleted,
    NotFound,
    /// The run is open: only closed runs are deleted.
    Open,
    /// Work for the closed run is still pending (task rows, such as the
    /// notice of its close to its parent); deleting it would lose that.
    Pending,
}

/// A claimed task row.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRow {
    /// Changes whenever the row is replaced, so a stale claimer can delete
    /// exactly the row it claimed and nothing newer.
    pub task_id: String,
    pub namespace: Namespace,
    pub run_id: RunId,
    pub task: Task,
    /// When the row became due.
    pub due_at: Timestamp,
    /// How many times it has been claimed, this claim included.
    pub claims: i32,
}

/// A connection pool's connections, for its gauges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

/// How many task rows of one (namespace, queue, task queue) there are, for
/// the queue-depth gauges.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueDepth {
    pub namespace: Namespace,
    pub queue: Queue,
    /// The task queue of push rows (`None` for timer and transfer rows, and
    /// for push rows written before migration 0006).
    pub task_queue: Option<TaskQueue>,
    /// Rows due and not claimed (`visible_at <= now`).
    pub due: i64,
    /// The earliest due time among them.
    pub oldest_due: Option<Timestamp>,
    /// All rows, due or not (in flight, backing off); for the timer queue
    /// only the due ones (future timers are not a backlog).
    pub rows: i64,
    /// Rows claimed and not yet due again: pushes in flight (their lease
    /// runs), timers and transfers being handled.
    pub in_flight: i64,
}

/// A schedule as stored: what its owner wrote, what it has done, the
/// version every write names (the conflict token), and when it next needs
/// a tick.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleRecord {
    pub namespace: Namespace,
    pub schedule_id: String,
    pub schedule: Schedule,
    pub info: Info,
    /// 1 when created; every write bumps it.
    pub version: i64,
    /// `None`: no tick until something changes the schedule.
    pub due_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScheduleFilter {
    pub id_prefix: Option<String>,
    pub paused: Option<bool>,
}

/// A batch job as stored: the job, the version every write names, the due
/// time of its lease (`None` once closed), whether an operator asked it
/// to stop, and the idempotency key of the request that started it.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchRecord {
    pub batch: Batch,
    /// 1 when created; every write and every claim bumps it.
    pub version: i64,
    pub due_at: Option<Timestamp>,
    pub stop_requested: bool,
    pub request_id: Option<String>,
}

/// A namespace's retention lease as stored: which node holds the
/// namespace's retention work, until when, the fence its deletes must
/// name, and what the deleter has done there (across holders).
#[derive(Clone, Debug, PartialEq)]
pub struct RetentionLease {
    pub namespace: Namespace,
    /// The node id of the holder, or of the last one.
    pub owner: String,
    /// The fencing token: bumped by every claim that changes hands or
    /// takes an expired lease, never by a renewal.
    pub epoch: i64,
    pub expires_at: Timestamp,
    /// Runs and events the deleter removed in the namespace.
    pub runs_deleted: i64,
    pub events_deleted: i64,
    /// When a pass last finished: a batch came back short, so the
    /// namespace had caught up.
    pub last_pass_at: Option<Timestamp>,
}

/// What one batch of [`Store::delete_expired_runs`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    pub runs: u64,
    pub events: u64,
}

/// A webhook source as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookRecord {
    pub namespace: Namespace,
    pub source_id: String,
    pub source: crate::webhook::Source,
    pub created_at: Timestamp,
}

/// What became of one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// Verified and matched; the action was applied (or had been: a
    /// redelivery's action is deduplicated by its request id).
    Acted,
    /// Verified; no rule matched.
    Ignored,
    /// Verified and matched, but the action could not be mapped or
    /// applied; the sender was answered 5xx.
    Failed,
    /// The signature did not verify; nothing of the body is kept.
    Refused,
}

/// One request a webhook source received, or one replay of one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub namespace: Namespace,
    pub source_id: String,
    /// Orders a source's log: a UUIDv7, so text order is arrival order.
    pub seq: String,
    pub received_at: Timestamp,
    /// The provider's id ([`crate::webhook::delivery_id`]); `None` when
    /// refused.
    pub delivery_id: Option<String>,
    pub verified: bool,
    pub outcome: DeliveryOutcome,
    pub rule: Option<String>,
    pub action: Option<String>,
    pub workflow_id: Option<String>,
    pub run_id: Option<RunId>,
    pub error: Option<String>,
    /// The `seq` of the delivery this one replays.
    pub replay_of: Option<String>,
    /// Verified deliveries only: the headers (lower-case names) and the
    /// body (as UTF-8, lossily), which a replay routes again.
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    pub body: Option<String>,
}

/// A hint that rows of `queue` may be due at `at`. Lost hints only delay
/// work until the next poll; they never affect correctness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wakeup {
    pub queue: Queue,
    pub at: Timestamp,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;

    /// A cheap write that changes nothing: fails when the store cannot
    /// commit now (unreachable, read-only, locked). Readiness probes it.
    async fn probe_write(&self) -> Result<()>;

    async fn create_namespace(&self, ns: &NamespaceRecord) -> Result<()>;
    async fn get_namespace(&self, name: &Namespace) -> Result<Option<NamespaceRecord>>;
    /// Replaces the description and retention of an existing namespace;
    /// false if there is none.
    async fn update_namespace(&self, ns: &NamespaceRecord) -> Result<bool>;
    async fn list_namespaces(&self) -> Result<Vec<NamespaceRecord>>;

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<()>;
    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>>;
    /// Every key, revoked ones included, oldest first.
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>>;
    /// Sets `revoked_at` unless already set; false if no such key.
    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<bool>;
    /// Records that the key was used at `at`.
    async fn touch_api_key(&self, id: &str, at: Timestamp) -> Result<()>;

    /// Every custom search attribute row of `ns`, removed ones included,
    /// by name.
    async fn search_attributes(&self, ns: &Namespace) -> Result<Vec<RegisteredAttribute>>;
    /// Registers `rows` (from `engine::assign_search_attributes`) in one
    /// transaction: a removed row with the same name and type comes back.
    /// A name registered meanwhile, or a slot taken meanwhile, is
    /// [`Error::AlreadyExists`] and nothing is written.
    async fn add_search_attributes(
        &self,
        ns: &Namespace,
        rows: &[RegisteredAttribute],
    ) -> Result<()>;
    /// Marks a registered attribute removed (its row and slot stay);
    /// false if none by that name is registered.
    async fn remove_search_attribute(&self, ns: &Namespace, name: &str) -> Result<bool>;

    /// Inserts or replaces (namespace, task queue, version). The registered
    /// version becomes the queue's current one.
    async fn upsert_endpoint(&self, endpoint: &Endpoint) -> Result<()>;
    async fn list_endpoints(&self, ns: &Namespace) -> Result<Vec<Endpoint>>;
    /// True if a row was deleted.
    async fn delete_endpoint(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
    ) -> Result<bool>;
    /// Every registered version of a queue, oldest registration first.
    async fn queue_endpoints(&self, ns: &Namespace, queue: &TaskQueue) -> Result<Vec<Endpoint>>;
    /// Makes a registered version the queue's current one (a rollback);
    /// false if the version is not registered.
    async fn promote_endpoint(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
    ) -> Result<bool>;
    /// Replaces a registered version's schemas; false if the version is
    /// not registered.
    async fn set_endpoint_schemas(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
        schemas: &Schemas,
    ) -> Result<bool>;
    /// How many open runs of a queue are pinned to each version, by
    /// version (versions without open runs are absent).
    async fn open_runs_by_version(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
    ) -> Result<Vec<(String, i64)>>;
    /// The open runs of a queue pinned to `version`, oldest first.
    async fn open_runs_pinned_to(
        &self,
        ns: &Namespace,
        queue: &TaskQueue,
        version: &str,
    ) -> Result<Vec<RunId>>;

    async fn load_run(&self, ns: &Namespace, run_id: RunId) -> Result<Option<RunRecord>>;
    /// The newest run (by start time) of a workflow id.
    async fn latest_run(
        &self,
        ns: &Namespace,
        workflow_id: &WorkflowId,
    ) -> Result<Option<RunRecord>>;
    /// The run a start request with this idempotency key created, if any.
    async fn run_by_request_id(
        &self,
        ns: &Namespace,
        workflow_id: &WorkflowId,
        request_id: &str,
    ) -> Result<Option<RunId>>;

    /// Commits the changes of one or more runs in one transaction: events,
    /// snapshots and task rows (effects applied in order: Enqueue upserts by
    /// (run, key) with a fresh task id, Dequeue deletes by key, DequeueAll
    /// deletes every row of the run). Dispatch effects are not the store's.
    async fn commit(&self, changes: &[RunChange]) -> Result<()>;

    /// Events with `event_id > after`, ascending, at most `limit`.
    async fn read_history(
        &self,
        ns: &Namespace,
        run_id: RunId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>>;

    /// Stores payloads by reference (docs/protocol.md §9.1), once per
    /// namespace and digest; storing one again marks it as just stored, so
    /// the sweep of unreferenced payloads spares it for an hour. A commit
    /// links each run to the digests its events and snapshot reference;
    /// deleting a run unlinks them and sweeps what nothing references.
    async fn put_payloads(&self, ns: &Namespace, payloads: &[StoredPayload]) -> Result<()>;

    /// The stored payloads among `sha256` that `run_id` references, as
    /// (digest, compact JSON), in no particular order.
    async fn read_payloads(
        &self,
        ns: &Namespace,
        run_id: RunId,
        sha256: &[String],
    ) -> Result<Vec<(String, String)>>;

    /// Up to `limit` runs of `ns` that `query`'s filter matches, in its
    /// order, strictly after `cursor` (which must fit the query:
    /// [`ListQuery::fits`]). The meaning is `visibility`'s, on every
    /// backend.
    async fn list_runs(
        &self,
        ns: &Namespace,
        query: &ListQuery,
        cursor: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<RunSummary>>;

    /// How many runs of `ns` the filter matches: one `(None, n)` without a
    /// group, else one `(Some(value), n)` per value of the group's
    /// attribute that has runs, by value.
    async fn count_runs(
        &self,
        ns: &Namespace,
        query: &CountQuery,
    ) -> Result<Vec<(Option<String>, i64)>>;

    /// Deletes a closed run and its events, in one transaction, unless
    /// task rows of it remain (see [`Deletion`]).
    async fn delete_run(&self, ns: &Namespace, run_id: RunId) -> Result<Deletion>;

    /// Claims the retention work of `ns` for the node `owner` until
    /// `now + lease`, if nobody holds it, its lease has expired
    /// (`expires_at <= now`), or `owner` holds it already (a renewal,
    /// which keeps the epoch; any other claim bumps it). `None` while
    /// another node holds it. One transaction: of concurrent claims one
    /// wins.
    async fn claim_retention(
        &self,
        ns: &Namespace,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<RetentionLease>>;

    /// Retention, under `lease` (from [`Store::claim_retention`]): in one
    /// transaction, renews the lease to `now + renew` if its row still has
    /// the lease's owner and epoch (else returns `None` and deletes
    /// nothing: the fence), then deletes up to `limit` closed runs of the
    /// lease's namespace whose close time is older than `now` minus the
    /// namespace's retention and that have no task rows left, oldest
    /// close first, with their events, and adds the counts to the lease
    /// row (a short batch also sets its `last_pass_at`). On PostgreSQL
    /// the lease row stays locked until the batch commits, so a claim
    /// racing the batch waits for it, and the chosen runs are locked
    /// `skip locked`, so a single-run delete racing the batch is skipped.
    async fn delete_expired_runs(
        &self,
        lease: &RetentionLease,
        now: Timestamp,
        renew: Duration,
        limit: i64,
    ) -> Result<Option<Expired>>;

    /// Hands `lease` back: its row expires at `now`, so any node may claim
    /// it at once. Nothing happens if the lease has changed hands.
    async fn release_retention(&self, lease: &RetentionLease, now: Timestamp) -> Result<()>;

    /// Claims up to `limit` rows of `queue` with `visible_at <= now`: each
    /// becomes invisible until `now + its lease` and its claim count grows.
    async fn claim_tasks(&self, queue: Queue, now: Timestamp, limit: i64) -> Result<Vec<TaskRow>>;

    /// Takes one of the `limit` slots of `slot.key` whose lease ran out
    /// (or was never taken), leased until `until`; false if all are held.
    async fn acquire_flow_slot(
        &self,
        slot: &FlowSlot,
        limit: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool>;
    /// Frees the slot `slot.holder` holds on `slot.key`.
    async fn release_flow_slot(&self, slot: &FlowSlot) -> Result<()>;
    /// Extends to `until` the leases of the live slots `node` holds.
    async fn renew_flow_slots(&self, node: &str, now: Timestamp, until: Timestamp) -> Result<()>;
    /// Takes a token from the endpoint version's bucket (`burst` tokens,
    /// refilled at `per_second`): `None` if taken, else how long until one
    /// is there.
    async fn take_flow_token(
        &self,
        endpoint: &Endpoint,
        per_second: f64,
        burst: u32,
        now: Timestamp,
    ) -> Result<Option<Duration>>;
    /// Deletes the row with this task id, if it still exists.
    async fn delete_task(&self, task_id: &str) -> Result<()>;
    /// Moves the rows named by (run, `Task::key`) out to `until` where
    /// they are due earlier (never earlier than they were). A node holding
    /// an activity attempt in its endpoint's queue calls it so that the
    /// attempt's timers do not fire before the push is sent; a missing row
    /// is skipped.
    async fn postpone_tasks(&self, tasks: &[(RunId, String)], until: Timestamp) -> Result<()>;
    /// The depth of every (namespace, queue, task queue) with rows, at
    /// `now`.
    async fn queue_depths(&self, now: Timestamp) -> Result<Vec<QueueDepth>>;
    /// Open runs per namespace (namespaces without any left out).
    async fn open_runs(&self) -> Result<Vec<(Namespace, i64)>>;
    /// The connection pool's usage, for stores that have one.
    fn pool_usage(&self) -> Option<PoolUsage> {
        None
    }
    /// The earliest `visible_at` of `queue` later than `after`, if any.
    async fn next_visible_at(&self, queue: Queue, after: Timestamp) -> Result<Option<Timestamp>>;
    /// Stores a new schedule at version 1; a taken id is
    /// [`Error::AlreadyExists`].
    async fn create_schedule(&self, record: &ScheduleRecord) -> Result<()>;
    async fn get_schedule(&self, ns: &Namespace, id: &str) -> Result<Option<ScheduleRecord>>;
    /// Schedules matching `filter` in id order, strictly after `after`.
    async fn list_schedules(
        &self,
        ns: &Namespace,
        filter: &ScheduleFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ScheduleRecord>>;
    /// True if a row was deleted.
    async fn delete_schedule(&self, ns: &Namespace, id: &str) -> Result<bool>;
    /// Writes `record` (schedule, info, due time) if the stored version is
    /// still `record.version` (it becomes `+ 1`; otherwise
    /// [`Error::Conflict`], also when the schedule was deleted), together
    /// with `runs` (the workflows a tick starts), in ONE transaction.
    async fn commit_schedule(&self, record: &ScheduleRecord, runs: &[RunChange]) -> Result<()>;
    /// Claims up to `limit` schedules due at `now`: each becomes invisible
    /// to other claims until `now + lease` (its version is unchanged), and
    /// comes back with `due_at` as it was before the claim.
    async fn claim_schedules(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<ScheduleRecord>>;
    /// The earliest due time of a schedule later than `after`, if any.
    async fn next_schedule_due(&self, after: Timestamp) -> Result<Option<Timestamp>>;

    /// Stores a new batch job at version 1; a taken id is
    /// [`Error::AlreadyExists`].
    async fn create_batch(&self, record: &BatchRecord) -> Result<()>;
    async fn get_batch(&self, ns: &Namespace, id: &str) -> Result<Option<BatchRecord>>;
    /// Jobs of `ns`, newest first (by creation, then id descending),
    /// strictly after `after` (the creation time and id of the last one
    /// seen).
    async fn list_batches(
        &self,
        ns: &Namespace,
        after: Option<(Timestamp, &str)>,
        limit: i64,
    ) -> Result<Vec<BatchRecord>>;
    /// Writes the job and due time of `record` if the stored version is
    /// still `record.version` (it becomes `+ 1`), else [`Error::Conflict`].
    /// `stop_requested` is not written.
    async fn update_batch(&self, record: &BatchRecord) -> Result<()>;
    /// Marks the job as asked to stop (no version check, no bump); false
    /// if there is none.
    async fn request_batch_stop(&self, ns: &Namespace, id: &str) -> Result<bool>;
    /// Claims up to `limit` jobs due at `now`: each becomes invisible to
    /// other claims until `now + lease` and its version is bumped, so the
    /// previous holder's next write conflicts. They come back as claimed.
    async fn claim_batches(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<BatchRecord>>;

    /// Stores a new webhook source; a taken id is [`Error::AlreadyExists`].
    async fn create_webhook(&self, record: &WebhookRecord) -> Result<()>;
    async fn get_webhook(&self, ns: &Namespace, id: &str) -> Result<Option<WebhookRecord>>;
    /// The sources of `ns`, by id.
    async fn list_webhooks(&self, ns: &Namespace) -> Result<Vec<WebhookRecord>>;
    /// Deletes a source and its delivery log in one transaction; false if
    /// there is none.
    async fn delete_webhook(&self, ns: &Namespace, id: &str) -> Result<bool>;
    /// Appends to a source's delivery log.
    async fn record_delivery(&self, delivery: &Delivery) -> Result<()>;
    async fn get_delivery(
        &self,
        ns: &Namespace,
        source_id: &str,
        seq: &str,
    ) -> Result<Option<Delivery>>;
    /// A source's deliveries, newest first, strictly before `before` (a
    /// `seq`).
    async fn list_deliveries(
        &self,
        ns: &Namespace,
        source_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>>;

    /// Wake-up hints: every local commit that enqueues, and on PostgreSQL
    /// other nodes' commits of rows due at once (LISTEN/NOTIFY).
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Wakeup>;
}

/// Opens the store a URL names: `postgres://…` or `sqlite:…` (a file path
/// or `sqlite::memory:`).
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    }
}
