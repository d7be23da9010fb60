//! Schedules, pure (Temporal's schedules): what a schedule is ([`Schedule`]:
//! spec, action, policies, state), what it has done ([`Info`]), and the
//! rules, as functions of (schedule, info, now, closed workflows) that
//! return the actions to take and the new info ([`tick`], [`trigger`],
//! [`backfill`], [`pause`], [`unpause`], [`update`]). No IO, no clock, no
//! randomness: jitter is a hash of the schedule id and the nominal time, so
//! every node computes the same. `scheduler` is the edge that stores,
//! claims and fires schedules; `api` and `cli` speak its wire shapes.

mod rules;
mod spec;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::RetryPolicySpec;
use crate::ids::RunId;
use crate::time::{Duration, Timestamp};

pub use rules::{
    backfill, create, pause, started_workflow_id, tick, trigger, unpause, update, validate,
    Backfill, Closed, Start, Tick,
};
pub use spec::{CalendarSpec, Compiled, IntervalSpec, Invalid, Range, Spec};

/// What to do when an action is due while an earlier one still runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Overlap {
    /// Don't start it.
    #[default]
    Skip,
    /// Start it when the running one closes; at most one waits.
    BufferOne,
    /// Start each in turn as the previous one closes.
    BufferAll,
    /// Request cancellation of the running one, then start.
    CancelOther,
    /// Terminate the running one, then start.
    TerminateOther,
    /// Start it anyway.
    AllowAll,
}

impl Overlap {
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "SKIP",
            Overlap::BufferOne => "BUFFER_ONE",
            Overlap::BufferAll => "BUFFER_ALL",
            Overlap::CancelOther => "CANCEL_OTHER",
            Overlap::TerminateOther => "TERMINATE_OTHER",
            Overlap::AllowAll => "ALLOW_ALL",
        }
    }

    /// Case-insensitive, with or without Temporal's
    /// `SCHEDULE_OVERLAP_POLICY_` prefix.
    pub fn parse(s: &str) -> Option<Overlap> {
        let upper = s.to_ascii_uppercase().replace('-', "_");
        let name = upper
            .strip_prefix("SCHEDULE_OVERLAP_POLICY_")
            .unwrap_or(&upper);
        [
            Overlap::Skip,
            Overlap::BufferOne,
            Overlap::BufferAll,
            Overlap::CancelOther,
            Overlap::TerminateOther,
            Overlap::AllowAll,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
    }
}

/// Temporal's `SchedulePolicies`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    #[serde(default)]
    pub overlap_policy: Overlap,
    /// How late an action may still be taken after the server could not
    /// take it in time (downtime); default one year, at least 10 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catchup_window: Option<Duration>,
    /// Pause when a started workflow fails or times out.
    #[serde(default)]
    pub pause_on_failure: bool,
}

/// The default catch-up window (Temporal's: one year).
pub const DEFAULT_CATCHUP_WINDOW: Duration = Duration(365 * 86_400_000);
/// The smallest catch-up window; smaller ones are raised to it.
pub const MIN_CATCHUP_WINDOW: Duration = Duration(10_000);

impl Policies {
    pub fn catchup_window(&self) -> Duration {
        self.catchup_window
            .unwrap_or(DEFAULT_CATCHUP_WINDOW)
            .max(MIN_CATCHUP_WINDOW)
    }
}

/// Temporal's `ScheduleState`: paused with a note, limited actions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub note: String,
    /// When true, scheduled actions stop once `remaining_actions` reaches
    /// zero (triggers and backfills still run).
    #[serde(default)]
    pub limited_actions: bool,
    #[serde(default)]
    pub remaining_actions: i64,
}

/// The workflow a schedule starts. The started run's workflow id is
/// `workflow_id` + `-` + the nominal time (RFC 3339), as Temporal's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartWorkflowAction {
    pub workflow_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_execution_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_run_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_task_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicySpec>,
}

/// Temporal's `ScheduleAction` (one kind so far).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub start_workflow: StartWorkflowAction,
}

/// A schedule as its owner writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub spec: Spec,
    pub action: Action,
    #[serde(default)]
    pub policies: Policies,
    #[serde(default)]
    pub state: State,
}

/// An action waiting for its turn (Temporal's buffered start).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buffered {
    pub nominal: Timestamp,
    pub actual: Timestamp,
    /// Overrides the schedule's policy (trigger, backfill); `None` takes
    /// the policy in force when the start is decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<Overlap>,
    /// A trigger or backfill: not subject to pause or remaining actions.
    #[serde(default)]
    pub manual: bool,
}

/// One action taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    /// When the schedule meant it to run, jitter included.
    pub schedule_time: Timestamp,
    /// When it was started.
    pub actual_time: Timestamp,
    pub workflow_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
}

/// What a schedule has done and has still to do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// Every nominal time up to here has been handled (taken, skipped or
    /// missed); the next one is the spec's first after it.
    pub processed_until: Timestamp,
    #[serde(default)]
    pub buffer: Vec<Buffered>,
    /// Workflow ids this schedule started that were open when last seen.
    #[serde(default)]
    pub running: Vec<String>,
    #[serde(default)]
    pub action_count: i64,
    #[serde(default)]
    pub missed_catchup_window: i64,
    #[serde(default)]
    pub overlap_skipped: i64,
    #[serde(default)]
    pub buffer_dropped: i64,
    /// The last [`RECENT_ACTIONS`], oldest first.
    #[serde(default)]
    pub recent_actions: Vec<ActionResult>,
    pub create_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<Timestamp>,
}
