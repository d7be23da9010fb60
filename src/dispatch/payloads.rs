//! Payload references in what the server sends handlers (docs/protocol.md
//! §9.1): a version with the `payload_references` feature gets the
//! references with the payloads replay reads beside them, newest first,
//! within a byte budget; any other version gets the payloads back in
//! place. Pushes, history pages and checkpoint answers all go through
//! here.

use std::collections::{BTreeMap, HashMap};

use serde_json::value::RawValue;
use serde_json::Value;

use crate::engine::Event;
use crate::ids::{Namespace, RunId};
use crate::payload::{self, Reference};
use crate::store::{self, Endpoint, Store};

use super::wire;

/// The feature that makes a handler get references (docs/protocol.md §1.5).
pub const PAYLOAD_REFERENCES: &str = "payload_references";

/// Payloads a push carries beside their references: digest → payload.
pub type Inlined = BTreeMap<String, Box<RawValue>>;

/// Whether `endpoint`'s handler takes references.
pub fn takes_references(endpoint: &Endpoint) -> bool {
    endpoint.features.iter().any(|f| f == PAYLOAD_REFERENCES)
}

/// What to send of comma-joined encoded events that may hold references.
pub enum Events {
    /// As they are (no references, or a handler that takes them, with the
    /// payloads to inline).
    AsTheyAre(Option<Inlined>),
    /// Re-encoded with every payload in place.
    InPlace(Vec<u8>),
}

/// An activity task's payloads, resolved for its handler
/// ([`Resolver::activity`]).
pub struct ActivityPayloads {
    pub input: Value,
    pub heartbeat_details: Option<Value>,
    pub inlined: Option<Inlined>,
}

/// Where a push's references are resolved: the run and its store.
pub struct Resolver<'a> {
    pub store: &'a dyn Store,
    pub namespace: &'a Namespace,
    pub run_id: RunId,
    /// The handler takes references.
    pub references: bool,
    /// Most payload bytes to inline beside references.
    pub budget: u64,
}

impl Resolver<'_> {
    /// `encoded`: events' JSON, comma-joined, as pushes and pages carry
    /// them. Decoded only when they may hold a reference.
    pub async fn events(&self, encoded: &[u8]) -> Result<Events, store::Error> {
        if !payload::may_hold_reference(encoded) {
            return Ok(Events::AsTheyAre(None));
        }
        let mut array = Vec::with_capacity(encoded.len() + 2);
        array.push(b'[');
        array.extend_from_slice(encoded);
        array.push(b']');
        let mut events: Vec<Event> = serde_json::from_slice(&array)
            .map_err(|e| store::Error::Corrupt(format!("decoding pushed events: {e}")))?;
        if self.references {
            return Ok(Events::AsTheyAre(self.decoded(&mut events).await?));
        }
        self.decoded(&mut events).await?;
        let mut out = Vec::with_capacity(encoded.len());
        wire::encode_events(&events, &mut out)
            .map_err(|e| store::Error::Corrupt(format!("encoding pushed events: {e}")))?;
        Ok(Events::InPlace(out))
    }

    /// For a handler that takes references, the payloads to inline beside
    /// those of `events` that replay reads, newest first, while they fit
    /// in the budget; for any other, `None`, with every payload of
    /// `events` put in place.
    pub async fn decoded(&self, events: &mut [Event]) -> Result<Option<Inlined>, store::Error> {
        if self.references {
            let wanted = events.iter().rev().filter_map(payload::read_by_replay);
            return self.inline(wanted).await;
        }
        let digests: Vec<String> = payload::referenced(events).into_iter().collect();
        let fetched = self.fetch(&digests).await?;
        payload::inline_all(events, &fetched);
        Ok(None)
    }

    /// The payloads to inline beside the references among `values`, in
    /// order, while they fit in the budget.
    async fn inline<'v>(
        &self,
        values: impl Iterator<Item = &'v Value>,
    ) -> Result<Option<Inlined>, store::Error> {
        let mut chosen: Vec<String> = Vec::new();
        let mut used = 0u64;
        for r in values.filter_map(Reference::of) {
            if chosen.contains(&r.sha256) {
                continue;
            }
            if used + r.size_bytes > self.budget {
                break;
            }
            used += r.size_bytes;
            chosen.push(r.sha256);
        }
        if chosen.is_empty() {
            return Ok(None);
        }
        let rows = self
            .store
            .read_payloads(self.namespace, self.run_id, &chosen)
            .await?;
        let mut inlined = Inlined::new();
        for (sha256, data) in rows {
            let raw = RawValue::from_string(data)
                .map_err(|e| store::Error::Corrupt(format!("stored payload {sha256}: {e}")))?;
            inlined.insert(sha256, raw);
        }
        Ok(Some(inlined))
    }

    /// An activity task's `input` and `heartbeat_details` as its handler
    /// gets them: `None` when neither is a reference (send them as they
    /// are).
    pub async fn activity(
        &self,
        input: &Value,
        heartbeat_details: Option<&Value>,
    ) -> Result<Option<ActivityPayloads>, store::Error> {
        let values = || std::iter::once(input).chain(heartbeat_details);
        if values().all(|v| Reference::of(v).is_none()) {
            return Ok(None);
        }
        let mut out = ActivityPayloads {
            input: input.clone(),
            heartbeat_details: heartbeat_details.cloned(),
            inlined: None,
        };
        if self.references {
            out.inlined = self.inline(values()).await?;
        } else {
            let digests: Vec<String> = values()
                .filter_map(Reference::of)
                .map(|r| r.sha256)
                .collect();
            let fetched = self.fetch(&digests).await?;
            payload::put_in_place(&mut out.input, &fetched);
            if let Some(details) = &mut out.heartbeat_details {
                payload::put_in_place(details, &fetched);
            }
        }
        Ok(Some(out))
    }

    /// The stored payloads among `digests` this run references, decoded. A
    /// missing one (which only a manual edit of the store could cause)
    /// stays a reference, and the handler's request for it fails.
    async fn fetch(&self, digests: &[String]) -> Result<HashMap<String, Value>, store::Error> {
        if digests.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self
            .store
            .read_payloads(self.namespace, self.run_id, digests)
            .await?;
        if rows.len() < digests.len() {
            tracing::warn!(namespace = %self.namespace, run_id = %self.run_id,
                missing = digests.len() - rows.len(), "referenced payloads are missing from the store");
        }
        rows.into_iter()
            .map(|(sha256, data)| {
                let value = serde_json::from_str(&data)
                    .map_err(|e| store::Error::Corrupt(format!("stored payload {sha256}: {e}")))?;
                Ok((sha256, value))
            })
            .collect()
    }
}
