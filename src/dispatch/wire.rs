//! The push protocol's bodies (docs/protocol.md is the spec; keep them in
//! step). Requests are what Baton POSTs to an endpoint; responses are what
//! it accepts back, parsed strictly: an unknown field or a shape that is
//! neither answer is a delivery failure, never a guess.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::payloads::Inlined;
use crate::engine::{Event, Failure, WorkflowCommand, WorkflowTaskFailedCause};
use crate::ids::{ActivityId, Namespace, RunId, TaskQueue, WorkflowId};
use crate::time::{Duration, Timestamp};

/// Every push body; `type` says which.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PushRequest<'a> {
    WorkflowTask(WorkflowTaskRequest<'a>),
    ActivityTask(ActivityTaskRequest<'a>),
    Query(QueryRequest<'a>),
    UpdateValidation(UpdateValidationRequest<'a>),
}

/// An update's validation: the handler replays the history and runs the
/// update's validator (not its handler). Nothing is recorded; a rejection
/// leaves no trace in the history.
#[derive(Debug, Serialize)]
pub struct UpdateValidationRequest<'a> {
    #[serde(flatten)]
    pub run: RunHistory<'a>,
    pub update_id: &'a str,
    pub update_name: &'a str,
    pub update_args: &'a Value,
}

/// The run a synchronous push (query, update validation) is about, with
/// its persisted history; no token, as nothing is recorded.
#[derive(Debug, Serialize)]
pub struct RunHistory<'a> {
    pub namespace: &'a Namespace,
    pub workflow_id: &'a WorkflowId,
    pub run_id: RunId,
    pub workflow_type: &'a str,
    pub task_queue: &'a TaskQueue,
    /// The persisted history, oldest first: all of it, or its newest
    /// events (`pages`).
    pub history: History<'a>,
    pub history_length: i64,
    #[serde(flatten)]
    pub pages: Pages,
    /// Payloads beside the history's references (docs/protocol.md §9.1);
    /// after `history`, which [`encode`] finds by its first occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payloads: Option<&'a Inlined>,
}

/// Where a push's history starts and how its handler pages in the rest
/// (docs/protocol.md §5.10).
#[derive(Debug, Default, Serialize)]
pub struct Pages {
    /// The first event's id, when it is not 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_first_event_id: Option<i64>,
    /// Names the events before it; with `history_first_event_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_reference: Option<String>,
    /// The page route's URL: on every workflow task push (a handler that
    /// sees it may answer `sticky`), and on partial query and update pushes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_url: Option<String>,
}

/// A validation answer: `{"accepted": true}`, or `failure` (unknown update,
/// bad arguments, a validator that raised).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateValidationResponse {
    #[serde(default)]
    pub accepted: Option<bool>,
    #[serde(default)]
    pub failure: Option<Failure>,
}

/// A query: the handler replays the history and answers from the
/// workflow's query handler. Nothing is recorded; there is no token.
#[derive(Debug, Serialize)]
pub struct QueryRequest<'a> {
    #[serde(flatten)]
    pub run: RunHistory<'a>,
    pub query_name: &'a str,
    pub query_args: &'a Value,
}

/// A query answer: `result`, or `failure` (unknown query, bad arguments,
/// a handler that raised).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryResponse {
    #[serde(default, deserialize_with = "present")]
    pub result: Option<Value>,
    #[serde(default)]
    pub failure: Option<Failure>,
}

#[derive(Debug, Serialize)]
pub struct WorkflowTaskRequest<'a> {
    pub namespace: &'a Namespace,
    pub task_token: String,
    pub workflow_id: &'a WorkflowId,
    pub run_id: RunId,
    pub workflow_type: &'a str,
    pub task_queue: &'a TaskQueue,
    pub attempt: u32,
    /// The history, oldest first (all of it, or its newest events:
    /// `pages`), ending with this task's WorkflowTaskStarted event.
    pub history: History<'a>,
    pub history_length: i64,
    #[serde(flatten)]
    pub pages: Pages,
    pub history_size_bytes: u64,
    pub suggest_continue_as_new: bool,
    /// When the dispatcher stops waiting for the answer.
    pub deadline: Timestamp,
    /// Where the handler sends checkpoints (docs/protocol.md §5.9).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_url: Option<String>,
    /// Payloads beside the history's references (docs/protocol.md §9.1);
    /// after `history`, which [`encode`] finds by its first occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payloads: Option<&'a Inlined>,
}

#[derive(Debug, Serialize)]
pub struct ActivityTaskRequest<'a> {
    pub namespace: &'a Namespace,
    pub task_token: String,
    pub workflow_id: &'a WorkflowId,
    pub run_id: RunId,
    pub workflow_type: &'a str,
    pub activity_id: &'a ActivityId,
    pub activity_type: &'a str,
    pub task_queue: &'a TaskQueue,
    pub input: &'a Value,
    pub attempt: u32,
    /// `"<run id>/<activity id>"`: the same for every attempt.
    pub idempotency_key: String,
    pub scheduled_time: Timestamp,
    pub started_time: Timestamp,
    /// When this attempt times out (start-to-close, capped by
    /// schedule-to-close).
    pub deadline: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_timeout: Option<Duration>,
    /// Details from the last heartbeat of any earlier attempt, to resume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_details: Option<&'a Value>,
    /// Payloads beside `input`'s and `heartbeat_details`' references
    /// (docs/protocol.md §9.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payloads: Option<&'a Inlined>,
    /// Where the handler fetches the payloads of references it was not
    /// sent (docs/protocol.md §9.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payloads_url: Option<String>,
}

/// The persisted events, already encoded, followed by the task's transient
/// ones. Its `Serialize` writes only a placeholder (`[]`): [`encode`]
/// splices the events in, so a push never re-serialises a history it has
/// encoded before.
#[derive(Debug)]
pub struct History<'a> {
    /// The persisted events' JSON, joined by commas ([`encode_events`]).
    pub persisted: &'a [u8],
    pub transient: &'a [Event],
}

impl Serialize for History<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(std::iter::empty::<()>())
    }
}

/// Where [`History`]'s placeholder lands in an encoded request. The fields
/// before it are scalars and strings, and a JSON string cannot hold an
/// unescaped quote, so its first occurrence is the field.
const PLACEHOLDER: &[u8] = b"\"history\":[]";

/// Appends each event's JSON to `out`, comma-separated (a comma first when
/// `out` is not empty): the elements of a JSON array, as serde_json writes
/// them.
pub fn encode_events(events: &[Event], out: &mut Vec<u8>) -> serde_json::Result<()> {
    for event in events {
        if !out.is_empty() {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, event)?;
    }
    Ok(())
}

/// A run's first events as pushes carry them ([`encode_events`]: each
/// event's JSON, comma-joined), with where each ends, so the events from
/// any one on are a slice: a sticky or paged push and a history page copy
/// bytes instead of serialising events again.
#[derive(Clone, Debug, Default)]
pub struct EncodedEvents {
    bytes: Vec<u8>,
    /// `ends[i]`: where event `i + 1`'s JSON ends in `bytes` (a comma
    /// follows every one but the last).
    ends: Vec<u32>,
}

impl EncodedEvents {
    /// `events`, which must be a history's first events, in order.
    pub fn encode(events: &[Event]) -> serde_json::Result<EncodedEvents> {
        let mut out = EncodedEvents::default();
        out.append(events)?;
        Ok(out)
    }

    /// Appends `events`, the ones after the last encoded.
    pub fn append(&mut self, events: &[Event]) -> serde_json::Result<()> {
        for event in events {
            encode_events(std::slice::from_ref(event), &mut self.bytes)?;
            self.ends.push(end(self.bytes.len()));
        }
        Ok(())
    }

    /// Appends `more`, the encoding of the events after the last encoded.
    pub fn extend(&mut self, more: &EncodedEvents) {
        if more.ends.is_empty() {
            return;
        }
        let comma = usize::from(!self.bytes.is_empty());
        let base = self.bytes.len() + comma;
        if comma == 1 {
            self.bytes.push(b',');
        }
        self.bytes.extend_from_slice(&more.bytes);
        self.ends
            .extend(more.ends.iter().map(|e| end(base + *e as usize)));
    }

    /// How many events: the ids `1 ..= events()`.
    pub fn events(&self) -> i64 {
        self.ends.len() as i64
    }

    /// Every encoded event.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Memory held, in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len() + 4 * self.ends.len()
    }

    /// Where event `id`'s JSON starts (`id` in `1 ..= events() + 1`).
    fn start(&self, id: i64) -> usize {
        match id {
            ..=1 => 0,
            _ => self.ends[(id - 2) as usize] as usize + 1,
        }
    }

    /// Events `first ..= last` (both in `1 ..= events()`), comma-joined.
    pub fn range(&self, first: i64, last: i64) -> &[u8] {
        &self.bytes[self.start(first)..self.ends[(last - 1) as usize] as usize]
    }

    /// The id of the first of the newest events that fit in `budget`
    /// bytes, counting a comma after each (at least the newest one, none
    /// when there are no events: `events() + 1`).
    pub fn newest_within(&self, budget: usize) -> i64 {
        let total = self.bytes.len() + 1;
        // Sizes of the suffixes shrink as their first id grows: the first
        // id whose suffix fits, by binary search, capped at the newest.
        let fits = |id: i64| total - self.start(id) <= budget;
        let (mut lo, mut hi) = (1, self.events());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }
}

/// An offset in an encoding: histories are capped far below 4 GiB (the
/// hard size limit is 50 MiB).
fn end(offset: usize) -> u32 {
    u32::try_from(offset).expect("an encoded history under 4 GiB")
}

/// A push body: `request` as serde_json writes it, with the history spliced
/// in as one JSON array (persisted events, then transient ones), so the
/// bytes are those of serialising every event afresh.
pub fn encode(request: &PushRequest<'_>) -> serde_json::Result<Vec<u8>> {
    let envelope = serde_json::to_vec(request)?;
    let history = match request {
        PushRequest::WorkflowTask(r) => &r.history,
        PushRequest::Query(r) => &r.run.history,
        PushRequest::UpdateValidation(r) => &r.run.history,
        PushRequest::ActivityTask(_) => return Ok(envelope),
    };
    let Some(at) = envelope
        .windows(PLACEHOLDER.len())
        .position(|w| w == PLACEHOLDER)
    else {
        return Err(serde::ser::Error::custom("the history field is missing"));
    };
    let split = at + PLACEHOLDER.len() - 1;
    let mut transient = Vec::new();
    encode_events(history.transient, &mut transient)?;
    let mut body =
        Vec::with_capacity(envelope.len() + history.persisted.len() + transient.len() + 1);
    body.extend_from_slice(&envelope[..split]);
    body.extend_from_slice(history.persisted);
    if !history.persisted.is_empty() && !transient.is_empty() {
        body.push(b',');
    }
    body.extend_from_slice(&transient);
    body.extend_from_slice(&envelope[split..]);
    Ok(body)
}

/// A workflow task answer: commands, or a failure of the task itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowTaskResponse {
    #[serde(default)]
    pub commands: Option<Vec<WorkflowCommand>>,
    #[serde(default)]
    pub failure: Option<WorkflowTaskFailure>,
    #[serde(default)]
    pub identity: Option<String>,
    /// A workflow-task heartbeat: schedule the next task at once
    /// (docs/protocol.md §5.2.1).
    #[serde(default)]
    pub force_create_new_workflow_task: bool,
    /// The handler completed the task through checkpoints
    /// (docs/protocol.md §5.9): nothing to record.
    #[serde(default)]
    pub checkpointed: bool,
    /// The handler keeps the run's instance: send it only the new events
    /// next time (docs/protocol.md §5.10).
    #[serde(default)]
    pub sticky: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowTaskFailure {
    #[serde(default = "default_cause")]
    pub cause: WorkflowTaskFailedCause,
    pub failure: Failure,
}

fn default_cause() -> WorkflowTaskFailedCause {
    WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure
}

/// An activity answer (HTTP 200). Exactly one field is set. HTTP 202 with
/// any body means "I will complete it later over REST".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityTaskResponse {
    #[serde(default, deserialize_with = "present")]
    pub result: Option<Value>,
    #[serde(default)]
    pub failure: Option<Failure>,
    #[serde(default)]
    pub canceled: Option<Canceled>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canceled {
    #[serde(default)]
    pub details: Option<Value>,
}

/// Parses an answer, which must be a JSON object: serde would otherwise
/// read a struct from an array, field by field.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err("the answer must be a JSON object".to_owned());
    }
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// Makes `"result": null` count as present (a workflow may return None).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}
