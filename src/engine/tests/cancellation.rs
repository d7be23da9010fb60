//! Activity cancellation requested by the workflow.

use expect_test::expect;

use super::harness::check;

#[test]
fn cancel_of_an_activity_waiting_to_retry_cancels_it_at_once() {
    // Nothing runs anywhere, so the activity is canceled in the same
    // transaction, its rows are dequeued, and a new workflow task tells the
    // workflow so (Temporal's "activity not started, cancelled").
    check(
        "
        start
        complete-wft | schedule a1 stc=10s | timer t1 1s
        @1s fire-timer t1
        @1.1s fail-activity a1
        ",
        "
        @1.2s complete-wft | cancel a1
        @2.1s start-attempt a1
        ",
        expect![[r#"
            > @1.2s complete-wft | cancel a1
              + 9 @1.2s WorkflowTaskStarted scheduled=8
              + 10 @1.2s WorkflowTaskCompleted scheduled=8 started=9
              + 11 @1.2s ActivityTaskCancelRequested scheduled=5
              + 12 @1.2s ActivityTaskCanceled scheduled=5 started=0
              + 13 @1.2s WorkflowTaskScheduled attempt=1
              dequeue workflow_task, activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 16.2s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
            > @2.1s start-attempt a1
              rejected: stale task: activity is not open
        "#]],
    );
}

#[test]
fn cancel_of_a_started_activity_is_requested_and_the_handler_may_acknowledge_it() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s | timer t1 1s
        @1s fire-timer t1
        ",
        "
        @1.1s complete-wft | cancel a1
        @2s heartbeat a1
        @3s canceled a1 details=\"cleaned-up\"
        ",
        expect![[r#"
            > @1.1s complete-wft | cancel a1
              + 9 @1.1s WorkflowTaskStarted scheduled=8
              + 10 @1.1s WorkflowTaskCompleted scheduled=8 started=9
              + 11 @1.1s ActivityTaskCancelRequested scheduled=5
              dequeue workflow_task
              = RUNNING
              = activity a1 #5 attempt 1, started at 0s, cancel requested
            > @2s heartbeat a1
              = RUNNING
              = activity a1 #5 attempt 1, started at 0s, heartbeat at 2s, cancel requested
            > @3s canceled a1 details="cleaned-up"
              + 12 @3s ActivityTaskStarted scheduled=5 attempt=1
              + 13 @3s ActivityTaskCanceled scheduled=5 started=12 details="cleaned-up"
              + 14 @3s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}

#[test]
fn started_activity_may_still_complete_after_a_cancel_request() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s | timer t1 1s
        @1s fire-timer t1
        @1.1s complete-wft | cancel a1
        ",
        "@3s complete-activity a1 result=\"too-late-to-stop\"",
        expect![[r#"
            > @3s complete-activity a1 result="too-late-to-stop"
              + 12 @3s ActivityTaskStarted scheduled=5 attempt=1
              + 13 @3s ActivityTaskCompleted scheduled=5 started=12 result="too-late-to-stop"
              + 14 @3s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}

#[test]
fn failure_after_a_cancel_request_is_not_retried() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s | timer t1 1s
        @1s fire-timer t1
        @1.1s complete-wft | cancel a1
        ",
        "@3s fail-activity a1",
        expect![[r#"
            > @3s fail-activity a1
              + 12 @3s ActivityTaskStarted scheduled=5 attempt=1
              + 13 @3s ActivityTaskFailed scheduled=5 started=12 CANCEL_REQUESTED IOError "boom"
              + 14 @3s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}

#[test]
fn timeout_after_a_cancel_request_is_not_retried() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s | timer t1 1s
        @1s fire-timer t1
        @1.1s complete-wft | cancel a1
        ",
        "@10s fire-timeout a1 start-to-close",
        expect![[r#"
            > @10s fire-timeout a1 start-to-close
              + 12 @10s ActivityTaskStarted scheduled=5 attempt=1
              + 13 @10s ActivityTaskTimedOut scheduled=5 started=12 CANCEL_REQUESTED TimeoutError "activity start-to-close timeout"
              + 14 @10s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 25s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}

#[test]
fn canceled_report_without_a_request_is_refused() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s
        ",
        "@1s canceled a1",
        expect![[r#"
            > @1s canceled a1
              rejected: activity cannot report cancellation: none was requested
        "#]],
    );
}

#[test]
fn cancel_of_an_activity_whose_result_is_buffered_is_a_noop() {
    // The activity completed while the workflow task was in flight; the
    // workflow, not having seen that yet, asks to cancel it. The request is
    // dropped and the buffered result reaches the workflow next.
    check(
        "
        start
        complete-wft | schedule a1 stc=10s | timer t1 1s
        @1s fire-timer t1
        @1.1s push-wft
        @1.2s complete-activity a1 result=1
        ",
        "@1.3s complete-wft | cancel a1",
        expect![[r#"
            > @1.3s complete-wft | cancel a1
              + 9 @1.1s WorkflowTaskStarted scheduled=8
              + 10 @1.3s WorkflowTaskCompleted scheduled=8 started=9
              + 11 @1.2s ActivityTaskStarted scheduled=5 attempt=1
              + 12 @1.2s ActivityTaskCompleted scheduled=5 started=11 result=1
              + 13 @1.3s WorkflowTaskScheduled attempt=1
              dequeue workflow_task
              enqueue workflow_task at 16.3s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}

#[test]
fn cancel_of_an_unknown_activity_fails_the_workflow_task() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s
        @1s complete-activity a1
        ",
        "@2s complete-wft | cancel a1",
        expect![[r#"
            > @2s complete-wft | cancel a1
              + 9 @2s WorkflowTaskStarted scheduled=8
              + 10 @2s WorkflowTaskFailed scheduled=8 started=9 BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES "no open activity with id \"a1\""
              enqueue workflow_task at 2.2s lease 15s
              = RUNNING, workflow task 2/2 transient due 2.2s
        "#]],
    );
}
