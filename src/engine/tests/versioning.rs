//! Worker versioning: the endpoint version a run is pinned to, and the
//! audited move of a run to another version.

use expect_test::expect;

use super::harness::check;

#[test]
fn a_run_is_pinned_at_start_and_keeps_its_pin() {
    check(
        "",
        "
        start version=v1
        complete-wft | timer t1 1s
        ",
        expect![[r#"
            > start version=v1
              + 1 @0s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s pinned_version=v1
              + 2 @0s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 15s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 1/1, pinned to v1
            > complete-wft | timer t1 1s
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s TimerStarted t1 after=1s
              dequeue workflow_task
              enqueue timer/t1 #5 at 1s
              = RUNNING, pinned to v1
              = timer t1 #5 fires at 1s
        "#]],
    );
}

#[test]
fn an_unpinned_run_is_pinned_once_by_its_first_push() {
    // A run that started while its queue had no endpoint (or that another
    // run created without a pin) takes the version its first workflow task
    // is pushed to; later pins change nothing. No event is written.
    check(
        "start",
        "
        pin v2
        pin v3
        ",
        expect![[r#"
            > pin v2
              = RUNNING, workflow task 1/1, pinned to v2
            > pin v3
              = RUNNING, workflow task 1/1, pinned to v2
        "#]],
    );
}

#[test]
fn moving_an_idle_run_records_the_audit_event_and_replays_it_on_the_new_version() {
    check(
        "
        start version=v1
        complete-wft | timer t1 1h
        ",
        "
        @1s move from=v1 to=v3 reason=v1-is-broken identity=ops@laptop
        ",
        expect![[r#"
            > @1s move from=v1 to=v3 reason=v1-is-broken identity=ops@laptop
              + 6 @1s WorkflowExecutionOptionsUpdated pinned_version=v3 previous=v1 reason="v1-is-broken" identity=ops@laptop
              + 7 @1s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 16s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1, pinned to v3
              = timer t1 #5 fires at 3600s
        "#]],
    );
}

#[test]
fn moving_a_run_with_a_task_in_flight_repins_at_once_and_buffers_the_event() {
    // The in-flight task was pushed to v1 and may still answer; every
    // later push goes to v3. The event follows that task's outcome, and a
    // closing command meanwhile is refused so the workflow sees it first.
    check(
        "start version=v1",
        "
        move from=v1 to=v3 reason=hotfix
        complete-wft | complete
        ",
        expect![[r#"
            > move from=v1 to=v3 reason=hotfix
              = RUNNING, workflow task 1/1, 1 buffered, pinned to v3
            > complete-wft | complete
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskFailed scheduled=2 started=3 UNHANDLED_COMMAND "new events arrived while the workflow task was in flight; the workflow must see them before it closes"
              + 5 @0s WorkflowExecutionOptionsUpdated pinned_version=v3 previous=v1 reason="hotfix"
              + 6 @0s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 15s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1, pinned to v3
        "#]],
    );
}

#[test]
fn a_move_is_refused_unless_the_run_is_pinned_to_its_from_version() {
    check(
        "start version=v1",
        "
        move from=v2 to=v3 reason=r
        move from=v1 to=v1 reason=r
        move from=v1 to=v3 reason=\"\"
        move from=v1 to=v3 reason=ok
        move from=v1 to=v2 reason=again
        terminate
        move from=v3 to=v2 reason=late
        ",
        expect![[r#"
            > move from=v2 to=v3 reason=r
              rejected: run is pinned to version v1, not version v2
            > move from=v1 to=v1 reason=r
              rejected: run is already pinned to version v1
            > move from=v1 to=v3 reason=""
              rejected: reason must not be empty
            > move from=v1 to=v3 reason=ok
              = RUNNING, workflow task 1/1, 1 buffered, pinned to v3
            > move from=v1 to=v2 reason=again
              rejected: run is pinned to version v3, not version v1
            > terminate
              + 3 @0s WorkflowExecutionOptionsUpdated pinned_version=v3 previous=v1 reason="ok"
              + 4 @0s WorkflowExecutionTerminated "by test"
              dequeue all
              = TERMINATED, pinned to v3
            > move from=v3 to=v2 reason=late
              rejected: workflow run is closed (TERMINATED)
        "#]],
    );
}
