//! Partial pushes (docs/protocol.md §5.10): which events a push carries
//! when not the whole history, and this node's table of the runs whose
//! handler said it keeps their workflow instance (`sticky`).
//!
//! The choice is a pure function of the history; the table is memory only:
//! a restarted node, or another node, sends the whole history, which every
//! handler can take.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::engine::{Event, EventAttributes};
use crate::ids::RunId;

use super::wire;

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

/// The newest events of `history` a partial push carries, encoded, and the
/// id of the first: the events after the handler's instance (`sticky`, the
/// WorkflowTaskStarted it ends at, if the task it answered was recorded as
/// completed), else, with a `budget` in bytes, the newest that fit in it
/// (at least one). `None`: the push carries the whole history.
pub fn tail(
    history: &[Event],
    sticky: Option<i64>,
    budget: Option<usize>,
) -> serde_json::Result<Option<(i64, Vec<u8>)>> {
    if let Some(through) = sticky.filter(|t| completed_after(history, *t)) {
        let mut out = Vec::new();
        wire::encode_events(&history[through as usize..], &mut out)?;
        return Ok(Some((through + 1, out)));
    }
    let Some(budget) = budget else {
        return Ok(None);
    };
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut size = 0;
    for event in history.iter().rev() {
        let encoded = serde_json::to_vec(event)?;
        if !parts.is_empty() && size + encoded.len() + 1 > budget {
            break;
        }
        size += encoded.len() + 1;
        parts.push(encoded);
    }
    if parts.len() == history.len() {
        return Ok(None);
    }
    let first = history[history.len() - parts.len()].event_id;
    let mut out = Vec::with_capacity(size);
    for part in parts.iter().rev() {
        if !out.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(part);
    }
    Ok(Some((first, out)))
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
        let (first, bytes) = tail(&history, Some(2), None).unwrap().expect("partial");
        assert_eq!((first, ids(&bytes)), (3, vec![3, 4]));
        // The answer was refused or the task failed: no WorkflowTaskCompleted
        // of that task follows, so the whole history goes.
        assert_eq!(tail(&history, Some(1), None).unwrap(), None);
        assert_eq!(tail(&history, Some(4), None).unwrap(), None);
        assert_eq!(tail(&history, Some(-1), None).unwrap(), None);
    }

    #[test]
    fn paged_pushes_carry_the_newest_events_that_fit() {
        let history: Vec<Event> = (1..=10).map(|id| marker(id, 100)).collect();
        let one = serde_json::to_vec(&history[0]).unwrap().len() + 1;
        let (first, bytes) = tail(&history, None, Some(3 * one + 5))
            .unwrap()
            .expect("partial");
        assert_eq!((first, ids(&bytes)), (8, vec![8, 9, 10]));
        // At least one event, whatever the budget.
        let (first, _) = tail(&history, None, Some(1)).unwrap().expect("partial");
        assert_eq!(first, 10);
        assert_eq!(tail(&history, None, Some(100 * one)).unwrap(), None);
        assert_eq!(tail(&history, None, None).unwrap(), None);
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
