//! Workflow updates: admitted like signals (buffered behind an in-flight
//! workflow task), accepted when the task that delivered them completes,
//! completed by the workflow's CompleteWorkflowUpdate command.

use expect_test::expect;

use super::harness::check;

#[test]
fn update_to_an_idle_run_is_admitted_accepted_and_completed() {
    check(
        "
        start
        complete-wft | timer t1 1h
        ",
        "
        @1s update add_item id=u1 input=[{\"sku\":\"A\"}]
        @2s complete-wft | complete-update u1 result=3
        ",
        expect![[r#"
            > @1s update add_item id=u1 input=[{"sku":"A"}]
              + 6 @1s WorkflowExecutionUpdateAdmitted u1 add_item input=[{"sku":"A"}]
              + 7 @1s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 16s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
              = update u1 ADMITTED admitted #6 accepted - completed -
              = timer t1 #5 fires at 3600s
            > @2s complete-wft | complete-update u1 result=3
              + 8 @2s WorkflowTaskStarted scheduled=7
              + 9 @2s WorkflowTaskCompleted scheduled=7 started=8
              + 10 @2s WorkflowExecutionUpdateAccepted u1 admitted=6
              + 11 @2s WorkflowExecutionUpdateCompleted u1 accepted=10 result=3
              dequeue workflow_task
              = RUNNING
              = update u1 COMPLETED admitted #6 accepted #10 completed #11
              = timer t1 #5 fires at 3600s
        "#]],
    );
}

#[test]
fn update_during_an_in_flight_task_is_buffered_and_accepted_by_the_next_task() {
    // The handler may await an activity: accepted by one task, completed by
    // a later one.
    check(
        "start",
        "
        @1s update add_item id=u1
        @2s complete-wft | timer t1 1h
        @3s complete-wft | schedule a1 stc=10s
        @4s complete-activity a1
        @5s complete-wft | complete-update u1 failure=out_of_stock
        ",
        expect![[r#"
            > @1s update add_item id=u1
              = RUNNING, workflow task 1/1, 1 buffered
              = update u1 ADMITTED admitted - accepted - completed -
            > @2s complete-wft | timer t1 1h
              + 3 @2s WorkflowTaskStarted scheduled=2
              + 4 @2s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @2s TimerStarted t1 after=3600s
              + 6 @1s WorkflowExecutionUpdateAdmitted u1 add_item input=null
              + 7 @2s WorkflowTaskScheduled attempt=1
              dequeue workflow_task
              enqueue timer/t1 #5 at 3602s
              enqueue workflow_task at 17s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
              = update u1 ADMITTED admitted #6 accepted - completed -
              = timer t1 #5 fires at 3602s
            > @3s complete-wft | schedule a1 stc=10s
              + 8 @3s WorkflowTaskStarted scheduled=7
              + 9 @3s WorkflowTaskCompleted scheduled=7 started=8
              + 10 @3s WorkflowExecutionUpdateAccepted u1 admitted=6
              + 11 @3s ActivityTaskScheduled a1 type=Work stc=10s
              dequeue workflow_task, activity/11, activity/11/schedule-to-start
              enqueue activity/11/start-to-close attempt 1 at 13s
              dispatch activity #11
              = RUNNING
              = activity a1 #11 attempt 1, started at 3s
              = update u1 ACCEPTED admitted #6 accepted #10 completed -
              = timer t1 #5 fires at 3602s
            > @4s complete-activity a1
              + 12 @4s ActivityTaskStarted scheduled=11 attempt=1
              + 13 @4s ActivityTaskCompleted scheduled=11 started=12 result="ok"
              + 14 @4s WorkflowTaskScheduled attempt=1
              dequeue activity/11, activity/11/start-to-close, activity/11/heartbeat, activity/11/schedule-to-start, activity/11/schedule-to-close
              enqueue workflow_task at 19s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
              = update u1 ACCEPTED admitted #6 accepted #10 completed -
              = timer t1 #5 fires at 3602s
            > @5s complete-wft | complete-update u1 failure=out_of_stock
              + 15 @5s WorkflowTaskStarted scheduled=14
              + 16 @5s WorkflowTaskCompleted scheduled=14 started=15
              + 17 @5s WorkflowExecutionUpdateCompleted u1 accepted=10 failure=ApplicationError "out_of_stock"
              dequeue workflow_task
              = RUNNING
              = update u1 COMPLETED admitted #6 accepted #10 completed #17
              = timer t1 #5 fires at 3602s
        "#]],
    );
}

#[test]
fn update_with_a_seen_update_id_is_admitted_once() {
    check(
        "
        start
        complete-wft | timer t1 1h
        ",
        "
        @1s update add_item id=u1 input=1
        @2s update add_item id=u1 input=2
        @3s complete-wft | complete-update u1
        @4s update add_item id=u1 input=3
        ",
        expect![[r#"
            > @1s update add_item id=u1 input=1
              + 6 @1s WorkflowExecutionUpdateAdmitted u1 add_item input=1
              + 7 @1s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 16s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
              = update u1 ADMITTED admitted #6 accepted - completed -
              = timer t1 #5 fires at 3600s
            > @2s update add_item id=u1 input=2
              = RUNNING, workflow task 2/1
              = update u1 ADMITTED admitted #6 accepted - completed -
              = timer t1 #5 fires at 3600s
            > @3s complete-wft | complete-update u1
              + 8 @3s WorkflowTaskStarted scheduled=7
              + 9 @3s WorkflowTaskCompleted scheduled=7 started=8
              + 10 @3s WorkflowExecutionUpdateAccepted u1 admitted=6
              + 11 @3s WorkflowExecutionUpdateCompleted u1 accepted=10 result=null
              dequeue workflow_task
              = RUNNING
              = update u1 COMPLETED admitted #6 accepted #10 completed #11
              = timer t1 #5 fires at 3600s
            > @4s update add_item id=u1 input=3
              = RUNNING
              = update u1 COMPLETED admitted #6 accepted #10 completed #11
              = timer t1 #5 fires at 3600s
        "#]],
    );
}

#[test]
fn a_failed_workflow_task_does_not_accept_the_update_it_carried() {
    check(
        "
        start
        complete-wft | timer t1 1h
        @1s update add_item id=u1
        ",
        "
        @2s fail-wft
        @3s complete-wft | complete-update u1
        ",
        expect![[r#"
            > @2s fail-wft
              + 8 @2s WorkflowTaskStarted scheduled=7
              + 9 @2s WorkflowTaskFailed scheduled=7 started=8 NON_DETERMINISTIC_ERROR "replay diverged"
              enqueue workflow_task at 2.2s lease 15s
              = RUNNING, workflow task 2/2 transient due 2.2s
              = update u1 ADMITTED admitted #6 accepted - completed -
              = timer t1 #5 fires at 3600s
            > @3s complete-wft | complete-update u1
              + 10 @2.2s WorkflowTaskScheduled attempt=2
              + 11 @3s WorkflowTaskStarted scheduled=10
              + 12 @3s WorkflowTaskCompleted scheduled=10 started=11
              + 13 @3s WorkflowExecutionUpdateAccepted u1 admitted=6
              + 14 @3s WorkflowExecutionUpdateCompleted u1 accepted=13 result=null
              dequeue workflow_task
              = RUNNING
              = update u1 COMPLETED admitted #6 accepted #13 completed #14
              = timer t1 #5 fires at 3600s
        "#]],
    );
}

#[test]
fn completing_an_unknown_undelivered_or_completed_update_fails_the_workflow_task() {
    check(
        "
        start
        complete-wft | timer t1 1h
        @1s update add_item id=u1
        @2s complete-wft | complete-update u1
        @3s update add_item id=u2
        ",
        "
        @4s update add_item id=u3
        @5s complete-wft | complete-update nope
        @6s complete-wft | complete-update u1
        @7s complete-wft | complete-update u2 | complete-update u2
        @8s complete-wft | complete-update u3
        ",
        expect![[r#"
            > @4s update add_item id=u3
              = RUNNING, workflow task 3/1, 1 buffered
              = update u1 COMPLETED admitted #6 accepted #10 completed #11
              = update u2 ADMITTED admitted #12 accepted - completed -
              = update u3 ADMITTED admitted - accepted - completed -
              = timer t1 #5 fires at 3600s
            > @5s complete-wft | complete-update nope
              + 14 @5s WorkflowTaskStarted scheduled=13
              + 15 @5s WorkflowTaskFailed scheduled=13 started=14 BAD_UPDATE_WORKFLOW_EXECUTION_MESSAGE "update \"nope\" is unknown"
              + 16 @4s WorkflowExecutionUpdateAdmitted u3 add_item input=null
              enqueue workflow_task at 5.2s lease 15s
              = RUNNING, workflow task 3/2 transient due 5.2s
              = update u1 COMPLETED admitted #6 accepted #10 completed #11
              = update u2 ADMITTED admitted #12 accepted - completed -
              = update u3 ADMITTED admitted #16 accepted - completed -
              = timer t1 #5 fires at 3600s
            > @6s complete-wft | complete-update u1
              enqueue workflow_task at 6.4s lease 15s
              = RUNNING, workflow task 3/3 transient due 6.4s
              = update u1 COMPLETED admitted #6 accepted #10 completed #11
              = update u2 ADMITTED admitted #12 accepted - completed -
              = update u3 ADMITTED admitted #16 accepted - completed -
              = timer t1 #5 fires at 3600s
            > @7s complete-wft | complete-update u2 | complete-update u2
              enqueue workflow_task at 7.8s lease 15s
              = RUNNING, workflow task 3/4 transient due 7.8s
              = update u1 COMPLETED admitted #6 accepted #10 completed #11
              = update u2 ADMITTED admitted #12 accepted - completed -
              = update u3 ADMITTED admitted #16 accepted - completed -
              = timer t1 #5 fires at 3600s
            > @8s complete-wft | complete-update u3
              + 17 @7.8s WorkflowTaskScheduled attempt=4
              + 18 @8s WorkflowTaskStarted scheduled=17
              + 19 @8s WorkflowTaskCompleted scheduled=17 started=18
              + 20 @8s WorkflowExecutionUpdateAccepted u2 admitted=12
              + 21 @8s WorkflowExecutionUpdateAccepted u3 admitted=16
              + 22 @8s WorkflowExecutionUpdateCompleted u3 accepted=21 result=null
              dequeue workflow_task
              = RUNNING
              = update u1 COMPLETED admitted #6 accepted #10 completed #11
              = update u2 ACCEPTED admitted #12 accepted #20 completed -
              = update u3 COMPLETED admitted #16 accepted #21 completed #22
              = timer t1 #5 fires at 3600s
        "#]],
    );
}

#[test]
fn closing_with_an_undelivered_update_is_an_unhandled_command() {
    check(
        "start",
        "
        @1s update add_item id=u1
        @2s complete-wft | complete result=\"done\"
        ",
        expect![[r#"
            > @1s update add_item id=u1
              = RUNNING, workflow task 1/1, 1 buffered
              = update u1 ADMITTED admitted - accepted - completed -
            > @2s complete-wft | complete result="done"
              + 3 @2s WorkflowTaskStarted scheduled=2
              + 4 @2s WorkflowTaskFailed scheduled=2 started=3 UNHANDLED_COMMAND "new events arrived while the workflow task was in flight; the workflow must see them before it closes"
              + 5 @1s WorkflowExecutionUpdateAdmitted u1 add_item input=null
              + 6 @2s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 17s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
              = update u1 ADMITTED admitted #5 accepted - completed -
        "#]],
    );
}

#[test]
fn bad_updates_are_refused_and_closed_runs_refuse_updates() {
    check(
        "
        start
        complete-wft | complete
        ",
        "
        update add_item id=u1
        ",
        expect![[r#"
            > update add_item id=u1
              rejected: workflow run is closed (COMPLETED)
        "#]],
    );
    check(
        "start",
        "
        update \"\" id=u1
        update add_item id=\"\"
        ",
        expect![[r#"
            > update "" id=u1
              rejected: update_name must not be empty
            > update add_item id=""
              rejected: update_id must not be empty
        "#]],
    );
}
