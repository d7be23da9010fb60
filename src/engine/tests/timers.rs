//! User timers (`workflow.sleep`).

use expect_test::expect;

use super::harness::check;

#[test]
fn timer_fires_at_its_time_and_schedules_a_workflow_task() {
    check(
        "start",
        "
        @1s complete-wft | timer t1 5s
        @6s fire-timer t1
        @7s complete-wft | complete
        ",
        expect![[r#"
            > @1s complete-wft | timer t1 5s
              + 3 @1s WorkflowTaskStarted scheduled=2
              + 4 @1s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @1s TimerStarted t1 after=5s
              dequeue workflow_task
              enqueue timer/t1 #5 at 6s
              = RUNNING
              = timer t1 #5 fires at 6s
            > @6s fire-timer t1
              + 6 @6s TimerFired t1 started=5
              + 7 @6s WorkflowTaskScheduled attempt=1
              dequeue timer/t1
              enqueue workflow_task at 21s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
            > @7s complete-wft | complete
              + 8 @7s WorkflowTaskStarted scheduled=7
              + 9 @7s WorkflowTaskCompleted scheduled=7 started=8
              + 10 @7s WorkflowExecutionCompleted result=null
              dequeue workflow_task
              dequeue all
              = COMPLETED
        "#]],
    );
}

#[test]
fn timer_fired_early_is_rearmed() {
    check(
        "
        start
        @1s complete-wft | timer t1 5s
        ",
        "
        @5.9s fire-timer t1
        @6s fire-timer t1
        ",
        expect![[r#"
            > @5.9s fire-timer t1
              enqueue timer/t1 #5 at 6s
              = RUNNING
              = timer t1 #5 fires at 6s
            > @6s fire-timer t1
              + 6 @6s TimerFired t1 started=5
              + 7 @6s WorkflowTaskScheduled attempt=1
              dequeue timer/t1
              enqueue workflow_task at 21s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn canceled_timer_is_removed_and_its_row_no_longer_fires() {
    check(
        "
        start
        complete-wft | timer t1 5s | timer t2 1s
        @1s fire-timer t2
        ",
        "
        @2s complete-wft | cancel-timer t1
        @5s fire-timer t1
        ",
        expect![[r#"
            > @2s complete-wft | cancel-timer t1
              + 9 @2s WorkflowTaskStarted scheduled=8
              + 10 @2s WorkflowTaskCompleted scheduled=8 started=9
              + 11 @2s TimerCanceled t1 started=5
              dequeue workflow_task, timer/t1
              = RUNNING
            > @5s fire-timer t1
              rejected: stale task: timer is not pending
        "#]],
    );
}

#[test]
fn timer_fired_during_a_workflow_task_is_buffered_and_its_cancel_is_a_noop() {
    check(
        "
        start
        complete-wft | timer t1 5s | timer t2 1s
        @1s fire-timer t2
        @4s push-wft
        ",
        "
        @5s fire-timer t1
        @5s fire-timer t1
        @6s complete-wft | cancel-timer t1
        ",
        expect![[r#"
            > @5s fire-timer t1
              dequeue timer/t1
              = RUNNING, workflow task 2/1, 1 buffered
              = timer t1 #5 fires at 5s, fired (buffered)
            > @5s fire-timer t1
              rejected: stale task: timer is not pending
            > @6s complete-wft | cancel-timer t1
              + 9 @4s WorkflowTaskStarted scheduled=8
              + 10 @6s WorkflowTaskCompleted scheduled=8 started=9
              + 11 @5s TimerFired t1 started=5
              + 12 @6s WorkflowTaskScheduled attempt=1
              dequeue workflow_task
              enqueue workflow_task at 21s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}

#[test]
fn timer_id_may_be_reused_once_the_timer_closed() {
    check(
        "
        start
        complete-wft | timer t1 1s
        @1s fire-timer t1
        ",
        "
        @2s complete-wft | timer t1 1s
        @3s fire-timer t1 started=5
        @3s fire-timer t1
        ",
        expect![[r#"
            > @2s complete-wft | timer t1 1s
              + 8 @2s WorkflowTaskStarted scheduled=7
              + 9 @2s WorkflowTaskCompleted scheduled=7 started=8
              + 10 @2s TimerStarted t1 after=1s
              dequeue workflow_task
              enqueue timer/t1 #10 at 3s
              = RUNNING
              = timer t1 #10 fires at 3s
            > @3s fire-timer t1 started=5
              rejected: stale task: timer is not pending
            > @3s fire-timer t1
              + 11 @3s TimerFired t1 started=10
              + 12 @3s WorkflowTaskScheduled attempt=1
              dequeue timer/t1
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}

#[test]
fn timer_id_of_a_fire_the_workflow_has_not_seen_cannot_be_reused() {
    // The workflow cancels t1 (a no-op: it fired meanwhile) and starts a
    // new t1. Applying that would let the buffered TimerFired close the new
    // timer; instead the task fails as UNHANDLED_COMMAND and a fresh one
    // shows the fire.
    check(
        "
        start
        complete-wft | timer t1 5s | timer t2 1s
        @1s fire-timer t2
        @4s push-wft
        @5s fire-timer t1
        ",
        "@6s complete-wft | cancel-timer t1 | timer t1 5s",
        expect![[r#"
            > @6s complete-wft | cancel-timer t1 | timer t1 5s
              + 9 @4s WorkflowTaskStarted scheduled=8
              + 10 @6s WorkflowTaskFailed scheduled=8 started=9 UNHANDLED_COMMAND "timer \"t1\" fired while the workflow task was in flight; the workflow must see that first"
              + 11 @5s TimerFired t1 started=5
              + 12 @6s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 21s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}
