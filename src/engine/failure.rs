//! Failures as data, shaped like Temporal's `Failure`: a message, an error
//! type that retry policies match on, a non-retryable flag, details and a
//! cause chain, plus the failure's kind (Temporal's `failure_info` oneof)
//! and, for activity and child workflow failures, their info. The server
//! keeps what SDKs send as is; a failure without `kind` (every failure
//! recorded before kinds existed) is an application failure.
//!
//! On the wire an optional member is present or absent, never `null`
//! (`details`, a payload, excepted): Baton never writes one, the SDKs omit
//! them, and openapi/openapi.yaml's `Failure` allows none, so a `null`
//! there is refused like any other wrongly typed value.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Failure {
    pub message: String,
    /// The application error type (`ApplicationError(type=...)`), matched
    /// against `RetryPolicy::non_retryable_error_types`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub error_type: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub non_retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// Set on failures the server makes for timeouts.
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout_type: Option<TimeoutType>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub cause: Option<Box<Failure>>,
    /// Which of Temporal's failure kinds this is; absent means application.
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<FailureKind>,
    /// The members the server only keeps, boxed so that a `Failure` stays
    /// small in the many enums that carry one.
    #[serde(flatten)]
    pub extra: Box<FailureExtra>,
}

/// A failure's stack trace and kind-specific info, on the wire as members
/// of the failure itself.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct FailureExtra {
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub stack_trace: Option<String>,
    /// With `kind: ACTIVITY`: which activity failed and why retrying stopped.
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub activity_failure_info: Option<ActivityFailureInfo>,
    /// With `kind: CHILD_WORKFLOW_EXECUTION`: which child run closed and why
    /// retrying stopped.
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub child_workflow_execution_failure_info: Option<ChildWorkflowExecutionFailureInfo>,
}

/// The kinds of Temporal's `Failure.failure_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureKind {
    Application,
    Timeout,
    Canceled,
    Terminated,
    Server,
    Activity,
    ChildWorkflowExecution,
}

/// Temporal's `ActivityFailureInfo` (the activity type as a plain string).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct ActivityFailureInfo {
    pub activity_type: String,
    pub activity_id: String,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub scheduled_event_id: Option<i64>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_event_id: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity: String,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_state: Option<RetryState>,
}

/// Temporal's `ChildWorkflowExecutionFailureInfo` (the execution and the
/// type flattened to strings).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct ChildWorkflowExecutionFailureInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub workflow_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    pub workflow_type: String,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub initiated_event_id: Option<i64>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_event_id: Option<i64>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_state: Option<RetryState>,
}

/// For `#[serde(default, deserialize_with = "not_null")]` on an optional
/// member: absent is `None`, `null` is refused as the wrong type.
fn not_null<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl Failure {
    pub fn new(message: impl Into<String>, error_type: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            error_type: error_type.into(),
            ..Failure::default()
        }
    }

    pub fn timeout(timeout_type: TimeoutType, last: Option<Failure>) -> Failure {
        Failure {
            message: format!("activity {} timeout", timeout_type.describe()),
            error_type: "TimeoutError".to_owned(),
            timeout_type: Some(timeout_type),
            kind: Some(FailureKind::Timeout),
            cause: last.map(Box::new),
            ..Failure::default()
        }
    }
}

/// Which timeout fired. Values match Temporal's `TimeoutType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimeoutType {
    StartToClose,
    ScheduleToStart,
    ScheduleToClose,
    Heartbeat,
}

impl TimeoutType {
    pub fn describe(self) -> &'static str {
        match self {
            TimeoutType::StartToClose => "start-to-close",
            TimeoutType::ScheduleToStart => "schedule-to-start",
            TimeoutType::ScheduleToClose => "schedule-to-close",
            TimeoutType::Heartbeat => "heartbeat",
        }
    }
}

/// Why retrying stopped. Values match Temporal's `RetryState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RetryState {
    /// The run failed or timed out and its retry policy started the next
    /// attempt (`new_execution_run_id`).
    InProgress,
    /// Retries were never in play (e.g. a workflow failed by its own code).
    RetryPolicyNotSet,
    MaximumAttemptsReached,
    NonRetryableFailure,
    Timeout,
    CancelRequested,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_infos_round_trip_and_old_failures_decode_as_application() {
        let wire = serde_json::json!({
            "message": "Activity task failed",
            "kind": "ACTIVITY",
            "activity_failure_info": {
                "activity_type": "charge", "activity_id": "1",
                "scheduled_event_id": 5, "started_event_id": 6,
                "retry_state": "MAXIMUM_ATTEMPTS_REACHED"
            },
            "cause": {"message": "declined", "type": "CardDeclined", "kind": "APPLICATION",
                      "cause": {"message": "child", "kind": "CHILD_WORKFLOW_EXECUTION",
                                "child_workflow_execution_failure_info": {
                                    "workflow_id": "c", "workflow_type": "C", "run_id": "r"},
                                "cause": {"message": "gone", "kind": "TERMINATED"}}}
        });
        let f: Failure = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(f.kind, Some(FailureKind::Activity));
        assert_eq!(
            f.extra.activity_failure_info.as_ref().unwrap().retry_state,
            Some(RetryState::MaximumAttemptsReached)
        );
        assert_eq!(serde_json::to_value(&f).unwrap(), wire);

        let old: Failure =
            serde_json::from_value(serde_json::json!({"message": "boom", "type": "KeyError"}))
                .unwrap();
        assert_eq!((old.kind, old.error_type.as_str()), (None, "KeyError"));
        assert_eq!(
            serde_json::to_value(Failure::timeout(TimeoutType::Heartbeat, None)).unwrap()["kind"],
            "TIMEOUT"
        );
    }
}
