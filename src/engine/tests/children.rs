//! Child workflows, and signals and cancellation requests to other
//! workflows: what the parent records when it initiates them, when the
//! transfer service reports back (buffered like activity results), and
//! what a run's close asks of its parent and its children.

use expect_test::expect;

use super::harness::{check, check_each};

#[test]
fn start_child_is_initiated_and_queued_for_the_transfer_service() {
    check(
        "start",
        "@1s complete-wft | start-child ship-1 queue=shipping input={\"line\":1}",
        expect![[r#"
            > @1s complete-wft | start-child ship-1 queue=shipping input={"line":1}
              + 3 @1s WorkflowTaskStarted scheduled=2
              + 4 @1s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @1s StartChildWorkflowExecutionInitiated ship-1 type=Fulfil queue=shipping task_timeout=10s TERMINATE input={"line":1}
              dequeue workflow_task
              enqueue child/5 at 1s
              = RUNNING
              = child ship-1 #5 INITIATED TERMINATE
        "#]],
    );
}

#[test]
fn child_started_then_completed_surfaces_in_the_parent() {
    check(
        "
        start
        complete-wft | start-child ship-1
        ",
        "
        @1s child-started 5 run=2
        @2s complete-wft
        @3s child-closed 5 completed result={\"tracking\":\"T1\"}
        ",
        expect![[r#"
            > @1s child-started 5 run=2
              + 6 @1s ChildWorkflowExecutionStarted ship-1/run 2 initiated=5
              + 7 @1s WorkflowTaskScheduled attempt=1
              dequeue child/5
              enqueue workflow_task at 16s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
              = child ship-1 #5 STARTED TERMINATE run 2
            > @2s complete-wft
              + 8 @2s WorkflowTaskStarted scheduled=7
              + 9 @2s WorkflowTaskCompleted scheduled=7 started=8
              dequeue workflow_task
              = RUNNING
              = child ship-1 #5 STARTED TERMINATE run 2
            > @3s child-closed 5 completed result={"tracking":"T1"}
              + 10 @3s ChildWorkflowExecutionCompleted ship-1/run 2 initiated=5 started=6 result={"tracking":"T1"}
              + 11 @3s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
        "#]],
    );
}

#[test]
fn every_child_outcome_has_its_event() {
    check_each(
        "
        start
        complete-wft | start-child ship-1
        child-started 5
        complete-wft
        ",
        &[
            "child-closed 5 completed result=7",
            "child-closed 5 failed",
            "child-closed 5 canceled",
            "child-closed 5 timed-out",
            "child-closed 5 terminated",
        ],
        "ChildWorkflowExecution",
        expect![[r#"
            > child-closed 5 completed result=7
              + 10 @0s ChildWorkflowExecutionCompleted ship-1/run 2 initiated=5 started=6 result=7
            > child-closed 5 failed
              + 10 @0s ChildWorkflowExecutionFailed ship-1/run 2 initiated=5 started=6 RETRY_POLICY_NOT_SET ValueError "child gave up"
            > child-closed 5 canceled
              + 10 @0s ChildWorkflowExecutionCanceled ship-1/run 2 initiated=5 started=6
            > child-closed 5 timed-out
              + 10 @0s ChildWorkflowExecutionTimedOut ship-1/run 2 initiated=5 started=6 TIMEOUT
            > child-closed 5 terminated
              + 10 @0s ChildWorkflowExecutionTerminated ship-1/run 2 initiated=5 started=6
        "#]],
    );
}

#[test]
fn a_close_reported_before_the_start_records_both() {
    // The start's report was lost or is late: the close brings the run id.
    check(
        "
        start
        complete-wft | start-child ship-1
        ",
        "
        child-closed 5 completed result=1 run=3
        child-started 5 run=3
        ",
        expect![[r#"
            > child-closed 5 completed result=1 run=3
              + 6 @0s ChildWorkflowExecutionStarted ship-1/run 3 initiated=5
              + 7 @0s ChildWorkflowExecutionCompleted ship-1/run 3 initiated=5 started=6 result=1
              + 8 @0s WorkflowTaskScheduled attempt=1
              dequeue child/5
              enqueue workflow_task at 15s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
            > child-started 5 run=3
              rejected: stale task: child workflow start is not pending
        "#]],
    );
}

#[test]
fn duplicate_reports_are_stale() {
    check(
        "
        start
        complete-wft | start-child ship-1 | signal-external other go
        child-started 5
        external-delivered 6
        complete-wft
        child-closed 5 completed
        ",
        "
        child-started 5
        child-closed 5 completed
        child-start-failed 5
        external-delivered 6
        external-failed 6
        child-started 99
        ",
        expect![[r#"
            > child-started 5
              rejected: stale task: child workflow start is not pending
            > child-closed 5 completed
              rejected: stale task: child workflow is not open
            > child-start-failed 5
              rejected: stale task: child workflow start is not pending
            > external-delivered 6
              rejected: stale task: external request is not pending
            > external-failed 6
              rejected: stale task: external request is not pending
            > child-started 99
              rejected: stale task: child workflow start is not pending
        "#]],
    );
}

#[test]
fn start_failure_when_the_child_id_is_taken() {
    check(
        "
        start
        complete-wft | start-child ship-1
        ",
        "child-start-failed 5",
        expect![[r#"
            > child-start-failed 5
              + 6 @0s StartChildWorkflowExecutionFailed ship-1 initiated=5 WORKFLOW_ALREADY_EXISTS
              + 7 @0s WorkflowTaskScheduled attempt=1
              dequeue child/5
              enqueue workflow_task at 15s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}

#[test]
fn outcomes_during_an_in_flight_task_are_buffered() {
    check(
        "
        start
        complete-wft | start-child ship-1
        signal poke
        ",
        "
        @1s child-started 5
        @2s child-closed 5 completed result=1
        @3s complete-wft | complete
        @4s complete-wft | complete
        ",
        expect![[r#"
            > @1s child-started 5
              dequeue child/5
              = RUNNING, workflow task 2/1, 1 buffered
              = child ship-1 #5 STARTED TERMINATE run 2
            > @2s child-closed 5 completed result=1
              = RUNNING, workflow task 2/1, 2 buffered
              = child ship-1 #5 CLOSED TERMINATE run 2
            > @3s complete-wft | complete
              + 8 @3s WorkflowTaskStarted scheduled=7
              + 9 @3s WorkflowTaskFailed scheduled=7 started=8 UNHANDLED_COMMAND "new events arrived while the workflow task was in flight; the workflow must see them before it closes"
              + 10 @1s ChildWorkflowExecutionStarted ship-1/run 2 initiated=5
              + 11 @2s ChildWorkflowExecutionCompleted ship-1/run 2 initiated=5 started=10 result=1
              + 12 @3s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 18s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 3/1
            > @4s complete-wft | complete
              + 13 @4s WorkflowTaskStarted scheduled=12
              + 14 @4s WorkflowTaskCompleted scheduled=12 started=13
              + 15 @4s WorkflowExecutionCompleted result=null
              dequeue workflow_task
              dequeue all
              = COMPLETED
        "#]],
    );
}

#[test]
fn parent_close_applies_each_open_childs_policy() {
    check(
        "
        start
        complete-wft | start-child a policy=TERMINATE | start-child b policy=ABANDON | start-child c policy=REQUEST_CANCEL | start-child d
        child-started 5
        child-started 6
        child-started 7
        complete-wft
        child-closed 8 completed
        ",
        "@1m terminate reason=operator",
        expect![[r#"
            > @1m terminate reason=operator
              + 16 @0s ChildWorkflowExecutionStarted d/run 2 initiated=8
              + 17 @0s ChildWorkflowExecutionCompleted d/run 2 initiated=8 started=16 result=null
              + 18 @60s WorkflowExecutionTerminated "operator"
              dequeue all
              enqueue parent_close/5 a TERMINATE at 60s
              enqueue parent_close/7 c REQUEST_CANCEL at 60s
              = TERMINATED
              = child a #5 STARTED TERMINATE run 2
              = child b #6 STARTED ABANDON run 2
              = child c #7 STARTED REQUEST_CANCEL run 2
        "#]],
    );
}

#[test]
fn a_child_run_records_its_parent_and_notifies_it_when_it_closes() {
    check(
        "",
        "
        start parent=5 parent_close_policy=ABANDON
        complete-wft | complete result=\"done\"
        ",
        expect![[r#"
            > start parent=5 parent_close_policy=ABANDON
              + 1 @0s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s parent=parent-1/run 9 initiated=5 ABANDON
              + 2 @0s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 15s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 1/1
            > complete-wft | complete result="done"
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s WorkflowExecutionCompleted result="done"
              dequeue workflow_task
              dequeue all
              enqueue notify_parent at 0s
              = COMPLETED
        "#]],
    );
}

#[test]
fn every_close_of_a_child_run_notifies_the_parent() {
    check_each(
        "start parent=5 run_timeout=1m",
        &[
            "complete-wft | fail-workflow",
            "complete-wft | cancel-workflow",
            "terminate",
            "@1m fire-run-timeout",
        ],
        "notify_parent",
        expect![[r#"
            > complete-wft | fail-workflow
              enqueue notify_parent at 0s
            > complete-wft | cancel-workflow
              enqueue notify_parent at 0s
            > terminate
              enqueue notify_parent at 0s
            > @1m fire-run-timeout
              enqueue notify_parent at 60s
        "#]],
    );
}

#[test]
fn signal_and_cancel_external_are_recorded_with_their_outcomes() {
    check(
        "start",
        "
        complete-wft | signal-external shop-9 restock input=3 | cancel-external ship-4 child_only
        external-delivered 5
        external-failed 6
        ",
        expect![[r#"
            > complete-wft | signal-external shop-9 restock input=3 | cancel-external ship-4 child_only
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s SignalExternalWorkflowExecutionInitiated shop-9 restock input=3
              + 6 @0s RequestCancelExternalWorkflowExecutionInitiated ship-4 child_only
              dequeue workflow_task
              enqueue signal/5 at 0s
              enqueue cancel/6 at 0s
              = RUNNING
              = signal to shop-9 #5
              = cancel request to ship-4 #6
            > external-delivered 5
              + 7 @0s ExternalWorkflowExecutionSignaled shop-9 initiated=5
              + 8 @0s WorkflowTaskScheduled attempt=1
              dequeue signal/5
              enqueue workflow_task at 15s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
              = cancel request to ship-4 #6
            > external-failed 6
              dequeue cancel/6
              = RUNNING, workflow task 2/1, 1 buffered
              = cancel request to ship-4 #6, done (buffered)
        "#]],
    );
}

#[test]
fn bad_child_and_external_commands_fail_the_workflow_task() {
    check_each(
        "start",
        &[
            "complete-wft | start-child \"\"",
            "complete-wft | start-child ship-1 type=\"\"",
            "complete-wft | start-child ship-1 queue=\"\"",
            "complete-wft | start-child ship-1 task_timeout=0s",
            "complete-wft | signal-external \"\" go",
            "complete-wft | signal-external shop-9 \"\"",
            "complete-wft | cancel-external \"\"",
        ],
        "WorkflowTaskFailed",
        expect![[r#"
            > complete-wft | start-child ""
              + 4 @0s WorkflowTaskFailed scheduled=2 started=3 BAD_START_CHILD_EXECUTION_ATTRIBUTES "workflow_id must not be empty"
            > complete-wft | start-child ship-1 type=""
              + 4 @0s WorkflowTaskFailed scheduled=2 started=3 BAD_START_CHILD_EXECUTION_ATTRIBUTES "workflow_type must not be empty"
            > complete-wft | start-child ship-1 queue=""
              + 4 @0s WorkflowTaskFailed scheduled=2 started=3 BAD_START_CHILD_EXECUTION_ATTRIBUTES "task_queue must not be empty"
            > complete-wft | start-child ship-1 task_timeout=0s
              + 4 @0s WorkflowTaskFailed scheduled=2 started=3 BAD_START_CHILD_EXECUTION_ATTRIBUTES "workflow_task_timeout must be greater than zero"
            > complete-wft | signal-external "" go
              + 4 @0s WorkflowTaskFailed scheduled=2 started=3 BAD_SIGNAL_WORKFLOW_EXECUTION_ATTRIBUTES "workflow_id must not be empty"
            > complete-wft | signal-external shop-9 ""
              + 4 @0s WorkflowTaskFailed scheduled=2 started=3 BAD_SIGNAL_WORKFLOW_EXECUTION_ATTRIBUTES "signal_name must not be empty"
            > complete-wft | cancel-external ""
              + 4 @0s WorkflowTaskFailed scheduled=2 started=3 BAD_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_ATTRIBUTES "workflow_id must not be empty"
        "#]],
    );
}

#[test]
fn a_child_chain_carries_its_parent_and_only_its_last_run_notifies() {
    check(
        "start parent=5",
        "
        complete-wft | continue-as-new input=2
        complete-wft | complete result=\"done\"
        ",
        expect![[r#"
            > complete-wft | continue-as-new input=2
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s WorkflowExecutionContinuedAsNew new_run=2 type=Order queue=orders task_timeout=10s input=2
              dequeue workflow_task
              dequeue all
              = CONTINUED_AS_NEW
              next run 2:
              + 1 @0s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s parent=parent-1/run 9 initiated=5 TERMINATE initiator=WORKFLOW continued=1 first=1 input=2
              + 2 @0s WorkflowTaskScheduled attempt=1
              enqueue workflow_task at 15s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 1/1
            > complete-wft | complete result="done"
              + 3 @0s WorkflowTaskStarted scheduled=2
              + 4 @0s WorkflowTaskCompleted scheduled=2 started=3
              + 5 @0s WorkflowExecutionCompleted result="done"
              dequeue workflow_task
              dequeue all
              enqueue notify_parent at 0s
              = COMPLETED
        "#]],
    );
}

#[test]
fn a_child_run_retried_by_its_retry_policy_does_not_notify() {
    // The next attempt carries the parent; no notify_parent row is written.
    check_each(
        "start parent=5 attempts=2 initial=1s",
        &["complete-wft | fail-workflow"],
        "parent",
        expect![[r#"
            > complete-wft | fail-workflow
              + 1 @0s WorkflowExecutionStarted type=Order queue=orders task_timeout=10s parent=parent-1/run 9 initiated=5 TERMINATE attempt=2 backoff=1s initiator=RETRY continued=1 first=1 continued_failure="gave up" retry=1s*2^n max_interval=100s attempts=2
        "#]],
    );
}

#[test]
fn a_late_start_of_a_continued_child_names_its_first_run() {
    // The child continued as new before its start was reported: Started
    // names the run the start created, Completed the chain's last run.
    check(
        "
        start
        complete-wft | start-child ship-1
        ",
        "
        child-closed 5 completed result=1 first=3 run=4
        ",
        expect![[r#"
            > child-closed 5 completed result=1 first=3 run=4
              + 6 @0s ChildWorkflowExecutionStarted ship-1/run 3 initiated=5
              + 7 @0s ChildWorkflowExecutionCompleted ship-1/run 4 initiated=5 started=6 result=1
              + 8 @0s WorkflowTaskScheduled attempt=1
              dequeue child/5
              enqueue workflow_task at 15s lease 15s
              dispatch workflow task
              = RUNNING, workflow task 2/1
        "#]],
    );
}
