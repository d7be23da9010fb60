//! The schedule rules, Temporal's scheduler as pure functions: a tick
//! takes the nominal times that came due since the last one (minus those
//! past the catch-up window, or while paused or out of actions) into the
//! buffer, then decides the buffer against the overlap policy and the
//! workflows still running: which to start, which to keep waiting, which
//! to skip, and which running workflows to cancel or terminate.

use crate::engine::RunStatus;
use crate::time::{Duration, Timestamp};

use super::spec::{invalid, Compiled, Invalid};
use super::{ActionResult, Buffered, Info, Overlap, Schedule};

/// Actions kept in [`Info::recent_actions`].
pub const RECENT_ACTIONS: usize = 10;
/// Starts kept waiting at most (BUFFER_ALL, backfills); more are dropped
/// and counted in [`Info::buffer_dropped`].
pub const MAX_BUFFER: usize = 1_000;
/// How often a schedule with waiting starts and running workflows looks
/// again whether the running ones closed.
pub const POLL: Duration = Duration(1_000);
/// Nominal times one tick handles at most; the rest wait for the next
/// tick (due at once), so a tick stays short after a long downtime.
const MAX_TIMES_PER_TICK: usize = 10_000;

/// A workflow the schedule started that has closed since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed {
    pub workflow_id: String,
    pub status: RunStatus,
}

/// A workflow to start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    /// The action's workflow id with the nominal time appended.
    pub workflow_id: String,
    pub nominal: Timestamp,
    /// The scheduled time, jitter included.
    pub actual: Timestamp,
    pub manual: bool,
}

/// What a tick decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    /// The schedule with its state changed (pause on failure, remaining
    /// actions).
    pub schedule: Schedule,
    pub info: Info,
    pub starts: Vec<Start>,
    /// Running workflows to request cancellation of.
    pub cancel: Vec<String>,
    pub terminate: Vec<String>,
    /// When to tick next; `None`: only when something changes the schedule.
    pub wake_at: Option<Timestamp>,
}

/// One backfill range: nominal times after `start` up to `end` inclusive
/// (Temporal's), whose jittered times fall in the range too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backfill {
    pub start: Timestamp,
    pub end: Timestamp,
    pub overlap: Option<Overlap>,
}

/// `workflow_id-2025-01-06T09:00:00Z`: the id of the run started for a
/// nominal time (whole seconds, UTC, as Temporal appends).
pub fn started_workflow_id(base: &str, nominal: Timestamp) -> String {
    let secs = u64::try_from(nominal.millis().div_euclid(1000)).unwrap_or(0);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    format!("{base}-{}", humantime::format_rfc3339_seconds(t))
}

/// Checks a schedule whole; the error names the field.
pub fn validate(schedule: &Schedule) -> Result<Compiled, Invalid> {
    let compiled = schedule.spec.compile()?;
    let action = &schedule.action.start_workflow;
    for (field, value) in [
        ("action.start_workflow.workflow_id", &action.workflow_id),
        ("action.start_workflow.workflow_type", &action.workflow_type),
        ("action.start_workflow.task_queue", &action.task_queue),
    ] {
        if value.is_empty() {
            return Err(invalid(field, "must not be empty"));
        }
    }
    if action.workflow_id.len() > 900 {
        return Err(invalid(
            "action.start_workflow.workflow_id",
            "must be at most 900 bytes (the nominal time is appended)",
        ));
    }
    for (field, d) in [
        (
            "action.start_workflow.workflow_execution_timeout",
            action.workflow_execution_timeout,
        ),
        (
            "action.start_workflow.workflow_run_timeout",
            action.workflow_run_timeout,
        ),
        (
            "action.start_workflow.workflow_task_timeout",
            action.workflow_task_timeout,
        ),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            return Err(invalid(field, "must be greater than zero"));
        }
    }
    if let Some(retry) = &action.retry_policy {
        retry
            .resolve()
            .map_err(|m| invalid("action.start_workflow.retry_policy", m))?;
    }
    if action.memo.as_ref().is_some_and(|m| !m.is_object()) {
        return Err(invalid(
            "action.start_workflow.memo",
            "must be a JSON object",
        ));
    }
    if schedule.state.remaining_actions < 0 {
        return Err(invalid("state.remaining_actions", "must not be negative"));
    }
    if schedule
        .policies
        .catchup_window
        .is_some_and(|w| w.millis() < 0)
    {
        return Err(invalid("policies.catchup_window", "must not be negative"));
    }
    Ok(compiled)
}

/// The info of a schedule created at `now`: its first action is the
/// spec's first time after `now`.
pub fn create(now: Timestamp) -> Info {
    Info {
        processed_until: now,
        create_time: now,
        ..Info::default()
    }
}

/// A new schedule (spec, action, policies, state) replaces the old one.
/// Times the new spec had before `now` are not caught up; counters,
/// waiting starts and running workflows are kept.
pub fn update(info: &Info, now: Timestamp) -> Info {
    let mut info = info.clone();
    info.processed_until = info.processed_until.max(now);
    info.update_time = Some(now);
    info
}

pub fn pause(schedule: &Schedule, note: &str) -> Schedule {
    let mut schedule = schedule.clone();
    schedule.state.paused = true;
    schedule.state.note = note.to_owned();
    schedule
}

/// Unpausing resumes with the spec's first time after `now`: the times
/// that passed while paused are not made up (no burst).
pub fn unpause(schedule: &Schedule, info: &Info, now: Timestamp, note: &str) -> (Schedule, Info) {
    let mut schedule = schedule.clone();
    schedule.state.paused = false;
    schedule.state.note = note.to_owned();
    let mut info = info.clone();
    info.processed_until = info.processed_until.max(now);
    (schedule, info)
}

/// Trigger now: one manual start with nominal and actual time `now`.
pub fn trigger(info: &Info, now: Timestamp, overlap: Option<Overlap>) -> Info {
    let mut info = info.clone();
    push(
        &mut info,
        Buffered {
            nominal: now,
            actual: now,
            overlap,
            manual: true,
        },
    );
    info
}

/// Takes the spec's times in each range into the buffer as manual starts
/// (not subject to pause, remaining actions or the catch-up window).
pub fn backfill(id: &str, compiled: &Compiled, info: &Info, ranges: &[Backfill]) -> Info {
    let mut info = info.clone();
    for range in ranges {
        let mut cursor = range.start;
        while let Some(nominal) = compiled.next_after(cursor) {
            let actual = compiled.actual(id, nominal);
            if nominal > range.end || actual > range.end {
                break;
            }
            push(
                &mut info,
                Buffered {
                    nominal,
                    actual,
                    overlap: range.overlap,
                    manual: true,
                },
            );
            cursor = nominal;
        }
    }
    info
}

fn push(info: &mut Info, start: Buffered) {
    if info.buffer.len() >= MAX_BUFFER {
        info.buffer_dropped += 1;
    } else {
        info.buffer.push(start);
    }
}

/// May a start be taken now? Manual ones always; scheduled ones unless
/// paused or out of remaining actions (`decrement`: and count it).
fn can_take(schedule: &mut Schedule, manual: bool, decrement: bool) -> bool {
    if manual {
        return true;
    }
    let state = &mut schedule.state;
    if state.paused {
        return false;
    }
    if !state.limited_actions {
        return true;
    }
    if state.remaining_actions > 0 {
        if decrement {
            state.remaining_actions -= 1;
        }
        return true;
    }
    false
}

/// One step of the schedule at `now`, given which of its running
/// workflows have closed since the last step.
pub fn tick(
    id: &str,
    schedule: &Schedule,
    compiled: &Compiled,
    info: &Info,
    now: Timestamp,
    closed: &[Closed],
) -> Tick {
    let mut schedule = schedule.clone();
    let mut info = info.clone();

    for c in closed {
        info.running.retain(|w| *w != c.workflow_id);
        let failed = matches!(c.status, RunStatus::Failed | RunStatus::TimedOut);
        if failed && schedule.policies.pause_on_failure && !schedule.state.paused {
            schedule.state.paused = true;
            schedule.state.note = format!(
                "paused because workflow {} {}",
                c.workflow_id,
                if c.status == RunStatus::Failed {
                    "failed"
                } else {
                    "timed out"
                }
            );
        }
    }

    // The times that came due.
    let window = schedule.policies.catchup_window();
    let mut more_due = false;
    for n in 0.. {
        let Some(nominal) = compiled.next_after(info.processed_until) else {
            break;
        };
        let actual = compiled.actual(id, nominal);
        if actual > now {
            break;
        }
        if n == MAX_TIMES_PER_TICK {
            more_due = true;
            break;
        }
        info.processed_until = nominal;
        if now.since(actual) > window {
            info.missed_catchup_window += 1;
            continue;
        }
        if can_take(&mut schedule, false, false) {
            push(
                &mut info,
                Buffered {
                    nominal,
                    actual,
                    overlap: None,
                    manual: false,
                },
            );
        }
    }

    // The buffer against the overlap policy.
    let was_running = info.running.clone();
    let mut running = !was_running.is_empty();
    let mut keep: Vec<Buffered> = Vec::new();
    let mut take: Vec<Buffered> = Vec::new();
    let (mut need_cancel, mut need_terminate) = (false, false);
    for start in std::mem::take(&mut info.buffer) {
        let policy = start.overlap.unwrap_or(schedule.policies.overlap_policy);
        if policy != Overlap::AllowAll && !running {
            take.push(start);
            running = true;
            continue;
        }
        match policy {
            Overlap::Skip => info.overlap_skipped += 1,
            Overlap::BufferOne => {
                if keep.is_empty() {
                    keep.push(start);
                } else {
                    info.overlap_skipped += 1;
                }
            }
            Overlap::BufferAll => keep.push(start),
            Overlap::CancelOther | Overlap::TerminateOther => {
                if policy == Overlap::CancelOther {
                    need_cancel = true;
                } else {
                    need_terminate = true;
                }
                info.overlap_skipped += i64::try_from(keep.len()).unwrap_or(0);
                keep = vec![start];
            }
            Overlap::AllowAll => take.push(start),
        }
    }
    info.buffer = keep;

    let mut starts = Vec::new();
    let base = schedule.action.start_workflow.workflow_id.clone();
    for start in take {
        if !can_take(&mut schedule, start.manual, true) {
            continue;
        }
        let workflow_id = started_workflow_id(&base, start.nominal);
        info.action_count += 1;
        info.recent_actions.push(ActionResult {
            schedule_time: start.actual,
            actual_time: now,
            workflow_id: workflow_id.clone(),
            run_id: None,
        });
        if !info.running.contains(&workflow_id) {
            info.running.push(workflow_id.clone());
        }
        starts.push(Start {
            workflow_id,
            nominal: start.nominal,
            actual: start.actual,
            manual: start.manual,
        });
    }
    let extra = info.recent_actions.len().saturating_sub(RECENT_ACTIONS);
    info.recent_actions.drain(..extra);

    let (cancel, terminate) = match (need_terminate, need_cancel) {
        (true, _) => (Vec::new(), was_running),
        (false, true) => (was_running, Vec::new()),
        (false, false) => (Vec::new(), Vec::new()),
    };

    let mut wake_at = None;
    let scheduled_possible = !schedule.state.paused
        && (!schedule.state.limited_actions || schedule.state.remaining_actions > 0);
    if more_due {
        wake_at = Some(now);
    } else if scheduled_possible {
        wake_at = compiled
            .next_after(info.processed_until)
            .map(|next| compiled.actual(id, next));
    }
    if !info.buffer.is_empty() {
        let poll = now.saturating_add(POLL);
        wake_at = Some(wake_at.map_or(poll, |w| w.min(poll)));
    }
    Tick {
        schedule,
        info,
        starts,
        cancel,
        terminate,
        wake_at,
    }
}
