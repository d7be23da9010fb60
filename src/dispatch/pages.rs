//! Partial pushes (docs/protocol.md §5.10): which events a push carries
//! when not the whole history, and this node's table of the runs whose
//! handler said it keeps their workflow instance (`sticky`).
//!
//! The choice is a pure function of the history; the table is memory only:
//! a restarted node, or another node, sends the whole history, which every
//! handler can take.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::engine::{Event, EventAttributes};
use crate::ids::RunId;

use super::wire::EncodedEvents;

/// Most runs the table holds; past it, new entries are not kept (their
/// next push carries the whole history).
const STICKY_RUNS: usize = 100_000;

/// The feature an endpoint version registers to be sent paged pushes.
pub const HISTORY_PAGES: &str = "history_pages";

/// Runs whose last workflow task was answered `sticky`, each with the
/// WorkflowTaskStarted event id the handler's instance ends at and the
/// endpoint version that answered.
#[derive(Default)]
pub struct StickyRuns {
    runs: Mutex<HashMap<RunId, (i64, Option<String>)>>,
}

impl StickyRuns {
    /// Remembers that the handler of `version` keeps `run_id`'s instance
    /// as of event `through`.
    pub fn keep(&self, run_id: RunId, through: i64, version: Option<String>) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if runs.len() < STICKY_RUNS || runs.contains_key(&run_id) {
            runs.insert(run_id, (through, version));
        }
    }

    /// Takes the run's entry, if the same version answered: a push uses it
    /// once, and the next answer says again whether to keep it.
    pub fn take(&self, run_id: RunId, version: Option<&str>) -> Option<i64> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let (through, kept) = runs.remove(&run_id)?;
        (kept.as_deref() == version).then_some(through)
    }
}

/// The persisted events a push carries: all of the run's kept encoding, or
/// its events from the id given on ([`tail`]).
pub enum PushedHistory {
    Whole(Arc<EncodedEvents>),
    Newest(Arc<EncodedEvents>, i64),
    /// Either, re-encoded with referenced payloads in place
    /// (docs/protocol.md §9.1).
    InPlace(Vec<u8>),
}

impl PushedHistory {
    /// The events' JSON, comma-joined: a slice of the kept encoding.
    pub fn bytes(&self) -> &[u8] {
        match self {
            PushedHistory::Whole(e) => e.bytes(),
            PushedHistory::Newest(e, first) => e.range(*first, e.events()),
            PushedHistory::InPlace(bytes) => bytes,
        }
    }
}

/// The id of the first of the newest events a partial push carries, of a
/// history whose encoding is `encoded`: the events after the handler's
/// instance (`sticky`, the WorkflowTaskStarted it ends at, if the task it
/// answered was recorded as completed), else, with a `budget` in bytes, the
/// newest that fit in it (at least one). `None`: the push carries the whole
/// history.
pub fn tail(
    history: &[Event],
    encoded: &EncodedEvents,
    sticky: Option<i64>,
    budget: Option<usize>,
) -> Option<i64> {
    let first = match (sticky.filter(|t| completed_after(history, *t)), budget) {
        (Some(through), _) => through + 1,
        (None, Some(budget)) => encoded.newest_within(budget),
        (None, None) => return None,
    };
    (first > 1 && first <= encoded.events()).then_some(first)
}

/// Whether the event after `through` completed the task started there.
fn completed_after(history: &[Event], through: i64) -> bool {
    let Ok(at) = usize::try_from(through) else {
        return false;
    };
    matches!(
        history.get(at).map(|e| &e.attributes),
        Some(EventAttributes::WorkflowTaskCompleted(c)) if c.started_event_id == through
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::wire;
    use crate::engine::{MarkerRecorded, WorkflowTaskCompleted};
    use crate::time::Timestamp;

    fn marker(id: i64, pad: usize) -> Event {
        Event {
            event_id: id,
            event_time: Timestamp(0),
            attributes: EventAttributes::MarkerRecorded(MarkerRecorded {
                marker_name: "m".repeat(pad),
                details: serde_json::Value::Null,
                workflow_task_completed_event_id: 0,
                failure: None,
            }),
        }
    }

    fn completed(id: i64, started: i64) -> Event {
        Event {
            event_id: id,
            event_time: Timestamp(0),
            attributes: EventAttributes::WorkflowTaskCompleted(WorkflowTaskCompleted {
                scheduled_event_id: started - 1,
                started_event_id: started,
                identity: None,
            }),
        }
    }

    fn ids(bytes: &[u8]) -> Vec<i64> {
        let events: Vec<Event> =
            serde_json::from_slice(&[b"[", bytes, b"]"].concat()).expect("events");
        events.iter().map(|e| e.event_id).collect()
    }

    #[test]
    fn sticky_pushes_start_after_the_completed_task_only() {
        let history = vec![marker(1, 1), marker(2, 1), completed(3, 2), marker(4, 1)];
        let encoded = EncodedEvents::encode(&history).unwrap();
        let first = tail(&history, &encoded, Some(2), None).expect("partial");
        assert_eq!((first, ids(encoded.range(first, 4))), (3, vec![3, 4]));
        // The answer was refused or the task failed: no WorkflowTaskCompleted
        // of that task follows, so the whole history goes.
        assert_eq!(tail(&history, &encoded, Some(1), None), None);
        assert_eq!(tail(&history, &encoded, Some(4), None), None);
        assert_eq!(tail(&history, &encoded, Some(-1), None), None);
    }

    #[test]
    fn paged_pushes_carry_the_newest_events_that_fit() {
        // Events of different sizes: the budget counts each one's own.
        let history: Vec<Event> = (1..=10).map(|id| marker(id, 100 + id as usize)).collect();
        let encoded = EncodedEvents::encode(&history).unwrap();
        let size = |e: &Event| serde_json::to_vec(e).unwrap().len() + 1;
        let newest3: usize = history[7..].iter().map(size).sum();
        for (budget, want) in [
            (newest3, 8),
            (newest3 - 1, 9),
            (newest3 + size(&history[6]) - 1, 8),
        ] {
            let first = tail(&history, &encoded, None, Some(budget)).expect("partial");
            let bytes = encoded.range(first, 10);
            assert_eq!(
                (first, ids(bytes)),
                (want, (want..=10).collect::<Vec<_>>()),
                "budget {budget}"
            );
            assert!(
                bytes.len() < budget,
                "{} bytes within {budget}",
                bytes.len()
            );
        }
        // At least one event, whatever the budget.
        assert_eq!(tail(&history, &encoded, None, Some(1)), Some(10));
        let all: usize = history.iter().map(size).sum();
        assert_eq!(tail(&history, &encoded, None, Some(all)), None);
        assert_eq!(tail(&history, &encoded, None, None), None);
    }

    #[test]
    fn encodings_slice_like_encoding_the_slice_and_extend_like_encoding_more() {
        let history: Vec<Event> = (1..=9).map(|id| marker(id, id as usize * 7)).collect();
        let whole = EncodedEvents::encode(&history).unwrap();
        assert_eq!(whole.events(), 9);
        let mut plain = Vec::new();
        wire::encode_events(&history, &mut plain).unwrap();
        assert_eq!(whole.bytes(), plain.as_slice());
        for first in 1..=9 {
            for last in first..=9 {
                let mut want = Vec::new();
                wire::encode_events(&history[first as usize - 1..last as usize], &mut want)
                    .unwrap();
                assert_eq!(
                    whole.range(first, last),
                    want.as_slice(),
                    "{first}..={last}"
                );
            }
        }
        for split in 0..=9 {
            let mut grown = EncodedEvents::encode(&history[..split]).unwrap();
            grown.extend(&EncodedEvents::encode(&history[split..]).unwrap());
            assert_eq!(grown.bytes(), whole.bytes(), "split at {split}");
            assert_eq!(
                grown.range(split.max(1) as i64, 9),
                whole.range(split.max(1) as i64, 9)
            );
            assert_eq!(grown.newest_within(300), whole.newest_within(300));
        }
        assert_eq!(EncodedEvents::default().newest_within(10), 1);
    }

    #[test]
    fn the_table_forgets_on_take_and_on_another_version() {
        let table = StickyRuns::default();
        let run = RunId::generate();
        table.keep(run, 5, Some("v1".into()));
        assert_eq!(table.take(run, Some("v1")), Some(5));
        assert_eq!(table.take(run, Some("v1")), None);
        table.keep(run, 9, Some("v1".into()));
        assert_eq!(table.take(run, Some("v2")), None);
        assert_eq!(table.take(run, Some("v1")), None);
    }
}
