//! `decide`: the rules. Each input is validated against the current state,
//! then turned into events (folded in with [`RunState::evolve`]),
//! event-less bookkeeping and effects, all collected by a [`Builder`]
//! (the transition under construction, `builder.rs`).
//!
//! This file is the dispatch over [`Command`] and the checks every concern
//! shares; each concern's rules live in their own file, as `impl Builder`
//! blocks:
//! - `start`: creating a run, and the id reuse/conflict decision;
//! - `workflow_task`: scheduling, completing and failing workflow tasks,
//!   the task view pushed to the SDK, and the workflow commands' effects
//!   (checked whole first by `validate`);
//! - `activities`, `timers`, `signals`, `updates`, `cancellation`,
//!   `versions`: one concern each;
//! - `chains`: closing a run into the next one (continue-as-new, retries)
//!   and reset;
//! - `checkpoint`: the steps of a workflow task that runs activities
//!   inline (docs/protocol.md §5.9);
//! - `children`: child workflows and requests to other workflows.
//!
//! Everything here sits above the engine's types (`event`, `command`,
//! `effect`, `state`, …) and imports from them, never the other way round
//! (see `engine/mod.rs`).

mod activities;
mod builder;
mod cancellation;
mod chains;
mod checkpoint;
mod children;
mod signals;
mod start;
mod timers;
mod updates;
mod validate;
mod versions;
mod workflow_task;

pub use chains::{reset, terminate_for_reset};
pub use children::child_outcome;
pub use start::{start, start_decision, start_with_signal, StartDecision};
pub use workflow_task::{workflow_task_view, WorkflowTaskView};

use serde_json::Value;

use crate::engine::command::Command;
use crate::engine::state::RunState;
use crate::engine::{Ctx, Limits, Rejection, Transition};

use builder::Builder;

/// Applies one command to a run.
pub fn decide(state: &RunState, cmd: Command, ctx: &Ctx) -> Result<Transition, Rejection> {
    if state.status.is_closed() {
        return Err(Rejection::RunClosed(state.status));
    }
    let mut b = Builder::new(state, ctx);
    match cmd {
        Command::CompleteWorkflowTask {
            token,
            commands,
            identity,
            force_create_new_workflow_task,
            search_attributes,
        } => b.complete_workflow_task(
            token,
            commands,
            identity,
            force_create_new_workflow_task,
            &search_attributes,
        )?,
        Command::FailWorkflowTask {
            token,
            cause,
            failure,
        } => b.fail_workflow_task(token, cause, failure)?,
        Command::WorkflowTaskUndelivered {
            token,
            timed_out,
            error,
        } => b.workflow_task_undelivered(token, timed_out, error)?,
        Command::StartActivityAttempt { scheduled_event_id } => {
            b.start_scheduled_attempt(scheduled_event_id)?;
        }
        Command::ActivityAttemptSent { token } => b.activity_attempt_sent(token)?,
        Command::ActivityUndelivered { token, .. } => b.activity_undelivered(token)?,
        Command::CompleteActivity { token, result } => b.complete_activity(token, result)?,
        Command::FailActivity { token, failure } => b.fail_activity(token, failure)?,
        Command::ReportActivityCanceled { token, details } => {
            b.report_activity_canceled(token, details)?;
        }
        Command::RecordActivityHeartbeat { token, details } => {
            b.record_activity_heartbeat(token, details)?;
        }
        Command::FireTimer(task) => b.fire_timer(task)?,
        Command::TerminateWorkflow {
            reason,
            details,
            identity,
        } => b.terminate(reason, details, identity)?,
        Command::SignalWorkflow(signal) => b.signal_workflow(signal)?,
        Command::ChildStarted {
            initiated_event_id,
            run_id,
        } => b.child_started(initiated_event_id, run_id)?,
        Command::ChildStartFailed {
            initiated_event_id,
            cause,
        } => b.child_start_failed(initiated_event_id, cause)?,
        Command::ChildClosed {
            initiated_event_id,
            first_run_id,
            run_id,
            outcome,
        } => b.child_closed(initiated_event_id, first_run_id, run_id, outcome)?,
        Command::ExternalRequestDelivered { initiated_event_id } => {
            b.external_request_done(initiated_event_id, None)?;
        }
        Command::ExternalRequestFailed {
            initiated_event_id,
            cause,
        } => b.external_request_done(initiated_event_id, Some(cause))?,
        Command::Checkpoint(cp) => return checkpoint::checkpoint(state, *cp, ctx),
        Command::RequestCancelWorkflow {
            reason,
            request_id: _,
            identity,
        } => b.request_cancel(reason, identity),
        Command::PinVersion { version } => b.pin_version(version),
        Command::UpdateWorkflowExecutionOptions(m) => b.move_to_version(m)?,
        Command::AdmitUpdate(update) => b.admit_update(update)?,
    }
    Ok(b.finish())
}

fn invalid(msg: impl Into<String>) -> Rejection {
    Rejection::InvalidArgument(msg.into())
}

fn stale(msg: impl Into<String>) -> Rejection {
    Rejection::Stale(msg.into())
}

fn payload_size(v: &Value) -> u64 {
    serde_json::to_vec(v).map_or(0, |b| b.len() as u64)
}

fn check_payload(v: &Value, limits: &Limits) -> Result<(), Rejection> {
    let size = payload_size(v);
    if size > limits.max_payload_bytes {
        return Err(Rejection::PayloadTooLarge {
            size,
            limit: limits.max_payload_bytes,
        });
    }
    Ok(())
}
