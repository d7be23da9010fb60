//! Signals and cancellation requests from clients: external events that go
//! through the same buffering as activity results and fired timers.

use expect_test::expect;

use super::harness::check;

#[test]
fn signal_to_an_idle_run_is_recorded_and_schedules_a_workflow_task() {
    check(
        "
        start
        complete-wft | timer t1 1h
        ",
        "@1s signal approve input={\"by\":\"ann\"}",
        expect![[r#"
            > @1s signal approve input={"by":"ann"}
              + 6 @1s WorkflowExecutionSignaled approve input={"by":"ann"}
              + 7 @1s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 16s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
              = timer t1 #5 fires at 3600s
        "#]],
    );
}

#[test]
fn signal_during_an_in_flight_task_is_buffered_and_appended_after_it() {
    check(
        "start",
        "
        @1s signal approve
        @2s complete-wft | timer t1 1h
        ",
        expect![[r#"
            > @1s signal approve
              = RUNNING, workflow task 1/1, 1 buffered
            > @2s complete-wft | timer t1 1h
              + 3 @2s WorkflowTaskStarted scheduled=2
              + 4 @2s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @2s TimerStarted t1 after=3600s
              + 6 @1s WorkflowExecutionSignaled approve input=null
              + 7 @2s WorkflowTaskScheduled attempt=1
              dequeue workflow_task
              enqueue timer/t1 #5 at 3602s
              enqueue workflow_task at 17s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
              = timer t1 #5 fires at 3602s
        "#]],
    );
}

#[test]
fn buffered_signal_prevents_the_workflow_from_closing() {
    // Temporal's "signals prevent close": the completion is refused with
    // UNHANDLED_COMMAND, the signal is appended and a new task shows it.
    check(
        "start",
        "
        @1s signal approve
        @2s complete-wft | complete result=\"done\"
        @3s complete-wft | complete result=\"approved\"
        ",
        expect![[r#"
            > @1s signal approve
              = RUNNING, workflow task 1/1, 1 buffered
            > @2s complete-wft | complete result="done"
              + 3 @2s WorkflowTaskStarted scheduled=2
              + 4 @2s WorkflowTaskFailed scheduled=2 started=3 UNHANDLED_COMMAND "new events arrived while the workflow task was in flight; the workflow must see them before it closes"
              + 5 @1s WorkflowExecutionSignaled approve input=null
              + 6 @2s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 17s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
            > @3s complete-wft | complete result="approved"
              + 7 @3s WorkflowTaskStarted scheduled=6
              + 8 @3s WorkflowTaskCompleted scheduled=6 started=7
              + 9 @3s WorkflowExecutionCompleted result="approved"
              dequeue workflow_task
              dequeue all
              = COMPLETED
        "#]],
    );
}

#[test]
fn signal_with_a_seen_request_id_is_accepted_and_recorded_once() {
    check(
        "
        start
        complete-wft | timer t1 1h
        ",
        "
        @1s signal approve request_id=r1
        @2s signal approve request_id=r1
        @3s complete-wft
        @4s signal approve request_id=r1
        @5s signal approve request_id=r2
        ",
        expect![[r#"
            > @1s signal approve request_id=r1
              + 6 @1s WorkflowExecutionSignaled approve input=null request_id=r1
              + 7 @1s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 16s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
              = timer t1 #5 fires at 3600s
            > @2s signal approve request_id=r1
              = RUNNING, workflow task 2/1
              = timer t1 #5 fires at 3600s
            > @3s complete-wft
              + 8 @3s WorkflowTaskStarted scheduled=7
              + 9 @3s WorkflowTaskCompleted scheduled=7 started=8
              dequeue workflow_task
              = RUNNING
              = timer t1 #5 fires at 3600s
            > @4s signal approve request_id=r1
              = RUNNING
              = timer t1 #5 fires at 3600s
            > @5s signal approve request_id=r2
              + 10 @5s WorkflowExecutionSignaled approve input=null request_id=r2
              + 11 @5s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 20s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
              = timer t1 #5 fires at 3600s
        "#]],
    );
}

#[test]
fn signals_are_checked() {
    check(
        "
        start
        limits max_payload=10
        ",
        "
        signal \"\"
        signal approve input=\"far-too-large-for-the-limit\"
        ",
        expect![[r#"
            > signal ""
              rejected: signal_name must not be empty
            > signal approve input="far-too-large-for-the-limit"
              rejected: payload of 29 bytes exceeds the limit of 10 bytes
        "#]],
    );
}

#[test]
fn signal_to_a_closed_run_is_rejected() {
    check(
        "
        start
        complete-wft | complete
        ",
        "
        signal approve
        request-cancel
        ",
        expect![[r#"
            > signal approve
              rejected: workflow run is closed (COMPLETED)
            > request-cancel
              rejected: workflow run is closed (COMPLETED)
        "#]],
    );
}

#[test]
fn signal_with_start_records_the_signal_before_the_first_task() {
    check(
        "",
        "start signal=approve signal_input=7",
        expect![[r#"
            > start signal=approve signal_input=7
              + 1 @0s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s
              + 2 @0s WorkflowExecutionSignaled approve input=7
              + 3 @0s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 15s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 1/1
        "#]],
    );
}

#[test]
fn cancel_request_is_recorded_once_and_the_workflow_cancels_itself() {
    check(
        "
        start
        complete-wft | timer t1 1h
        ",
        "
        @1s request-cancel reason=changed-my-mind
        @2s request-cancel reason=again
        @3s complete-wft | cancel-timer t1 | cancel-workflow details=cleaned-up
        ",
        expect![[r#"
            > @1s request-cancel reason=changed-my-mind
              + 6 @1s WorkflowExecutionCancelRequested "changed-my-mind"
              + 7 @1s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 16s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1, cancel requested
              = timer t1 #5 fires at 3600s
            > @2s request-cancel reason=again
              = RUNNING, workflow task 2/1, cancel requested
              = timer t1 #5 fires at 3600s
            > @3s complete-wft | cancel-timer t1 | cancel-workflow details=cleaned-up
              + 8 @3s WorkflowTaskStarted scheduled=7
              + 9 @3s WorkflowTaskCompleted scheduled=7 started=8
              + 10 @3s TimerCanceled t1 started=5
              + 11 @3s WorkflowExecutionCanceled details="cleaned-up"
              dequeue workflow_task, timer/t1
              dequeue all
              = CANCELED, cancel requested
        "#]],
    );
}

#[test]
fn cancel_request_during_an_in_flight_task_is_buffered() {
    check(
        "start",
        "
        @1s request-cancel
        @2s request-cancel
        @3s complete-wft | timer t1 1h
        @4s complete-wft | cancel-timer t1 | cancel-workflow
        ",
        expect![[r#"
            > @1s request-cancel
              = RUNNING, workflow task 1/1, 1 buffered, cancel requested
            > @2s request-cancel
              = RUNNING, workflow task 1/1, 1 buffered, cancel requested
            > @3s complete-wft | timer t1 1h
              + 3 @3s WorkflowTaskStarted scheduled=2
              + 4 @3s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @3s TimerStarted t1 after=3600s
              + 6 @1s WorkflowExecutionCancelRequested "by test"
              + 7 @3s WorkflowTaskScheduled attempt=1
              dequeue workflow_task
              enqueue timer/t1 #5 at 3603s
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1, cancel requested
              = timer t1 #5 fires at 3603s
            > @4s complete-wft | cancel-timer t1 | cancel-workflow
              + 8 @4s WorkflowTaskStarted scheduled=7
              + 9 @4s WorkflowTaskCompleted scheduled=7 started=8
              + 10 @4s TimerCanceled t1 started=5
              + 11 @4s WorkflowExecutionCanceled
              dequeue workflow_task, timer/t1
              dequeue all
              = CANCELED, cancel requested
        "#]],
    );
}
