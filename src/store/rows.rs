//! The pure half of the SQL stores, shared by both backends: how domain
//! values become column values and back, how a transition's effects fold
//! into task-row writes, and how unique violations become
//! [`Error::AlreadyExists`]. No IO here, so every rule is unit-tested
//! without a database.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::engine::{
    text_tokens, Effect, Event, Queue, RegisteredAttribute, RunState, RunStatus,
    SearchAttributeType, SearchAttributes, Slot, Task,
};
use crate::ids::{Namespace, RunId, TaskQueue, WorkflowId};
use crate::time::{Clock, Duration, SystemClock, Timestamp};
use crate::visibility::{Double, Value};

use super::{
    snapshot, ApiKeyRecord, Endpoint, Error, NamespaceRecord, Result, Role, RunChange, RunRecord,
    RunSummary, TaskRow, Wakeup,
};

/// `namespaces` columns, in [`NAMESPACE_COLUMNS`] order.
pub(super) type NamespaceCols = (String, String, i64, i64);

/// The columns [`NamespaceCols`] reads.
pub(super) const NAMESPACE_COLUMNS: &str = "name, description, retention_ms, created_at";

/// `endpoints` columns, in [`ENDPOINT_COLUMNS`] order.
pub(super) type EndpointCols = (
    String,
    String,
    String,
    String,
    String,
    i64,
    bool,
    i64,
    String,
    String,
    String,
);

/// The columns [`EndpointCols`] reads.
pub(super) const ENDPOINT_COLUMNS: &str =
    "namespace, task_queue, version, url, secrets, max_concurrency, is_current, created_at, \
    schemas, flow, features";

/// `runs` columns for a [`RunRecord`]: state, version.
pub(super) type RunRecordCols = (String, i64);

/// `runs` columns for a [`RunSummary`], in [`SUMMARY_COLUMNS`] order.
pub(super) type SummaryCols = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The columns [`SummaryCols`] reads.
pub(super) const SUMMARY_COLUMNS: &str = "namespace, workflow_id, run_id, workflow_type, \
    task_queue, status, start_time, close_time, history_length, parent_workflow_id, \
    parent_run_id, pinned_version";

/// The listing columns of the custom search attributes' slots
/// (migrations/*/0004): every slot of every type, in
/// `SearchAttributeType::ALL` order, then by index.
pub(super) const SLOT_COLUMNS: [&str; 28] = [
    "sa_keyword_1",
    "sa_keyword_2",
    "sa_keyword_3",
    "sa_keyword_4",
    "sa_keyword_5",
    "sa_keyword_6",
    "sa_keyword_7",
    "sa_keyword_8",
    "sa_keyword_9",
    "sa_keyword_10",
    "sa_text_1",
    "sa_text_2",
    "sa_text_3",
    "sa_int_1",
    "sa_int_2",
    "sa_int_3",
    "sa_double_1",
    "sa_double_2",
    "sa_double_3",
    "sa_bool_1",
    "sa_bool_2",
    "sa_bool_3",
    "sa_datetime_1",
    "sa_datetime_2",
    "sa_datetime_3",
    "sa_keyword_list_1",
    "sa_keyword_list_2",
    "sa_keyword_list_3",
];

/// The memo key the scheduler writes into the runs it starts
/// (`scheduler`), listed as the `TemporalScheduledById` attribute.
const SCHEDULED_BY_ID: &str = "TemporalScheduledById";

/// Written with the slots at every commit, after them (a run's memo, and
/// so this, never changes).
pub(super) const WRITTEN_AFTER_SLOTS: &str = "scheduled_by_id";

/// The column of a slot.
pub(super) fn slot_column(slot: Slot) -> &'static str {
    SLOT_COLUMNS[slot_position(slot)]
}

/// Where a slot's column is in [`SLOT_COLUMNS`].
fn slot_position(slot: Slot) -> usize {
    let before: usize = SearchAttributeType::ALL
        .iter()
        .take_while(|t| **t != slot.kind)
        .map(|t| usize::from(t.slots()))
        .sum();
    before + usize::from(slot.index.max(1) - 1)
}

/// Every slot, in [`SLOT_COLUMNS`] order.
pub(super) fn all_slots() -> impl Iterator<Item = Slot> {
    SearchAttributeType::ALL
        .into_iter()
        .flat_map(|kind| (1..=kind.slots()).map(move |index| Slot { kind, index }))
}

/// The value of one slot's column.
#[derive(Clone, Debug, PartialEq)]
pub enum SlotArg {
    /// Keyword; Text as its words between spaces; KeywordList as a JSON
    /// array.
    Text(Option<String>),
    /// Int; Bool as 1 / 0; Datetime as milliseconds since the epoch.
    Int(Option<i64>),
    Double(Option<f64>),
}

/// The column type of a slot, empty.
pub(super) fn empty_slot(kind: SearchAttributeType) -> SlotArg {
    match kind {
        SearchAttributeType::Keyword
        | SearchAttributeType::Text
        | SearchAttributeType::KeywordList => SlotArg::Text(None),
        SearchAttributeType::Double => SlotArg::Double(None),
        SearchAttributeType::Int | SearchAttributeType::Bool | SearchAttributeType::Datetime => {
            SlotArg::Int(None)
        }
    }
}

/// Every slot's column value for a run's attributes, in [`SLOT_COLUMNS`]
/// order (a value whose slot is out of range is not indexed).
pub(super) fn slot_args(attributes: &SearchAttributes) -> Vec<SlotArg> {
    let mut args: Vec<SlotArg> = all_slots().map(|s| empty_slot(s.kind)).collect();
    for value in attributes.values() {
        let slot = value.slot();
        if slot.index == 0 || slot.index > slot.kind.slots() {
            continue;
        }
        let v = &value.value;
        let arg = match slot.kind {
            SearchAttributeType::Keyword => SlotArg::Text(v.as_str().map(str::to_owned)),
            SearchAttributeType::Text => SlotArg::Text(
                v.as_str()
                    .map(|s| format!(" {} ", text_tokens(s).join(" "))),
            ),
            SearchAttributeType::KeywordList => SlotArg::Text(Some(v.to_string())),
            SearchAttributeType::Int => SlotArg::Int(v.as_i64()),
            SearchAttributeType::Bool => SlotArg::Int(v.as_bool().map(i64::from)),
            SearchAttributeType::Datetime => {
                SlotArg::Int(v.as_str().and_then(crate::time::rfc3339_millis))
            }
            SearchAttributeType::Double => SlotArg::Double(v.as_f64()),
        };
        args[slot_position(slot)] = arg;
    }
    args
}

/// What list filters see of the slot columns read back: slot → value.
pub(super) fn slot_values(args: &[SlotArg]) -> Result<BTreeMap<Slot, Value>> {
    let mut values = BTreeMap::new();
    for (slot, arg) in all_slots().zip(args) {
        let value = match arg {
            SlotArg::Text(Some(t)) if slot.kind == SearchAttributeType::KeywordList => {
                Value::List(decode_json("a KeywordList slot", t)?)
            }
            SlotArg::Text(Some(t)) => Value::Text(t.clone()),
            SlotArg::Int(Some(i)) => Value::Int(*i),
            SlotArg::Double(Some(d)) => Value::Double(Double(*d)),
            _ => continue,
        };
        values.insert(slot, value);
    }
    Ok(values)
}

/// The columns of an `api_keys` row, in [`api_key`]'s order.
pub(super) const API_KEY_COLUMNS: &str = "id, secret_hash, namespace, role, description, \
    created_at, expires_at, revoked_at, last_used_at";

pub(super) type ApiKeyCols = (
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// An `api_keys` row.
pub(super) fn api_key(
    (
        id,
        secret_hash,
        namespace,
        role,
        description,
        created_at,
        expires_at,
        revoked_at,
        last_used_at,
    ): ApiKeyCols,
) -> Result<ApiKeyRecord> {
    let role =
        Role::parse(&role).ok_or_else(|| Error::Corrupt(format!("API key role {role:?}")))?;
    Ok(ApiKeyRecord {
        id,
        secret_hash,
        namespace: namespace.map(Namespace),
        role,
        description,
        created_at: Timestamp(created_at),
        expires_at: expires_at.map(Timestamp),
        revoked_at: revoked_at.map(Timestamp),
        last_used_at: last_used_at.map(Timestamp),
    })
}

/// A `search_attributes` row: name, kind, slot, removed.
pub(super) fn registered_attribute(
    (name, kind, slot, removed): (String, String, i64, i64),
) -> Result<RegisteredAttribute> {
    let kind = SearchAttributeType::parse(&kind)
        .ok_or_else(|| Error::Corrupt(format!("search attribute type {kind:?}")))?;
    let index =
        u8::try_from(slot).map_err(|_| Error::Corrupt(format!("search attribute slot {slot}")))?;
    Ok(RegisteredAttribute {
        name,
        slot: Slot { kind, index },
        removed: removed != 0,
    })
}

/// A claimed `tasks` row: task_id, namespace, run_id, payload, the
/// visible_at before the claim, claims.
pub(super) type TaskCols = (String, String, String, String, i64, i32);

/// The audit time written into `created_at` / `updated_at` of rows the
/// server manages itself. Domain times always come from the caller.
pub(super) fn audit_now() -> i64 {
    SystemClock.now().millis()
}

/// The one place run ids become text (see the migrations for why text).
pub(super) fn run_id_text(run_id: RunId) -> String {
    run_id.to_string()
}

pub(super) fn parse_run_id(text: &str) -> Result<RunId> {
    text.parse()
        .map_err(|e| Error::Corrupt(format!("run id {text:?}: {e}")))
}

pub(super) fn queue_name(queue: Queue) -> &'static str {
    match queue {
        Queue::Push => "push",
        Queue::Timer => "timer",
        Queue::Transfer => "transfer",
    }
}

pub(super) fn parse_queue(name: &str) -> Option<Queue> {
    [Queue::Push, Queue::Timer, Queue::Transfer]
        .into_iter()
        .find(|q| queue_name(*q) == name)
}

pub(super) fn encode_json<T: Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt(format!("encoding {what}: {e}")))
}

pub(super) fn decode_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("decoding {what}: {e}")))
}

/// `schedules` columns as read: namespace, schedule id, doc, version,
/// visible_at.
pub(super) type ScheduleCols = (String, String, String, i64, Option<i64>);

pub(super) const SCHEDULE_COLUMNS: &str = "namespace, schedule_id, doc, version, visible_at";

/// The `doc` column of `schedules`.
#[derive(serde::Serialize, serde::Deserialize)]
struct ScheduleDoc {
    schedule: crate::schedule::Schedule,
    info: crate::schedule::Info,
}

/// The `doc` column of a schedule and its `paused` column (0 or 1).
pub(super) fn schedule_doc(record: &super::ScheduleRecord) -> Result<(String, i64)> {
    let doc = ScheduleDoc {
        schedule: record.schedule.clone(),
        info: record.info.clone(),
    };
    Ok((
        encode_json("schedule", &doc)?,
        i64::from(record.schedule.state.paused),
    ))
}

pub(super) fn schedule_record(
    (namespace, schedule_id, doc, version, visible_at): ScheduleCols,
) -> Result<super::ScheduleRecord> {
    let doc: ScheduleDoc = decode_json("schedule", &doc)?;
    Ok(super::ScheduleRecord {
        namespace: Namespace(namespace),
        schedule_id,
        schedule: doc.schedule,
        info: doc.info,
        version,
        due_at: visible_at.map(Timestamp),
    })
}

/// `batches` columns as read: doc, version, visible_at, stop_requested,
/// request_id.
pub(super) type BatchCols = (String, i64, Option<i64>, i64, Option<String>);

pub(super) const BATCH_COLUMNS: &str = "doc, version, visible_at, stop_requested, request_id";

pub(super) fn batch_record(
    (doc, version, visible_at, stop_requested, request_id): BatchCols,
) -> Result<super::BatchRecord> {
    Ok(super::BatchRecord {
        batch: decode_json("batch", &doc)?,
        version,
        due_at: visible_at.map(Timestamp),
        stop_requested: stop_requested != 0,
        request_id,
    })
}

/// `retention_leases` columns, in [`LEASE_COLUMNS`] order.
pub(super) type LeaseCols = (String, String, i64, i64, i64, i64, Option<i64>);

/// The columns [`LeaseCols`] reads.
pub(super) const LEASE_COLUMNS: &str =
    "namespace, owner, epoch, expires_at, runs_deleted, events_deleted, last_pass_at";

pub(super) fn retention_lease(
    (namespace, owner, epoch, expires_at, runs_deleted, events_deleted, last_pass_at): LeaseCols,
) -> super::RetentionLease {
    super::RetentionLease {
        namespace: Namespace(namespace),
        owner,
        epoch,
        expires_at: Timestamp(expires_at),
        runs_deleted,
        events_deleted,
        last_pass_at: last_pass_at.map(Timestamp),
    }
}

/// `webhook_sources` columns as read: namespace, source_id, doc,
/// created_at.
pub(super) type WebhookCols = (String, String, String, i64);

pub(super) const WEBHOOK_COLUMNS: &str = "namespace, source_id, doc, created_at";

pub(super) fn webhook_record(
    (namespace, source_id, doc, created_at): WebhookCols,
) -> Result<super::WebhookRecord> {
    Ok(super::WebhookRecord {
        namespace: Namespace(namespace),
        source_id,
        source: decode_json("webhook source", &doc)?,
        created_at: Timestamp(created_at),
    })
}

pub(super) fn namespace(
    (name, description, retention_ms, created_at): NamespaceCols,
) -> NamespaceRecord {
    NamespaceRecord {
        name: Namespace(name),
        description,
        retention: Duration(retention_ms),
        created_at: Timestamp(created_at),
    }
}

pub(super) fn endpoint(cols: EndpointCols) -> Result<Endpoint> {
    let (
        namespace,
        task_queue,
        version,
        url,
        secrets,
        max_concurrency,
        is_current,
        created_at,
        schemas,
        flow,
        features,
    ) = cols;
    Ok(Endpoint {
        namespace: Namespace(namespace),
        task_queue: TaskQueue(task_queue),
        version,
        url,
        secrets: decode_json("endpoint secrets", &secrets)?,
        max_concurrency: u32::try_from(max_concurrency)
            .map_err(|_| Error::Corrupt(format!("max_concurrency {max_concurrency}")))?,
        is_current,
        created_at: Timestamp(created_at),
        schemas: decode_json("endpoint schemas", &schemas)?,
        flow: decode_json("endpoint flow control", &flow)?,
        features: decode_json("endpoint features", &features)?,
    })
}

/// How long until a bucket holding `tokens` at `at` (ms), refilled at
/// `per_second`, holds one token at `now` (at least 1 ms).
pub(super) fn token_wait(tokens: f64, at: i64, per_second: f64, now: Timestamp) -> Duration {
    let refilled = (now.millis() - at).max(0) as f64 * per_second / 1000.0;
    let missing = 1.0 - (tokens + refilled);
    Duration((missing * 1000.0 / per_second).ceil().max(1.0) as i64)
}

pub(super) fn run_record((state, version): RunRecordCols) -> Result<RunRecord> {
    Ok(RunRecord {
        state: snapshot::decode(&state)?,
        version,
    })
}

/// A summary from its columns, its slots' (in [`SLOT_COLUMNS`] order) and
/// `scheduled_by_id`.
pub(super) fn summary(
    cols: SummaryCols,
    slots: &[SlotArg],
    scheduled_by_id: Option<String>,
) -> Result<RunSummary> {
    let (
        namespace,
        workflow_id,
        run_id,
        workflow_type,
        task_queue,
        status,
        start,
        close,
        len,
        parent_workflow_id,
        parent_run_id,
        pinned_version,
    ) = cols;
    Ok(RunSummary {
        namespace: Namespace(namespace),
        workflow_id: WorkflowId(workflow_id),
        run_id: parse_run_id(&run_id)?,
        workflow_type,
        task_queue: TaskQueue(task_queue),
        status: RunStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("run status {status:?}")))?,
        start_time: Timestamp(start),
        close_time: close.map(Timestamp),
        history_length: len,
        parent_workflow_id: parent_workflow_id.map(WorkflowId),
        parent_run_id: parent_run_id.as_deref().map(parse_run_id).transpose()?,
        pinned_version,
        scheduled_by_id,
        slots: slot_values(slots)?,
    })
}

pub(super) fn task_row(
    (task_id, namespace, run_id, payload, due_at, claims): TaskCols,
) -> Result<TaskRow> {
    Ok(TaskRow {
        task: decode_json("task payload", &payload)?,
        run_id: parse_run_id(&run_id)?,
        task_id,
        namespace: Namespace(namespace),
        due_at: Timestamp(due_at),
        claims,
    })
}

/// The `runs` columns a commit writes, from the transition's state.
pub(super) struct RunRow {
    pub run_id: String,
    pub namespace: String,
    pub workflow_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub status: &'static str,
    pub start_time: i64,
    pub close_time: Option<i64>,
    pub history_length: i64,
    pub pinned_version: Option<String>,
    /// Written at insert only: a run's parent never changes.
    pub parent_workflow_id: Option<String>,
    pub parent_run_id: Option<String>,
    /// The custom search attributes' columns, in [`SLOT_COLUMNS`] order.
    pub slots: Vec<SlotArg>,
    /// The memo's `TemporalScheduledById` (a schedule started the run).
    pub scheduled_by_id: Option<String>,
    pub state: String,
}

impl RunRow {
    pub fn new(state: &RunState) -> Result<RunRow> {
        Ok(RunRow {
            run_id: run_id_text(state.run_id),
            namespace: state.namespace.0.clone(),
            workflow_id: state.workflow_id.0.clone(),
            workflow_type: state.workflow_type.clone(),
            task_queue: state.task_queue.0.clone(),
            status: state.status.as_str(),
            start_time: state.start_time.millis(),
            close_time: state.close_time.map(Timestamp::millis),
            history_length: state.history_length(),
            pinned_version: state.pinned_version.clone(),
            parent_workflow_id: state.parent.as_ref().map(|p| p.workflow_id.0.clone()),
            parent_run_id: state.parent.as_ref().map(|p| run_id_text(p.run_id)),
            slots: slot_args(&state.search_attributes),
            scheduled_by_id: state
                .chain
                .memo
                .as_ref()
                .and_then(|m| m.get(SCHEDULED_BY_ID))
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            state: snapshot::encode(state)?,
        })
    }
}

/// Everything a commit writes for one [`RunChange`], encoded: the run row,
/// the event rows, the folded task rows, and the queues to announce. Built
/// before any IO, so encoding errors never leave a commit half done.
/// (`pub` only because [`super::sql::Dialect`] names it; like the trait,
/// it is unnameable outside `store`.)
pub struct RunWrite {
    /// `None` inserts the run; `Some(v)` updates it if its version is `v`.
    pub(super) expected_version: Option<i64>,
    pub(super) request_id: Option<String>,
    pub(super) run: RunRow,
    pub(super) events: Vec<EventRow>,
    pub(super) tasks: TaskPlan,
    /// What other nodes should hear about (see [`TaskPlan::due_queues`]).
    pub(super) due: Vec<Queue>,
    /// The payload digests the new events and the snapshot reference
    /// (docs/protocol.md §9.1): the run's `payload_links`.
    pub(super) links: Vec<String>,
}

impl RunWrite {
    pub fn new(change: &RunChange) -> Result<RunWrite> {
        RunWrite::with_task_ids(change, &mut random_task_id)
    }

    /// [`RunWrite::new`] with the task ids of upserted rows taken from
    /// `new_task_id` (the in-memory store counts them, to stay
    /// deterministic).
    pub fn with_task_ids(
        change: &RunChange,
        new_task_id: &mut dyn FnMut() -> String,
    ) -> Result<RunWrite> {
        let transition = &change.transition;
        let state = &transition.state;
        let task_queue = |task: &Task| task_queue(state, task);
        let tasks = TaskPlan::fold_with_ids(&transition.effects, new_task_id, &task_queue)?;
        let last_event_time = transition.events.iter().map(|e| e.event_time).max();
        let run = RunRow::new(&transition.state)?;
        let events = event_rows(&transition.events)?;
        let mut links = std::collections::BTreeSet::new();
        for json in events.iter().map(|e| &e.data).chain([&run.state]) {
            crate::payload::scan_digests(json.as_bytes(), &mut links);
        }
        Ok(RunWrite {
            expected_version: change.expected_version,
            request_id: change.request_id.clone(),
            run,
            events,
            due: tasks.due_queues(last_event_time),
            tasks,
            links: links.into_iter().collect(),
        })
    }

    /// The error a failed write of this run reports: a violated unique key
    /// of `runs` is [`Error::AlreadyExists`], anything else a database
    /// error. (Only the run's insert or update can violate those keys.)
    pub fn error(&self, e: sqlx::Error) -> Error {
        match unique_violation(&e) {
            Some(UniqueKey::OpenRun) => self.open_run_taken(),
            Some(UniqueKey::Run) => self.run_taken(),
            _ => Error::Database(e),
        }
    }

    /// The workflow id already has an open run.
    pub fn open_run_taken(&self) -> Error {
        Error::AlreadyExists(format!("workflow `{}` (an open run)", self.run.workflow_id))
    }

    /// A run with this run id exists.
    pub fn run_taken(&self) -> Error {
        Error::AlreadyExists(format!("run `{}`", self.run.run_id))
    }
}

/// A fresh random task id, as the SQL stores write them.
fn random_task_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One `events` row (its run id is the change's).
pub(super) struct EventRow {
    pub event_id: i64,
    pub event_type: &'static str,
    pub event_time: i64,
    pub data: String,
}

pub(super) fn event_rows(events: &[Event]) -> Result<Vec<EventRow>> {
    events
        .iter()
        .map(|event| {
            Ok(EventRow {
                event_id: event.event_id,
                event_type: event.attributes.event_type(),
                event_time: event.event_time.millis(),
                data: encode_json("event", event)?,
            })
        })
        .collect()
}

/// One `tasks` row to upsert on (run_id, task_key).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct TaskUpsert {
    /// Fresh on every upsert (see `TaskRow::task_id`).
    pub task_id: String,
    pub key: String,
    pub queue: Queue,
    /// The task queue of a push row (see migration 0006).
    pub task_queue: Option<String>,
    pub payload: String,
    pub visible_at: i64,
    pub lease_ms: i64,
}

/// What a change's effects do to its run's task rows, once folded: at most
/// one delete and one multi-row upsert instead of a round trip per effect.
#[derive(Debug, Default, PartialEq)]
pub(super) struct TaskPlan {
    /// Delete every row of the run first (a `DequeueAll` happened).
    pub delete_all: bool,
    /// Keys to delete (only when not `delete_all`).
    pub delete_keys: Vec<String>,
    pub upserts: Vec<TaskUpsert>,
}

impl TaskPlan {
    /// Folds `effects` in order into their final outcome per key: the last
    /// write to a key wins, and `DequeueAll` erases everything before it.
    /// Applying the plan (deletes, then upserts) leaves the same rows as
    /// applying the effects one by one would. Each key occurs at most once
    /// in `delete_keys` and `upserts` together, so one statement may apply
    /// the whole plan (PostgreSQL's single-statement commit relies on it: a
    /// statement must not touch one row twice). Each upserted row's task
    /// id comes from `new_task_id`.
    pub fn fold_with_ids(
        effects: &[Effect],
        new_task_id: &mut dyn FnMut() -> String,
        task_queue: &dyn Fn(&Task) -> Option<String>,
    ) -> Result<TaskPlan> {
        let mut delete_all = false;
        // Key → the row to upsert, or `None` to delete it.
        let mut outcome: BTreeMap<String, Option<TaskUpsert>> = BTreeMap::new();
        for effect in effects {
            match effect {
                Effect::Enqueue { task, at, lease } => {
                    let upsert = TaskUpsert {
                        task_id: new_task_id(),
                        key: task.key(),
                        queue: task.queue(),
                        task_queue: task_queue(task),
                        payload: encode_json::<Task>("task", task)?,
                        visible_at: at.millis(),
                        lease_ms: lease.millis(),
                    };
                    outcome.insert(upsert.key.clone(), Some(upsert));
                }
                Effect::Dequeue { key } => {
                    outcome.insert(key.clone(), None);
                }
                Effect::DequeueAll => {
                    outcome.clear();
                    delete_all = true;
                }
                Effect::Dispatch(_) => {}
            }
        }
        let mut plan = TaskPlan {
            delete_all,
            ..TaskPlan::default()
        };
        for (key, row) in outcome {
            match row {
                Some(row) => plan.upserts.push(row),
                // After a DequeueAll the key is gone already.
                None if !delete_all => plan.delete_keys.push(key),
                None => {}
            }
        }
        Ok(plan)
    }

    /// [`TaskPlan::fold_with_ids`] with random task ids, as the SQL stores
    /// write them.
    #[cfg(test)]
    pub fn fold(effects: &[Effect]) -> Result<TaskPlan> {
        TaskPlan::fold_with_ids(effects, &mut random_task_id, &|_| None)
    }

    /// One hint per upserted row.
    pub fn wakeups(&self) -> impl Iterator<Item = Wakeup> + '_ {
        self.upserts.iter().map(|row| Wakeup {
            queue: row.queue,
            at: Timestamp(row.visible_at),
        })
    }

    /// The queues with a row due no later than `now`, each once: what other
    /// nodes should hear about at once (rows due later are found by their
    /// polls, or belong to this node, which pushes them itself).
    pub fn due_queues(&self, now: Option<Timestamp>) -> Vec<Queue> {
        let Some(now) = now else {
            return Vec::new();
        };
        let mut queues: Vec<Queue> = Vec::new();
        for row in &self.upserts {
            if row.visible_at <= now.millis() && !queues.contains(&row.queue) {
                queues.push(row.queue);
            }
        }
        queues
    }
}

/// A bind value of a statement built at run time.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Arg {
    Text(String),
    /// Text or SQL null.
    OptText(Option<String>),
    Int(i64),
    Double(f64),
}

impl From<String> for Arg {
    fn from(s: String) -> Arg {
        Arg::Text(s)
    }
}

impl From<i64> for Arg {
    fn from(i: i64) -> Arg {
        Arg::Int(i)
    }
}

/// A statement built at run time (optional filters, multi-row VALUES) with
/// `$n` placeholders, which both PostgreSQL and sqlx's SQLite driver
/// understand. sqlx's own `QueryBuilder` would do, but its borrow of the
/// builder does not type-check in code generic over the database.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            args: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `arg`.
    pub fn bind(&mut self, arg: impl Into<Arg>) -> &mut Sql {
        self.args.push(arg.into());
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Appends `(a, b, …), (…)`: one parenthesized list per row of `rows`,
    /// each holding the placeholders of the args `row` returns, then
    /// `suffix` (SQL literals common to every row, such as `, 0`).
    pub fn values<T>(
        &mut self,
        rows: impl IntoIterator<Item = T>,
        suffix: &str,
        mut row: impl FnMut(T) -> Vec<Arg>,
    ) -> &mut Sql {
        self.push("values ");
        for (i, item) in rows.into_iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            self.list(row(item));
            self.push(suffix).push(")");
        }
        self
    }

    /// Appends `a, b, …`, one placeholder per arg.
    pub fn list(&mut self, args: impl IntoIterator<Item = Arg>) -> &mut Sql {
        for (i, arg) in args.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(arg);
        }
        self
    }
}

/// The unique keys whose violation is a caller's mistake rather than a bug,
/// each with its name on PostgreSQL (the constraint or index) and on SQLite
/// (which names the columns in its message instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum UniqueKey {
    Namespace,
    OpenRun,
    Run,
    Schedule,
    Batch,
    ApiKey,
    Webhook,
}

const UNIQUE_KEYS: [(UniqueKey, &str, &str); 7] = [
    (UniqueKey::Namespace, "namespaces_pkey", "namespaces.name"),
    (
        UniqueKey::OpenRun,
        "runs_open_workflow_id",
        "runs.namespace, runs.workflow_id",
    ),
    (UniqueKey::Run, "runs_pkey", "runs.run_id"),
    (
        UniqueKey::Schedule,
        "schedules_pkey",
        "schedules.namespace, schedules.schedule_id",
    ),
    (
        UniqueKey::Batch,
        "batches_pkey",
        "batches.namespace, batches.batch_id",
    ),
    (UniqueKey::ApiKey, "api_keys_pkey", "api_keys.id"),
    (
        UniqueKey::Webhook,
        "webhook_sources_pkey",
        "webhook_sources.namespace, webhook_sources.source_id",
    ),
];

/// The unique key `e` violates, if it is a unique violation of one of
/// [`UniqueKey`].
pub(super) fn unique_violation(e: &sqlx::Error) -> Option<UniqueKey> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    let constraint = db.constraint();
    let message = db.message();
    UNIQUE_KEYS
        .iter()
        .find(|(_, name, columns)| match constraint {
            Some(c) => c == *name,
            None => message.ends_with(columns),
        })
        .map(|(key, ..)| *key)
}

/// Turns a violation of `key` into [`Error::AlreadyExists`] naming `what`;
/// anything else stays a database error.
pub(super) fn on_unique(
    key: UniqueKey,
    what: impl FnOnce() -> String,
) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| {
        if unique_violation(&e) == Some(key) {
            Error::AlreadyExists(what())
        } else {
            Error::Database(e)
        }
    }
}

/// The task queue a push row's task goes to, read off the run's state
/// after the change (`None` for timer and transfer rows).
fn task_queue(state: &RunState, task: &Task) -> Option<String> {
    match *task {
        Task::WorkflowTask => Some(state.task_queue.0.clone()),
        Task::ActivityTask { scheduled_event_id } => state
            .activities
            .get(&scheduled_event_id)
            .map(|a| a.task_queue.0.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TimerId;
    use crate::time::Duration;

    fn timer(name: &str) -> Task {
        Task::UserTimer {
            timer_id: TimerId(name.to_owned()),
            started_event_id: 5,
        }
    }

    fn enqueue(task: Task, at: i64) -> Effect {
        Effect::Enqueue {
            task,
            at: Timestamp(at),
            lease: Duration(7),
        }
    }

    fn summarize(plan: &TaskPlan) -> (bool, Vec<String>, Vec<(String, i64)>) {
        let upserts = plan
            .upserts
            .iter()
            .map(|u| (u.key.clone(), u.visible_at))
            .collect();
        (plan.delete_all, plan.delete_keys.clone(), upserts)
    }

    #[test]
    fn last_write_per_key_wins() {
        let plan = TaskPlan::fold(&[
            enqueue(timer("a"), 1),
            enqueue(timer("b"), 2),
            Effect::Dequeue {
                key: "timer/a".to_owned(),
            },
            enqueue(timer("b"), 3),
            Effect::Dequeue {
                key: "timer/c".to_owned(),
            },
        ])
        .unwrap();
        assert_eq!(
            summarize(&plan),
            (
                false,
                vec!["timer/a".to_owned(), "timer/c".to_owned()],
                vec![("timer/b".to_owned(), 3)]
            )
        );
    }

    #[test]
    fn dequeue_all_erases_what_came_before() {
        let plan = TaskPlan::fold(&[
            enqueue(timer("a"), 1),
            Effect::Dequeue {
                key: "timer/x".to_owned(),
            },
            Effect::DequeueAll,
            enqueue(timer("b"), 2),
            Effect::Dispatch(crate::engine::Dispatch::WorkflowTask),
        ])
        .unwrap();
        assert_eq!(
            summarize(&plan),
            (true, vec![], vec![("timer/b".to_owned(), 2)])
        );
    }

    #[test]
    fn every_upsert_gets_a_fresh_task_id() {
        let a = TaskPlan::fold(&[enqueue(Task::WorkflowTask, 1)]).unwrap();
        let b = TaskPlan::fold(&[enqueue(Task::WorkflowTask, 1)]).unwrap();
        assert_ne!(a.upserts[0].task_id, b.upserts[0].task_id);
        assert_eq!(a.upserts[0].queue, Queue::Push);
        assert_eq!(a.upserts[0].lease_ms, 7);
    }

    #[test]
    fn only_rows_due_at_once_are_announced() {
        let plan = TaskPlan::fold(&[
            enqueue(Task::WorkflowTask, 10),
            enqueue(
                Task::ActivityTask {
                    scheduled_event_id: 3,
                },
                5,
            ),
            enqueue(timer("later"), 99),
        ])
        .unwrap();
        assert_eq!(plan.due_queues(Some(Timestamp(10))), vec![Queue::Push]);
        assert_eq!(plan.due_queues(Some(Timestamp(4))), vec![]);
        assert_eq!(plan.due_queues(None), vec![]);
        assert_eq!(plan.wakeups().count(), 3);
    }

    #[test]
    fn statements_number_their_placeholders() {
        let mut sql = Sql::new("insert into t (a, b, c) ");
        sql.values([1_i64, 2], ", 0", |i| {
            vec![Arg::Int(i), Arg::Text(format!("x{i}"))]
        })
        .push(" where k in (")
        .list([Arg::Int(9)])
        .push(")");
        assert_eq!(
            sql.text,
            "insert into t (a, b, c) values ($1, $2, 0), ($3, $4, 0) where k in ($5)"
        );
        assert_eq!(sql.args.len(), 5);
        assert_eq!(sql.args[3], Arg::Text("x2".to_owned()));
    }

    #[test]
    fn queue_names_round_trip() {
        for queue in [Queue::Push, Queue::Timer, Queue::Transfer] {
            assert_eq!(parse_queue(queue_name(queue)), Some(queue));
        }
        assert_eq!(parse_queue("nope"), None);
    }
}
