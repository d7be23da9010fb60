//! Chains of runs: continue-as-new, workflow retry policies, memo, and
//! reset. Each of them closes a run (or, for reset, forks it) and starts
//! the next run of the chain, which the edge commits together with the
//! close.

use expect_test::expect;

use super::harness::check;

#[test]
fn continue_as_new_closes_the_run_and_starts_the_next_with_options_carried() {
    check(
        "
        start run_timeout=1h execution_timeout=1d task_timeout=20s memo={\"team\":\"a\"} attempts=3
        @5s complete-wft | marker m
        ",
        "
        @5s signal go
        @6s complete-wft | continue-as-new input={\"n\":1}
        ",
        expect![[r#"
            > @5s signal go
              + 6 @5s WorkflowExecutionSignaled go input=null
              + 7 @5s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 30s lease 25s
              dispatch workflow task
              = RUNNING, workflow task 2/1
            > @6s complete-wft | continue-as-new input={"n":1}
              + 8 @6s WorkflowTaskStarted scheduled=7
              + 9 @6s WorkflowTaskCompleted scheduled=7 started=8
              + 10 @6s WorkflowExecutionContinuedAsNew new_run=2 type=Order queue=orders task_timeout=20s input={"n":1} run_timeout=3600s memo={"team":"a"}
              dequeue workflow_task
              dequeue all
              = CONTINUED_AS_NEW
              next run 2:
              + 1 @6s WorkflowExecutionStarted type=Order queue=orders task_timeout=20s run_timeout=3600s execution_timeout=86400s expires=86400s initiator=WORKFLOW continued=1 first=1 memo={"team":"a"} retry=1s*2^n max_interval=100s attempts=3 input={"n":1}
              + 2 @6s WorkflowTaskScheduled attempt=1
              enqueue run_timeout at 3606s
              enqueue workflow_task at 31s lease 25s
              dispatch workflow task
              = RUNNING, workflow task 1/1
        "#]],
    );
}

#[test]
fn continue_as_new_uses_the_options_it_changes() {
    check(
        "
        start run_timeout=1h task_timeout=20s memo={\"team\":\"a\"}
        ",
        "
        @1s complete-wft | continue-as-new input=2 type=Invoice queue=billing run_timeout=10m task_timeout=5s memo={\"team\":\"b\"} backoff=30s
        @20s signal early
        @31s fire-backoff
        ",
        expect![[r#"
            > @1s complete-wft | continue-as-new input=2 type=Invoice queue=billing run_timeout=10m task_timeout=5s memo={"team":"b"} backoff=30s
              + 3 @1s WorkflowTaskStarted scheduled=2
              + 4 @1s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @1s WorkflowExecutionContinuedAsNew new_run=2 type=Invoice queue=billing task_timeout=5s input=2 run_timeout=600s backoff=30s memo={"team":"b"}
              dequeue workflow_task
              dequeue all
              = CONTINUED_AS_NEW
              next run 2:
              + 1 @1s WorkflowExecutionStarted type=Invoice queue=billing task_timeout=5s run_timeout=600s backoff=30s initiator=WORKFLOW continued=1 first=1 memo={"team":"b"} input=2
              enqueue run_timeout at 631s
              enqueue workflow_backoff at 31s
              = RUNNING
            > @20s signal early
              + 2 @20s WorkflowExecutionSignaled early input=null
              = RUNNING
            > @31s fire-backoff
              + 3 @31s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 41s lease 10s
              dispatch workflow task
              = RUNNING, workflow task 1/1
        "#]],
    );
}

#[test]
fn continue_as_new_is_refused_while_events_are_buffered() {
    check(
        "
        start
        complete-wft | timer t1 1s
        @1s fire-timer t1
        @1s push-wft
        ",
        "
        @2s signal go
        @3s complete-wft | continue-as-new input=1
        @3s complete-wft | continue-as-new input=1 queue=
        ",
        expect![[r#"
            > @2s signal go
              = RUNNING, workflow task 2/1, 1 buffered
            > @3s complete-wft | continue-as-new input=1
              + 8 @1s WorkflowTaskStarted scheduled=7
              + 9 @3s WorkflowTaskFailed scheduled=7 started=8 UNHANDLED_COMMAND "new events arrived while the workflow task was in flight; the workflow must see them before it closes"
              + 10 @2s WorkflowExecutionSignaled go input=null
              + 11 @3s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
            > @3s complete-wft | continue-as-new input=1 queue=
              + 12 @3s WorkflowTaskStarted scheduled=11
              + 13 @3s WorkflowTaskFailed scheduled=11 started=12 BAD_CONTINUE_AS_NEW_ATTRIBUTES "task_queue must not be empty"
              enqueue workflow_task at 3.2s lease 15s
              = RUNNING, workflow task 3/2 transient due 3.2s
        "#]],
    );
}

#[test]
fn a_failed_run_is_retried_with_back_off_until_attempts_run_out() {
    check(
        "
        start attempts=3 initial=2s input=\"order\"
        ",
        "
        @1s complete-wft | fail-workflow message=flaky type=IOError
        @2s signal while-backing-off
        @2s fire-backoff
        @3s fire-backoff
        @3s complete-wft | fail-workflow message=flaky type=IOError
        @7s fire-backoff
        @7s complete-wft | fail-workflow message=flaky type=IOError
        ",
        expect![[r#"
            > @1s complete-wft | fail-workflow message=flaky type=IOError
              + 3 @1s WorkflowTaskStarted scheduled=2
              + 4 @1s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @1s WorkflowExecutionFailed IN_PROGRESS IOError "flaky" new_run=2
              dequeue workflow_task
              dequeue all
              = FAILED
              next run 2:
              + 1 @1s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s attempt=2 backoff=2s initiator=RETRY continued=1 first=1 continued_failure=IOError "flaky" retry=2s*2^n max_interval=200s attempts=3 input="order"
              enqueue workflow_backoff at 3s
              = RUNNING
            > @2s signal while-backing-off
              + 2 @2s WorkflowExecutionSignaled while-backing-off input=null
              = RUNNING
            > @2s fire-backoff
              enqueue workflow_backoff at 3s
              = RUNNING
            > @3s fire-backoff
              + 3 @3s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 1/1
            > @3s complete-wft | fail-workflow message=flaky type=IOError
              + 4 @3s WorkflowTaskStarted scheduled=3
              + 5 @3s WorkflowTaskCompleted scheduled=3 started=4
              + 6 @3s WorkflowExecutionFailed IN_PROGRESS IOError "flaky" new_run=3
              dequeue workflow_task
              dequeue all
              = FAILED
              next run 3:
              + 1 @3s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s attempt=3 backoff=4s initiator=RETRY continued=2 first=1 continued_failure=IOError "flaky" retry=2s*2^n max_interval=200s attempts=3 input="order"
              enqueue workflow_backoff at 7s
              = RUNNING
            > @7s fire-backoff
              + 2 @7s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 22s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 1/1
            > @7s complete-wft | fail-workflow message=flaky type=IOError
              + 3 @7s WorkflowTaskStarted scheduled=2
              + 4 @7s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @7s WorkflowExecutionFailed MAXIMUM_ATTEMPTS_REACHED IOError "flaky"
              dequeue workflow_task
              dequeue all
              = FAILED
        "#]],
    );
}

#[test]
fn non_retryable_failures_and_cancellations_are_not_retried() {
    check(
        "
        start non_retryable=CardDeclined
        ",
        "
        complete-wft | fail-workflow type=CardDeclined
        ",
        expect![[r#"
            > complete-wft | fail-workflow type=CardDeclined
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s WorkflowExecutionFailed NON_RETRYABLE_FAILURE CardDeclined "gave up"
              dequeue workflow_task
              dequeue all
              = FAILED
        "#]],
    );
    check(
        "
        start attempts=5
        ",
        "
        complete-wft | fail-workflow type=IOError non_retryable
        ",
        expect![[r#"
            > complete-wft | fail-workflow type=IOError non_retryable
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s WorkflowExecutionFailed NON_RETRYABLE_FAILURE IOError "gave up" non_retryable
              dequeue workflow_task
              dequeue all
              = FAILED
        "#]],
    );
    check(
        "
        start attempts=5
        complete-wft | timer t1 1h
        request-cancel
        ",
        "
        complete-wft | cancel-workflow
        ",
        expect![[r#"
            > complete-wft | cancel-workflow
              + 8 @0s WorkflowTaskStarted scheduled=7
              + 9 @0s WorkflowTaskCompleted scheduled=7 started=8
              + 10 @0s WorkflowExecutionCanceled
              dequeue workflow_task
              dequeue all
              = CANCELED, cancel requested
              = timer t1 #5 fires at 3600s
        "#]],
    );
}

#[test]
fn a_run_timeout_is_retried_but_the_execution_timeout_spans_the_chain() {
    check(
        "
        start run_timeout=1m execution_timeout=150s initial=10s
        ",
        "
        @1m fire-run-timeout
        @70s fire-backoff
        @130s fire-run-timeout
        ",
        expect![[r#"
            > @1m fire-run-timeout
              + 3 @60s WorkflowExecutionTimedOut IN_PROGRESS new_run=2
              dequeue all
              = TIMED_OUT
              next run 2:
              + 1 @60s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s run_timeout=60s execution_timeout=150s attempt=2 expires=150s backoff=10s initiator=RETRY continued=1 first=1 continued_failure=TimeoutError "workflow run timed out" retry=10s*2^n max_interval=1000s attempts=0
              enqueue run_timeout at 130s
              enqueue workflow_backoff at 70s
              = RUNNING
            > @70s fire-backoff
              + 2 @70s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 85s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 1/1
            > @130s fire-run-timeout
              + 3 @130s WorkflowExecutionTimedOut TIMEOUT
              dequeue all
              = TIMED_OUT
        "#]],
    );
}

#[test]
fn reset_copies_the_history_up_to_the_point_and_reapplies_later_signals() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s
        @1s complete-activity a1 result=1
        @2s complete-wft | schedule a2 stc=10s | timer t1 1h
        @3s signal approve input=true
        @4s complete-wft
        @5s complete-activity a2 result=2
        @6s complete-wft | complete result=3
        ",
        "
        @10s reset 10 reason=bad-deploy
        ",
        expect![[r#"
            > @10s reset 10 reason=bad-deploy
              reset run 2:
              + 1 @0s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s
              + 2 @0s WorkflowTaskScheduled attempt=1
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s ActivityTaskScheduled a1 type=Work stc=10s
              + 6 @1s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @1s ActivityTaskCompleted scheduled=5 started=6 result=1
              + 8 @1s WorkflowTaskScheduled attempt=1
              + 9 @2s WorkflowTaskStarted scheduled=8
              + 10 @10s WorkflowTaskFailed scheduled=8 started=9 RESET_WORKFLOW "bad-deploy" base=1 new=2
              + 11 @10s WorkflowExecutionSignaled approve input=true
              + 12 @10s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 25s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}

#[test]
fn reset_rearms_the_timers_and_activities_open_at_the_point() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s s2c=1h
        @1s complete-activity a1 result=1
        @2s complete-wft | schedule a2 stc=10s | timer t1 1h
        @3s signal approve input=true
        @4s complete-wft
        @5s complete-activity a2 result=2
        @6s complete-wft | complete result=3
        ",
        "
        @10s reset 16
        ",
        expect![[r#"
            > @10s reset 16
              reset run 2:
              + 1 @0s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s
              + 2 @0s WorkflowTaskScheduled attempt=1
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s ActivityTaskScheduled a1 type=Work stc=10s s2c=3600s
              + 6 @1s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @1s ActivityTaskCompleted scheduled=5 started=6 result=1
              + 8 @1s WorkflowTaskScheduled attempt=1
              + 9 @2s WorkflowTaskStarted scheduled=8
              + 10 @2s WorkflowTaskCompleted scheduled=8 started=9
              + 11 @2s ActivityTaskScheduled a2 type=Work stc=10s
              + 12 @2s TimerStarted t1 after=3600s
              + 13 @3s WorkflowExecutionSignaled approve input=true
              + 14 @3s WorkflowTaskScheduled attempt=1
              + 15 @4s WorkflowTaskStarted scheduled=14
              + 16 @10s WorkflowTaskFailed scheduled=14 started=15 RESET_WORKFLOW "bad deploy" base=1 new=2
              + 17 @10s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 25s lease 15s
              dispatch workflow task
              enqueue timer/t1 #12 at 3602s
              dequeue activity/11, activity/11/schedule-to-start
              enqueue activity/11/start-to-close attempt 1 at 20s
              dispatch activity #11
              = RUNNING, workflow task 4/1
              = activity a2 #11 attempt 1, started at 10s
              = timer t1 #12 fires at 3602s
        "#]],
    );
}

#[test]
fn reset_without_signal_reapply_and_to_the_first_or_last_task() {
    let given = "
        start
        complete-wft | timer t1 1h
        @3s signal approve input=true
        @4s complete-wft
        ";
    check(
        given,
        "@10s reset first no_reapply",
        expect![[r#"
            > @10s reset first no_reapply
              old run 1:
              + 10 @10s WorkflowExecutionTerminated "reset to run 2"
              dequeue all
              = TERMINATED
              = timer t1 #5 fires at 3600s
              reset run 2:
              + 1 @0s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s
              + 2 @0s WorkflowTaskScheduled attempt=1
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @10s WorkflowTaskFailed scheduled=2 started=3 RESET_WORKFLOW "bad deploy" base=1 new=2
              + 5 @10s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 25s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
    check(
        given,
        "@10s reset last",
        expect![[r#"
            > @10s reset last
              old run 1:
              + 10 @10s WorkflowExecutionTerminated "reset to run 2"
              dequeue all
              = TERMINATED
              = timer t1 #5 fires at 3600s
              reset run 2:
              + 1 @0s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s
              + 2 @0s WorkflowTaskScheduled attempt=1
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s TimerStarted t1 after=3600s
              + 6 @3s WorkflowExecutionSignaled approve input=true
              + 7 @3s WorkflowTaskScheduled attempt=1
              + 8 @4s WorkflowTaskStarted scheduled=7
              + 9 @10s WorkflowTaskFailed scheduled=7 started=8 RESET_WORKFLOW "bad deploy" base=1 new=2
              + 10 @10s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 25s lease 15s
              dispatch workflow task
              enqueue timer/t1 #5 at 3600s
              = RUNNING, workflow task 3/1
              = timer t1 #5 fires at 3600s
        "#]],
    );
}

#[test]
fn reset_refuses_points_that_are_not_completed_workflow_tasks() {
    check(
        "
        start
        complete-wft | timer t1 1h
        ",
        "
        reset 3
        reset 99
        reset 4 reason=
        ",
        expect![[r#"
            > reset 3
              rejected: event 3 of run 00000000-0000-0000-0000-000000000001 is not a WorkflowTaskCompleted event
            > reset 99
              rejected: event 99 of run 00000000-0000-0000-0000-000000000001 is not a WorkflowTaskCompleted event
            > reset 4 reason=
              rejected: reason must not be empty
        "#]],
    );
}

#[test]
fn reset_of_a_child_leaves_the_report_to_the_parent_to_the_reset_run() {
    check(
        "
        start parent=5
        complete-wft | timer t1 1h
        ",
        "
        @10s reset last
        @20s complete-wft | complete result=1
        ",
        expect![[r#"
            > @10s reset last
              old run 1:
              + 6 @10s WorkflowExecutionTerminated "reset to run 2"
              dequeue all
              = TERMINATED
              = timer t1 #5 fires at 3600s
              reset run 2:
              + 1 @0s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s parent=parent-1/run 9 initiated=5 TERMINATE
              + 2 @0s WorkflowTaskScheduled attempt=1
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @10s WorkflowTaskFailed scheduled=2 started=3 RESET_WORKFLOW "bad deploy" base=1 new=2
              + 5 @10s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 25s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
            > @20s complete-wft | complete result=1
              + 6 @20s WorkflowTaskStarted scheduled=5
              + 7 @20s WorkflowTaskCompleted scheduled=5 started=6
              + 8 @20s WorkflowExecutionCompleted result=1
              dequeue workflow_task
              dequeue all
              enqueue notify_parent at 20s
              = COMPLETED
        "#]],
    );
}
