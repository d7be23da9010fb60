//! Failures as data, shaped like Temporal's `Failure`: a message, an error
//! type that retry policies match on, a non-retryable flag, details and a
//! cause chain.

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    /// Set on failures the server makes for timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_type: Option<TimeoutType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Box<Failure>>,
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
