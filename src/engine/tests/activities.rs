//! Activities: scheduling, results, retries and fencing.

use expect_test::expect;

use super::harness::check;

#[test]
fn three_activities_run_in_sequence_and_the_workflow_completes() {
    check(
        "",
        "
        start
        @1s complete-wft | schedule a1 stc=10s
        @2s complete-activity a1 result=1
        @3s complete-wft | schedule a2 stc=10s
        @4s complete-activity a2 result=2
        @5s complete-wft | schedule a3 stc=10s
        @6s complete-activity a3 result=3
        @7s complete-wft | complete result=6
        ",
        expect![[r#"
            > start
              + 1 @0s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s
              + 2 @0s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 15s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 1/1
            > @1s complete-wft | schedule a1 stc=10s
              + 3 @1s WorkflowTaskStarted scheduled=2
              + 4 @1s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @1s ActivityTaskScheduled a1 type=Work stc=10s
              dequeue workflow_task, activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 1 at 11s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 1, started at 1s
            > @2s complete-activity a1 result=1
              + 6 @2s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @2s ActivityTaskCompleted scheduled=5 started=6 result=1
              + 8 @2s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 17s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
            > @3s complete-wft | schedule a2 stc=10s
              + 9 @3s WorkflowTaskStarted scheduled=8
              + 10 @3s WorkflowTaskCompleted scheduled=8 started=9
              + 11 @3s ActivityTaskScheduled a2 type=Work stc=10s
              dequeue workflow_task, activity/11, activity/11/schedule-to-start
              enqueue activity/11/start-to-close attempt 1 at 13s
              dispatch activity #11
              = RUNNING
              = activity a2 #11 attempt 1, started at 3s
            > @4s complete-activity a2 result=2
              + 12 @4s ActivityTaskStarted scheduled=11 attempt=1
              + 13 @4s ActivityTaskCompleted scheduled=11 started=12 result=2
              + 14 @4s WorkflowTaskScheduled attempt=1
              dequeue activity/11, activity/11/start-to-close, activity/11/heartbeat, activity/11/schedule-to-start, activity/11/schedule-to-close
              enqueue workflow_task at 19s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
            > @5s complete-wft | schedule a3 stc=10s
              + 15 @5s WorkflowTaskStarted scheduled=14
              + 16 @5s WorkflowTaskCompleted scheduled=14 started=15
              + 17 @5s ActivityTaskScheduled a3 type=Work stc=10s
              dequeue workflow_task, activity/17, activity/17/schedule-to-start
              enqueue activity/17/start-to-close attempt 1 at 15s
              dispatch activity #17
              = RUNNING
              = activity a3 #17 attempt 1, started at 5s
            > @6s complete-activity a3 result=3
              + 18 @6s ActivityTaskStarted scheduled=17 attempt=1
              + 19 @6s ActivityTaskCompleted scheduled=17 started=18 result=3
              + 20 @6s WorkflowTaskScheduled attempt=1
              dequeue activity/17, activity/17/start-to-close, activity/17/heartbeat, activity/17/schedule-to-start, activity/17/schedule-to-close
              enqueue workflow_task at 21s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 4/1
            > @7s complete-wft | complete result=6
              + 21 @7s WorkflowTaskStarted scheduled=20
              + 22 @7s WorkflowTaskCompleted scheduled=20 started=21
              + 23 @7s WorkflowExecutionCompleted result=6
              dequeue workflow_task
              dequeue all
              = COMPLETED
        "#]],
    );
}

#[test]
fn failed_attempts_are_retried_after_exponential_backoff() {
    // Temporal's default policy: 1s, 2s, 4s, ... The retry waits in the
    // task table; the dispatcher claims it and starts the next attempt.
    check(
        "
        start
        complete-wft | schedule a1 stc=10s
        ",
        "
        @10s fail-activity a1 type=IOError message=first
        @11s start-attempt a1
        @12s fail-activity a1 message=second
        @14s start-attempt a1
        @15s fail-activity a1 message=third
        @19s start-attempt a1
        @20s complete-activity a1
        ",
        expect![[r#"
            > @10s fail-activity a1 type=IOError message=first
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 11s
              = RUNNING
              = activity a1 #5 attempt 2, waiting until 11s, last failure IOError "first"
            > @11s start-attempt a1
              dequeue activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 2 at 21s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 2, started at 11s, last failure IOError "first"
            > @12s fail-activity a1 message=second
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 14s
              = RUNNING
              = activity a1 #5 attempt 3, waiting until 14s, last failure IOError "second"
            > @14s start-attempt a1
              dequeue activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 3 at 24s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 3, started at 14s, last failure IOError "second"
            > @15s fail-activity a1 message=third
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 19s
              = RUNNING
              = activity a1 #5 attempt 4, waiting until 19s, last failure IOError "third"
            > @19s start-attempt a1
              dequeue activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 4 at 29s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 4, started at 19s, last failure IOError "third"
            > @20s complete-activity a1
              + 6 @20s ActivityTaskStarted scheduled=5 attempt=4 last_failure=IOError "third"
              + 7 @20s ActivityTaskCompleted scheduled=5 started=6 result="ok"
              + 8 @20s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 35s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn backoff_is_capped_at_the_maximum_interval() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s initial=2s coefficient=3 max_interval=10s
        ",
        "
        @1s fail-activity a1
        @3s start-attempt a1
        @3s fail-activity a1
        @9s start-attempt a1
        @9s fail-activity a1
        @19s start-attempt a1
        @19s fail-activity a1
        ",
        expect![[r#"
            > @1s fail-activity a1
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 3s
              = RUNNING
              = activity a1 #5 attempt 2, waiting until 3s, last failure IOError "boom"
            > @3s start-attempt a1
              dequeue activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 2 at 13s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 2, started at 3s, last failure IOError "boom"
            > @3s fail-activity a1
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 9s
              = RUNNING
              = activity a1 #5 attempt 3, waiting until 9s, last failure IOError "boom"
            > @9s start-attempt a1
              dequeue activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 3 at 19s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 3, started at 9s, last failure IOError "boom"
            > @9s fail-activity a1
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 19s
              = RUNNING
              = activity a1 #5 attempt 4, waiting until 19s, last failure IOError "boom"
            > @19s start-attempt a1
              dequeue activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 4 at 29s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 4, started at 19s, last failure IOError "boom"
            > @19s fail-activity a1
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 29s
              = RUNNING
              = activity a1 #5 attempt 5, waiting until 29s, last failure IOError "boom"
        "#]],
    );
}

#[test]
fn failure_flagged_non_retryable_closes_the_activity_at_once() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s
        ",
        "@2s fail-activity a1 type=CardDeclined non_retryable",
        expect![[r#"
            > @2s fail-activity a1 type=CardDeclined non_retryable
              + 6 @2s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @2s ActivityTaskFailed scheduled=5 started=6 NON_RETRYABLE_FAILURE CardDeclined "boom" non_retryable
              + 8 @2s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 17s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn failure_of_a_non_retryable_type_closes_the_activity_at_once() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s non_retryable=CardDeclined,Fraud
        @1s fail-activity a1 type=IOError
        @2s start-attempt a1
        ",
        "@3s fail-activity a1 type=Fraud",
        expect![[r#"
            > @3s fail-activity a1 type=Fraud
              + 6 @3s ActivityTaskStarted scheduled=5 attempt=2 last_failure=IOError "boom"
              + 7 @3s ActivityTaskFailed scheduled=5 started=6 NON_RETRYABLE_FAILURE Fraud "boom"
              + 8 @3s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn maximum_attempts_ends_the_retries() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s attempts=2
        @1s fail-activity a1 message=first
        @2s start-attempt a1
        ",
        "@3s fail-activity a1 message=second",
        expect![[r#"
            > @3s fail-activity a1 message=second
              + 6 @3s ActivityTaskStarted scheduled=5 attempt=2 last_failure=IOError "first"
              + 7 @3s ActivityTaskFailed scheduled=5 started=6 MAXIMUM_ATTEMPTS_REACHED IOError "second"
              + 8 @3s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn retry_due_past_the_schedule_to_close_deadline_is_not_attempted() {
    // Scheduled at 0s with schedule_to_close 10s: a failure at 9.5s would
    // retry at 10.5s, past the deadline, so the activity fails with
    // retry state TIMEOUT instead.
    check(
        "
        start
        complete-wft | schedule a1 stc=5s s2c=10s
        @4s fail-activity a1 message=first
        @5s start-attempt a1
        ",
        "@9.5s fail-activity a1 message=second",
        expect![[r#"
            > @9.5s fail-activity a1 message=second
              + 6 @9.5s ActivityTaskStarted scheduled=5 attempt=2 last_failure=IOError "first"
              + 7 @9.5s ActivityTaskFailed scheduled=5 started=6 TIMEOUT IOError "second"
              + 8 @9.5s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 24.5s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn attempt_claimed_before_its_backoff_ends_is_rearmed() {
    // A node whose clock runs ahead claims the row early: the engine puts
    // it back for the time the back-off really ends.
    check(
        "
        start
        complete-wft | schedule a1 stc=10s
        @1s fail-activity a1
        ",
        "
        @1.5s start-attempt a1
        @2s start-attempt a1
        @2s start-attempt a1
        ",
        expect![[r#"
            > @1.5s start-attempt a1
              enqueue activity/5 at 2s
              = RUNNING
              = activity a1 #5 attempt 2, waiting until 2s, last failure IOError "boom"
            > @2s start-attempt a1
              dequeue activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 2 at 12s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 2, started at 2s, last failure IOError "boom"
            > @2s start-attempt a1
              rejected: stale task: activity attempt already started
        "#]],
    );
}

#[test]
fn undelivered_push_is_retried_without_counting_an_attempt() {
    // Connection refused, 429, 503: the handler never ran. The same attempt
    // is pushed again after the delivery back-off (200ms, 400ms, ...).
    check(
        "
        start
        complete-wft | schedule a1 stc=10s s2s=30s
        ",
        "
        @1s undelivered a1
        @1.2s start-attempt a1
        @1.3s undelivered a1
        @1.7s start-attempt a1
        @2s complete-activity a1
        ",
        expect![[r#"
            > @1s undelivered a1
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 1.2s
              enqueue activity/5/schedule-to-start attempt 1 at 31s
              = RUNNING
              = activity a1 #5 attempt 1, waiting until 1.2s, undelivered 1
            > @1.2s start-attempt a1
              dequeue activity/5
              enqueue activity/5/start-to-close attempt 1 at 11.2s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 1, started at 1.2s, undelivered 1
            > @1.3s undelivered a1
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 1.7s
              = RUNNING
              = activity a1 #5 attempt 1, waiting until 1.7s, undelivered 2
            > @1.7s start-attempt a1
              dequeue activity/5
              enqueue activity/5/start-to-close attempt 1 at 11.7s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 1, started at 1.7s, undelivered 2
            > @2s complete-activity a1
              + 6 @2s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @2s ActivityTaskCompleted scheduled=5 started=6 result="ok"
              + 8 @2s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 17s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn transport_failure_of_a_waiting_attempt_is_stale() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s
        @1s undelivered a1
        ",
        "@1.1s undelivered a1",
        expect![[r#"
            > @1.1s undelivered a1
              rejected: stale task: activity attempt is not started
        "#]],
    );
}

#[test]
fn duplicate_completion_is_stale_and_changes_nothing() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s
        @1s complete-activity a1 result=1
        ",
        "
        @2s complete-activity a1 result=2
        @2s fail-activity a1
        @2s heartbeat a1
        ",
        expect![[r#"
            > @2s complete-activity a1 result=2
              rejected: stale task: activity is not open
            > @2s fail-activity a1
              rejected: stale task: activity is not open
            > @2s heartbeat a1
              rejected: stale task: activity is not open
        "#]],
    );
}

#[test]
fn answer_for_another_attempt_is_stale() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s
        @1s fail-activity a1
        @2s start-attempt a1
        ",
        "
        @3s complete-activity a1 attempt=1
        @3s fail-activity a1 attempt=3
        @3s heartbeat a1 attempt=1
        @3s complete-activity a1 attempt=2
        ",
        expect![[r#"
            > @3s complete-activity a1 attempt=1
              rejected: stale task: activity attempt 1 is not current (current 2)
            > @3s fail-activity a1 attempt=3
              rejected: stale task: activity attempt 3 is not current (current 2)
            > @3s heartbeat a1 attempt=1
              rejected: stale task: activity attempt 1 is not current (current 2)
            > @3s complete-activity a1 attempt=2
              + 6 @3s ActivityTaskStarted scheduled=5 attempt=2 last_failure=IOError "boom"
              + 7 @3s ActivityTaskCompleted scheduled=5 started=6 result="ok"
              + 8 @3s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn result_over_the_payload_limit_fails_the_attempt_non_retryably() {
    check(
        "
        limits max_payload=16
        start
        complete-wft | schedule a1 stc=10s
        ",
        "
        @1s complete-activity a1 result=\"a-result-that-is-far-too-large\"
        ",
        expect![[r#"
            > @1s complete-activity a1 result="a-result-that-is-far-too-large"
              + 6 @1s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @1s ActivityTaskFailed scheduled=5 started=6 NON_RETRYABLE_FAILURE PayloadTooLarge "activity result of 32 bytes exceeds the limit of 16 bytes" non_retryable
              + 8 @1s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 16s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn heartbeat_details_are_kept_and_handed_to_the_next_attempt() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s
        ",
        "
        @1s heartbeat a1 details={\"page\":3}
        @2s heartbeat a1
        @3s fail-activity a1
        @4s start-attempt a1
        @5s heartbeat a1 details={\"page\":4}
        ",
        expect![[r#"
            > @1s heartbeat a1 details={"page":3}
              = RUNNING
              = activity a1 #5 attempt 1, started at 0s, heartbeat at 1s, details {"page":3}
            > @2s heartbeat a1
              = RUNNING
              = activity a1 #5 attempt 1, started at 0s, heartbeat at 2s, details {"page":3}
            > @3s fail-activity a1
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 4s
              = RUNNING
              = activity a1 #5 attempt 2, waiting until 4s, heartbeat at 2s, details {"page":3}, last failure IOError "boom"
            > @4s start-attempt a1
              dequeue activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 2 at 14s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 2, started at 4s, details {"page":3}, last failure IOError "boom"
            > @5s heartbeat a1 details={"page":4}
              = RUNNING
              = activity a1 #5 attempt 2, started at 4s, heartbeat at 5s, details {"page":4}, last failure IOError "boom"
        "#]],
    );
}

#[test]
fn oversized_heartbeat_details_are_refused() {
    check(
        "
        limits max_payload=8
        start
        complete-wft | schedule a1 stc=10s
        ",
        "@1s heartbeat a1 details=\"far-too-large-details\"",
        expect![[r#"
            > @1s heartbeat a1 details="far-too-large-details"
              rejected: payload of 23 bytes exceeds the limit of 8 bytes
        "#]],
    );
}

#[test]
fn async_completion_arrives_later_with_the_pushed_token() {
    // The handler answered 202; it completes through the API much later,
    // heartbeating meanwhile. Nothing but the token is needed.
    check(
        "
        start
        complete-wft | schedule a1 stc=1h hb=1m
        ",
        "
        @50s heartbeat a1 details=0.5
        @100s complete-activity a1 result=\"done\"
        ",
        expect![[r#"
            > @50s heartbeat a1 details=0.5
              = RUNNING
              = activity a1 #5 attempt 1, started at 0s, heartbeat at 50s, details 0.5
            > @100s complete-activity a1 result="done"
              + 6 @100s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @100s ActivityTaskCompleted scheduled=5 started=6 result="done"
              + 8 @100s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 115s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn activity_defaults_to_the_workflow_queue_and_may_name_another() {
    check(
        "start",
        "complete-wft | schedule a1 stc=10s | schedule a2 stc=10s queue=gpu input={\"n\":1}",
        expect![[r#"
            > complete-wft | schedule a1 stc=10s | schedule a2 stc=10s queue=gpu input={"n":1}
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s ActivityTaskScheduled a1 type=Work stc=10s
              + 6 @0s ActivityTaskScheduled a2 type=Work stc=10s queue=gpu input={"n":1}
              dequeue workflow_task, activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 1 at 10s
              dispatch activity #5
              dequeue activity/6, activity/6/schedule-to-start
              enqueue activity/6/start-to-close attempt 1 at 10s
              dispatch activity #6
              = RUNNING
              = activity a1 #5 attempt 1, started at 0s
              = activity a2 #6 attempt 1, started at 0s
        "#]],
    );
}

#[test]
fn activity_scheduled_by_a_closing_response_is_never_pushed() {
    // The run closes in the same transaction: its rows are dropped, and
    // so is the push.
    check(
        "start",
        "complete-wft | schedule a1 stc=10s | complete",
        expect![[r#"
            > complete-wft | schedule a1 stc=10s | complete
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s ActivityTaskScheduled a1 type=Work stc=10s
              + 6 @0s WorkflowExecutionCompleted result=null
              dequeue workflow_task, activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 1 at 10s
              dequeue all
              = COMPLETED
              = activity a1 #5 attempt 1, started at 0s
        "#]],
    );
}
