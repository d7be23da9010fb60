//! Workflow tasks: one in flight at a time, buffering, validation of the
//! SDK's commands, failures, transient retries and fencing.

use expect_test::expect;

use super::harness::{check, check_each};

#[test]
fn events_arriving_during_a_workflow_task_are_buffered_then_appended_after_it() {
    // The activity result and the timer fire arrive while the second
    // workflow task is in flight: nothing is appended until it completes,
    // then they follow its events and a new workflow task is scheduled.
    check(
        "
        start
        complete-wft | schedule a1 stc=10s | timer t1 2s
        @1s complete-activity a1 result=1
        ",
        "
        @1.5s push-wft
        @2s fire-timer t1
        @2.5s complete-wft | marker m1
        ",
        expect![[r#"
            > @1.5s push-wft
              token 2/1 started_at=1.5s
              ~ 10 @1.5s WorkflowTaskStarted scheduled=9
            > @2s fire-timer t1
              dequeue timer/t1
              = RUNNING, workflow task 2/1, 1 buffered
              = timer t1 #6 fires at 2s, fired (buffered)
            > @2.5s complete-wft | marker m1
              + 10 @1.5s WorkflowTaskStarted scheduled=9
              + 11 @2.5s WorkflowTaskCompleted scheduled=9 started=10
              + 12 @2.5s MarkerRecorded m1 details=null
              + 13 @2s TimerFired t1 started=6
              + 14 @2.5s WorkflowTaskScheduled attempt=1
              dequeue workflow_task
              enqueue workflow_task at 17.5s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}

#[test]
fn close_command_while_events_are_buffered_fails_with_unhandled_command() {
    // The workflow must see the new events before it may close; a fresh
    // workflow task (attempt 1, no back-off) carries them.
    check(
        "
        start
        complete-wft | schedule a1 stc=10s | timer t1 1s
        @1s fire-timer t1
        @1.5s push-wft
        @2s complete-activity a1
        ",
        "
        @2.5s complete-wft | complete result=\"early\"
        @3s complete-wft | complete result=\"done\"
        ",
        expect![[r#"
            > @2.5s complete-wft | complete result="early"
              + 9 @1.5s WorkflowTaskStarted scheduled=8
              + 10 @2.5s WorkflowTaskFailed scheduled=8 started=9 UNHANDLED_COMMAND "new events arrived while the workflow task was in flight; the workflow must see them before it closes"
              + 11 @2s ActivityTaskStarted scheduled=5 attempt=1
              + 12 @2s ActivityTaskCompleted scheduled=5 started=11 result="ok"
              + 13 @2.5s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 17.5s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
            > @3s complete-wft | complete result="done"
              + 14 @3s WorkflowTaskStarted scheduled=13
              + 15 @3s WorkflowTaskCompleted scheduled=13 started=14
              + 16 @3s WorkflowExecutionCompleted result="done"
              dequeue workflow_task
              dequeue all
              = COMPLETED
        "#]],
    );
}

#[test]
fn invalid_commands_fail_the_workflow_task_with_a_cause() {
    // Every cause the server itself produces (shown: the failure event
    // only; the next test shows a refusal in full).
    check_each(
        "
        limits max_payload=32
        start
        complete-wft | schedule a1 stc=10s | timer t1 1m
        @1s complete-activity a1
        ",
        &[
            "complete-wft | schedule \"\" stc=1s",
            "complete-wft | schedule a2 type=\"\" stc=1s",
            "complete-wft | schedule a2 queue=\"\" stc=1s",
            "complete-wft | schedule a2",
            "complete-wft | schedule a2 stc=0s",
            "complete-wft | schedule a2 stc=1s hb=0s",
            "complete-wft | schedule a2 stc=1s coefficient=0.5",
            "complete-wft | schedule a2 stc=1s initial=10s max_interval=1s",
            "complete-wft | schedule a2 stc=1s initial=0s",
            "complete-wft | schedule a2 stc=1s | schedule a2 stc=1s",
            "complete-wft | schedule a2 stc=1s input=\"an-input-well-over-thirty-two-bytes\"",
            "complete-wft | cancel a1",
            "complete-wft | cancel nope",
            "complete-wft | timer \"\" 1s",
            "complete-wft | timer t2 0s",
            "complete-wft | timer t1 1s",
            "complete-wft | timer t2 1s | timer t2 2s",
            "complete-wft | cancel-timer t2",
            "complete-wft | cancel-timer t1 | cancel-timer t1",
            "complete-wft | marker \"\"",
            "complete-wft | marker m details=\"marker-details-well-over-thirty-two-bytes\"",
            "complete-wft | complete | marker m",
            "complete-wft | fail-workflow | marker m",
            "complete-wft | cancel-workflow | marker m",
            "complete-wft | complete result=\"a-result-well-over-thirty-two-bytes\"",
            "complete-wft | fail-workflow details=\"failure-details-well-over-thirty-two-bytes\"",
            "complete-wft | cancel-workflow details=\"cancel-details-well-over-thirty-two-bytes\"",
        ],
        "WorkflowTaskFailed",
        expect![[r#"
            > complete-wft | schedule "" stc=1s
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_SCHEDULE_ACTIVITY_ATTRIBUTES "activity_id must not be empty"
            > complete-wft | schedule a2 type="" stc=1s
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_SCHEDULE_ACTIVITY_ATTRIBUTES "activity_type must not be empty"
            > complete-wft | schedule a2 queue="" stc=1s
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_SCHEDULE_ACTIVITY_ATTRIBUTES "task_queue must not be empty"
            > complete-wft | schedule a2
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_SCHEDULE_ACTIVITY_ATTRIBUTES "one of schedule_to_close_timeout or start_to_close_timeout is required"
            > complete-wft | schedule a2 stc=0s
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_SCHEDULE_ACTIVITY_ATTRIBUTES "start_to_close_timeout must be greater than zero"
            > complete-wft | schedule a2 stc=1s hb=0s
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_SCHEDULE_ACTIVITY_ATTRIBUTES "heartbeat_timeout must be greater than zero"
            > complete-wft | schedule a2 stc=1s coefficient=0.5
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_SCHEDULE_ACTIVITY_ATTRIBUTES "retry_policy.backoff_coefficient must be at least 1.0"
            > complete-wft | schedule a2 stc=1s initial=10s max_interval=1s
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_SCHEDULE_ACTIVITY_ATTRIBUTES "retry_policy.maximum_interval must not be less than initial_interval"
            > complete-wft | schedule a2 stc=1s initial=0s
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_SCHEDULE_ACTIVITY_ATTRIBUTES "retry_policy.initial_interval must be greater than zero"
            > complete-wft | schedule a2 stc=1s | schedule a2 stc=1s
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 SCHEDULE_ACTIVITY_DUPLICATE_ID "activity id \"a2\" is already in use"
            > complete-wft | schedule a2 stc=1s input="an-input-well-over-thirty-two-bytes"
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 PAYLOADS_TOO_LARGE "activity input: payload of 37 bytes exceeds the limit of 32 bytes"
            > complete-wft | cancel a1
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES "no open activity with id \"a1\""
            > complete-wft | cancel nope
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES "no open activity with id \"nope\""
            > complete-wft | timer "" 1s
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_START_TIMER_ATTRIBUTES "timer_id must not be empty"
            > complete-wft | timer t2 0s
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_START_TIMER_ATTRIBUTES "start_to_fire_timeout must be greater than zero"
            > complete-wft | timer t1 1s
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 START_TIMER_DUPLICATE_ID "timer id \"t1\" is already in use"
            > complete-wft | timer t2 1s | timer t2 2s
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 START_TIMER_DUPLICATE_ID "timer id \"t2\" is already in use"
            > complete-wft | cancel-timer t2
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_CANCEL_TIMER_ATTRIBUTES "no open timer with id \"t2\""
            > complete-wft | cancel-timer t1 | cancel-timer t1
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_CANCEL_TIMER_ATTRIBUTES "no open timer with id \"t1\""
            > complete-wft | marker ""
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_RECORD_MARKER_ATTRIBUTES "marker_name must not be empty"
            > complete-wft | marker m details="marker-details-well-over-thirty-two-bytes"
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 PAYLOADS_TOO_LARGE "marker details: payload of 43 bytes exceeds the limit of 32 bytes"
            > complete-wft | complete | marker m
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_COMPLETE_WORKFLOW_EXECUTION_ATTRIBUTES "command 0 closes the workflow but is not the last command"
            > complete-wft | fail-workflow | marker m
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_FAIL_WORKFLOW_EXECUTION_ATTRIBUTES "command 0 closes the workflow but is not the last command"
            > complete-wft | cancel-workflow | marker m
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 BAD_CANCEL_WORKFLOW_EXECUTION_ATTRIBUTES "command 0 closes the workflow but is not the last command"
            > complete-wft | complete result="a-result-well-over-thirty-two-bytes"
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 PAYLOADS_TOO_LARGE "workflow result: payload of 37 bytes exceeds the limit of 32 bytes"
            > complete-wft | fail-workflow details="failure-details-well-over-thirty-two-bytes"
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 PAYLOADS_TOO_LARGE "failure details: payload of 44 bytes exceeds the limit of 32 bytes"
            > complete-wft | cancel-workflow details="cancel-details-well-over-thirty-two-bytes"
              + 11 @1s WorkflowTaskFailed scheduled=9 started=10 PAYLOADS_TOO_LARGE "cancel details: payload of 43 bytes exceeds the limit of 32 bytes"
        "#]],
    );
}

#[test]
fn refused_workflow_task_applies_nothing_and_is_retried_as_a_transient_task() {
    check(
        "
        start
        complete-wft | timer t1 1s
        @1s fire-timer t1
        ",
        "@2s complete-wft | schedule a1 stc=1s | marker m | timer t2 0s",
        expect![[r#"
            > @2s complete-wft | schedule a1 stc=1s | marker m | timer t2 0s
              + 8 @2s WorkflowTaskStarted scheduled=7
              + 9 @2s WorkflowTaskFailed scheduled=7 started=8 BAD_START_TIMER_ATTRIBUTES "start_to_fire_timeout must be greater than zero"
              enqueue workflow_task at 2.2s lease 15s
              = RUNNING, workflow task 2/2 transient due 2.2s
        "#]],
    );
}

#[test]
fn timer_may_be_started_and_canceled_in_the_same_response() {
    check(
        "start",
        "complete-wft | timer t1 1s | cancel-timer t1 | schedule a1 stc=1s | cancel a1",
        expect![[r#"
            > complete-wft | timer t1 1s | cancel-timer t1 | schedule a1 stc=1s | cancel a1
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s TimerStarted t1 after=1s
              + 6 @0s TimerCanceled t1 started=5
              + 7 @0s ActivityTaskScheduled a1 type=Work stc=1s
              + 8 @0s ActivityTaskCancelRequested scheduled=7
              dequeue workflow_task
              enqueue timer/t1 #5 at 1s
              dequeue timer/t1, activity/7, activity/7/schedule-to-start
              enqueue activity/7/start-to-close attempt 1 at 1s
              dispatch activity #7
              = RUNNING
              = activity a1 #7 attempt 1, started at 0s, cancel requested
        "#]],
    );
}

#[test]
fn sdk_failure_is_recorded_once_and_later_attempts_leave_no_events() {
    // Attempt 1 fails: Started and Failed are written. Attempts 2 and 3 are
    // transient: no events, only a back-off (200ms, 400ms). When an attempt
    // finally completes, its Scheduled and Started events are written with
    // exactly the ids and times the pushed view showed.
    check(
        "start",
        "
        @1s fail-wft cause=NON_DETERMINISTIC_ERROR
        @1.2s push-wft
        @1.3s fail-wft cause=WORKFLOW_WORKER_UNHANDLED_FAILURE
        @1.7s push-wft
        @1.8s complete-wft | complete
        ",
        expect![[r#"
            > @1s fail-wft cause=NON_DETERMINISTIC_ERROR
              + 3 @1s WorkflowTaskStarted scheduled=2
              + 4 @1s WorkflowTaskFailed scheduled=2 started=3 NON_DETERMINISTIC_ERROR "replay diverged"
              enqueue workflow_task at 1.2s lease 15s
              = RUNNING, workflow task 1/2 transient due 1.2s
            > @1.2s push-wft
              token 1/2 started_at=1.2s
              ~ 5 @1.2s WorkflowTaskScheduled attempt=2
              ~ 6 @1.2s WorkflowTaskStarted scheduled=5
            > @1.3s fail-wft cause=WORKFLOW_WORKER_UNHANDLED_FAILURE
              enqueue workflow_task at 1.7s lease 15s
              = RUNNING, workflow task 1/3 transient due 1.7s
            > @1.7s push-wft
              token 1/3 started_at=1.7s
              ~ 5 @1.7s WorkflowTaskScheduled attempt=3
              ~ 6 @1.7s WorkflowTaskStarted scheduled=5
            > @1.8s complete-wft | complete
              + 5 @1.7s WorkflowTaskScheduled attempt=3
              + 6 @1.7s WorkflowTaskStarted scheduled=5
              + 7 @1.8s WorkflowTaskCompleted scheduled=5 started=6
              + 8 @1.8s WorkflowExecutionCompleted result=null
              dequeue workflow_task
              dequeue all
              = COMPLETED
        "#]],
    );
}

#[test]
fn refused_response_of_a_transient_task_leaves_no_events() {
    check(
        "
        start
        @1s fail-wft
        ",
        "
        @1.2s complete-wft | cancel-timer nope
        @1.6s complete-wft | cancel-timer nope
        @2.4s complete-wft | complete
        ",
        expect![[r#"
            > @1.2s complete-wft | cancel-timer nope
              enqueue workflow_task at 1.6s lease 15s
              = RUNNING, workflow task 1/3 transient due 1.6s
            > @1.6s complete-wft | cancel-timer nope
              enqueue workflow_task at 2.4s lease 15s
              = RUNNING, workflow task 1/4 transient due 2.4s
            > @2.4s complete-wft | complete
              + 5 @2.4s WorkflowTaskScheduled attempt=4
              + 6 @2.4s WorkflowTaskStarted scheduled=5
              + 7 @2.4s WorkflowTaskCompleted scheduled=5 started=6
              + 8 @2.4s WorkflowExecutionCompleted result=null
              dequeue workflow_task
              dequeue all
              = COMPLETED
        "#]],
    );
}

#[test]
fn unhandled_command_of_a_transient_task_flushes_the_buffered_events() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s | timer t1 1s
        @1s fire-timer t1
        @2s fail-wft
        @2.2s push-wft
        @2.3s complete-activity a1
        ",
        "@2.4s complete-wft | complete",
        expect![[r#"
            > @2.4s complete-wft | complete
              + 11 @2.3s ActivityTaskStarted scheduled=5 attempt=1
              + 12 @2.3s ActivityTaskCompleted scheduled=5 started=11 result="ok"
              + 13 @2.4s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 17.4s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}

#[test]
fn workflow_task_backoff_doubles_and_is_capped() {
    check(
        "
        limits wft_backoff=1s wft_max_backoff=5s
        start
        ",
        "
        @0s fail-wft
        @1s fail-wft
        @3s fail-wft
        @7s fail-wft
        @12s fail-wft
        ",
        expect![[r#"
            > @0s fail-wft
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskFailed scheduled=2 started=3 NON_DETERMINISTIC_ERROR "replay diverged"
              enqueue workflow_task at 1s lease 15s
              = RUNNING, workflow task 1/2 transient due 1s
            > @1s fail-wft
              enqueue workflow_task at 3s lease 15s
              = RUNNING, workflow task 1/3 transient due 3s
            > @3s fail-wft
              enqueue workflow_task at 7s lease 15s
              = RUNNING, workflow task 1/4 transient due 7s
            > @7s fail-wft
              enqueue workflow_task at 12s lease 15s
              = RUNNING, workflow task 1/5 transient due 12s
            > @12s fail-wft
              enqueue workflow_task at 17s lease 15s
              = RUNNING, workflow task 1/6 transient due 17s
        "#]],
    );
}

#[test]
fn undelivered_workflow_task_is_retried_without_events() {
    // A transport failure (connection refused, 5xx, garbage) is not the
    // workflow's fault: nothing is recorded, the task is pushed again after
    // back-off with a new attempt number.
    check(
        "start",
        "
        @1s wft-undelivered
        @1.2s push-wft
        @1.3s complete-wft | complete
        ",
        expect![[r#"
            > @1s wft-undelivered
              enqueue workflow_task at 1.2s lease 15s
              = RUNNING, workflow task 1/2
            > @1.2s push-wft
              token 1/2 started_at=1.2s
              ~ 3 @1.2s WorkflowTaskStarted scheduled=2
            > @1.3s complete-wft | complete
              + 3 @1.2s WorkflowTaskStarted scheduled=2
              + 4 @1.3s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @1.3s WorkflowExecutionCompleted result=null
              dequeue workflow_task
              dequeue all
              = COMPLETED
        "#]],
    );
}

#[test]
fn timed_out_workflow_task_is_recorded_the_first_time_only() {
    check(
        "start",
        "
        @10s wft-undelivered timed_out
        @20.2s wft-undelivered timed_out
        @30.6s push-wft
        @31s complete-wft | complete
        ",
        expect![[r#"
            > @10s wft-undelivered timed_out
              + 3 @10s WorkflowTaskStarted scheduled=2
              + 4 @10s WorkflowTaskTimedOut scheduled=2 started=3 START_TO_CLOSE
              enqueue workflow_task at 10.2s lease 15s
              = RUNNING, workflow task 1/2 transient due 10.2s
            > @20.2s wft-undelivered timed_out
              enqueue workflow_task at 20.6s lease 15s
              = RUNNING, workflow task 1/3 transient due 20.6s
            > @30.6s push-wft
              token 1/3 started_at=30.6s
              ~ 5 @20.6s WorkflowTaskScheduled attempt=3
              ~ 6 @30.6s WorkflowTaskStarted scheduled=5
            > @31s complete-wft | complete
              + 5 @20.6s WorkflowTaskScheduled attempt=3
              + 6 @30.6s WorkflowTaskStarted scheduled=5
              + 7 @31s WorkflowTaskCompleted scheduled=5 started=6
              + 8 @31s WorkflowExecutionCompleted result=null
              dequeue workflow_task
              dequeue all
              = COMPLETED
        "#]],
    );
}

#[test]
fn buffered_events_are_appended_after_a_failed_workflow_task() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s | timer t1 1s
        @1s fire-timer t1
        @1.5s complete-activity a1 result=1
        ",
        "@2s fail-wft",
        expect![[r#"
            > @2s fail-wft
              + 9 @2s WorkflowTaskStarted scheduled=8
              + 10 @2s WorkflowTaskFailed scheduled=8 started=9 NON_DETERMINISTIC_ERROR "replay diverged"
              + 11 @1.5s ActivityTaskStarted scheduled=5 attempt=1
              + 12 @1.5s ActivityTaskCompleted scheduled=5 started=11 result=1
              enqueue workflow_task at 2.2s lease 15s
              = RUNNING, workflow task 2/2 transient due 2.2s
        "#]],
    );
}

#[test]
fn stale_workflow_task_answers_are_refused() {
    check(
        "
        start
        @1s fail-wft
        ",
        "
        @1.2s complete-wft token=1/1 | complete
        @1.2s fail-wft token=1/1
        @1.2s wft-undelivered token=1/1
        @1.2s complete-wft token=2/2 | complete
        @1.2s complete-wft token=1/2 | complete
        @1.3s complete-wft token=1/2 | complete
        ",
        expect![[r#"
            > @1.2s complete-wft token=1/1 | complete
              rejected: stale task: workflow task 1/1 is not current (current 1/2)
            > @1.2s fail-wft token=1/1
              rejected: stale task: workflow task 1/1 is not current (current 1/2)
            > @1.2s wft-undelivered token=1/1
              rejected: stale task: workflow task 1/1 is not current (current 1/2)
            > @1.2s complete-wft token=2/2 | complete
              rejected: stale task: workflow task 2/2 is not current (current 1/2)
            > @1.2s complete-wft token=1/2 | complete
              + 5 @1.2s WorkflowTaskScheduled attempt=2
              + 6 @1.2s WorkflowTaskStarted scheduled=5
              + 7 @1.2s WorkflowTaskCompleted scheduled=5 started=6
              + 8 @1.2s WorkflowExecutionCompleted result=null
              dequeue workflow_task
              dequeue all
              = COMPLETED
            > @1.3s complete-wft token=1/2 | complete
              rejected: workflow run is closed (COMPLETED)
        "#]],
    );
}

#[test]
fn answer_without_a_workflow_task_in_flight_is_stale() {
    check(
        "
        start
        complete-wft | timer t1 1m
        ",
        "
        complete-wft token=1/1
        push-wft
        ",
        expect![[r#"
            > complete-wft token=1/1
              rejected: stale task: no workflow task is in flight
            > push-wft
              rejected: stale task: no workflow task to push
        "#]],
    );
}

#[test]
fn workflow_task_started_suggests_continue_as_new_past_the_suggest_limit() {
    check(
        "
        limits suggest_events=10
        start
        complete-wft | schedule a1 stc=10s
        @1s complete-activity a1
        ",
        "
        @2s push-wft
        @2s complete-wft | schedule a2 stc=10s
        @3s complete-activity a2
        @4s push-wft
        ",
        expect![[r#"
            > @2s push-wft
              token 2/1 started_at=2s
              ~ 9 @2s WorkflowTaskStarted scheduled=8
            > @2s complete-wft | schedule a2 stc=10s
              + 9 @2s WorkflowTaskStarted scheduled=8
              + 10 @2s WorkflowTaskCompleted scheduled=8 started=9
              + 11 @2s ActivityTaskScheduled a2 type=Work stc=10s
              dequeue workflow_task, activity/11, activity/11/schedule-to-start
              enqueue activity/11/start-to-close attempt 1 at 12s
              dispatch activity #11
              = RUNNING
              = activity a2 #11 attempt 1, started at 2s
            > @3s complete-activity a2
              + 12 @3s ActivityTaskStarted scheduled=11 attempt=1
              + 13 @3s ActivityTaskCompleted scheduled=11 started=12 result="ok"
              + 14 @3s WorkflowTaskScheduled attempt=1
              dequeue activity/11, activity/11/start-to-close, activity/11/heartbeat, activity/11/schedule-to-start, activity/11/schedule-to-close
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
            > @4s push-wft
              token 3/1 started_at=4s
              ~ 15 @4s WorkflowTaskStarted scheduled=14 suggest_continue_as_new
        "#]],
    );
}

#[test]
fn workflow_may_record_markers_and_fail_or_cancel_itself() {
    check(
        "start",
        "complete-wft | marker version details={\"patch\":1} | fail-workflow message=out-of-stock",
        expect![[r#"
            > complete-wft | marker version details={"patch":1} | fail-workflow message=out-of-stock
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s MarkerRecorded version details={"patch":1}
              + 6 @0s WorkflowExecutionFailed RETRY_POLICY_NOT_SET "out-of-stock"
              dequeue workflow_task
              dequeue all
              = FAILED
        "#]],
    );
    check(
        "start",
        "complete-wft | cancel-workflow details=\"requested\"",
        expect![[r#"
            > complete-wft | cancel-workflow details="requested"
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s WorkflowExecutionCanceled details="requested"
              dequeue workflow_task
              dequeue all
              = CANCELED
        "#]],
    );
}

#[test]
fn a_heartbeat_answer_schedules_the_next_task_at_once() {
    // Local activities still running: the SDK records what finished as
    // markers and asks for a new task with nothing else to wake the run.
    check(
        "
        start
        ",
        "
        @1s complete-wft force | marker LocalActivity details={\"activity_id\":\"1\"}
        @2s complete-wft | complete
        ",
        expect![[r#"
            > @1s complete-wft force | marker LocalActivity details={"activity_id":"1"}
              + 3 @1s WorkflowTaskStarted scheduled=2
              + 4 @1s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @1s MarkerRecorded LocalActivity details={"activity_id":"1"}
              + 6 @1s WorkflowTaskScheduled attempt=1
              dequeue workflow_task
              enqueue workflow_task at 16s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
            > @2s complete-wft | complete
              + 7 @2s WorkflowTaskStarted scheduled=6
              + 8 @2s WorkflowTaskCompleted scheduled=6 started=7
              + 9 @2s WorkflowExecutionCompleted result=null
              dequeue workflow_task
              dequeue all
              = COMPLETED
        "#]],
    );
}

#[test]
fn heartbeats_in_a_row_are_bounded_then_refused_with_force_close_command() {
    // The third heartbeat in a row is refused and the task retried after
    // back-off, which starts the count again.
    check(
        "
        start
        limits max_heartbeats=2
        complete-wft force
        complete-wft force
        ",
        "
        @1s complete-wft force | marker LocalActivity
        @2s push-wft
        @2s complete-wft force
        @3s complete-wft
        ",
        expect![[r#"
            > @1s complete-wft force | marker LocalActivity
              + 9 @1s WorkflowTaskStarted scheduled=8
              + 10 @1s WorkflowTaskFailed scheduled=8 started=9 FORCE_CLOSE_COMMAND "workflow task heartbeat refused: 2 heartbeats in a row (limit 2)"
              enqueue workflow_task at 1.2s lease 15s
              = RUNNING, workflow task 3/2 transient due 1.2s
            > @2s push-wft
              token 3/2 started_at=2s
              ~ 11 @1.2s WorkflowTaskScheduled attempt=2
              ~ 12 @2s WorkflowTaskStarted scheduled=11
            > @2s complete-wft force
              + 11 @1.2s WorkflowTaskScheduled attempt=2
              + 12 @2s WorkflowTaskStarted scheduled=11
              + 13 @2s WorkflowTaskCompleted scheduled=11 started=12
              + 14 @2s WorkflowTaskScheduled attempt=1
              dequeue workflow_task
              enqueue workflow_task at 17s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 5/1
            > @3s complete-wft
              + 15 @3s WorkflowTaskStarted scheduled=14
              + 16 @3s WorkflowTaskCompleted scheduled=14 started=15
              dequeue workflow_task
              = RUNNING
        "#]],
    );
}
