//! Checkpoints (docs/protocol.md §5.9): a handler that runs activities
//! inline commits each step of its workflow task in one transition.
//!
//! The first checkpoint of a session answers the pushed workflow task
//! with commands, as a push answer would, and starts the attempts it
//! names `inline` without pushing them. A continuation reports inline
//! attempts exactly as the REST completion routes would (each fenced by
//! its own token) and, when nothing else happened to the run since the
//! previous checkpoint, appends a speculative workflow task answered with
//! the new commands, all at the handler's `workflow_time`. Otherwise the
//! completions stand alone and the workflow goes on in a pushed task.

use crate::engine::command::{
    Checkpoint, CheckpointFrom, InlineOutcome, ScheduleActivityTask, WorkflowCommand,
};
use crate::engine::event::{EventAttributes, WorkflowTaskScheduled};
use crate::engine::state::RunState;
use crate::engine::token::{ActivityToken, ContinuationToken, WorkflowTaskToken};
use crate::engine::{CheckpointReport, Ctx, Rejection, Transition};
use crate::time::Timestamp;

use super::builder::Builder;
use super::invalid;
use super::workflow_task::view;

/// `Command::Checkpoint`.
pub(super) fn checkpoint(
    state: &RunState,
    cp: Checkpoint,
    ctx: &Ctx,
) -> Result<Transition, Rejection> {
    check_inline(state, &cp)?;
    match cp.from {
        CheckpointFrom::WorkflowTask(token) => first(state, cp, token, ctx),
        CheckpointFrom::Continuation(token) => Ok(continuation(state, cp, token, ctx)),
    }
}

/// Every `inline` id names a ScheduleActivityTask of `commands` on the
/// run's own task queue, once.
fn check_inline(state: &RunState, cp: &Checkpoint) -> Result<(), Rejection> {
    let commands = cp.commands.as_deref().unwrap_or_default();
    for (i, id) in cp.inline.iter().enumerate() {
        if cp.inline[..i].contains(id) {
            return Err(invalid(format!("inline names activity {id} twice")));
        }
        let Some(a) = commands.iter().find_map(|c| match c {
            WorkflowCommand::ScheduleActivityTask(a) if a.activity_id == *id => Some(a),
            _ => None,
        }) else {
            return Err(invalid(format!(
                "inline names activity {id}, which no ScheduleActivityTask of commands schedules"
            )));
        };
        if !on_run_queue(state, a) {
            return Err(invalid(format!(
                "inline names activity {id}, which is scheduled on another task queue than the run's"
            )));
        }
    }
    Ok(())
}

fn on_run_queue(state: &RunState, a: &ScheduleActivityTask) -> bool {
    a.task_queue.as_ref().is_none_or(|q| *q == state.task_queue)
}

/// The first checkpoint: the pushed task's answer.
fn first(
    state: &RunState,
    cp: Checkpoint,
    token: WorkflowTaskToken,
    ctx: &Ctx,
) -> Result<Transition, Rejection> {
    if !cp.completions.is_empty() {
        return Err(invalid(
            "the first checkpoint of a session carries no completions",
        ));
    }
    let Some(commands) = cp.commands else {
        return Err(invalid(
            "the first checkpoint of a session carries commands",
        ));
    };
    let mut b = Builder::new(state, ctx);
    b.inline = cp.inline;
    b.complete_workflow_task(token, commands, cp.identity, false, &cp.search_attributes)?;
    Ok(report(b, Completed::default()))
}

/// A later checkpoint: completions, then the speculative task if the
/// session may go on.
fn continuation(
    state: &RunState,
    cp: Checkpoint,
    token: ContinuationToken,
    ctx: &Ctx,
) -> Transition {
    let current = token.last_event_id == state.next_event_id - 1
        && state.workflow_task.is_none()
        && state.buffered.is_empty();
    let time = cp
        .workflow_time
        .filter(|t| *t >= token.last_event_time && *t <= ctx.now);
    if let (true, Some(time), Some(_)) = (current, time, &cp.commands) {
        if let Some(t) = speculative(state, &cp, time, ctx) {
            return t;
        }
    }
    let mut b = Builder::new(state, ctx);
    let done = complete_all(&mut b, &cp.completions);
    let mut t = b.finish();
    t.checkpoint = Some(Box::new(CheckpointReport {
        accepted: done.accepted,
        attempts: done.attempts,
        ..CheckpointReport::default()
    }));
    t
}

/// Whether the task this session answered last was already told to
/// continue as new by its event count (its WorkflowTaskStarted comes just
/// before its WorkflowTaskCompleted, and counts only grow): the code that
/// made the checkpoint's commands knew, so a speculative task past the
/// limit hides nothing from it. A suggestion by size alone is not known
/// here, and is delivered in a pushed task.
fn told(state: &RunState, ctx: &Ctx) -> bool {
    let started = state.last_workflow_task_completed_event_id - 1;
    started >= ctx.limits.suggest_continue_as_new_events
}

/// The completions, then a workflow task started at `time` and answered
/// with the checkpoint's commands; `None` if a completion was refused or
/// left its activity open (a failed attempt that will be retried: the
/// workflow did not see it), or the history newly asks for continue-as-new.
fn speculative(
    state: &RunState,
    cp: &Checkpoint,
    time: Timestamp,
    ctx: &Ctx,
) -> Option<Transition> {
    let at = Ctx {
        now: time,
        ..ctx.clone()
    };
    let mut b = Builder::new(state, &at);
    b.hold_workflow_task = true;
    let done = complete_all(&mut b, &cp.completions);
    let closed = cp
        .completions
        .iter()
        .all(|(t, _)| !b.state.activities.contains_key(&t.scheduled_event_id));
    if !closed || done.accepted.contains(&false) {
        return None;
    }
    b.hold_workflow_task = false;
    b.append(EventAttributes::WorkflowTaskScheduled(
        WorkflowTaskScheduled {
            task_queue: state.task_queue.clone(),
            start_to_close_timeout: state.workflow_task_timeout,
            attempt: 1,
        },
    ));
    let task = b.state.workflow_task.clone()?;
    if view(&b.state, &task, time, &ctx.limits).suggest_continue_as_new && !told(state, ctx) {
        return None;
    }
    let token = WorkflowTaskToken {
        seq: task.seq,
        attempt: task.attempt,
        started_at: time,
    };
    b.inline = cp.inline.clone();
    let commands = cp.commands.clone().unwrap_or_default();
    b.complete_workflow_task(
        token,
        commands,
        cp.identity.clone(),
        false,
        &cp.search_attributes,
    )
    .ok()?;
    Some(report(b, done))
}

/// What [`complete_all`] did with a checkpoint's completions.
#[derive(Default)]
struct Completed {
    /// Per completion: applied.
    accepted: Vec<bool>,
    /// Per applied completion: activity type, attempt, outcome label.
    attempts: Vec<(String, u32, &'static str)>,
}

/// Applies each completion as the REST routes would.
fn complete_all(b: &mut Builder<'_>, completions: &[(ActivityToken, InlineOutcome)]) -> Completed {
    let mut done = Completed::default();
    for (token, outcome) in completions {
        let activity_type = b
            .state
            .activities
            .get(&token.scheduled_event_id)
            .map(|a| a.activity_type.clone());
        let (applied, label) = match outcome.clone() {
            InlineOutcome::Completed(result) => (b.complete_activity(*token, result), "completed"),
            InlineOutcome::Failed(failure) => (b.fail_activity(*token, failure), "failed"),
            InlineOutcome::Canceled(details) => {
                (b.report_activity_canceled(*token, details), "canceled")
            }
        };
        done.accepted.push(applied.is_ok());
        if let (Ok(_), Some(activity_type)) = (applied, activity_type) {
            done.attempts.push((activity_type, token.attempt, label));
        }
    }
    done
}

/// The transition of a checkpoint whose commands were decided, with its
/// report: continued if they were applied as the task's answer.
fn report(b: Builder<'_>, done: Completed) -> Transition {
    let workflow_task_failed = b.workflow_task_failed.clone();
    let mut t = b.finish();
    let continued = workflow_task_failed.is_none();
    let inline_attempts = if t.state.status.is_closed() {
        Vec::new()
    } else {
        t.events
            .iter()
            .filter_map(|e| match &e.attributes {
                EventAttributes::ActivityTaskScheduled(a) if a.inline => {
                    Some((a.activity_id.clone(), e.event_id))
                }
                _ => None,
            })
            .collect()
    };
    t.checkpoint = Some(Box::new(CheckpointReport {
        accepted: done.accepted,
        attempts: done.attempts,
        continued,
        inline_attempts,
        workflow_task_failed,
        events: if continued {
            t.events.clone()
        } else {
            Vec::new()
        },
    }));
    t
}
