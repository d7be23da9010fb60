//! Validation of a workflow task's response before anything is applied:
//! a response is taken whole or refused whole, with Temporal's
//! WorkflowTaskFailed cause for the first command that does not fit the
//! history (unknown or duplicate ids, commands after the one that closes
//! the workflow, bad attributes, payloads over the limit).
//!
//! No string outside a command's payloads may hold U+0000 (NUL), the rule
//! the REST API applies to requests: identifiers, names and task queues
//! become columns, task keys and look-up parameters, which PostgreSQL's
//! `text` cannot hold (the outcome would never commit there, and would on
//! SQLite). Payloads (inputs, results, details, memos, failures) are JSON
//! in the store, where a NUL stays escaped, so they are kept as sent.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::engine::command::WorkflowCommand;
use crate::engine::event::WorkflowTaskFailedCause;
use crate::engine::retry::RetryPolicySpec;
use crate::engine::search::{typed, Registry, SearchAttributeValue};
use crate::engine::state::RunState;
use crate::engine::Limits;
use crate::ids::ActivityId;

use super::activities::resolve_activity_timeouts;
use super::check_payload;
use super::children;

/// A command's custom search attributes, typed by the registry (`None`
/// for one removed).
pub(super) type TypedAttributes = BTreeMap<String, Option<SearchAttributeValue>>;

/// Checks a whole workflow task response before anything is applied: a
/// response is taken whole or refused whole. Returns each command's search
/// attributes, typed (`None` for a command that names none).
pub(super) fn validate_commands(
    state: &RunState,
    commands: &[WorkflowCommand],
    limits: &Limits,
    registry: &Registry,
) -> Result<Vec<Option<TypedAttributes>>, (WorkflowTaskFailedCause, String)> {
    let mut typed_all = Vec::with_capacity(commands.len());
    use WorkflowTaskFailedCause as C;
    let mut activity_ids: HashSet<&ActivityId> =
        state.activities.values().map(|a| &a.activity_id).collect();
    let mut timer_ids: HashSet<_> = state.timers.keys().collect();
    let mut completed_updates: HashSet<&str> = HashSet::new();
    let too_large = |v: &Value, what: &str| -> Result<(), (C, String)> {
        check_payload(v, limits).map_err(|e| (C::PayloadsTooLarge, format!("{what}: {e}")))
    };
    for (idx, cmd) in commands.iter().enumerate() {
        if let Some(field) = nul_field(cmd) {
            return Err((
                attributes_cause(cmd),
                format!(
                    "command {idx}: {field} contains U+0000 (NUL), which is accepted only inside payloads"
                ),
            ));
        }
        let given = match cmd {
            WorkflowCommand::UpsertWorkflowSearchAttributes(u) => Some(&u.search_attributes),
            WorkflowCommand::StartChildWorkflowExecution(c) => c.search_attributes.as_ref(),
            WorkflowCommand::ContinueAsNewWorkflowExecution(c) => c.search_attributes.as_ref(),
            _ => None,
        };
        typed_all.push(
            given
                .map(|g| typed(registry, g))
                .transpose()
                .map_err(|m| (C::BadSearchAttributes, format!("command {idx}: {m}")))?,
        );
        if cmd.closes_workflow() {
            let cause = attributes_cause(cmd);
            if idx + 1 != commands.len() {
                return Err((
                    cause,
                    format!("command {idx} closes the workflow but is not the last command"),
                ));
            }
            if !state.buffered.is_empty() {
                return Err((
                    C::UnhandledCommand,
                    "new events arrived while the workflow task was in flight; the workflow must see them before it closes".into(),
                ));
            }
        }
        match cmd {
            WorkflowCommand::ScheduleActivityTask(a) => {
                let bad = |m: String| (C::BadScheduleActivityAttributes, m);
                if a.activity_id.as_str().is_empty() {
                    return Err(bad("activity_id must not be empty".into()));
                }
                if a.activity_type.is_empty() {
                    return Err(bad("activity_type must not be empty".into()));
                }
                if a.task_queue.as_ref().is_some_and(|q| q.as_str().is_empty()) {
                    return Err(bad("task_queue must not be empty".into()));
                }
                if !activity_ids.insert(&a.activity_id) {
                    return Err((
                        C::ScheduleActivityDuplicateId,
                        format!("activity id {:?} is already in use", a.activity_id.as_str()),
                    ));
                }
                resolve_activity_timeouts(a).map_err(bad)?;
                if let Some(p) = &a.retry_policy {
                    p.resolve().map_err(bad)?;
                }
                too_large(&a.input, "activity input")?;
            }
            WorkflowCommand::RequestCancelActivityTask(a) => {
                if !activity_ids.contains(&a.activity_id) {
                    return Err((
                        C::BadRequestCancelActivityAttributes,
                        format!("no open activity with id {:?}", a.activity_id.as_str()),
                    ));
                }
            }
            WorkflowCommand::StartTimer(t) => {
                if t.timer_id.as_str().is_empty() {
                    return Err((
                        C::BadStartTimerAttributes,
                        "timer_id must not be empty".into(),
                    ));
                }
                if t.start_to_fire_timeout.is_zero() {
                    return Err((
                        C::BadStartTimerAttributes,
                        "start_to_fire_timeout must be greater than zero".into(),
                    ));
                }
                if state.timers.get(&t.timer_id).is_some_and(|t| t.fired) {
                    // Its TimerFired is buffered: the workflow must see it
                    // before the id can be reused (after a CancelTimer that
                    // is a no-op), or the flush would close the new timer.
                    return Err((
                        C::UnhandledCommand,
                        format!(
                            "timer {:?} fired while the workflow task was in flight; the workflow must see that first",
                            t.timer_id.as_str()
                        ),
                    ));
                }
                if !timer_ids.insert(&t.timer_id) {
                    return Err((
                        C::StartTimerDuplicateId,
                        format!("timer id {:?} is already in use", t.timer_id.as_str()),
                    ));
                }
            }
            WorkflowCommand::CancelTimer(t) => {
                if !timer_ids.remove(&t.timer_id) {
                    return Err((
                        C::BadCancelTimerAttributes,
                        format!("no open timer with id {:?}", t.timer_id.as_str()),
                    ));
                }
            }
            WorkflowCommand::RecordMarker(m) => {
                if m.marker_name.is_empty() {
                    return Err((
                        C::BadRecordMarkerAttributes,
                        "marker_name must not be empty".into(),
                    ));
                }
                too_large(&m.details, "marker details")?;
            }
            WorkflowCommand::CompleteWorkflowExecution(c) => {
                too_large(&c.result, "workflow result")?;
            }
            WorkflowCommand::FailWorkflowExecution(f) => {
                if let Some(d) = &f.failure.details {
                    too_large(d, "failure details")?;
                }
            }
            WorkflowCommand::CancelWorkflowExecution(c) => {
                if let Some(d) = &c.details {
                    too_large(d, "cancel details")?;
                }
            }
            WorkflowCommand::CompleteWorkflowUpdate(u) => {
                let bad = |m: &str| {
                    (
                        C::BadUpdateWorkflowExecutionMessage,
                        format!("update {:?} {m}", u.update_id),
                    )
                };
                let update = state
                    .updates
                    .get(&u.update_id)
                    .ok_or_else(|| bad("is unknown"))?;
                if update.admitted_event_id.is_none() {
                    return Err(bad("was admitted while the workflow task was in flight; the workflow has not seen it"));
                }
                if update.completed_event_id.is_some() || !completed_updates.insert(&u.update_id) {
                    return Err(bad("is already completed"));
                }
                too_large(&u.result, "update result")?;
                if let Some(d) = u.failure.as_ref().and_then(|f| f.details.as_ref()) {
                    too_large(d, "update failure details")?;
                }
            }
            WorkflowCommand::StartChildWorkflowExecution(c) => {
                children::validate_start_child(c)
                    .map_err(|m| (C::BadStartChildExecutionAttributes, m))?;
                too_large(&c.input, "child workflow input")?;
                if let Some(memo) = &c.memo {
                    too_large(memo, "child workflow memo")?;
                }
            }
            WorkflowCommand::SignalExternalWorkflowExecution(c) => {
                children::validate_signal_external(c)
                    .map_err(|m| (C::BadSignalWorkflowExecutionAttributes, m))?;
                too_large(&c.input, "signal input")?;
            }
            WorkflowCommand::RequestCancelExternalWorkflowExecution(c) => {
                children::validate_cancel_external(c)
                    .map_err(|m| (C::BadRequestCancelExternalWorkflowExecutionAttributes, m))?;
            }
            WorkflowCommand::ContinueAsNewWorkflowExecution(c) => {
                let bad = |m: &str| (C::BadContinueAsNewAttributes, m.to_owned());
                if c.workflow_type.as_ref().is_some_and(String::is_empty) {
                    return Err(bad("workflow_type must not be empty"));
                }
                if c.task_queue.as_ref().is_some_and(|q| q.as_str().is_empty()) {
                    return Err(bad("task_queue must not be empty"));
                }
                if [c.workflow_run_timeout, c.workflow_task_timeout]
                    .iter()
                    .any(|d| d.is_some_and(|d| d.is_zero()))
                {
                    return Err(bad("timeouts must be greater than zero"));
                }
                if c.memo.as_ref().is_some_and(|m| !m.is_object()) {
                    return Err(bad("memo must be a JSON object"));
                }
                if let Some(p) = &c.retry_policy {
                    p.resolve().map_err(|m| bad(&m))?;
                }
                too_large(&c.input, "continue-as-new input")?;
                if let Some(m) = &c.memo {
                    too_large(m, "memo")?;
                }
            }
            WorkflowCommand::UpsertWorkflowSearchAttributes(u) => {
                if u.search_attributes.is_empty() {
                    return Err((
                        C::BadSearchAttributes,
                        format!("command {idx}: search_attributes must name an attribute"),
                    ));
                }
            }
        }
    }
    Ok(typed_all)
}

/// The Temporal cause for bad attributes of `cmd`.
fn attributes_cause(cmd: &WorkflowCommand) -> WorkflowTaskFailedCause {
    use WorkflowTaskFailedCause as C;
    match cmd {
        WorkflowCommand::ScheduleActivityTask(_) => C::BadScheduleActivityAttributes,
        WorkflowCommand::RequestCancelActivityTask(_) => C::BadRequestCancelActivityAttributes,
        WorkflowCommand::StartTimer(_) => C::BadStartTimerAttributes,
        WorkflowCommand::CancelTimer(_) => C::BadCancelTimerAttributes,
        WorkflowCommand::RecordMarker(_) => C::BadRecordMarkerAttributes,
        WorkflowCommand::CompleteWorkflowExecution(_) => C::BadCompleteWorkflowExecutionAttributes,
        WorkflowCommand::FailWorkflowExecution(_) => C::BadFailWorkflowExecutionAttributes,
        WorkflowCommand::CancelWorkflowExecution(_) => C::BadCancelWorkflowExecutionAttributes,
        WorkflowCommand::CompleteWorkflowUpdate(_) => C::BadUpdateWorkflowExecutionMessage,
        WorkflowCommand::ContinueAsNewWorkflowExecution(_) => C::BadContinueAsNewAttributes,
        WorkflowCommand::StartChildWorkflowExecution(_) => C::BadStartChildExecutionAttributes,
        WorkflowCommand::SignalExternalWorkflowExecution(_) => {
            C::BadSignalWorkflowExecutionAttributes
        }
        WorkflowCommand::RequestCancelExternalWorkflowExecution(_) => {
            C::BadRequestCancelExternalWorkflowExecutionAttributes
        }
        WorkflowCommand::UpsertWorkflowSearchAttributes(_) => C::BadSearchAttributes,
    }
}

/// The first attribute of `cmd` outside its payloads that holds a NUL.
fn nul_field(cmd: &WorkflowCommand) -> Option<&'static str> {
    let nul = |s: &str| s.contains('\u{0}');
    let opt = |s: Option<&str>| s.is_some_and(nul);
    let policy = |p: &Option<RetryPolicySpec>| {
        p.as_ref()
            .is_some_and(|p| p.non_retryable_error_types.iter().any(|t| nul(t)))
    };
    let fields: &[(&'static str, bool)] = match cmd {
        WorkflowCommand::ScheduleActivityTask(a) => &[
            ("activity_id", nul(a.activity_id.as_str())),
            ("activity_type", nul(&a.activity_type)),
            ("task_queue", opt(a.task_queue.as_ref().map(|q| q.as_str()))),
            (
                "retry_policy.non_retryable_error_types",
                policy(&a.retry_policy),
            ),
        ],
        WorkflowCommand::RequestCancelActivityTask(a) => {
            &[("activity_id", nul(a.activity_id.as_str()))]
        }
        WorkflowCommand::StartTimer(t) => &[("timer_id", nul(t.timer_id.as_str()))],
        WorkflowCommand::CancelTimer(t) => &[("timer_id", nul(t.timer_id.as_str()))],
        WorkflowCommand::RecordMarker(m) => &[("marker_name", nul(&m.marker_name))],
        WorkflowCommand::CompleteWorkflowUpdate(u) => &[("update_id", nul(&u.update_id))],
        WorkflowCommand::ContinueAsNewWorkflowExecution(c) => &[
            ("workflow_type", opt(c.workflow_type.as_deref())),
            ("task_queue", opt(c.task_queue.as_ref().map(|q| q.as_str()))),
            (
                "retry_policy.non_retryable_error_types",
                policy(&c.retry_policy),
            ),
        ],
        WorkflowCommand::StartChildWorkflowExecution(c) => &[
            ("workflow_id", nul(c.workflow_id.as_str())),
            ("workflow_type", nul(&c.workflow_type)),
            ("task_queue", opt(c.task_queue.as_ref().map(|q| q.as_str()))),
            (
                "retry_policy.non_retryable_error_types",
                policy(&c.retry_policy),
            ),
        ],
        WorkflowCommand::SignalExternalWorkflowExecution(c) => &[
            ("workflow_id", nul(c.workflow_id.as_str())),
            ("signal_name", nul(&c.signal_name)),
        ],
        WorkflowCommand::RequestCancelExternalWorkflowExecution(c) => &[
            ("workflow_id", nul(c.workflow_id.as_str())),
            ("reason", nul(&c.reason)),
        ],
        // Only payloads: the result, the failure, the details.
        WorkflowCommand::CompleteWorkflowExecution(_)
        | WorkflowCommand::FailWorkflowExecution(_)
        | WorkflowCommand::CancelWorkflowExecution(_) => &[],
        // Typing the values refuses a NUL in a name or a string value.
        WorkflowCommand::UpsertWorkflowSearchAttributes(_) => &[],
    };
    fields.iter().find(|(_, has)| *has).map(|(field, _)| *field)
}
