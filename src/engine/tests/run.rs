//! The run as a whole: start, run timeout, terminate, closed runs and
//! history limits.

use expect_test::expect;

use super::harness::{check, Scenario};
use crate::engine::{self, Command, Failure, RunStatus, StartRun, Task, WorkflowTaskFailedCause};
use crate::engine::{ActivityToken, Rejection, WorkflowTaskToken};
use crate::ids::{RunId, TimerId};
use crate::time::{Duration, Timestamp};

#[test]
fn start_records_the_run_and_its_timeouts() {
    check(
        "",
        "start run_timeout=1h execution_timeout=1d task_timeout=5m input={\"sku\":42}",
        expect![[r#"
            > start run_timeout=1h execution_timeout=1d task_timeout=5m input={"sku":42}
              + 1 @0s WorkflowExecutionStarted type=Order queue=orders task_timeout=120s run_timeout=3600s execution_timeout=86400s input={"sku":42}
              + 2 @0s WorkflowTaskScheduled attempt=1
              enqueue run_timeout at 3600s
              enqueue workflow_task at 125s lease 125s
              dispatch workflow task
              = RUNNING, workflow task 1/1
        "#]],
    );
}

#[test]
fn start_refuses_invalid_requests() {
    let ctx = Scenario::new().ctx();
    let valid = StartRun {
        trace_context: None,
        namespace: "default".into(),
        workflow_id: "order-1".into(),
        run_id: RunId(uuid::Uuid::from_u128(1)),
        workflow_type: "Order".into(),
        task_queue: "orders".into(),
        input: serde_json::Value::Null,
        execution_timeout: None,
        run_timeout: None,
        task_timeout: None,
        request_id: None,
        identity: None,
        pinned_version: None,
        parent: None,
        memo: None,
        search_attributes: Default::default(),
        retry_policy: None,
        chain: None,
    };
    let mut big = ctx.clone();
    big.limits.max_payload_bytes = 4;
    let cases = [
        (
            "empty id",
            StartRun {
                trace_context: None,
                workflow_id: "".into(),
                ..valid.clone()
            },
            &ctx,
        ),
        (
            "empty type",
            StartRun {
                trace_context: None,
                workflow_type: "".into(),
                ..valid.clone()
            },
            &ctx,
        ),
        (
            "empty queue",
            StartRun {
                trace_context: None,
                task_queue: "".into(),
                ..valid.clone()
            },
            &ctx,
        ),
        (
            "zero run timeout",
            StartRun {
                trace_context: None,
                run_timeout: Some(Duration::ZERO),
                ..valid.clone()
            },
            &ctx,
        ),
        (
            "large input",
            StartRun {
                trace_context: None,
                input: "too large".into(),
                ..valid.clone()
            },
            &big,
        ),
    ];
    let out: String = cases
        .into_iter()
        .map(|(name, cmd, ctx)| format!("{name}: {}\n", engine::start(cmd, ctx).unwrap_err()))
        .collect();
    expect![[r#"
        empty id: workflow_id must not be empty
        empty type: workflow_type must not be empty
        empty queue: task_queue must not be empty
        zero run timeout: workflow_run_timeout must be greater than zero
        large input: payload of 11 bytes exceeds the limit of 4 bytes
    "#]]
    .assert_eq(&out);
}

#[test]
fn run_timeout_times_out_the_run_and_flushes_buffered_events() {
    check(
        "
        start run_timeout=1m
        complete-wft | schedule a1 stc=2m | timer t1 1s
        @1s fire-timer t1
        @2s push-wft
        @30s complete-activity a1
        ",
        "
        @59s fire-run-timeout
        @1m fire-run-timeout
        ",
        expect![[r#"
            > @59s fire-run-timeout
              enqueue run_timeout at 60s
              = RUNNING, workflow task 2/1, 1 buffered
              = activity a1 #5 attempt 1, closed (result buffered)
            > @1m fire-run-timeout
              + 9 @30s ActivityTaskStarted scheduled=5 attempt=1
              + 10 @30s ActivityTaskCompleted scheduled=5 started=9 result="ok"
              + 11 @60s WorkflowExecutionTimedOut TIMEOUT
              dequeue all
              = TIMED_OUT
        "#]],
    );
}

#[test]
fn terminate_flushes_buffered_events_then_closes_the_run() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s | timer t1 1s
        @1s fire-timer t1
        @2s complete-activity a1 result=1
        ",
        "@3s terminate reason=operator",
        expect![[r#"
            > @3s terminate reason=operator
              + 9 @2s ActivityTaskStarted scheduled=5 attempt=1
              + 10 @2s ActivityTaskCompleted scheduled=5 started=9 result=1
              + 11 @3s WorkflowExecutionTerminated "operator"
              dequeue all
              = TERMINATED
        "#]],
    );
}

#[test]
fn closed_run_rejects_every_command() {
    let mut scenario = Scenario::given(
        "
        start
        complete-wft | schedule a1 stc=10s | timer t1 1m
        @1s terminate
        ",
    );
    assert_eq!(scenario.state().status, RunStatus::Terminated);
    let wft = WorkflowTaskToken {
        seq: 1,
        attempt: 1,
        started_at: Timestamp(0),
    };
    let act = ActivityToken {
        scheduled_event_id: 5,
        attempt: 1,
    };
    let commands = vec![
        Command::CompleteWorkflowTask {
            token: wft,
            commands: vec![],
            identity: None,
            force_create_new_workflow_task: false,
            search_attributes: Default::default(),
        },
        Command::FailWorkflowTask {
            token: wft,
            cause: WorkflowTaskFailedCause::NonDeterministicError,
            failure: Failure::default(),
        },
        Command::WorkflowTaskUndelivered {
            token: wft,
            timed_out: true,
            error: String::new(),
        },
        Command::StartActivityAttempt {
            scheduled_event_id: 5,
        },
        Command::ActivityUndelivered {
            token: act,
            error: String::new(),
        },
        Command::CompleteActivity {
            token: act,
            result: serde_json::Value::Null,
        },
        Command::FailActivity {
            token: act,
            failure: Failure::default(),
        },
        Command::ReportActivityCanceled {
            token: act,
            details: None,
        },
        Command::RecordActivityHeartbeat {
            token: act,
            details: None,
        },
        Command::FireTimer(Task::UserTimer {
            timer_id: TimerId::from("t1"),
            started_event_id: 6,
        }),
        Command::FireTimer(Task::RunTimeout),
        Command::TerminateWorkflow {
            reason: String::new(),
            details: None,
            identity: None,
        },
    ];
    let before = scenario.state().clone();
    for cmd in commands {
        assert_eq!(
            scenario.apply(cmd.clone()),
            Err(Rejection::RunClosed(RunStatus::Terminated)),
            "{cmd:?}"
        );
    }
    assert_eq!(scenario.state(), &before);
    assert!(engine::workflow_task_view(&before, &scenario.ctx()).is_none());
}

#[test]
fn run_past_the_history_event_limit_is_terminated() {
    check(
        "
        limits max_events=9
        start
        complete-wft | schedule a1 stc=10s | timer t1 1s
        @1s fire-timer t1
        @2s push-wft
        @2s complete-activity a1
        ",
        "@3s complete-wft | marker m",
        expect![[r#"
            > @3s complete-wft | marker m
              + 9 @2s WorkflowTaskStarted scheduled=8
              + 10 @3s WorkflowTaskCompleted scheduled=8 started=9
              + 11 @3s MarkerRecorded m details=null
              + 12 @2s ActivityTaskStarted scheduled=5 attempt=1
              + 13 @2s ActivityTaskCompleted scheduled=5 started=12 result="ok"
              + 14 @3s WorkflowTaskScheduled attempt=1
              + 15 @3s WorkflowExecutionTerminated "history limit exceeded: 14 events, 2678 bytes (limits 9 events, 52428800 bytes)"
              dequeue workflow_task
              enqueue workflow_task at 18s lease 15s
              dequeue all
              = TERMINATED
        "#]],
    );
}

#[test]
fn run_past_the_history_size_limit_is_terminated() {
    check(
        "
        limits max_bytes=900
        start
        ",
        "
        complete-wft | marker m details=\"0123456789012345678901234567890123456789\"
        ",
        expect![[r#"
            > complete-wft | marker m details="0123456789012345678901234567890123456789"
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s MarkerRecorded m details="0123456789012345678901234567890123456789"
              + 6 @0s WorkflowExecutionTerminated "history limit exceeded: 5 events, 1053 bytes (limits 51200 events, 900 bytes)"
              dequeue workflow_task
              dequeue all
              = TERMINATED
        "#]],
    );
}
