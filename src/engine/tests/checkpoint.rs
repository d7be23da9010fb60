//! Checkpoints (docs/protocol.md §5.9): the first checkpoint of a session
//! answers the pushed task and starts its inline attempts unpushed; a
//! continuation reports those attempts and, only while nothing else
//! happened to the run and its `workflow_time` is plausible, appends a
//! speculative workflow task answered with the new commands.

use expect_test::expect;

use super::harness::{check, check_each};

/// A session whose first checkpoint started `a1` inline at 1s.
const SESSION: &str = "
    start
    @1s checkpoint first inline=a1 | schedule a1 stc=10s
";

#[test]
fn first_checkpoint_answers_the_task_and_starts_the_inline_attempts_without_pushing_them() {
    check(
        "start",
        "@1s checkpoint first inline=a1 | schedule a1 stc=10s hb=5s s2c=30s | schedule a2 stc=10s",
        expect![[r#"
            > @1s checkpoint first inline=a1 | schedule a1 stc=10s hb=5s s2c=30s | schedule a2 stc=10s
              + 3 @1s WorkflowTaskStarted scheduled=2
              + 4 @1s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @1s ActivityTaskScheduled a1 type=Work stc=10s s2c=30s hb=5s inline
              + 6 @1s ActivityTaskScheduled a2 type=Work stc=10s
              dequeue workflow_task
              enqueue activity/5/schedule-to-close at 31s
              dequeue activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 1 at 11s
              enqueue activity/5/heartbeat attempt 1 at 6s
              dequeue activity/6, activity/6/schedule-to-start
              enqueue activity/6/start-to-close attempt 1 at 11s
              dispatch activity #6
              = RUNNING
              = activity a1 #5 attempt 1, started at 1s
              = activity a2 #6 attempt 1, started at 1s
              checkpoint accepted=[] continued=true inline=a1#5 continuation=6@1s
        "#]],
    );
}

#[test]
fn continuation_appends_the_attempt_then_a_speculative_task_at_workflow_time() {
    check(
        SESSION,
        "
        @3s checkpoint complete=a1 result=7 time=2s inline=a2 | schedule a2 stc=10s
        @5s checkpoint complete=a2 result=8 time=4s | complete result=15
        ",
        expect![[r#"
            > @3s checkpoint complete=a1 result=7 time=2s inline=a2 | schedule a2 stc=10s
              + 6 @2s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @2s ActivityTaskCompleted scheduled=5 started=6 result=7
              + 8 @2s WorkflowTaskScheduled attempt=1
              + 9 @2s WorkflowTaskStarted scheduled=8
              + 10 @2s WorkflowTaskCompleted scheduled=8 started=9
              + 11 @2s ActivityTaskScheduled a2 type=Work stc=10s inline
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close, workflow_task, activity/11, activity/11/schedule-to-start
              enqueue activity/11/start-to-close attempt 1 at 12s
              = RUNNING
              = activity a2 #11 attempt 1, started at 2s
              checkpoint accepted=[true] continued=true inline=a2#11 continuation=11@2s
            > @5s checkpoint complete=a2 result=8 time=4s | complete result=15
              + 12 @4s ActivityTaskStarted scheduled=11 attempt=1
              + 13 @4s ActivityTaskCompleted scheduled=11 started=12 result=8
              + 14 @4s WorkflowTaskScheduled attempt=1
              + 15 @4s WorkflowTaskStarted scheduled=14
              + 16 @4s WorkflowTaskCompleted scheduled=14 started=15
              + 17 @4s WorkflowExecutionCompleted result=15
              dequeue activity/11, activity/11/start-to-close, activity/11/heartbeat, activity/11/schedule-to-start, activity/11/schedule-to-close, workflow_task
              dequeue all
              = COMPLETED
              checkpoint accepted=[true] continued=true continuation=17@4s
        "#]],
    );
}

#[test]
fn continuation_after_a_signal_applies_the_completion_behind_the_pushed_task_and_does_not_continue()
{
    check(
        SESSION,
        "
        @2s signal poke
        @3s checkpoint complete=a1 result=7 time=3s inline=a2 | schedule a2 stc=10s
        @4s complete-wft
        ",
        expect![[r#"
            > @2s signal poke
              + 6 @2s WorkflowExecutionSignaled poke input=null
              + 7 @2s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 17s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
              = activity a1 #5 attempt 1, started at 1s
            > @3s checkpoint complete=a1 result=7 time=3s inline=a2 | schedule a2 stc=10s
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              = RUNNING, workflow task 2/1, 1 buffered
              = activity a1 #5 attempt 1, closed (result buffered)
              checkpoint accepted=[true] continued=false
            > @4s complete-wft
              + 8 @4s WorkflowTaskStarted scheduled=7
              + 9 @4s WorkflowTaskCompleted scheduled=7 started=8
              + 10 @3s ActivityTaskStarted scheduled=5 attempt=1
              + 11 @3s ActivityTaskCompleted scheduled=5 started=10 result=7
              + 12 @4s WorkflowTaskScheduled attempt=1
              dequeue workflow_task
              enqueue workflow_task at 19s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}

#[test]
fn continuation_continues_only_with_a_workflow_time_between_the_last_event_and_now() {
    check_each(
        SESSION,
        &[
            "@5s checkpoint complete=a1 time=999ms | complete",
            "@5s checkpoint complete=a1 time=1s | complete",
            "@5s checkpoint complete=a1 time=5s | complete",
            "@5s checkpoint complete=a1 time=5001ms | complete",
        ],
        "checkpoint",
        expect![[r#"
            > @5s checkpoint complete=a1 time=999ms | complete
              checkpoint accepted=[true] continued=false
            > @5s checkpoint complete=a1 time=1s | complete
              checkpoint accepted=[true] continued=true continuation=11@1s
            > @5s checkpoint complete=a1 time=5s | complete
              checkpoint accepted=[true] continued=true continuation=11@5s
            > @5s checkpoint complete=a1 time=5001ms | complete
              checkpoint accepted=[true] continued=false
        "#]],
    );
}

#[test]
fn completion_of_another_attempt_is_refused_and_nothing_continues() {
    check(
        SESSION,
        "@2s checkpoint complete=a1 attempt=2 time=2s inline=a2 | schedule a2 stc=10s",
        expect![[r#"
            > @2s checkpoint complete=a1 attempt=2 time=2s inline=a2 | schedule a2 stc=10s
              = RUNNING
              = activity a1 #5 attempt 1, started at 1s
              checkpoint accepted=[false] continued=false
        "#]],
    );
}

#[test]
fn failed_inline_attempt_with_retries_left_is_retried_as_a_pushed_attempt() {
    check(
        SESSION,
        "
        @2s checkpoint fail=a1 time=2s |
        @3s start-attempt a1
        @4s complete-activity a1 result=7
        ",
        expect![[r#"
            > @2s checkpoint fail=a1 time=2s |
              dequeue activity/5/start-to-close, activity/5/heartbeat
              enqueue activity/5 at 3s
              = RUNNING
              = activity a1 #5 attempt 2, waiting until 3s, last failure IOError "boom"
              checkpoint accepted=[true] continued=false
            > @3s start-attempt a1
              dequeue activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 2 at 13s
              dispatch activity #5
              = RUNNING
              = activity a1 #5 attempt 2, started at 3s, last failure IOError "boom"
            > @4s complete-activity a1 result=7
              + 6 @4s ActivityTaskStarted scheduled=5 attempt=2 last_failure=IOError "boom"
              + 7 @4s ActivityTaskCompleted scheduled=5 started=6 result=7
              + 8 @4s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 19s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn failed_inline_attempt_without_retries_closes_the_activity_and_continues() {
    check(
        SESSION,
        "@2s checkpoint fail=a1 non_retryable time=2s | complete",
        expect![[r#"
            > @2s checkpoint fail=a1 non_retryable time=2s | complete
              + 6 @2s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @2s ActivityTaskFailed scheduled=5 started=6 NON_RETRYABLE_FAILURE IOError "boom" non_retryable
              + 8 @2s WorkflowTaskScheduled attempt=1
              + 9 @2s WorkflowTaskStarted scheduled=8
              + 10 @2s WorkflowTaskCompleted scheduled=8 started=9
              + 11 @2s WorkflowExecutionCompleted result=null
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close, workflow_task
              dequeue all
              = COMPLETED
              checkpoint accepted=[true] continued=true continuation=11@2s
        "#]],
    );
}

#[test]
fn continuation_whose_commands_break_a_rule_records_the_speculative_task_as_failed() {
    check(
        "
        start
        @1s checkpoint first inline=a1 | schedule a1 stc=10s | schedule a2 stc=10s
        ",
        "@2s checkpoint complete=a1 time=2s | schedule a2 stc=10s",
        expect![[r#"
            > @2s checkpoint complete=a1 time=2s | schedule a2 stc=10s
              + 7 @2s ActivityTaskStarted scheduled=5 attempt=1
              + 8 @2s ActivityTaskCompleted scheduled=5 started=7 result="ok"
              + 9 @2s WorkflowTaskScheduled attempt=1
              + 10 @2s WorkflowTaskStarted scheduled=9
              + 11 @2s WorkflowTaskFailed scheduled=9 started=10 SCHEDULE_ACTIVITY_DUPLICATE_ID "activity id \"a2\" is already in use"
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 2.2s lease 15s
              = RUNNING, workflow task 2/2 transient due 2.2s
              = activity a2 #6 attempt 1, started at 1s
              checkpoint accepted=[true] continued=false workflow_task_failed=SCHEDULE_ACTIVITY_DUPLICATE_ID "activity id \"a2\" is already in use"
        "#]],
    );
}

#[test]
fn continuation_past_the_soft_history_limit_does_not_continue() {
    check(
        &format!("limits suggest_events=8\n{SESSION}"),
        "@2s checkpoint complete=a1 time=2s | complete",
        expect![[r#"
            > @2s checkpoint complete=a1 time=2s | complete
              + 6 @2s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @2s ActivityTaskCompleted scheduled=5 started=6 result="ok"
              + 8 @2s WorkflowTaskScheduled attempt=1
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close
              enqueue workflow_task at 17s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
              checkpoint accepted=[true] continued=false
        "#]],
    );
}

#[test]
fn a_session_told_to_continue_as_new_by_its_pushed_task_goes_on_past_the_limit() {
    // The pushed task (started at event 3) already carried the suggestion:
    // the workflow chose to go on, so its speculative tasks carry it too.
    check(
        &format!("limits suggest_events=3\n{SESSION}"),
        "
        @2s checkpoint complete=a1 time=2s inline=a2 | schedule a2 stc=10s
        @3s checkpoint complete=a2 time=3s | complete
        ",
        expect![[r#"
            > @2s checkpoint complete=a1 time=2s inline=a2 | schedule a2 stc=10s
              + 6 @2s ActivityTaskStarted scheduled=5 attempt=1
              + 7 @2s ActivityTaskCompleted scheduled=5 started=6 result="ok"
              + 8 @2s WorkflowTaskScheduled attempt=1
              + 9 @2s WorkflowTaskStarted scheduled=8 suggest_continue_as_new
              + 10 @2s WorkflowTaskCompleted scheduled=8 started=9
              + 11 @2s ActivityTaskScheduled a2 type=Work stc=10s inline
              dequeue activity/5, activity/5/start-to-close, activity/5/heartbeat, activity/5/schedule-to-start, activity/5/schedule-to-close, workflow_task, activity/11, activity/11/schedule-to-start
              enqueue activity/11/start-to-close attempt 1 at 12s
              = RUNNING
              = activity a2 #11 attempt 1, started at 2s
              checkpoint accepted=[true] continued=true inline=a2#11 continuation=11@2s
            > @3s checkpoint complete=a2 time=3s | complete
              + 12 @3s ActivityTaskStarted scheduled=11 attempt=1
              + 13 @3s ActivityTaskCompleted scheduled=11 started=12 result="ok"
              + 14 @3s WorkflowTaskScheduled attempt=1
              + 15 @3s WorkflowTaskStarted scheduled=14 suggest_continue_as_new
              + 16 @3s WorkflowTaskCompleted scheduled=14 started=15
              + 17 @3s WorkflowExecutionCompleted result=null
              dequeue activity/11, activity/11/start-to-close, activity/11/heartbeat, activity/11/schedule-to-start, activity/11/schedule-to-close, workflow_task
              dequeue all
              = COMPLETED
              checkpoint accepted=[true] continued=true continuation=17@3s
        "#]],
    );
}

#[test]
fn malformed_or_stale_checkpoints_are_rejected_with_nothing_written() {
    check(
        "start",
        "
        @1s checkpoint first inline=a9 | schedule a1 stc=10s
        @1s checkpoint first inline=a1 | schedule a1 stc=10s queue=elsewhere
        @1s checkpoint first inline=a1,a1 | schedule a1 stc=10s
        @1s checkpoint first
        @1s checkpoint first token=1/2 inline=a1 | schedule a1 stc=10s
        @1s checkpoint first inline=a1 | schedule a1 stc=10s queue=orders
        @2s checkpoint complete=a1 inline=a1
        ",
        expect![[r#"
            > @1s checkpoint first inline=a9 | schedule a1 stc=10s
              rejected: inline names activity a9, which no ScheduleActivityTask of commands schedules
            > @1s checkpoint first inline=a1 | schedule a1 stc=10s queue=elsewhere
              rejected: inline names activity a1, which is scheduled on another task queue than the run's
            > @1s checkpoint first inline=a1,a1 | schedule a1 stc=10s
              rejected: inline names activity a1 twice
            > @1s checkpoint first
              rejected: the first checkpoint of a session carries commands
            > @1s checkpoint first token=1/2 inline=a1 | schedule a1 stc=10s
              rejected: stale task: workflow task 1/2 is not current (current 1/1)
            > @1s checkpoint first inline=a1 | schedule a1 stc=10s queue=orders
              + 3 @1s WorkflowTaskStarted scheduled=2
              + 4 @1s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @1s ActivityTaskScheduled a1 type=Work stc=10s inline
              dequeue workflow_task, activity/5, activity/5/schedule-to-start
              enqueue activity/5/start-to-close attempt 1 at 11s
              = RUNNING
              = activity a1 #5 attempt 1, started at 1s
              checkpoint accepted=[] continued=true inline=a1#5 continuation=5@1s
            > @2s checkpoint complete=a1 inline=a1
              rejected: inline names activity a1, which no ScheduleActivityTask of commands schedules
        "#]],
    );
}
