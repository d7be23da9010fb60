//! The four activity timeouts. Each is a row in the task table that the
//! timer service fires as `FireTimer(ActivityTimeout)`; a row that fires
//! before the engine's own deadline is put back (re-armed).

use expect_test::expect;

use super::harness::check;

#[test]
fn start_to_close_timeout_fails_the_attempt_and_retries() {
    check(
        "
        start
        @1s complete-wft | schedule a1 stc=10s
        ",
        "
        @11s fire-timeout a1 start-to-close
        @12s start-attempt a1
        @22s fire-timeout a1 start-to-close
        ",
        expect![[r#"
            > @11s fire-timeout a1 start-to-close
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 12s
              = RUNNING
              = activity a1 #5 attempt 2, waiting until 12s, last failure TimeoutError "activity start-to-close timeout"
            > @12s start-attempt a1
              dequeue activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 2 at 22s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 2, started at 12s, last failure TimeoutError "activity start-to-close timeout"
            > @22s fire-timeout a1 start-to-close
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 24s
              = RUNNING
              = activity a1 #5 attempt 3, waiting until 24s, last failure TimeoutError "activity start-to-close timeout" (cause: TimeoutError "activity start-to-close timeout")
        "#]],
    );
}

#[test]
fn start_to_close_timer_fired_early_is_rearmed() {
    check(
        "
        start
        @1s complete-wft | schedule a1 stc=10s
        ",
        "@5s fire-timeout a1 start-to-close",
        expect![[r#"
            > @5s fire-timeout a1 start-to-close
              enqueue activity/5/start-to-close attempt 1 at 11s
              = RUNNING
              = activity a1 #5 attempt 1, started at 1s
        "#]],
    );
}

#[test]
fn start_to_close_deadline_is_bounded_by_schedule_to_close() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s s2c=15s
        @5s fail-activity a1
        @6s start-attempt a1
        ",
        "
        @15s fire-timeout a1 start-to-close
        ",
        expect![[r#"
            > @15s fire-timeout a1 start-to-close
              + 6 @15s ActivityTaskStarted scheduled=5 attempt=2 last_failure=IOError "boom"
              + 7 @15s ActivityTaskTimedOut scheduled=5 started=6 TIMEOUT TimeoutError "activity start-to-close timeout" (cause: IOError "boom")
              + 8 @15s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 30s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn heartbeat_timeout_fails_an_attempt_that_stopped_heartbeating() {
    // The failure carries the last heartbeat details.
    check(
        "
        start
        complete-wft | schedule a1 stc=60s hb=5s
        @3s heartbeat a1 details=7
        ",
        "@8s fire-timeout a1 heartbeat",
        expect![[r#"
            > @8s fire-timeout a1 heartbeat
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 9s
              = RUNNING
              = activity a1 #5 attempt 2, waiting until 9s, heartbeat at 3s, details 7, last failure TimeoutError "activity heartbeat timeout" details=7
        "#]],
    );
}

#[test]
fn heartbeat_timer_is_rearmed_after_a_recent_heartbeat() {
    check(
        "
        start
        complete-wft | schedule a1 stc=60s hb=5s
        ",
        "
        @4s heartbeat a1
        @5s fire-timeout a1 heartbeat
        @8s heartbeat a1
        @9s fire-timeout a1 heartbeat
        @13s fire-timeout a1 heartbeat
        ",
        expect![[r#"
            > @4s heartbeat a1
              = RUNNING
              = activity a1 #5 attempt 1, started at 0s, heartbeat at 4s
            > @5s fire-timeout a1 heartbeat
              enqueue activity/5/heartbeat attempt 1 at 9s
              = RUNNING
              = activity a1 #5 attempt 1, started at 0s, heartbeat at 4s
            > @8s heartbeat a1
              = RUNNING
              = activity a1 #5 attempt 1, started at 0s, heartbeat at 8s
            > @9s fire-timeout a1 heartbeat
              enqueue activity/5/heartbeat attempt 1 at 13s
              = RUNNING
              = activity a1 #5 attempt 1, started at 0s, heartbeat at 8s
            > @13s fire-timeout a1 heartbeat
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 14s
              = RUNNING
              = activity a1 #5 attempt 2, waiting until 14s, heartbeat at 8s, last failure TimeoutError "activity heartbeat timeout"
        "#]],
    );
}

#[test]
fn schedule_to_start_timeout_closes_an_attempt_that_never_got_pushed() {
    // Schedule-to-start is not retried (as in Temporal): the activity
    // closes with retry state TIMEOUT.
    check(
        "
        start
        complete-wft | schedule a1 stc=10s s2s=5s
        @1s undelivered a1
        ",
        "@6s fire-timeout a1 schedule-to-start",
        expect![[r#"
            > @6s fire-timeout a1 schedule-to-start
              + 6 @6s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @6s ActivityTaskTimedOut scheduled=5 started=6 TIMEOUT TimeoutError "activity schedule-to-start timeout"
              + 8 @6s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 21s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn schedule_to_start_clock_keeps_running_across_failed_repushes() {
    // Armed at the first transport failure, the timer survives the re-push
    // (which may fail again) and closes the activity if the handler is
    // still unreachable when it fires.
    check(
        "
        start
        complete-wft | schedule a1 stc=10s s2s=5s
        ",
        "
        @1s undelivered a1
        @1.2s start-attempt a1
        @1.3s undelivered a1
        @1.7s start-attempt a1
        @1.8s undelivered a1
        @6s fire-timeout a1 schedule-to-start
        ",
        expect![[r#"
            > @1s undelivered a1
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 1.2s
              enqueue activity/5/schedule-to-start attempt 1 at 6s
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
            > @1.8s undelivered a1
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 2.6s
              = RUNNING
              = activity a1 #5 attempt 1, waiting until 2.6s, undelivered 3
            > @6s fire-timeout a1 schedule-to-start
              + 6 @6s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @6s ActivityTaskTimedOut scheduled=5 started=6 TIMEOUT TimeoutError "activity schedule-to-start timeout"
              + 8 @6s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 21s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn schedule_to_start_timer_during_a_repush_looks_again_at_the_attempt_deadline() {
    // The re-push is in flight: the handler may be running it, or the push
    // may still fail. The timer comes back when the attempt's own
    // start-to-close deadline passes; by then the attempt has moved on.
    check(
        "
        start
        complete-wft | schedule a1 stc=10s s2s=5s
        @1s undelivered a1
        @1.2s start-attempt a1
        ",
        "
        @6s fire-timeout a1 schedule-to-start
        @8s heartbeat a1
        @11.2s fire-timeout a1 schedule-to-start
        ",
        expect![[r#"
            > @6s fire-timeout a1 schedule-to-start
              enqueue activity/5/schedule-to-start attempt 1 at 11.2s
              = RUNNING
              = activity a1 #5 attempt 1, started at 1.2s, undelivered 1
            > @8s heartbeat a1
              = RUNNING
              = activity a1 #5 attempt 1, started at 1.2s, heartbeat at 8s, undelivered 1
            > @11.2s fire-timeout a1 schedule-to-start
              rejected: stale task: timeout does not apply to the activity's phase
        "#]],
    );
}

#[test]
fn schedule_to_start_timer_of_a_delivered_attempt_is_stale() {
    // A retry arms schedule-to-start for its attempt; pushing the attempt
    // dequeues it. A row that fires anyway changes nothing.
    check(
        "
        start
        complete-wft | schedule a1 stc=10s s2s=5s
        @1s fail-activity a1
        @2s start-attempt a1
        ",
        "@7s fire-timeout a1 schedule-to-start",
        expect![[r#"
            > @7s fire-timeout a1 schedule-to-start
              rejected: stale task: timeout does not apply to the activity's phase
        "#]],
    );
}

#[test]
fn schedule_to_close_timeout_closes_the_activity_whatever_the_attempt() {
    check(
        "
        start
        complete-wft | schedule a1 stc=5s s2c=20s
        @5s fire-timeout a1 start-to-close
        @6s start-attempt a1
        @8s fail-activity a1
        ",
        "
        @19s fire-timeout a1 schedule-to-close
        @20s fire-timeout a1 schedule-to-close
        ",
        expect![[r#"
            > @19s fire-timeout a1 schedule-to-close
              enqueue activity/5/schedule-to-close at 20s
              = RUNNING
              = activity a1 #5 attempt 3, waiting until 10s, last failure IOError "boom"
            > @20s fire-timeout a1 schedule-to-close
              + 6 @20s ActivityTaskStarted scheduled=5 attempt=3 last_failure=IOError "boom"
              + 7 @20s ActivityTaskTimedOut scheduled=5 started=6 TIMEOUT TimeoutError "activity schedule-to-close timeout" (cause: IOError "boom")
              + 8 @20s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 35s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn timeout_of_an_earlier_attempt_is_stale() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s hb=2s
        @1s fail-activity a1
        @2s start-attempt a1
        ",
        "
        @11s fire-timeout a1 start-to-close attempt=1
        @11s fire-timeout a1 heartbeat attempt=1
        ",
        expect![[r#"
            > @11s fire-timeout a1 start-to-close attempt=1
              rejected: stale task: timer belongs to an earlier attempt
            > @11s fire-timeout a1 heartbeat attempt=1
              rejected: stale task: timer belongs to an earlier attempt
        "#]],
    );
}

#[test]
fn timeout_of_a_closed_activity_is_stale() {
    check(
        "
        start
        complete-wft | schedule a1 stc=10s s2c=1m
        @1s complete-activity a1
        ",
        "
        @11s fire-timeout a1 start-to-close
        @1m fire-timeout a1 schedule-to-close
        ",
        expect![[r#"
            > @11s fire-timeout a1 start-to-close
              rejected: stale task: activity is not open
            > @1m fire-timeout a1 schedule-to-close
              rejected: stale task: activity is not open
        "#]],
    );
}

#[test]
fn timeouts_are_defaulted_like_temporal() {
    // start_to_close defaults to schedule_to_close; schedule_to_start and
    // heartbeat are capped by it; one of the two is required.
    check(
        "start",
        "complete-wft | schedule a1 s2c=30s | schedule a2 s2c=30s s2s=1h | schedule a3 stc=10s hb=1m",
        expect![[r#"
            > complete-wft | schedule a1 s2c=30s | schedule a2 s2c=30s s2s=1h | schedule a3 stc=10s hb=1m
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s ActivityTaskScheduled a1 type=Work stc=30s s2c=30s
              + 6 @0s ActivityTaskScheduled a2 type=Work stc=30s s2c=30s s2s=30s
              + 7 @0s ActivityTaskScheduled a3 type=Work stc=10s hb=10s
              dequeue workflow_task
              enqueue activity/5/schedule-to-close at 30s
              dequeue activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 1 at 30s
              dispatch activity #5
              enqueue activity/6/schedule-to-close at 30s
              dequeue activity/6, activity/6/schedule-to-start
              enqueue activity/6/start-to-close attempt 1 at 30s
              dispatch activity #6
              dequeue activity/7, activity/7/schedule-to-start
              enqueue activity/7/start-to-close attempt 1 at 10s
              enqueue activity/7/heartbeat attempt 1 at 10s
              dispatch activity #7
              = RUNNING
              = activity a1 #5 attempt 1, started at 0s
              = activity a2 #6 attempt 1, started at 0s
              = activity a3 #7 attempt 1, started at 0s
        "#]],
    );
}
