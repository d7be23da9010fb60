//! Payloads by reference (claim check, docs/protocol.md §9.1): which
//! payloads are stored apart from the history, what a reference looks
//! like, and where references sit in commands and events. Pure: the
//! applier stores what [`Offloader`] takes out of a command, the store
//! links runs to the digests [`scan_digests`] finds in what it writes, and
//! the dispatcher puts payloads back ([`inline_all`]) or beside
//! ([`read_by_replay`]) the references of a push.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::engine::{Command, Event, EventAttributes, Signal, StartRun, WorkflowCommand};

/// The one member of a reference object; reserved in payloads.
pub const MARKER: &str = "$baton_payload";

/// A payload stored apart: its compact JSON and that encoding's digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPayload {
    /// Lowercase hex SHA-256 of `data`.
    pub sha256: String,
    pub data: String,
}

/// What a reference names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub sha256: String,
    pub size_bytes: u64,
}

impl Reference {
    /// The reference `value` is, if it is one: an object whose only member
    /// is [`MARKER`], holding a well-formed digest and size.
    pub fn of(value: &Value) -> Option<Reference> {
        let object = value.as_object().filter(|o| o.len() == 1)?;
        let inner = object.get(MARKER)?.as_object()?;
        let sha256 = inner.get("sha256")?.as_str().filter(|s| is_digest(s))?;
        let size_bytes = inner.get("size_bytes")?.as_u64()?;
        Some(Reference {
            sha256: sha256.to_owned(),
            size_bytes,
        })
    }

    fn to_value(&self) -> Value {
        json!({ MARKER: { "sha256": self.sha256, "size_bytes": self.size_bytes } })
    }
}

/// 64 lowercase hex digits.
pub fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Takes the payloads a command or start brings that are to be stored by
/// reference out of it, leaving references in their place.
#[derive(Clone, Copy, Debug)]
pub struct Offloader {
    /// Payloads larger than this are stored apart; 0: only those that hold
    /// the marker.
    pub threshold: u64,
    /// The one-payload limit: larger payloads stay in place for the engine
    /// to refuse as it always has.
    pub limit: u64,
}

impl Offloader {
    /// Replaces `value` by a reference if it is to be stored apart, and
    /// adds the stored payload to `out`. A reference stays as it is.
    fn value(&self, value: &mut Value, out: &mut Vec<StoredPayload>) {
        if Reference::of(value).is_some() || is_small_scalar(value) {
            return;
        }
        let Ok(data) = serde_json::to_string(value) else {
            return;
        };
        let size = data.len() as u64;
        let marked = may_hold_reference(data.as_bytes());
        if size > self.limit || !(marked || (self.threshold > 0 && size > self.threshold)) {
            return;
        }
        let sha256 = format!("{:x}", Sha256::digest(data.as_bytes()));
        *value = Reference {
            sha256: sha256.clone(),
            size_bytes: size,
        }
        .to_value();
        if !out.iter().any(|p| p.sha256 == sha256) {
            out.push(StoredPayload { sha256, data });
        }
    }

    fn optional(&self, value: &mut Option<Value>, out: &mut Vec<StoredPayload>) {
        if let Some(v) = value {
            self.value(v, out);
        }
    }

    /// A new run's input (docs/protocol.md §9.1, first row).
    pub fn start(&self, run: &mut StartRun, out: &mut Vec<StoredPayload>) {
        self.value(&mut run.input, out);
    }

    pub fn signal(&self, signal: &mut Signal, out: &mut Vec<StoredPayload>) {
        self.value(&mut signal.input, out);
    }

    /// The payloads of `cmd` that §9.1 stores by reference.
    pub fn command(&self, cmd: &mut Command, out: &mut Vec<StoredPayload>) {
        match cmd {
            Command::CompleteWorkflowTask { commands, .. } => {
                for c in commands {
                    self.workflow_command(c, out);
                }
            }
            Command::CompleteActivity { result, .. } => self.value(result, out),
            Command::RecordActivityHeartbeat { details, .. } => self.optional(details, out),
            Command::SignalWorkflow(signal) => self.signal(signal, out),
            Command::AdmitUpdate(update) => self.value(&mut update.input, out),
            Command::Checkpoint(checkpoint) => {
                for (_, outcome) in &mut checkpoint.completions {
                    if let crate::engine::InlineOutcome::Completed(result) = outcome {
                        self.value(result, out);
                    }
                }
                for c in checkpoint.commands.iter_mut().flatten() {
                    self.workflow_command(c, out);
                }
            }
            _ => {}
        }
    }

    fn workflow_command(&self, cmd: &mut WorkflowCommand, out: &mut Vec<StoredPayload>) {
        match cmd {
            WorkflowCommand::ScheduleActivityTask(c) => self.value(&mut c.input, out),
            WorkflowCommand::RecordMarker(c) => self.value(&mut c.details, out),
            WorkflowCommand::CompleteWorkflowExecution(c) => self.value(&mut c.result, out),
            WorkflowCommand::CompleteWorkflowUpdate(c) => self.value(&mut c.result, out),
            WorkflowCommand::ContinueAsNewWorkflowExecution(c) => self.value(&mut c.input, out),
            WorkflowCommand::StartChildWorkflowExecution(c) => self.value(&mut c.input, out),
            WorkflowCommand::SignalExternalWorkflowExecution(c) => self.value(&mut c.input, out),
            _ => {}
        }
    }
}

/// Numbers, booleans, null and short strings are never worth a look.
fn is_small_scalar(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
        Value::String(s) => s.len() < 64,
        _ => false,
    }
}

/// Adds the digests of the references in `json` (an encoded event or
/// snapshot) to `out`. Payloads that hold the marker are stored apart, so
/// every occurrence of it in stored JSON is a reference (or a payload in a
/// place §9.1 does not store apart, which names a digest at most).
pub fn scan_digests(json: &[u8], out: &mut BTreeSet<String>) {
    // A reference as serde_json writes it, up to its digest.
    const NEEDLE: &str = "\"$baton_payload\":{\"sha256\":\"";
    for at in memchr::memmem::find_iter(json, NEEDLE.as_bytes()) {
        let start = at + NEEDLE.len();
        if let Some(d) = json.get(start..start + 64) {
            if let Ok(d) = std::str::from_utf8(d) {
                if is_digest(d) {
                    out.insert(d.to_owned());
                }
            }
        }
    }
}

/// Whether `json` may hold a reference (a fast test before a decode).
pub fn may_hold_reference(json: &[u8]) -> bool {
    memchr::memmem::find(json, MARKER.as_bytes()).is_some()
}

/// The payloads of `event` that replay reads (§9.1's table), the only ones
/// a push inlines beside its references.
pub fn read_by_replay(event: &Event) -> Option<&Value> {
    match &event.attributes {
        EventAttributes::WorkflowExecutionStarted(a) => Some(&a.input),
        EventAttributes::ActivityTaskCompleted(a) => Some(&a.result),
        EventAttributes::WorkflowExecutionSignaled(a) => Some(&a.input),
        EventAttributes::WorkflowExecutionUpdateAdmitted(a) => Some(&a.input),
        EventAttributes::MarkerRecorded(a) => Some(&a.details),
        EventAttributes::ChildWorkflowExecutionCompleted(a) => Some(&a.result),
        _ => None,
    }
}

/// Every payload of `event` that may hold a reference, for a handler
/// without the feature.
fn referable_mut(event: &mut Event) -> Option<&mut Value> {
    match &mut event.attributes {
        EventAttributes::WorkflowExecutionStarted(a) => Some(&mut a.input),
        EventAttributes::ActivityTaskScheduled(a) => Some(&mut a.input),
        EventAttributes::ActivityTaskCompleted(a) => Some(&mut a.result),
        EventAttributes::WorkflowExecutionSignaled(a) => Some(&mut a.input),
        EventAttributes::WorkflowExecutionUpdateAdmitted(a) => Some(&mut a.input),
        EventAttributes::MarkerRecorded(a) => Some(&mut a.details),
        EventAttributes::ChildWorkflowExecutionCompleted(a) => Some(&mut a.result),
        EventAttributes::WorkflowExecutionCompleted(a) => Some(&mut a.result),
        EventAttributes::WorkflowExecutionUpdateCompleted(a) => Some(&mut a.result),
        EventAttributes::WorkflowExecutionContinuedAsNew(a) => Some(&mut a.input),
        EventAttributes::StartChildWorkflowExecutionInitiated(a) => Some(&mut a.input),
        EventAttributes::SignalExternalWorkflowExecutionInitiated(a) => Some(&mut a.input),
        _ => None,
    }
}

/// The digests `events` reference, in any place.
pub fn referenced(events: &mut [Event]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for event in events {
        if let Some(r) = referable_mut(event).and_then(|v| Reference::of(v)) {
            out.insert(r.sha256);
        }
    }
    out
}

/// Puts the payloads `fetched` holds in place of their references in
/// `events`, wherever they sit (for a handler without the feature).
pub fn inline_all(events: &mut [Event], fetched: &std::collections::HashMap<String, Value>) {
    for event in events {
        if let Some(value) = referable_mut(event) {
            put_in_place(value, fetched);
        }
    }
}

/// Replaces `value` by the payload it references, if `fetched` has it.
pub fn put_in_place(value: &mut Value, fetched: &std::collections::HashMap<String, Value>) {
    if let Some(r) = Reference::of(value) {
        if let Some(payload) = fetched.get(&r.sha256) {
            *value = payload.clone();
        }
    }
}

#[cfg(test)]
mod tests;
