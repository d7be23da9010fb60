//! What a push's answer means, as pure functions: the classification
//! tables of docs/protocol.md §5.4 (workflow tasks) and §6.2 (activity
//! tasks) turned into engine commands. No IO here; `dispatch` sends, then
//! asks this module what to record. The tests below walk the tables row by
//! row.

use reqwest::StatusCode;

use crate::engine::{ActivityToken, Command, Failure, Registry, Rejection, WorkflowTaskToken};
use crate::time::Duration;

use super::client::Delivery;
use super::wire::{self, ActivityTaskResponse, WorkflowTaskResponse};

/// The command a workflow task push's outcome records (protocol.md §5.4);
/// `None` for `{"checkpointed": true}`, which records nothing. The flag
/// says the handler asked for sticky pushes (§5.10): only with `commands`.
pub(super) fn workflow_task(
    token: WorkflowTaskToken,
    delivery: Delivery,
    task_timeout: Duration,
) -> (Option<Command>, bool) {
    let cmd = match delivery {
        Delivery::Answered { status, body } if status == StatusCode::OK => {
            match wire::parse::<WorkflowTaskResponse>(&body) {
                Ok(WorkflowTaskResponse {
                    commands: None,
                    failure: None,
                    identity: None,
                    force_create_new_workflow_task: false,
                    checkpointed: true,
                    sticky: _,
                }) => return (None, false),
                Ok(WorkflowTaskResponse {
                    commands: Some(commands),
                    failure: None,
                    identity,
                    force_create_new_workflow_task,
                    checkpointed: false,
                    sticky,
                }) => {
                    let cmd = Command::CompleteWorkflowTask {
                        token,
                        commands,
                        identity,
                        force_create_new_workflow_task,
                        // Filled in by the caller when a command needs it.
                        search_attributes: Registry::default(),
                    };
                    return (Some(cmd), sticky);
                }
                Ok(WorkflowTaskResponse {
                    commands: None,
                    failure: Some(f),
                    checkpointed: false,
                    ..
                }) => Command::FailWorkflowTask {
                    token,
                    cause: f.cause,
                    failure: f.failure,
                },
                Ok(_) => undelivered(
                    token,
                    "answer must carry exactly one of `commands`, `failure` and `checkpointed`",
                ),
                Err(e) => undelivered(token, format!("unparseable answer: {e}")),
            }
        }
        Delivery::Answered { status, body } => undelivered(
            token,
            format!("endpoint answered {status}: {}", snippet(&body)),
        ),
        Delivery::Refused(e) | Delivery::Failed(e) => undelivered(token, e),
        Delivery::TimedOut => Command::WorkflowTaskUndelivered {
            token,
            timed_out: true,
            error: format!("no answer within {task_timeout}"),
        },
    };
    (Some(cmd), false)
}

/// What an activity task push's outcome records (protocol.md §6.2).
#[derive(Debug, PartialEq)]
pub(super) enum ActivityAnswer {
    Report(Command),
    /// Nothing now: a `202`, completed later over REST.
    Accepted,
    /// Nothing now: no answer by the deadline (the start-to-close timer
    /// fires at the same moment).
    NoAnswer,
}

pub(super) fn activity_task(token: ActivityToken, delivery: Delivery) -> ActivityAnswer {
    let attempt_failed = |message: String, error_type: &str| {
        ActivityAnswer::Report(Command::FailActivity {
            token,
            failure: Failure::new(message, error_type),
        })
    };
    let report = ActivityAnswer::Report;
    match delivery {
        Delivery::Answered { status, body } if status == StatusCode::OK => {
            match wire::parse::<ActivityTaskResponse>(&body) {
                Ok(ActivityTaskResponse {
                    result: Some(result),
                    failure: None,
                    canceled: None,
                }) => report(Command::CompleteActivity { token, result }),
                Ok(ActivityTaskResponse {
                    result: None,
                    failure: Some(failure),
                    canceled: None,
                }) => report(Command::FailActivity { token, failure }),
                Ok(ActivityTaskResponse {
                    result: None,
                    failure: None,
                    canceled: Some(c),
                }) => report(Command::ReportActivityCanceled {
                    token,
                    details: c.details,
                }),
                Ok(_) => attempt_failed(
                    "answer must carry exactly one of `result`, `failure` and `canceled`".into(),
                    "InvalidActivityAnswer",
                ),
                Err(e) => {
                    attempt_failed(format!("unparseable answer: {e}"), "InvalidActivityAnswer")
                }
            }
        }
        // Accepted for asynchronous completion over REST.
        Delivery::Answered { status, .. } if status == StatusCode::ACCEPTED => {
            ActivityAnswer::Accepted
        }
        // The handler never ran: a routing or signing problem.
        Delivery::Answered { status, body } if status.is_client_error() => {
            report(Command::ActivityUndelivered {
                token,
                error: format!("endpoint answered {status}: {}", snippet(&body)),
            })
        }
        Delivery::Answered { status, body } => attempt_failed(
            format!("endpoint answered {status}: {}", snippet(&body)),
            "HttpError",
        ),
        Delivery::Refused(error) => report(Command::ActivityUndelivered { token, error }),
        Delivery::Failed(e) => attempt_failed(e, "HttpError"),
        Delivery::TimedOut => ActivityAnswer::NoAnswer,
    }
}

/// The outcome label of an activity attempt's answer, for metrics.
pub(super) fn attempt_outcome(answer: &ActivityAnswer) -> &'static str {
    match answer {
        ActivityAnswer::Report(Command::CompleteActivity { .. }) => "completed",
        ActivityAnswer::Report(Command::ReportActivityCanceled { .. }) => "canceled",
        ActivityAnswer::Report(Command::ActivityUndelivered { .. }) => "undelivered",
        ActivityAnswer::Report(_) => "failed",
        ActivityAnswer::Accepted => "async",
        ActivityAnswer::NoAnswer => "no_answer",
    }
}

/// The outcome label of a push, for metrics: how the endpoint answered,
/// or why it did not.
pub(super) fn outcome(delivery: &Delivery) -> &'static str {
    match delivery {
        Delivery::Answered { status, .. } if status.is_success() => "answered",
        Delivery::Answered { status, .. } if *status == StatusCode::UNAUTHORIZED => "unauthorized",
        Delivery::Answered { status, .. } if status.is_client_error() => "client_error",
        Delivery::Answered { .. } => "server_error",
        Delivery::Refused(_) => "refused",
        Delivery::TimedOut => "timeout",
        Delivery::Failed(_) => "failed",
    }
}

/// A well-formed activity answer the engine refused (a cancellation nobody
/// asked for, oversized details): the attempt fails with
/// `InvalidActivityAnswer` rather than running on until it times out.
/// `answered` says the refused command was the handler's answer (a result,
/// failure or cancellation), not a delivery report.
pub(super) fn refused(
    token: ActivityToken,
    answered: bool,
    rejection: &Rejection,
) -> Option<Command> {
    match rejection {
        Rejection::InvalidArgument(_) | Rejection::PayloadTooLarge { .. } if answered => {
            Some(Command::FailActivity {
                token,
                failure: Failure::new(
                    format!("answer refused: {rejection}"),
                    "InvalidActivityAnswer",
                ),
            })
        }
        _ => None,
    }
}

fn undelivered(token: WorkflowTaskToken, error: impl Into<String>) -> Command {
    Command::WorkflowTaskUndelivered {
        token,
        timed_out: false,
        error: error.into(),
    }
}

/// The start of an answer body, for error messages.
pub(super) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn wt() -> WorkflowTaskToken {
        WorkflowTaskToken {
            seq: 1,
            attempt: 1,
            started_at: Timestamp(0),
        }
    }

    fn at() -> ActivityToken {
        ActivityToken {
            scheduled_event_id: 5,
            attempt: 1,
        }
    }

    fn answered(status: u16, body: &str) -> Delivery {
        Delivery::Answered {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// The kind of command, and for delivery failures whether it timed out.
    fn kind(cmd: &Command) -> String {
        match cmd {
            Command::CompleteWorkflowTask { commands, .. } => {
                format!("completed with {} commands", commands.len())
            }
            Command::FailWorkflowTask { .. } => "failed".into(),
            Command::WorkflowTaskUndelivered { timed_out, .. } => {
                format!("undelivered (timed out: {timed_out})")
            }
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn workflow_task_answers_follow_protocol_5_4() {
        let timeout = Duration::from_secs(10);
        let rows = [
            (
                answered(200, r#"{"commands": []}"#),
                "completed with 0 commands",
            ),
            (
                answered(
                    200,
                    r#"{"failure": {"cause": "WORKFLOW_WORKER_UNHANDLED_FAILURE", "failure": {"message": "boom"}}}"#,
                ),
                "failed",
            ),
            (answered(200, r#"{"checkpointed": true}"#), "nothing"),
            (
                answered(200, r#"{"checkpointed": true, "sticky": true}"#),
                "nothing",
            ),
            (
                answered(200, r#"{"commands": [], "sticky": true}"#),
                "completed with 0 commands, sticky",
            ),
            (
                answered(200, r#"{"checkpointed": true, "commands": []}"#),
                "undelivered (timed out: false)",
            ),
            (
                answered(200, r#"{"checkpointed": false}"#),
                "undelivered (timed out: false)",
            ),
            (Delivery::TimedOut, "undelivered (timed out: true)"),
            (answered(200, "not json"), "undelivered (timed out: false)"),
            (
                answered(
                    200,
                    r#"{"commands": [], "failure": {"failure": {"message": "x"}}}"#,
                ),
                "undelivered (timed out: false)",
            ),
            (answered(202, ""), "undelivered (timed out: false)"),
            (
                answered(401, "bad signature"),
                "undelivered (timed out: false)",
            ),
            (answered(500, "oops"), "undelivered (timed out: false)"),
            (
                Delivery::Refused("connection refused".into()),
                "undelivered (timed out: false)",
            ),
            (
                Delivery::Failed("answer exceeds 8388608 bytes".into()),
                "undelivered (timed out: false)",
            ),
        ];
        for (delivery, expected) in rows {
            let shown = format!("{delivery:?}");
            let (cmd, sticky) = workflow_task(wt(), delivery, timeout);
            let mut shown_cmd = cmd.as_ref().map_or("nothing".into(), kind);
            if sticky {
                shown_cmd.push_str(", sticky");
            }
            assert_eq!(shown_cmd, expected, "{shown}");
        }
    }

    #[test]
    fn activity_task_answers_follow_protocol_6_2() {
        let failed_as = |answer: &ActivityAnswer| match answer {
            ActivityAnswer::Report(Command::FailActivity { failure, .. }) => {
                failure.error_type.clone()
            }
            other => format!("{other:?}"),
        };
        let completed = activity_task(at(), answered(200, r#"{"result": null}"#));
        assert!(matches!(
            completed,
            ActivityAnswer::Report(Command::CompleteActivity { .. })
        ));
        let failed = activity_task(
            at(),
            answered(
                200,
                r#"{"failure": {"message": "card declined", "type": "Card"}}"#,
            ),
        );
        assert_eq!(failed_as(&failed), "Card");
        let canceled = activity_task(at(), answered(200, r#"{"canceled": {}}"#));
        assert!(matches!(
            canceled,
            ActivityAnswer::Report(Command::ReportActivityCanceled { .. })
        ));
        for body in [
            "not json",
            "{}",
            r#"{"result": 1, "failure": {"message": "x"}}"#,
        ] {
            let answer = activity_task(at(), answered(200, body));
            assert_eq!(failed_as(&answer), "InvalidActivityAnswer", "{body}");
        }
        assert_eq!(
            activity_task(at(), answered(202, "later")),
            ActivityAnswer::Accepted
        );
        for status in [400, 401, 404] {
            let answer = activity_task(at(), answered(status, ""));
            assert!(
                matches!(
                    answer,
                    ActivityAnswer::Report(Command::ActivityUndelivered { .. })
                ),
                "{status}: {answer:?}"
            );
        }
        // 429 and 503 arrive as Refused (the client classifies them).
        let refused_push = activity_task(at(), Delivery::Refused("endpoint answered 503".into()));
        assert!(matches!(
            refused_push,
            ActivityAnswer::Report(Command::ActivityUndelivered { .. })
        ));
        for status in [500, 201, 204, 302] {
            let answer = activity_task(at(), answered(status, ""));
            assert_eq!(failed_as(&answer), "HttpError", "{status}");
        }
        let broken = activity_task(at(), Delivery::Failed("connection reset".into()));
        assert_eq!(failed_as(&broken), "HttpError");
        assert_eq!(
            activity_task(at(), Delivery::TimedOut),
            ActivityAnswer::NoAnswer
        );
    }

    #[test]
    fn outcome_labels() {
        let cases = [
            (answered(200, "{}"), "answered"),
            (answered(202, ""), "answered"),
            (answered(401, ""), "unauthorized"),
            (answered(404, ""), "client_error"),
            (answered(500, ""), "server_error"),
            (Delivery::Refused("503".into()), "refused"),
            (Delivery::TimedOut, "timeout"),
            (Delivery::Failed("reset".into()), "failed"),
        ];
        for (delivery, label) in cases {
            assert_eq!(outcome(&delivery), label, "{delivery:?}");
        }
        let done = activity_task(at(), answered(200, r#"{"result": 1}"#));
        assert_eq!(attempt_outcome(&done), "completed");
        let failed = activity_task(at(), answered(500, ""));
        assert_eq!(attempt_outcome(&failed), "failed");
        assert_eq!(attempt_outcome(&ActivityAnswer::Accepted), "async");
    }

    #[test]
    fn a_refused_answer_fails_the_attempt_but_a_refused_report_does_not() {
        let invalid = Rejection::InvalidArgument("no cancellation was requested".into());
        let cmd = refused(at(), true, &invalid);
        assert!(matches!(
            cmd,
            Some(Command::FailActivity { ref failure, .. }) if failure.error_type == "InvalidActivityAnswer"
        ));
        assert_eq!(refused(at(), false, &invalid), None);
        assert_eq!(refused(at(), true, &Rejection::Stale("late".into())), None);
    }
}
