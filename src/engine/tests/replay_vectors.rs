//! The replay contract's test vectors (docs/protocol.md §14,
//! tests/replay/README.md), generated here and checked against the
//! committed `tests/replay/*.json`.
//!
//! Each vector drives the engine through the harness to build a real
//! history (so event ids and workflow-task framing are the server's own),
//! pushes the last workflow task, and records what an SDK must answer when
//! it replays the vector's neutral workflow script over that history. The
//! engine then checks the server's side of the contract: every expected
//! answer is accepted (or refused with the cause the vector names) when it
//! comes back as the task's answer.
//!
//! `UPDATE_EXPECT=1 cargo test --lib replay_vectors` rewrites the files;
//! without it, a committed file that differs from a fresh generation fails.
//! sdk-py (tests/test_replay_vectors.py) and sdk-ts
//! (test/replay_vectors.test.ts) run the same files through their replay
//! machinery.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::harness::Scenario;
use crate::engine::{
    self, Command, EventAttributes, Failure, Registry, SearchAttributeType, Slot, WorkflowCommand,
    WorkflowTaskFailedCause,
};

/// What an SDK must answer.
enum Expect {
    Commands(Value),
    NonDeterminism { event_id: i64, message: String },
}

struct Vector {
    name: &'static str,
    category: &'static str,
    description: &'static str,
    script: Value,
    /// Harness lines (`start`, `complete-activity 1`, ...) and answers.
    steps: Vec<Step>,
    /// Harness lines applied after the push, while the task is in flight.
    in_flight: Vec<&'static str>,
    expect: Expect,
    /// The cause the server refuses the expected answer with, if it does.
    rejected: Option<&'static str>,
    /// Answers an SDK must not give, and the cause the server refuses them with.
    refuses: Vec<(Value, &'static str)>,
}

enum Step {
    Line(&'static str),
    Answer(Value),
    Refused(Value),
}

fn v(
    name: &'static str,
    category: &'static str,
    description: &'static str,
    script: Value,
) -> Vector {
    Vector {
        name,
        category,
        description,
        script,
        steps: Vec::new(),
        in_flight: Vec::new(),
        expect: Expect::Commands(json!([])),
        rejected: None,
        refuses: Vec::new(),
    }
}

impl Vector {
    /// Harness lines, one per line of `lines`.
    fn run(mut self, lines: &'static str) -> Vector {
        for l in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
            self.steps.push(Step::Line(l));
        }
        self
    }
    /// Completes the current workflow task with these commands.
    fn answer(mut self, commands: Vec<Value>) -> Vector {
        self.steps.push(Step::Answer(Value::Array(commands)));
        self
    }
    /// Completes the current workflow task with commands the server refuses.
    fn answer_refused(mut self, commands: Vec<Value>) -> Vector {
        self.steps.push(Step::Refused(Value::Array(commands)));
        self
    }
    fn in_flight(mut self, lines: &'static str) -> Vector {
        self.in_flight = lines
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        self
    }
    fn expect(mut self, commands: Vec<Value>) -> Vector {
        self.expect = Expect::Commands(Value::Array(commands));
        self
    }
    fn refuses(mut self, commands: Vec<Value>, cause: &'static str) -> Vector {
        self.refuses.push((Value::Array(commands), cause));
        self
    }
    fn rejected(mut self, cause: &'static str) -> Vector {
        self.rejected = Some(cause);
        self
    }
    fn nondeterminism(mut self, event_id: i64, message: &str) -> Vector {
        self.expect = Expect::NonDeterminism {
            event_id,
            message: format!("{message} [workflow order-1 of type Order]"),
        };
        self
    }
}

// ---- the commands a script produces, as an SDK sends them ----

fn cmd(command_type: &str, attributes: Value) -> Value {
    json!({"command_type": command_type, "attributes": attributes})
}
fn act(id: &str, activity_type: &str, input: Value) -> Value {
    cmd(
        "ScheduleActivityTask",
        json!({"activity_id": id, "activity_type": activity_type, "input": input,
               "start_to_close_timeout": "10s"}),
    )
}
fn act_s2c(id: &str, activity_type: &str, input: Value, s2c: &str) -> Value {
    cmd(
        "ScheduleActivityTask",
        json!({"activity_id": id, "activity_type": activity_type, "input": input,
               "start_to_close_timeout": "10s", "schedule_to_close_timeout": s2c}),
    )
}
fn timer(id: &str, d: &str) -> Value {
    cmd(
        "StartTimer",
        json!({"timer_id": id, "start_to_fire_timeout": d}),
    )
}
fn cancel_timer(id: &str) -> Value {
    cmd("CancelTimer", json!({"timer_id": id}))
}
fn cancel_act(id: &str) -> Value {
    cmd("RequestCancelActivityTask", json!({"activity_id": id}))
}
fn patch(id: &str, deprecated: bool) -> Value {
    cmd(
        "RecordMarker",
        json!({"marker_name": "core_patch", "details": {"patch_id": id, "deprecated": deprecated}}),
    )
}
/// A LocalActivity marker (protocol.md §14.6): `extra` adds to the details
/// (`result`, `backoff`, `retry_state`, ...).
fn local(
    id: &str,
    activity_type: &str,
    attempt: u32,
    extra: Value,
    failure: Option<&str>,
) -> Value {
    let mut details =
        json!({"activity_id": id, "activity_type": activity_type, "attempt": attempt});
    if let (Some(d), Value::Object(extra)) = (details.as_object_mut(), extra) {
        d.extend(extra);
    }
    let mut attributes = json!({"marker_name": "LocalActivity", "details": details});
    if let Some(message) = failure {
        attributes["failure"] =
            json!({"message": message, "type": "ConnectionError", "kind": "APPLICATION"});
    }
    cmd("RecordMarker", attributes)
}
fn complete(result: Value) -> Value {
    cmd("CompleteWorkflowExecution", json!({ "result": result }))
}
fn fail(message: &str) -> Value {
    cmd(
        "FailWorkflowExecution",
        json!({"failure": {"message": message, "type": "ScriptFailure", "non_retryable": true, "kind": "APPLICATION"}}),
    )
}
fn cancel_wf() -> Value {
    cmd("CancelWorkflowExecution", json!({}))
}
fn can(input: Value) -> Value {
    cmd("ContinueAsNewWorkflowExecution", json!({ "input": input }))
}
fn child(wid: &str, wtype: &str, input: Value) -> Value {
    cmd(
        "StartChildWorkflowExecution",
        json!({"workflow_id": wid, "workflow_type": wtype, "input": input}),
    )
}
fn signal_ext(wid: &str, signal: &str, input: Value) -> Value {
    cmd(
        "SignalExternalWorkflowExecution",
        json!({"workflow_id": wid, "signal_name": signal, "input": input}),
    )
}
fn cancel_ext(wid: &str) -> Value {
    cmd(
        "RequestCancelExternalWorkflowExecution",
        json!({ "workflow_id": wid }),
    )
}
fn cancel_child(wid: &str) -> Value {
    cmd(
        "RequestCancelExternalWorkflowExecution",
        json!({"workflow_id": wid, "child_workflow_only": true}),
    )
}
fn update_done(id: &str, result: Value) -> Value {
    cmd(
        "CompleteWorkflowUpdate",
        json!({"update_id": id, "result": result}),
    )
}
fn err(error: &str, cause: Option<&str>) -> Value {
    json!({"error": error, "cause": cause})
}

// ---- scripts ----

fn upsert(attributes: Value) -> Value {
    cmd(
        "UpsertWorkflowSearchAttributes",
        json!({ "search_attributes": attributes }),
    )
}

/// The namespace registry the vectors' answers are checked against.
fn registry() -> Registry {
    let attributes = [
        ("CustomerId", SearchAttributeType::Keyword),
        ("Priority", SearchAttributeType::Int),
    ];
    Registry::new(attributes.map(|(name, kind)| (name.to_owned(), Slot { kind, index: 1 })))
}

fn main(steps: Value) -> Value {
    json!({ "main": steps })
}
fn with_signals(names: &[&str], steps: Value) -> Value {
    json!({"signals": names, "main": steps})
}

#[allow(clippy::too_many_lines)]
fn vectors() -> Vec<Vector> {
    vec![
        // ---- start and close ----
        v("complete_at_once", "close", "The first activation returns: one CompleteWorkflowExecution.",
          main(json!([{"complete": "done"}])))
            .run("start input=[]")
            .expect(vec![complete(json!("done"))]),
        v("fail_at_once", "close", "A script failure fails the run with the failure (stack traces are not compared).",
          main(json!([{"fail": "nope"}])))
            .run("start input=[]")
            .expect(vec![fail("nope")]),
        v("continue_as_new_at_once", "continue_as_new", "Continue-as-new closes the run with the next run's input.",
          main(json!([{"continue_as_new": {"input": [2]}}])))
            .run("start input=[1]")
            .expect(vec![can(json!([2]))]),
        v("continue_as_new_after_timer", "continue_as_new", "Continue-as-new in a later task, after a timer fired.",
          main(json!([{"timer": "5s"}, {"continue_as_new": {"input": ["next"]}}])))
            .run("start input=[]").answer(vec![timer("1", "5s")]).run("@5s fire-timer 1")
            .expect(vec![can(json!(["next"]))]),
        v("continue_as_new_with_update_in_flight", "continue_as_new", "An update admitted while continue-as-new is in flight: the server refuses the close and sends the update.",
          json!({"updates": {"add": [{"return": 1}]}, "main": [{"continue_as_new": {"input": []}}]}))
            .run("start input=[]").in_flight("update add id=u1")
            .expect(vec![can(json!([]))]).rejected("UNHANDLED_COMMAND"),
        v("second_run_of_chain", "continue_as_new", "The next run of a chain starts like any run (its first task replays nothing).",
          main(json!([{"complete": "second"}])))
            .run("start input=[]\ncomplete-wft | continue-as-new input=[]")
            .expect(vec![complete(json!("second"))]),
        // ---- activities ----
        v("activity_scheduled", "activities", "Awaiting an activity schedules it; ids are 1, 2, … in call order.",
          main(json!([{"activity": "charge", "input": [42], "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]")
            .expect(vec![act("1", "charge", json!([42]))]),
        v("activity_completed", "activities", "ActivityTaskCompleted resolves the activity with its result.",
          main(json!([{"activity": "charge", "input": [42], "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![act("1", "charge", json!([42]))])
            .run("@1s complete-activity 1 result={\"charge_id\":\"ch_1\"}")
            .expect(vec![complete(json!({"charge_id": "ch_1"}))]),
        v("activity_failed", "activities", "ActivityTaskFailed resolves the activity with ActivityError caused by the application failure.",
          main(json!([{"activity": "charge", "input": [], "as": "r", "catch": true}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![act("1", "charge", json!([]))])
            .run("@1s fail-activity 1 non_retryable")
            .expect(vec![complete(err("ActivityError", Some("ApplicationError")))]),
        v("activity_timed_out", "activities", "ActivityTaskTimedOut resolves the activity with ActivityError caused by a timeout.",
          main(json!([{"activity": "charge", "input": [], "schedule_to_close": "30s", "as": "r", "catch": true}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![act_s2c("1", "charge", json!([]), "30s")])
            .run("@30s fire-timeout 1 schedule-to-close")
            .expect(vec![complete(err("ActivityError", Some("TimeoutError")))]),
        v("activities_in_sequence", "activities", "The second activity is scheduled once the first completed.",
          main(json!([{"activity": "a", "input": [], "as": "x"}, {"activity": "b", "input": [{"$": "x"}], "as": "y"}, {"complete": {"$": "y"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))])
            .run("@1s complete-activity 1 result=7")
            .expect(vec![act("2", "b", json!([7]))]),
        v("activities_in_sequence_done", "activities", "Replaying two sequential activities, then completing.",
          main(json!([{"activity": "a", "input": [], "as": "x"}, {"activity": "b", "input": [{"$": "x"}], "as": "y"}, {"complete": {"$": "y"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))])
            .run("@1s complete-activity 1 result=7").answer(vec![act("2", "b", json!([7]))])
            .run("@2s complete-activity 2 result=8")
            .expect(vec![complete(json!(8))]),
        v("activity_custom_id", "activities", "An activity id given by the workflow is used as is.",
          main(json!([{"activity": "charge", "id": "pay-1", "input": [], "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]")
            .expect(vec![act("pay-1", "charge", json!([]))]),
        v("gather_schedules_in_call_order", "activities", "Concurrent activities are scheduled in the order the workflow called them.",
          main(json!([{"gather": [{"activity": "a", "input": [1]}, {"activity": "b", "input": [2]}, {"activity": "c", "input": [3]}], "as": "all"}, {"complete": {"$": "all"}}])))
            .run("start input=[]")
            .expect(vec![act("1", "a", json!([1])), act("2", "b", json!([2])), act("3", "c", json!([3]))]),
        v("gather_results_out_of_order", "activities", "Results that arrive out of order in one activation resolve each activity with its own result.",
          main(json!([{"gather": [{"activity": "a", "input": [1]}, {"activity": "b", "input": [2]}, {"activity": "c", "input": [3]}], "as": "all"}, {"complete": {"$": "all"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([1])), act("2", "b", json!([2])), act("3", "c", json!([3]))])
            .run("@1s complete-activity 3 result=\"c\"\n@2s complete-activity 1 result=\"a\"\n@3s complete-activity 2 result=\"b\"").answer(vec![])
            .expect(vec![complete(json!(["a", "b", "c"]))]),
        v("gather_partly_done", "activities", "One of two concurrent activities completed: nothing new to do.",
          main(json!([{"gather": [{"activity": "a", "input": []}, {"activity": "b", "input": []}], "as": "all"}, {"complete": {"$": "all"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([])), act("2", "b", json!([]))])
            .run("@1s complete-activity 2")
            .expect(vec![]),
        v("gather_activity_and_timer", "activities", "An activity and a timer started together keep their call order.",
          main(json!([{"gather": [{"activity": "a", "input": []}, {"timer": "1m"}]}, {"complete": null}])))
            .run("start input=[]")
            .expect(vec![act("1", "a", json!([])), timer("1", "60s")]),
        v("activity_result_while_task_in_flight", "activities", "An activity closing while a task is in flight is delivered by the next task (the first answer stays valid).",
          main(json!([{"gather": [{"activity": "a", "input": []}, {"timer": "1h"}]}, {"complete": null}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([])), timer("1", "3600s")])
            .run("@1s complete-activity 1").in_flight("@1.5s fire-timer 1")
            .expect(vec![]),
        // ---- timers ----
        v("timer_started", "timers", "A timer is a StartTimer with ids 1, 2, … in call order.",
          main(json!([{"timer": "5s"}, {"complete": "woke"}])))
            .run("start input=[]")
            .expect(vec![timer("1", "5s")]),
        v("timer_fired", "timers", "TimerFired resumes the workflow.",
          main(json!([{"timer": "5s"}, {"complete": "woke"}])))
            .run("start input=[]").answer(vec![timer("1", "5s")]).run("@5s fire-timer 1")
            .expect(vec![complete(json!("woke"))]),
        v("timers_in_sequence", "timers", "A second timer after the first fired gets the next id.",
          main(json!([{"timer": "1s"}, {"timer": "1.5s"}, {"complete": null}])))
            .run("start input=[]").answer(vec![timer("1", "1s")]).run("@1s fire-timer 1")
            .expect(vec![timer("2", "1.5s")]),
        v("timer_cancelled_before_firing", "cancellation", "A started timer cancelled before it fires: CancelTimer.",
          with_signals(&["go"], json!([{"start": {"timer": "60s"}, "name": "t"}, {"wait_signal": "go"}, {"cancel": "t"}, {"wait": "t", "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![timer("1", "60s")]).run("@1s signal go")
            .expect(vec![cancel_timer("1"), complete(err("CancelledError", None))]),
        v("timer_cancelled_replayed", "cancellation", "Replaying a CancelTimer matches TimerCanceled.",
          with_signals(&["go"], json!([{"start": {"timer": "60s"}, "name": "t"}, {"wait_signal": "go"}, {"cancel": "t"}, {"timer": "1s"}, {"complete": "after"}])))
            .run("start input=[]").answer(vec![timer("1", "60s")]).run("@1s signal go")
            .answer(vec![cancel_timer("1"), timer("2", "1s")]).run("@2s fire-timer 2")
            .expect(vec![complete(json!("after"))]),
        v("timer_cancelled_before_scheduling", "cancellation", "A timer cancelled in the activation that started it sends nothing.",
          main(json!([{"start": {"timer": "60s"}, "name": "t"}, {"cancel": "t"}, {"complete": "ok"}])))
            .run("start input=[]")
            .expect(vec![complete(json!("ok"))]),
        v("timer_fired_while_cancel_in_flight", "cancellation", "The timer fires while the CancelTimer is in flight: the server takes the cancel as a no-op.",
          with_signals(&["go"], json!([{"start": {"timer": "2s"}, "name": "t"}, {"wait_signal": "go"}, {"cancel": "t"}, {"timer": "5s"}, {"complete": "end"}])))
            .run("start input=[]").answer(vec![timer("1", "2s")]).run("@1s signal go")
            .in_flight("@2s fire-timer 1")
            .expect(vec![cancel_timer("1"), timer("2", "5s")]),
        v("timer_cancel_noop_replayed", "cancellation", "Replaying a CancelTimer the server dropped (the timer had fired): no TimerCanceled is expected.",
          with_signals(&["go"], json!([{"start": {"timer": "2s"}, "name": "t"}, {"wait_signal": "go"}, {"cancel": "t"}, {"timer": "5s"}, {"complete": "end"}])))
            .run("start input=[]").answer(vec![timer("1", "2s")]).run("@1s signal go")
            .run("@2s fire-timer 1").answer(vec![cancel_timer("1"), timer("2", "5s")]).answer(vec![]).run("@7s fire-timer 2")
            .expect(vec![complete(json!("end"))]),
        v("timer_fired_and_cancelled_in_one_activation", "cancellation", "The timer's TimerFired and the signal that makes the workflow cancel it arrive together: the signal runs first, so the workflow sees its timer cancelled, but the timer already fired, so no CancelTimer is sent.",
          with_signals(&["go", "noise"], json!([{"start": {"timer": "2s"}, "name": "t"}, {"wait_signal": "go"}, {"cancel": "t"}, {"wait": "t", "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![timer("1", "2s")]).run("@1s signal noise\n@2s fire-timer 1\n@2s signal go").answer(vec![])
            .expect(vec![complete(err("CancelledError", None))])
            .refuses(vec![cancel_timer("1"), complete(err("CancelledError", None))], "BAD_CANCEL_TIMER_ATTRIBUTES"),
        // ---- activity cancellation ----
        v("activity_cancelled_before_scheduling", "cancellation", "An activity cancelled in the activation that scheduled it sends nothing.",
          main(json!([{"start": {"activity": "a", "input": []}, "name": "h"}, {"cancel": "h"}, {"complete": "ok"}])))
            .run("start input=[]")
            .expect(vec![complete(json!("ok"))]),
        v("activity_cancel_try_cancel", "cancellation", "TRY_CANCEL: RequestCancelActivityTask, and the activity resolves at once as cancelled.",
          with_signals(&["go"], json!([{"start": {"activity": "a", "input": []}, "name": "h"}, {"wait_signal": "go"}, {"cancel": "h"}, {"wait": "h", "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))]).run("@1s signal go")
            .expect(vec![cancel_act("1"), complete(err("ActivityError", Some("CancelledError")))]),
        v("activity_cancel_wait_completed", "cancellation", "WAIT_CANCELLATION_COMPLETED on a started activity: the request, then waiting.",
          with_signals(&["go"], json!([{"start": {"activity": "a", "input": [], "cancellation": "WAIT_CANCELLATION_COMPLETED"}, "name": "h"}, {"wait_signal": "go"}, {"cancel": "h"}, {"wait": "h", "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))]).run("@1s signal go")
            .expect(vec![cancel_act("1")]),
        v("activity_cancel_wait_completed_done", "cancellation", "WAIT_CANCELLATION_COMPLETED: ActivityTaskCanceled resolves the activity as cancelled.",
          with_signals(&["go"], json!([{"start": {"activity": "a", "input": [], "cancellation": "WAIT_CANCELLATION_COMPLETED"}, "name": "h"}, {"wait_signal": "go"}, {"cancel": "h"}, {"wait": "h", "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))]).run("@1s signal go")
            .answer(vec![cancel_act("1")]).run("@2s canceled 1")
            .expect(vec![complete(err("ActivityError", Some("CancelledError")))]),
        v("activity_cancel_not_started", "cancellation", "Cancelling an activity no attempt is running: the server cancels it at once.",
          with_signals(&["go"], json!([{"start": {"activity": "a", "input": [], "cancellation": "WAIT_CANCELLATION_COMPLETED"}, "name": "h"}, {"wait_signal": "go"}, {"cancel": "h"}, {"wait": "h", "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))]).run("@1s signal go\nundelivered 1")
            .answer(vec![cancel_act("1")])
            .expect(vec![complete(err("ActivityError", Some("CancelledError")))]),
        v("activity_cancel_abandon", "cancellation", "ABANDON: nothing is sent and the activity resolves as cancelled.",
          with_signals(&["go"], json!([{"start": {"activity": "a", "input": [], "cancellation": "ABANDON"}, "name": "h"}, {"wait_signal": "go"}, {"cancel": "h"}, {"wait": "h", "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))]).run("@1s signal go")
            .expect(vec![complete(err("ActivityError", Some("CancelledError")))]),
        v("activity_completed_while_cancel_in_flight", "cancellation", "The activity completes while the cancel request is in flight: the request is a no-op.",
          with_signals(&["go"], json!([{"start": {"activity": "a", "input": [], "cancellation": "WAIT_CANCELLATION_COMPLETED"}, "name": "h"}, {"wait_signal": "go"}, {"cancel": "h"}, {"wait": "h", "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))]).run("@1s signal go")
            .in_flight("@1.5s complete-activity 1 result=\"late\"")
            .expect(vec![cancel_act("1")]),
        v("activity_cancel_noop_replayed", "cancellation", "Replaying a RequestCancelActivityTask the server dropped (the activity had completed): the result wins.",
          with_signals(&["go"], json!([{"start": {"activity": "a", "input": [], "cancellation": "WAIT_CANCELLATION_COMPLETED"}, "name": "h"}, {"wait_signal": "go"}, {"cancel": "h"}, {"wait": "h", "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))]).run("@1s signal go")
            .run("@1.5s complete-activity 1 result=\"late\"").answer(vec![cancel_act("1")])
            .expect(vec![complete(json!("late"))]),
        v("activity_completed_and_cancelled_in_one_activation", "cancellation", "The result and the signal that makes the workflow cancel the activity arrive together: the signal runs first, so TRY_CANCEL resolves the activity as cancelled, and no cancel is sent for the closed activity.",
          with_signals(&["go", "noise"], json!([{"start": {"activity": "a", "input": []}, "name": "h"}, {"wait_signal": "go"}, {"cancel": "h"}, {"wait": "h", "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))]).run("@1s signal noise\n@1s complete-activity 1 result=\"done\"\n@1s signal go").answer(vec![])
            .expect(vec![complete(err("ActivityError", Some("CancelledError")))])
            .refuses(vec![cancel_act("1"), complete(err("ActivityError", Some("CancelledError")))], "BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES"),
        // ---- cancellation of the workflow ----
        v("cancel_requested_while_timer", "cancellation", "A cancellation request cancels the pending timer and the run closes as cancelled.",
          main(json!([{"timer": "1h"}, {"complete": "late"}])))
            .run("start input=[]").answer(vec![timer("1", "3600s")]).run("@1s request-cancel")
            .expect(vec![cancel_timer("1"), cancel_wf()]),
        v("cancel_requested_while_activity", "cancellation", "A cancellation request cancels the pending activity (TRY_CANCEL) and the run closes as cancelled.",
          main(json!([{"activity": "a", "input": []}, {"complete": "late"}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))]).run("@1s request-cancel")
            .expect(vec![cancel_act("1"), cancel_wf()]),
        v("cancel_requested_in_flight", "cancellation", "A cancellation request while the closing answer is in flight: the server refuses the close.",
          main(json!([{"complete": "done"}])))
            .run("start input=[]").in_flight("request-cancel")
            .expect(vec![complete(json!("done"))]).rejected("UNHANDLED_COMMAND"),
        v("cancel_requested_after_refused_close", "cancellation", "The task after the refused close carries the request with the start: the main coroutine runs first and completes, ignoring the request, as a workflow may.",
          main(json!([{"complete": "done"}])))
            .run("start input=[]\npush-wft\nrequest-cancel").answer_refused(vec![complete(json!("done"))])
            .expect(vec![complete(json!("done"))]),
        // ---- signals ----
        v("signal_with_start", "signals", "A signal in the first activation (signal-with-start) runs before the main coroutine waits.",
          with_signals(&["go"], json!([{"wait_signal": "go", "as": "s"}, {"complete": {"$": "s"}}])))
            .run("start input=[] signal=go signal_input=[\"hello\"]")
            .expect(vec![complete(json!("hello"))]),
        v("signal_wakes_waiter", "signals", "A signal resolves the condition the workflow waits on.",
          with_signals(&["go"], json!([{"wait_signal": "go", "as": "s"}, {"complete": {"$": "s"}}])))
            .run("start input=[]").answer(vec![]).run("@1s signal go input=[\"hi\"]")
            .expect(vec![complete(json!("hi"))]),
        v("signals_in_history_order", "signals", "Two signals in one activation run their handlers in history order.",
          with_signals(&["x", "y", "noise"], json!([{"wait_signal": "y"}, {"complete": {"$": "log"}}])))
            .run("start input=[]").answer(vec![]).run("@1s signal noise\n@1s signal x\n@2s signal y").answer(vec![])
            .expect(vec![complete(json!(["signal:noise", "signal:x", "signal:y"]))]),
        v("signal_before_resolution", "job_order", "Signals run, and the main coroutine resumes on them, before the activity result in the same activation is applied, whatever the history order.",
          with_signals(&["go", "noise"], json!([{"start": {"activity": "a", "input": []}, "name": "h"}, {"wait_signal": "go"}, {"log": "main saw signal"}, {"wait": "h"}, {"log": "main saw activity"}, {"complete": {"$": "log"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))]).run("@1s signal noise\n@1s complete-activity 1\n@2s signal go").answer(vec![])
            .expect(vec![complete(json!(["signal:noise", "signal:go", "main saw signal", "main saw activity"]))]),
        v("signal_before_timer", "job_order", "A signal recorded after a TimerFired is still delivered first.",
          with_signals(&["go", "noise"], json!([{"gather": [{"timer": "1s"}, {"wait_signal": "go"}]}, {"complete": {"$": "log"}}])))
            .run("start input=[]").answer(vec![timer("1", "1s")]).run("@0.5s signal noise\n@1s fire-timer 1\n@1s signal go").answer(vec![])
            .expect(vec![complete(json!(["signal:noise", "signal:go"]))]),
        v("signal_buffered_until_waited", "signals", "A signal with no waiter is kept; a later wait returns it at once.",
          with_signals(&["go"], json!([{"timer": "10s"}, {"wait_signal": "go", "as": "s"}, {"complete": {"$": "s"}}])))
            .run("start input=[]").answer(vec![timer("1", "10s")]).run("@1s signal go input=[1]")
            .answer(vec![]).run("@10s fire-timer 1")
            .expect(vec![complete(json!(1))]),
        v("signal_in_flight_refuses_close", "signals", "A signal while the closing answer is in flight: the server refuses the close (signals prevent close).",
          with_signals(&["go"], json!([{"complete": "done"}])))
            .run("start input=[]").in_flight("signal go")
            .expect(vec![complete(json!("done"))]).rejected("UNHANDLED_COMMAND"),
        v("signal_after_refused_close", "signals", "The refused task is skipped on replay; the signal is delivered in the next activation.",
          with_signals(&["go"], json!([{"complete": "done"}])))
            .run("start input=[]\npush-wft\nsignal go").answer_refused(vec![complete(json!("done"))])
            .expect(vec![complete(json!("done"))]),
        // ---- updates ----
        v("update_handler_returns", "updates", "An admitted update runs its handler (never its validator) and completes in the same task.",
          json!({"updates": {"add": [{"return": 3}]}, "main": [{"wait_signal": "never"}]}))
            .run("start input=[]").answer(vec![]).run("@1s update add id=u1 input=[1]")
            .expect(vec![update_done("u1", json!(3))]),
        v("update_handler_awaits_activity", "updates", "An update handler that awaits an activity schedules it; the update completes later.",
          json!({"updates": {"add": [{"activity": "reserve", "input": [], "as": "r"}, {"return": {"$": "r"}}]}, "main": [{"wait_signal": "never"}]}))
            .run("start input=[]").answer(vec![]).run("@1s update add id=u1")
            .expect(vec![act("1", "reserve", json!([]))]),
        v("update_completes_after_activity", "updates", "Replaying the update's activity, then completing the update with its result.",
          json!({"updates": {"add": [{"activity": "reserve", "input": [], "as": "r"}, {"return": {"$": "r"}}]}, "main": [{"wait_signal": "never"}]}))
            .run("start input=[]").answer(vec![]).run("@1s update add id=u1")
            .answer(vec![act("1", "reserve", json!([]))]).run("@2s complete-activity 1 result=\"r-1\"")
            .expect(vec![update_done("u1", json!("r-1"))]),
        v("update_and_signal_before_main", "job_order", "A signal and an update in one activation run, in history order, before the main coroutine resumes.",
          json!({"signals": ["go", "noise"], "updates": {"add": [{"log": "update ran"}, {"return": null}]}, "main": [{"wait_signal": "go"}, {"complete": {"$": "log"}}]}))
            .run("start input=[]").answer(vec![]).run("@1s signal noise\n@1s signal go\n@1s update add id=u1").answer(vec![])
            .expect(vec![update_done("u1", json!(null)), complete(json!(["signal:noise", "signal:go", "update:add", "update ran"]))]),
        v("update_in_flight_refuses_close", "updates", "An update admitted while the closing answer is in flight: the server refuses the close.",
          json!({"updates": {"add": [{"return": 1}]}, "main": [{"complete": "done"}]}))
            .run("start input=[]").in_flight("update add id=u1")
            .expect(vec![complete(json!("done"))]).rejected("UNHANDLED_COMMAND"),
        v("update_replayed_completed", "updates", "Replaying a CompleteWorkflowUpdate matches WorkflowExecutionUpdateCompleted.",
          json!({"signals": ["done"], "updates": {"add": [{"return": 3}]}, "main": [{"wait_signal": "done"}, {"complete": "ok"}]}))
            .run("start input=[]").answer(vec![]).run("@1s update add id=u1")
            .answer(vec![update_done("u1", json!(3))]).run("@2s signal done")
            .expect(vec![complete(json!("ok"))]),
        // ---- patches ----
        v("patched_first_run", "patches", "patched() on a first run records the marker and takes the new path.",
          main(json!([{"patched": "p1", "then": [{"complete": "new"}], "else": [{"complete": "old"}]}])))
            .run("start input=[]")
            .expect(vec![patch("p1", false), complete(json!("new"))]),
        v("patched_replay_with_marker", "patches", "Replaying a task that recorded the marker takes the new path.",
          main(json!([{"patched": "p1", "then": [{"timer": "1s"}, {"complete": "new"}], "else": [{"timer": "2s"}, {"complete": "old"}]}])))
            .run("start input=[]").answer(vec![patch("p1", false), timer("1", "1s")]).run("@1s fire-timer 1")
            .expect(vec![complete(json!("new"))]),
        v("patched_replay_without_marker", "patches", "Replaying old history (no marker where patched() is called) takes the old path and records nothing.",
          main(json!([{"patched": "p1", "then": [{"timer": "1s"}, {"complete": "new"}], "else": [{"timer": "2s"}, {"complete": "old"}]}])))
            .run("start input=[]").answer(vec![timer("1", "2s")]).run("@2s fire-timer 1")
            .expect(vec![complete(json!("old"))]),
        v("patched_later_task_old_history", "patches", "A patch first reached in the task being answered records its marker even when earlier tasks predate it.",
          main(json!([{"timer": "1s"}, {"patched": "p1", "then": [{"complete": "new"}], "else": [{"complete": "old"}]}])))
            .run("start input=[]").answer(vec![timer("1", "1s")]).run("@1s fire-timer 1")
            .expect(vec![patch("p1", false), complete(json!("new"))]),
        v("patched_twice_one_marker", "patches", "Calling patched() twice with one id records one marker and answers the same.",
          main(json!([{"patched": "p1", "then": [], "else": []}, {"patched": "p1", "then": [{"complete": "new"}], "else": [{"complete": "old"}]}])))
            .run("start input=[]")
            .expect(vec![patch("p1", false), complete(json!("new"))]),
        v("deprecate_patch_first_run", "patches", "deprecate_patch() on a first run records a deprecated marker.",
          main(json!([{"deprecate_patch": "p1"}, {"complete": "new"}])))
            .run("start input=[]")
            .expect(vec![patch("p1", true), complete(json!("new"))]),
        v("deprecate_patch_replay_with_marker", "patches", "deprecate_patch() replaying a task that recorded patched()'s marker matches it.",
          main(json!([{"deprecate_patch": "p1"}, {"timer": "1s"}, {"complete": "new"}])))
            .run("start input=[]").answer(vec![patch("p1", false), timer("1", "1s")]).run("@1s fire-timer 1")
            .expect(vec![complete(json!("new"))]),
        v("deprecated_marker_without_call", "patches", "A deprecated marker whose call was removed from the code is skipped.",
          main(json!([{"timer": "1s"}, {"complete": "new"}])))
            .run("start input=[]").answer(vec![patch("p1", true), timer("1", "1s")]).run("@1s fire-timer 1")
            .expect(vec![complete(json!("new"))]),
        // ---- children ----
        v("child_started_command", "children", "Starting a child: StartChildWorkflowExecution with the given id and type.",
          main(json!([{"child": {"workflow_type": "Ship", "workflow_id": "ship-1", "input": [1]}, "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]")
            .expect(vec![child("ship-1", "Ship", json!([1]))]),
        v("child_running", "children", "ChildWorkflowExecutionStarted: the child runs, nothing new to do.",
          main(json!([{"child": {"workflow_type": "Ship", "workflow_id": "ship-1", "input": [1]}, "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![child("ship-1", "Ship", json!([1]))]).run("@1s child-started 5")
            .expect(vec![]),
        v("child_completed", "children", "ChildWorkflowExecutionCompleted resolves the child with its result.",
          main(json!([{"child": {"workflow_type": "Ship", "workflow_id": "ship-1", "input": [1]}, "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![child("ship-1", "Ship", json!([1]))]).run("@1s child-started 5")
            .answer(vec![]).run("@2s child-closed 5 completed result=\"shipped\"")
            .expect(vec![complete(json!("shipped"))]),
        v("child_failed", "children", "ChildWorkflowExecutionFailed: ChildWorkflowError caused by the child's failure.",
          main(json!([{"child": {"workflow_type": "Ship", "workflow_id": "ship-1", "input": []}, "as": "r", "catch": true}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![child("ship-1", "Ship", json!([]))]).run("@1s child-started 5")
            .answer(vec![]).run("@2s child-closed 5 failed")
            .expect(vec![complete(err("ChildWorkflowError", Some("ApplicationError")))]),
        v("child_canceled", "children", "ChildWorkflowExecutionCanceled: ChildWorkflowError caused by a cancellation.",
          main(json!([{"child": {"workflow_type": "Ship", "workflow_id": "ship-1", "input": []}, "as": "r", "catch": true}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![child("ship-1", "Ship", json!([]))]).run("@1s child-started 5")
            .answer(vec![]).run("@2s child-closed 5 canceled")
            .expect(vec![complete(err("ChildWorkflowError", Some("CancelledError")))]),
        v("child_terminated", "children", "ChildWorkflowExecutionTerminated: ChildWorkflowError caused by a termination.",
          main(json!([{"child": {"workflow_type": "Ship", "workflow_id": "ship-1", "input": []}, "as": "r", "catch": true}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![child("ship-1", "Ship", json!([]))]).run("@1s child-started 5")
            .answer(vec![]).run("@2s child-closed 5 terminated")
            .expect(vec![complete(err("ChildWorkflowError", Some("TerminatedError")))]),
        v("child_timed_out", "children", "ChildWorkflowExecutionTimedOut: ChildWorkflowError caused by a timeout.",
          main(json!([{"child": {"workflow_type": "Ship", "workflow_id": "ship-1", "input": []}, "as": "r", "catch": true}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![child("ship-1", "Ship", json!([]))]).run("@1s child-started 5")
            .answer(vec![]).run("@2s child-closed 5 timed-out")
            .expect(vec![complete(err("ChildWorkflowError", Some("TimeoutError")))]),
        v("child_start_failed", "children", "StartChildWorkflowExecutionFailed: the start fails with WorkflowAlreadyStarted.",
          main(json!([{"child": {"workflow_type": "Ship", "workflow_id": "ship-1", "input": []}, "as": "r", "catch": true}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![child("ship-1", "Ship", json!([]))]).run("@1s child-start-failed 5")
            .expect(vec![complete(err("WorkflowAlreadyStarted", None))]),
        v("child_started_and_closed_together", "children", "The child's Started and Completed arrive in one activation.",
          main(json!([{"child": {"workflow_type": "Ship", "workflow_id": "ship-1", "input": []}, "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![child("ship-1", "Ship", json!([]))]).run("@2s child-closed 5 completed result=7")
            .expect(vec![complete(json!(7))]),
        v("children_in_gather", "children", "Two children started together keep their call order.",
          main(json!([{"gather": [{"child": {"workflow_type": "Ship", "workflow_id": "c-1", "input": []}}, {"child": {"workflow_type": "Bill", "workflow_id": "c-2", "input": []}}], "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]")
            .expect(vec![child("c-1", "Ship", json!([])), child("c-2", "Bill", json!([]))]),
        v("child_cancelled", "children", "Cancelling a started child (WAIT_CANCELLATION_COMPLETED) asks it to cancel, limited to this run's children.",
          with_signals(&["go"], json!([{"start": {"child": {"workflow_type": "Ship", "workflow_id": "ship-1", "input": []}}, "name": "c"}, {"wait_signal": "go"}, {"cancel": "c"}, {"wait": "c", "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![child("ship-1", "Ship", json!([]))]).run("@1s child-started 5").answer(vec![]).run("@2s signal go")
            .expect(vec![cancel_child("ship-1")]),
        v("child_cancelled_closes", "children", "The cancelled child closes as cancelled: the parent sees ChildWorkflowError caused by a cancellation.",
          with_signals(&["go"], json!([{"start": {"child": {"workflow_type": "Ship", "workflow_id": "ship-1", "input": []}}, "name": "c"}, {"wait_signal": "go"}, {"cancel": "c"}, {"wait": "c", "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![child("ship-1", "Ship", json!([]))]).run("@1s child-started 5").answer(vec![]).run("@2s signal go")
            .answer(vec![cancel_child("ship-1")]).run("@3s external-delivered 14").answer(vec![]).run("@4s child-closed 5 canceled")
            .expect(vec![complete(err("ChildWorkflowError", Some("CancelledError")))]),
        // ---- other workflows ----
        v("signal_external", "external", "Signalling another workflow: SignalExternalWorkflowExecution.",
          main(json!([{"signal_external": {"workflow_id": "other-1", "signal": "ping", "input": [1]}}, {"complete": "sent"}])))
            .run("start input=[]")
            .expect(vec![signal_ext("other-1", "ping", json!([1]))]),
        v("signal_external_delivered", "external", "ExternalWorkflowExecutionSignaled resolves the signal.",
          main(json!([{"signal_external": {"workflow_id": "other-1", "signal": "ping", "input": [1]}}, {"complete": "sent"}])))
            .run("start input=[]").answer(vec![signal_ext("other-1", "ping", json!([1]))]).run("@1s external-delivered 5")
            .expect(vec![complete(json!("sent"))]),
        v("signal_external_failed", "external", "SignalExternalWorkflowExecutionFailed fails the signal with an application error.",
          main(json!([{"signal_external": {"workflow_id": "other-1", "signal": "ping", "input": []}, "as": "r", "catch": true}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![signal_ext("other-1", "ping", json!([]))]).run("@1s external-failed 5")
            .expect(vec![complete(err("ApplicationError", None))]),
        v("cancel_external", "external", "Asking another workflow to cancel: RequestCancelExternalWorkflowExecution.",
          main(json!([{"cancel_external": {"workflow_id": "other-1"}}, {"complete": "asked"}])))
            .run("start input=[]")
            .expect(vec![cancel_ext("other-1")]),
        v("cancel_external_delivered", "external", "ExternalWorkflowExecutionCancelRequested resolves the request.",
          main(json!([{"cancel_external": {"workflow_id": "other-1"}}, {"complete": "asked"}])))
            .run("start input=[]").answer(vec![cancel_ext("other-1")]).run("@1s external-delivered 5")
            .expect(vec![complete(json!("asked"))]),
        v("cancel_external_failed", "external", "RequestCancelExternalWorkflowExecutionFailed fails the request with an application error.",
          main(json!([{"cancel_external": {"workflow_id": "other-1"}, "as": "r", "catch": true}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![cancel_ext("other-1")]).run("@1s external-failed 5")
            .expect(vec![complete(err("ApplicationError", None))]),
        // ---- failed and timed-out workflow tasks ----
        v("failed_task_skipped", "framing", "A workflow task that failed produced nothing: its retry (transient events) replays as the first task.",
          main(json!([{"activity": "a", "input": []}, {"complete": null}])))
            .run("start input=[]\n@1s fail-wft cause=WORKFLOW_WORKER_UNHANDLED_FAILURE\n@1.2s push-wft")
            .expect(vec![act("1", "a", json!([]))]),
        v("timed_out_task_skipped", "framing", "A workflow task that timed out produced nothing and is skipped.",
          main(json!([{"timer": "1s"}, {"complete": "ok"}])))
            .run("start input=[]").answer(vec![timer("1", "1s")]).run("@1s fire-timer 1\n@1s push-wft\n@11s wft-undelivered timed_out\n@11.2s push-wft")
            .expect(vec![complete(json!("ok"))]),
        v("failed_task_then_results", "framing", "Results that arrived after a failed task are delivered in the retry's activation.",
          main(json!([{"activity": "a", "input": [], "as": "r"}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([]))]).run("@1s complete-activity 1 result=1\n@2s fail-wft\n@2.2s push-wft")
            .expect(vec![complete(json!(1))]),
        // ---- non-determinism ----
        v("nd_activity_type_changed", "non_determinism", "The code schedules another activity type than the history recorded.",
          main(json!([{"activity": "refund", "input": []}, {"complete": null}])))
            .run("start input=[]").answer(vec![act("1", "charge", json!([]))]).run("@1s complete-activity 1")
            .nondeterminism(5, "history has ActivityTaskScheduled(activity_type=\"charge\", activity_id=\"1\") at event 5 but workflow code produced ScheduleActivityTask(activity_type=\"refund\", activity_id=\"1\")"),
        v("nd_activity_id_changed", "non_determinism", "The code gives the activity another id.",
          main(json!([{"activity": "charge", "id": "b", "input": []}, {"complete": null}])))
            .run("start input=[]").answer(vec![act("a", "charge", json!([]))]).run("@1s complete-activity a")
            .nondeterminism(5, "history has ActivityTaskScheduled(activity_type=\"charge\", activity_id=\"a\") at event 5 but workflow code produced ScheduleActivityTask(activity_type=\"charge\", activity_id=\"b\")"),
        v("nd_timer_instead_of_activity", "non_determinism", "The code starts a timer where the history scheduled an activity.",
          main(json!([{"timer": "5s"}, {"complete": null}])))
            .run("start input=[]").answer(vec![act("1", "charge", json!([]))]).run("@1s complete-activity 1")
            .nondeterminism(5, "history has ActivityTaskScheduled(activity_type=\"charge\", activity_id=\"1\") at event 5 but workflow code produced StartTimer(timer_id=\"1\")"),
        v("nd_activity_instead_of_timer", "non_determinism", "The code schedules an activity where the history started a timer.",
          main(json!([{"activity": "charge", "input": []}, {"complete": null}])))
            .run("start input=[]").answer(vec![timer("1", "5s")]).run("@5s fire-timer 1")
            .nondeterminism(5, "history has TimerStarted(timer_id=\"1\") at event 5 but workflow code produced ScheduleActivityTask(activity_type=\"charge\", activity_id=\"1\")"),
        v("nd_command_missing", "non_determinism", "The code completes where the history started a timer.",
          main(json!([{"complete": "early"}])))
            .run("start input=[]").answer(vec![timer("1", "5s")]).run("@5s fire-timer 1")
            .nondeterminism(5, "history has TimerStarted(timer_id=\"1\") at event 5 but workflow code produced CompleteWorkflowExecution"),
        v("nd_extra_command", "non_determinism", "The code schedules an activity in a task that recorded no command.",
          with_signals(&["go"], json!([{"activity": "charge", "input": []}, {"wait_signal": "go"}, {"complete": null}])))
            .run("start input=[]").answer(vec![]).run("@1s signal go")
            .nondeterminism(7, "workflow code produced ScheduleActivityTask(activity_type=\"charge\", activity_id=\"1\") but history has event 7 (WorkflowTaskStarted) instead"),
        v("nd_order_swapped", "non_determinism", "Concurrent commands in another order than recorded.",
          main(json!([{"gather": [{"timer": "1s"}, {"activity": "a", "input": []}]}, {"complete": null}])))
            .run("start input=[]").answer(vec![act("1", "a", json!([])), timer("1", "1s")]).run("@1s fire-timer 1")
            .nondeterminism(5, "history has ActivityTaskScheduled(activity_type=\"a\", activity_id=\"1\") at event 5 but workflow code produced StartTimer(timer_id=\"1\")"),
        v("nd_child_type_changed", "non_determinism", "The code starts a child of another type.",
          main(json!([{"child": {"workflow_type": "Bill", "workflow_id": "ship-1", "input": []}}, {"complete": null}])))
            .run("start input=[]").answer(vec![child("ship-1", "Ship", json!([]))]).run("@1s child-started 5")
            .nondeterminism(5, "history has StartChildWorkflowExecutionInitiated(workflow_type=\"Ship\", workflow_id=\"ship-1\") at event 5 but workflow code produced StartChildWorkflowExecution(workflow_type=\"Bill\", workflow_id=\"ship-1\")"),
        v("nd_signal_external_changed", "non_determinism", "The code signals another workflow than recorded.",
          main(json!([{"signal_external": {"workflow_id": "other-2", "signal": "ping", "input": []}}, {"complete": null}])))
            .run("start input=[]").answer(vec![signal_ext("other-1", "ping", json!([]))]).run("@1s external-delivered 5")
            .nondeterminism(5, "history has SignalExternalWorkflowExecutionInitiated(workflow_id=\"other-1\", signal_name=\"ping\") at event 5 but workflow code produced SignalExternalWorkflowExecution(workflow_id=\"other-2\", signal_name=\"ping\")"),
        v("nd_patch_removed", "non_determinism", "The code no longer calls patched() where the history recorded its (not deprecated) marker.",
          main(json!([{"timer": "1s"}, {"complete": null}])))
            .run("start input=[]").answer(vec![patch("p1", false), timer("1", "1s")]).run("@1s fire-timer 1")
            .nondeterminism(5, "history has MarkerRecorded(marker_name=\"core_patch\", patch_id=\"p1\") at event 5 but workflow code produced StartTimer(timer_id=\"1\")"),
        v("nd_cancel_external_changed", "non_determinism", "The code asks another workflow to cancel than recorded.",
          main(json!([{"cancel_external": {"workflow_id": "other-2"}}, {"complete": null}])))
            .run("start input=[]").answer(vec![cancel_ext("other-1")]).run("@1s external-delivered 5")
            .nondeterminism(5, "history has RequestCancelExternalWorkflowExecutionInitiated(workflow_id=\"other-1\") at event 5 but workflow code produced RequestCancelExternalWorkflowExecution(workflow_id=\"other-2\")"),
        v("nd_timer_cancel_missing", "non_determinism", "The history cancelled a timer the code now lets run.",
          with_signals(&["go"], json!([{"start": {"timer": "60s"}, "name": "t"}, {"wait_signal": "go"}, {"timer": "1s"}, {"complete": null}])))
            .run("start input=[]").answer(vec![timer("1", "60s")]).run("@1s signal go")
            .answer(vec![cancel_timer("1"), timer("2", "1s")]).run("@2s fire-timer 2")
            .nondeterminism(10, "history has TimerCanceled(timer_id=\"1\") at event 10 but workflow code produced StartTimer(timer_id=\"2\")"),
        v("upsert_search_attributes", "search_attributes", "Workflow code sets and removes custom search attributes: one UpsertWorkflowSearchAttributes command with plain values, null for the removed one.",
          main(json!([{"upsert": {"CustomerId": {"type": "Keyword", "value": "c-17"}, "Priority": {"type": "Int", "value": null}}}, {"timer": "1s"}, {"complete": null}])))
            .run("start input=[]")
            .expect(vec![upsert(json!({"CustomerId": "c-17", "Priority": null})), timer("1", "1s")]),
        v("upsert_search_attributes_replayed", "search_attributes", "An upsert in the history matches the code's upsert of the same attributes; the run goes on.",
          main(json!([{"upsert": {"CustomerId": {"type": "Keyword", "value": "c-17"}}}, {"timer": "1s"}, {"complete": null}])))
            .run("start input=[]").answer(vec![upsert(json!({"CustomerId": "c-17"})), timer("1", "1s")]).run("@1s fire-timer 1")
            .expect(vec![complete(json!(null))]),
        v("nd_upsert_missing", "non_determinism", "The history recorded an upsert the code no longer makes.",
          main(json!([{"timer": "1s"}, {"complete": null}])))
            .run("start input=[]").answer(vec![upsert(json!({"CustomerId": "c-17"})), timer("1", "1s")]).run("@1s fire-timer 1")
            .nondeterminism(5, "history has UpsertWorkflowSearchAttributes(names=[\"CustomerId\"]) at event 5 but workflow code produced StartTimer(timer_id=\"1\")"),
        // ---- local activities ----
        v("local_activity_replayed", "local_activities", "A LocalActivity marker resolves the local activity without running it; the workflow goes on as it did.",
          main(json!([{"local_activity": "charge", "input": [42], "as": "r"}, {"activity": "ship", "input": [{"$": "r"}]}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![local("1", "charge", 1, json!({"result": 7}), None), act("2", "ship", json!([7]))])
            .run("@1s complete-activity 2")
            .expect(vec![complete(json!(7))]),
        v("local_activity_backoff_replayed", "local_activities", "A failed attempt with a back-off waits on a durable timer; the next attempt's marker, in a later task, resolves it.",
          main(json!([{"local_activity": "charge", "input": [], "as": "r"}, {"activity": "ship", "input": [{"$": "r"}]}, {"complete": {"$": "r"}}])))
            .run("start input=[]").answer(vec![local("1", "charge", 1, json!({"backoff": "120s"}), Some("attempt 1 failed")), timer("1", "120s")])
            .run("@120s fire-timer 1")
            .answer(vec![local("1", "charge", 2, json!({"result": 7}), None), act("2", "ship", json!([7]))])
            .run("@121s complete-activity 2")
            .expect(vec![complete(json!(7))]),
        v("local_activity_failed_replayed", "local_activities", "A marker with a final failure rejects the call with an activity error caused by the failure.",
          main(json!([{"local_activity": "charge", "input": [], "catch": true, "as": "e"}, {"timer": "1s"}, {"complete": {"$": "e"}}])))
            .run("start input=[]").answer(vec![local("1", "charge", 3, json!({"retry_state": "MAXIMUM_ATTEMPTS_REACHED"}), Some("attempt 3 failed")), timer("1", "1s")])
            .run("@1s fire-timer 1")
            .expect(vec![complete(err("ActivityError", Some("ApplicationError")))]),
        v("local_activity_ids_shared_with_activities", "local_activities", "Local activities take ids from the activities' sequence, in call order.",
          main(json!([{"activity": "reserve", "input": []}, {"local_activity": "charge", "input": [], "as": "r"}, {"activity": "ship", "input": [{"$": "r"}]}, {"complete": null}])))
            .run("start input=[]").answer(vec![act("1", "reserve", json!([]))]).run("@1s complete-activity 1")
            .answer(vec![local("2", "charge", 1, json!({"result": 5}), None), act("3", "ship", json!([5]))])
            .run("@2s complete-activity 3")
            .expect(vec![complete(json!(null))]),
        v("local_activity_across_heartbeat", "local_activities", "A local activity still running when its task answered early (a workflow-task heartbeat) is waiting in the next task too; its marker there resolves it.",
          main(json!([{"local_activity": "charge", "input": [], "as": "r"}, {"activity": "ship", "input": [{"$": "r"}]}, {"complete": {"$": "r"}}])))
            .run("start input=[]\ncomplete-wft force")
            .answer(vec![local("1", "charge", 1, json!({"result": 7}), None), act("2", "ship", json!([7]))])
            .run("@1s complete-activity 2")
            .expect(vec![complete(json!(7))]),
        v("nd_local_activity_type_changed", "non_determinism", "The code runs another local activity where the history recorded a LocalActivity marker.",
          main(json!([{"local_activity": "refund", "input": []}, {"complete": null}])))
            .run("start input=[]").answer(vec![local("1", "charge", 1, json!({"result": 1}), None), timer("1", "1s")]).run("@1s fire-timer 1")
            .nondeterminism(5, "history has MarkerRecorded(marker_name=\"LocalActivity\", activity_type=\"charge\", activity_id=\"1\") at event 5 but workflow code produced no command"),
        // ---- inline activities (§5.9): checkpointed histories replay as any other ----
        v("inline_activities_done", "inline_activities", "Both activities ran inline: the first checkpoint scheduled the first (inline: true), a continuation's speculative task the second, and a completions-only checkpoint reported it; the pushed task replays it all and completes.",
          main(json!([{"activity": "a", "input": [], "as": "x"}, {"activity": "b", "input": [{"$": "x"}], "as": "y"}, {"complete": {"$": "y"}}])))
            .run("start input=[]
                  @1s checkpoint first inline=1 | schedule 1 type=a input=[] stc=10s
                  @2s checkpoint complete=1 result=7 inline=2 | schedule 2 type=b input=[7] stc=10s
                  @3s checkpoint complete=2 result=8")
            .expect(vec![complete(json!(8))]),
        v("inline_attempt_retried_as_pushed", "inline_activities", "The first activity ran inline; the second's inline attempt failed and its retry was an ordinary pushed attempt (ActivityTaskStarted attempt 2): its result completes the workflow.",
          main(json!([{"activity": "a", "input": [], "as": "x"}, {"activity": "b", "input": [{"$": "x"}], "as": "y"}, {"complete": {"$": "y"}}])))
            .run("start input=[]
                  @1s checkpoint first inline=1 | schedule 1 type=a input=[] stc=10s
                  @2s checkpoint complete=1 result=7 inline=2 | schedule 2 type=b input=[7] stc=10s
                  @3s checkpoint fail=2
                  @4s start-attempt 2
                  @5s complete-activity 2 result=8")
            .expect(vec![complete(json!(8))]),
        v("inline_continuation_after_signal", "inline_activities", "A signal arrived while the first activity ran inline: the continuation with its result did not continue (the result waited behind the task the signal scheduled, which answered nothing); the next pushed task replays signal and result and schedules the second activity.",
          with_signals(&["poke"], json!([{"activity": "a", "input": [], "as": "x"}, {"activity": "b", "input": [{"$": "x"}], "as": "y"}, {"complete": {"$": "y"}}])))
            .run("start input=[]
                  @1s checkpoint first inline=1 | schedule 1 type=a input=[] stc=10s
                  @2s signal poke
                  @3s checkpoint complete=1 result=7 inline=2 | schedule 2 type=b input=[7] stc=10s")
            .answer(vec![])
            .expect(vec![act("2", "b", json!([7]))]),
    ]
}

// ---- generation ----

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/replay")
}

/// Drives the engine through the vector and returns its JSON file.
fn generate(vector: &Vector) -> Value {
    let mut scenario = Scenario::new();
    for step in &vector.steps {
        match step {
            Step::Line(line) => {
                if let Err(rejection) = scenario.run(line) {
                    panic!("{}: `{line}` was rejected: {rejection}", vector.name);
                }
            }
            Step::Answer(commands) => {
                let outcome = answer(&mut scenario, commands, vector.name);
                assert_eq!(
                    outcome, None,
                    "{}: an answer on the way was refused",
                    vector.name
                );
            }
            Step::Refused(commands) => {
                let outcome = answer(&mut scenario, commands, vector.name);
                assert!(
                    outcome.is_some(),
                    "{}: the answer was not refused",
                    vector.name
                );
            }
        }
    }
    let state = scenario.state().clone();
    let view = engine::workflow_task_view(&state, &scenario.ctx())
        .unwrap_or_else(|| panic!("{}: no workflow task to push", vector.name));
    let mut history: Vec<Value> = scenario
        .history
        .iter()
        .chain(&view.transient_events)
        .map(|e| serde_json::to_value(e).expect("events serialize"))
        .collect();
    // The harness pushes the task now; the history ends with its Started.
    let last = history.last().expect("a history");
    assert_eq!(
        last["event_type"], "WorkflowTaskStarted",
        "{}: the history ends with the task's WorkflowTaskStarted",
        vector.name
    );
    let request = json!({
        "type": "workflow_task",
        "namespace": state.namespace,
        "task_token": format!("replay-vector:{}", vector.name),
        "workflow_id": state.workflow_id,
        "run_id": state.run_id,
        "workflow_type": state.workflow_type,
        "task_queue": state.task_queue,
        "attempt": view.token.attempt,
        "history_length": history.len(),
        "history_size_bytes": view.history_size_bytes,
        "suggest_continue_as_new": view.suggest_continue_as_new,
        "history": std::mem::take(&mut history),
    });

    // The server's side: the expected answer against this task.
    for line in &vector.in_flight {
        if let Err(rejection) = scenario.run(line) {
            panic!(
                "{}: in-flight `{line}` was rejected: {rejection}",
                vector.name
            );
        }
    }
    let mut refuses = Vec::new();
    for (commands, cause) in &vector.refuses {
        let mut other = scenario.clone();
        let outcome = answer_with(&mut other, commands, view.token, vector.name);
        assert_eq!(
            outcome.as_deref(),
            Some(*cause),
            "{}: the server refuses {commands}",
            vector.name
        );
        refuses.push(json!({"commands": commands, "cause": cause}));
    }
    let expect = match &vector.expect {
        Expect::Commands(commands) => {
            let token = view.token;
            let outcome = answer_with(&mut scenario, commands, token, vector.name);
            assert_eq!(
                outcome.as_deref(),
                vector.rejected,
                "{}: the server's verdict on the expected answer",
                vector.name
            );
            json!({ "commands": commands })
        }
        Expect::NonDeterminism { event_id, message } => {
            let t = scenario
                .apply(Command::FailWorkflowTask {
                    token: view.token,
                    cause: WorkflowTaskFailedCause::NonDeterministicError,
                    failure: Failure::new(message.as_str(), "NonDeterminismError"),
                })
                .unwrap_or_else(|r| panic!("{}: the failure was refused: {r}", vector.name));
            assert!(
                t.events
                    .iter()
                    .any(|e| matches!(e.attributes, EventAttributes::WorkflowTaskFailed(_))),
                "{}: a first-attempt failure is recorded",
                vector.name
            );
            json!({"non_determinism": {"event_id": event_id, "message": message}})
        }
    };
    let mut server = match vector.rejected {
        None => json!({"accepts": true}),
        Some(cause) => json!({"accepts": false, "cause": cause, "in_flight": vector.in_flight}),
    };
    if !refuses.is_empty() {
        server["refuses"] = Value::Array(refuses);
    }
    json!({
        "name": vector.name,
        "category": vector.category,
        "description": vector.description,
        "script": vector.script,
        "workflow_task": request,
        "expect": expect,
        "server": server,
    })
}

fn answer(scenario: &mut Scenario, commands: &Value, name: &str) -> Option<String> {
    let view = engine::workflow_task_view(scenario.state(), &scenario.ctx())
        .unwrap_or_else(|| panic!("{name}: no workflow task to answer"));
    answer_with(scenario, commands, view.token, name)
}

/// Answers the task with `commands` (wire JSON); returns the refusal cause,
/// if the server refused them.
fn answer_with(
    scenario: &mut Scenario,
    commands: &Value,
    token: engine::WorkflowTaskToken,
    name: &str,
) -> Option<String> {
    let parsed: Vec<WorkflowCommand> = serde_json::from_value(commands.clone())
        .unwrap_or_else(|e| panic!("{name}: commands do not parse: {e}"));
    let t = scenario
        .apply(Command::CompleteWorkflowTask {
            token,
            commands: parsed,
            identity: None,
            force_create_new_workflow_task: false,
            search_attributes: registry(),
        })
        .unwrap_or_else(|r| panic!("{name}: the answer was rejected: {r}"));
    let refused = t.events.iter().find_map(|e| match &e.attributes {
        EventAttributes::WorkflowTaskFailed(f) => Some(
            serde_json::to_value(f.cause)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        ),
        _ => None,
    });
    refused
}

#[test]
fn replay_vectors_match_a_fresh_generation() {
    let vectors = vectors();
    let mut names = BTreeSet::new();
    for v in &vectors {
        assert!(names.insert(v.name), "duplicate vector name {}", v.name);
    }
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let dir = dir();
    if update {
        std::fs::create_dir_all(&dir).expect("create tests/replay");
    }
    let mut stale = Vec::new();
    for (n, v) in vectors.iter().enumerate() {
        let file = dir.join(format!("{:03}_{}.json", n + 1, v.name));
        let text = serde_json::to_string_pretty(&generate(v)).expect("json") + "\n";
        if update {
            std::fs::write(&file, text).expect("write vector");
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            stale.push(file.display().to_string());
        }
    }
    let expected: BTreeSet<String> = vectors
        .iter()
        .enumerate()
        .map(|(n, v)| format!("{:03}_{}.json", n + 1, v.name))
        .collect();
    for entry in std::fs::read_dir(&dir).expect("tests/replay exists") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".json") && !expected.contains(&name) {
            if update {
                std::fs::remove_file(dir.join(&name)).expect("remove stale vector");
            } else {
                stale.push(format!("{name} (no longer generated)"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "tests/replay differs from a fresh generation (UPDATE_EXPECT=1 cargo test --lib replay_vectors):\n{}",
        stale.join("\n")
    );
    assert!(vectors.len() >= 60, "the contract has at least 60 vectors");
    let nd = vectors
        .iter()
        .filter(|v| matches!(v.expect, Expect::NonDeterminism { .. }))
        .count();
    assert!(nd >= 10, "at least 10 non-determinism vectors");
}
