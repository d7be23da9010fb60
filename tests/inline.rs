//! Inline activities with per-step durability (docs/protocol.md §5.9), end
//! to end: a real node on loopback and a raw protocol-level handler that
//! runs its activities inline and commits each step with signed
//! checkpoints, on SQLite and on PostgreSQL.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use baton::engine::{ContinuationToken, TaskToken, TokenKind};
use baton::ids::Namespace;
use baton::time::{Clock, SystemClock, Timestamp};
use common::{
    event_types, post_signed, sequential_workflow, spawn_handler, spawn_server, Db, SECRET,
};
use futures::future::BoxFuture;
use serde_json::{json, Value};

on_both_databases!(
    three_steps_take_one_push_and_three_checkpoints,
    a_signal_during_an_inline_attempt_ends_the_session,
    a_stale_continuation_token_continues_nothing,
    a_failed_inline_attempt_is_retried_as_a_pushed_activity,
    an_abandoned_inline_attempt_times_out_and_is_pushed,
    unsigned_forged_and_malformed_checkpoints_write_nothing,
);

// Fifty runs at once, each with one push and three inline steps, on a
// machine that may be loaded: sessions that near their push's deadline
// stop inlining (as the SDKs do) and their step is pushed instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fifty_concurrent_runs_inline_their_steps() {
    fifty_concurrent_runs_inline_their_steps(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_fifty_concurrent_runs_inline_their_steps() {
    fifty_concurrent_runs_inline_their_steps(Db::Sqlite).await;
}

const STEPS: usize = 3;

/// The steps; the first with `first_timeout` as its start-to-close, the
/// others with 10 s (short only where a test waits for it: a busy machine
/// must not time attempts out).
fn plan(first_timeout: &str) -> Vec<(&'static str, Value)> {
    (0..STEPS)
        .map(|i| {
            let stc = if i == 0 { first_timeout } else { "10s" };
            let options = json!({"start_to_close_timeout": stc,
                "retry_policy": {"initial_interval": "100ms"}});
            ("step", options)
        })
        .collect()
}

/// Called before an inline attempt's result is reported, with the step
/// (1-based) and the workflow id.
type Hook = Arc<dyn Fn(usize, String) -> BoxFuture<'static, ()> + Send + Sync>;

/// How the handler's sessions behave.
#[derive(Clone, Default)]
struct Behaviour {
    /// The first inline attempt of step 1 fails (retryably).
    fail_first: bool,
    /// The handler never reports its first inline attempt of step 1
    /// (whose start-to-close timeout is then 1 s instead of 10 s).
    abandon_first: bool,
    /// Each continuation is sent twice: the second, stale, must change
    /// nothing.
    resend: bool,
    hook: Option<Hook>,
}

/// What the handler saw.
#[derive(Default)]
struct Log {
    /// (request, status, answer) of every checkpoint sent.
    checkpoints: Vec<(Value, StatusCode, Value)>,
    /// Steps whose first inline attempt was failed or abandoned already.
    tripped: Vec<String>,
    /// Steps left to be pushed because their session neared its deadline.
    deadline_stops: usize,
}

struct Handler {
    inner: common::TestHandler,
    log: Arc<Mutex<Log>>,
}

impl Handler {
    fn pushes(&self, kind: &str) -> usize {
        let received = self.inner.received.lock().unwrap();
        received.iter().filter(|p| p["type"] == kind).count()
    }
}

async fn inline_handler(behaviour: Behaviour) -> Handler {
    let log = Arc::new(Mutex::new(Log::default()));
    let log2 = log.clone();
    let inner = spawn_handler(move |req: Value| {
        let (behaviour, log) = (behaviour.clone(), log2.clone());
        async move {
            match req["type"].as_str() {
                // Run apart from the push's connection, as uvicorn and
                // Node keep running a handler whose caller hung up: a
                // session that outlives its push's deadline (the node
                // stops waiting for the answer) still finishes its step.
                Some("workflow_task") => {
                    tokio::spawn(async move { session(&req, &behaviour, &log).await })
                        .await
                        .unwrap()
                }
                _ => {
                    let step = req["input"]["step"].clone();
                    (StatusCode::OK, json!({"result": {"step": step}}))
                }
            }
        }
    })
    .await;
    Handler { inner, log }
}

/// The commands after `results`: the next step, or completion.
fn next_commands(results: &[Value]) -> Value {
    let plan = plan("10s");
    if results.len() == plan.len() {
        return json!([{"command_type": "CompleteWorkflowExecution", "attributes": {"result": results}}]);
    }
    let n = results.len() + 1;
    json!([{"command_type": "ScheduleActivityTask", "attributes": {
        "activity_id": n.to_string(), "activity_type": "step", "input": {"step": n},
        "start_to_close_timeout": "10s", "retry_policy": {"initial_interval": "100ms"}}}])
}

fn scheduled_ids(commands: &Value) -> Vec<Value> {
    commands
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["command_type"] == "ScheduleActivityTask")
        .map(|c| c["attributes"]["activity_id"].clone())
        .collect()
}

/// One push: decide from the history, then run every scheduled step inline,
/// one checkpoint per step, on the same in-memory state.
async fn session(push: &Value, b: &Behaviour, log: &Mutex<Log>) -> (StatusCode, Value) {
    let start_to_close = if b.abandon_first { "1s" } else { "10s" };
    let answer = sequential_workflow(push, &plan(start_to_close));
    let url = push["checkpoint_url"].as_str().unwrap().to_owned();
    let workflow_id = push["workflow_id"].as_str().unwrap().to_owned();
    let inline = scheduled_ids(&answer["commands"]);
    if inline.is_empty() {
        return (StatusCode::OK, answer);
    }
    let mut results: Vec<Value> = push["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "ActivityTaskCompleted")
        .map(|e| e["attributes"]["result"].clone())
        .collect();
    // As the SDKs do: no new inline attempt once less than max(1 s, 20 %)
    // of the push's budget is left.
    let deadline: Timestamp = serde_json::from_value(push["deadline"].clone()).unwrap();
    let left = || deadline.millis() - SystemClock.now().millis();
    let reserve = (left() / 5).max(1_000);
    let mut stopping = false;
    let mut body = json!({"task_token": push["task_token"], "commands": answer["commands"],
        "inline": inline, "identity": "inline-test"});
    loop {
        let (status, reply) = post_signed(&url, &body, Some(SECRET)).await;
        let arrived = Instant::now();
        log.lock()
            .unwrap()
            .checkpoints
            .push((body.clone(), status, reply.clone()));
        assert_eq!(status, StatusCode::OK, "{reply}");
        // A stop counts once the step it left out is scheduled (to be
        // pushed); refused, the step's own attempt is what comes back.
        if stopping && reply["continued"] == true {
            log.lock().unwrap().deadline_stops += 1;
        }
        if b.resend && body.get("completions").is_some() {
            let (status, again) = post_signed(&url, &body, Some(SECRET)).await;
            log.lock()
                .unwrap()
                .checkpoints
                .push((body.clone(), status, again.clone()));
        }
        if reply["continued"] != true {
            break;
        }
        let Some(task) = reply["activity_tasks"].as_array().and_then(|t| t.first()) else {
            break;
        };
        let step = results.len() + 1;
        let key = format!("{workflow_id}/{step}");
        let first_time = step == 1 && !log.lock().unwrap().tripped.contains(&key);
        if first_time && (b.fail_first || b.abandon_first) {
            log.lock().unwrap().tripped.push(key);
            if b.abandon_first {
                // The handler "dies": nobody reports the attempt.
                break;
            }
            let body = json!({"task_token": reply["continuation_token"], "completions": [
                {"task_token": task["task_token"], "failure": {"message": "flaky", "type": "Flaky"}}]});
            let (status, failed) = post_signed(&url, &body, Some(SECRET)).await;
            log.lock()
                .unwrap()
                .checkpoints
                .push((body.clone(), status, failed.clone()));
            break;
        }
        if let Some(hook) = &b.hook {
            hook(step, workflow_id.clone()).await;
        }
        let result = json!({"step": step});
        results.push(result.clone());
        let server_time: Timestamp = serde_json::from_value(reply["server_time"].clone()).unwrap();
        let workflow_time = Timestamp(server_time.millis() + arrived.elapsed().as_millis() as i64);
        let commands = next_commands(&results);
        let mut inline = scheduled_ids(&commands);
        stopping = !inline.is_empty() && left() < reserve;
        if stopping {
            inline.clear();
        }
        body = json!({
            "task_token": reply["continuation_token"],
            "completions": [{"task_token": task["task_token"], "result": result}],
            "inline": inline,
            "commands": commands,
            "workflow_time": workflow_time,
            "identity": "inline-test",
        });
    }
    (StatusCode::OK, json!({"checkpointed": true}))
}

/// The three-step history, with every activity scheduled inline.
fn three_step_shape() -> Vec<&'static str> {
    let mut expected = vec!["WorkflowExecutionStarted"];
    for _ in 0..STEPS {
        expected.extend([
            "WorkflowTaskScheduled",
            "WorkflowTaskStarted",
            "WorkflowTaskCompleted",
            "ActivityTaskScheduled",
            "ActivityTaskStarted",
            "ActivityTaskCompleted",
        ]);
    }
    expected.extend([
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowTaskCompleted",
        "WorkflowExecutionCompleted",
    ]);
    expected
}

fn assert_dense(history: &[Value]) {
    for (i, e) in history.iter().enumerate() {
        assert_eq!(
            e["event_id"],
            json!(i + 1),
            "event ids are dense: {history:#?}"
        );
    }
}

fn completed_results(history: &[Value]) -> Vec<Value> {
    history
        .iter()
        .filter(|e| e["event_type"] == "ActivityTaskCompleted")
        .map(|e| e["attributes"]["result"].clone())
        .collect()
}

async fn three_steps_take_one_push_and_three_checkpoints(db: Db) {
    let server = spawn_server(db).await;
    let handler = inline_handler(Behaviour::default()).await;
    server.api.register("inline", &handler.inner.url).await;
    let (status, started) = server.api.start("w1", "W1", "inline", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let result = server.api.result("w1").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(
        result["result"],
        json!([{"step": 1}, {"step": 2}, {"step": 3}])
    );
    assert_eq!(
        handler.pushes("workflow_task"),
        1,
        "one push for the whole run"
    );
    assert_eq!(handler.pushes("activity_task"), 0, "every step ran inline");
    let history = server.api.history("w1").await;
    assert_eq!(event_types(&history), three_step_shape());
    assert_dense(&history);
    for e in history
        .iter()
        .filter(|e| e["event_type"] == "ActivityTaskScheduled")
    {
        assert_eq!(e["attributes"]["inline"], true, "{e}");
    }
    // The push carried the checkpoint URL of its namespace and a deadline.
    let push = handler.inner.received.lock().unwrap()[0].clone();
    assert_eq!(
        push["checkpoint_url"],
        format!(
            "http://{}/api/v1/namespaces/default/workflow-tasks/checkpoint",
            server.addr
        )
    );
    let started_at: Timestamp =
        serde_json::from_value(push["history"][2]["event_time"].clone()).unwrap();
    let deadline: Timestamp = serde_json::from_value(push["deadline"].clone()).unwrap();
    assert_eq!(deadline.millis() - started_at.millis(), 10_000);
    // Each answer's events are what the history holds at those ids, and
    // every continuation's events carry its workflow_time.
    let log = std::mem::take(&mut *handler.log.lock().unwrap());
    assert_eq!(log.checkpoints.len(), STEPS + 1);
    for (req, _, answer) in &log.checkpoints {
        for e in answer["events"].as_array().unwrap() {
            let id = e["event_id"].as_u64().unwrap() as usize;
            assert_eq!(*e, history[id - 1]);
            if let Some(t) = req.get("workflow_time") {
                assert_eq!(e["event_time"], *t);
            }
        }
    }
    server.stop().await;
}

async fn a_signal_during_an_inline_attempt_ends_the_session(db: Db) {
    let server = spawn_server(db).await;
    let api = Arc::new(common::Api::new(server.api.base.clone(), None));
    let hook: Hook = Arc::new(move |step, workflow_id| {
        let api = api.clone();
        Box::pin(async move {
            if step != 1 {
                return;
            }
            let path = format!("/api/v1/namespaces/default/workflows/{workflow_id}");
            let (status, body) = api
                .post(&format!("{path}/signal/poke"), json!({"input": 1}))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            // The signal's own workflow task is pushed and answered first.
            let done = common::eventually(Duration::from_secs(10), || async {
                let h = api.history(&workflow_id).await;
                let signaled = h
                    .iter()
                    .position(|e| e["event_type"] == "WorkflowExecutionSignaled");
                signaled.is_some_and(|at| {
                    h[at..]
                        .iter()
                        .any(|e| e["event_type"] == "WorkflowTaskCompleted")
                })
            })
            .await;
            assert!(done, "the signal's task completed");
        })
    });
    let handler = inline_handler(Behaviour {
        hook: Some(hook),
        ..Behaviour::default()
    })
    .await;
    server.api.register("inline", &handler.inner.url).await;
    server.api.start("sig", "W1", "inline", json!({})).await;
    let result = server.api.result("sig").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let history = server.api.history("sig").await;
    assert_dense(&history);
    assert_eq!(
        completed_results(&history),
        vec![json!({"step": 1}), json!({"step": 2}), json!({"step": 3})],
        "each result recorded once"
    );
    let log = std::mem::take(&mut *handler.log.lock().unwrap());
    let refused = log
        .checkpoints
        .iter()
        .find(|(_, _, a)| a["continued"] == false)
        .expect("the checkpoint after the signal did not continue");
    assert_eq!(refused.2["completions"], json!([{"accepted": true}]));
    assert!(
        refused.2.get("continuation_token").is_none(),
        "{}",
        refused.2
    );
    // The workflow went on in pushed tasks: the signal's, then the one the
    // completion scheduled (which started the next session).
    assert!(handler.pushes("workflow_task") >= 3);
    assert_eq!(handler.pushes("activity_task"), 0);
    server.stop().await;
}

async fn a_stale_continuation_token_continues_nothing(db: Db) {
    let server = spawn_server(db).await;
    let handler = inline_handler(Behaviour {
        resend: true,
        ..Behaviour::default()
    })
    .await;
    server.api.register("inline", &handler.inner.url).await;
    server.api.start("stale", "W1", "inline", json!({})).await;
    let result = server.api.result("stale").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    // The last resend may still be on its way when the run closes.
    let sent = common::eventually(Duration::from_secs(5), || async {
        handler.log.lock().unwrap().checkpoints.len() == 1 + 2 * STEPS
    })
    .await;
    assert!(sent, "every continuation was sent twice");
    let history = server.api.history("stale").await;
    assert_eq!(
        event_types(&history),
        three_step_shape(),
        "no duplicate events"
    );
    assert_dense(&history);
    let log = std::mem::take(&mut *handler.log.lock().unwrap());
    let resent: Vec<_> = log
        .checkpoints
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| &w[1].2)
        .collect();
    let summary: Vec<_> = log
        .checkpoints
        .iter()
        .map(|(req, _, a)| {
            (
                req["task_token"].clone(),
                a["continued"].clone(),
                a["completions"].clone(),
            )
        })
        .collect();
    assert_eq!(resent.len(), STEPS, "{summary:#?}");
    for answer in resent {
        assert_eq!(answer["continued"], false, "{answer}");
        assert_eq!(answer["completions"], json!([{"accepted": false}]));
        assert!(answer.get("events").is_none(), "{answer}");
    }
    server.stop().await;
}

async fn a_failed_inline_attempt_is_retried_as_a_pushed_activity(db: Db) {
    let server = spawn_server(db).await;
    let handler = inline_handler(Behaviour {
        fail_first: true,
        ..Behaviour::default()
    })
    .await;
    server.api.register("inline", &handler.inner.url).await;
    server.api.start("flaky", "W1", "inline", json!({})).await;
    let result = server.api.result("flaky").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let pushes = handler.inner.received.lock().unwrap().clone();
    let retries: Vec<_> = pushes
        .iter()
        .filter(|p| p["type"] == "activity_task")
        .collect();
    assert_eq!(retries.len(), 1, "{pushes:#?}");
    assert_eq!(retries[0]["activity_id"], "1");
    assert_eq!(retries[0]["attempt"], 2);
    let history = server.api.history("flaky").await;
    assert_dense(&history);
    let started = history
        .iter()
        .find(|e| e["event_type"] == "ActivityTaskStarted")
        .unwrap();
    assert_eq!(started["attributes"]["attempt"], 2);
    assert_eq!(started["attributes"]["last_failure"]["message"], "flaky");
    assert_eq!(
        completed_results(&history),
        vec![json!({"step": 1}), json!({"step": 2}), json!({"step": 3})]
    );
    // The failure was accepted, and did not continue the session.
    let log = std::mem::take(&mut *handler.log.lock().unwrap());
    let failed = log
        .checkpoints
        .iter()
        .find(|(req, _, _)| req["completions"][0].get("failure").is_some())
        .unwrap();
    assert_eq!(failed.2["continued"], false);
    assert_eq!(failed.2["completions"], json!([{"accepted": true}]));
    server.stop().await;
}

async fn an_abandoned_inline_attempt_times_out_and_is_pushed(db: Db) {
    let server = spawn_server(db).await;
    let handler = inline_handler(Behaviour {
        abandon_first: true,
        ..Behaviour::default()
    })
    .await;
    server.api.register("inline", &handler.inner.url).await;
    let begun = Instant::now();
    server.api.start("gone", "W1", "inline", json!({})).await;
    let result = server.api.result("gone").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert!(
        begun.elapsed() >= Duration::from_secs(1),
        "start-to-close is 1 s"
    );
    let pushes = handler.inner.received.lock().unwrap().clone();
    let retries: Vec<_> = pushes
        .iter()
        .filter(|p| p["type"] == "activity_task")
        .collect();
    assert_eq!(retries.len(), 1, "{pushes:#?}");
    assert_eq!(retries[0]["attempt"], 2);
    let history = server.api.history("gone").await;
    assert_dense(&history);
    let started = history
        .iter()
        .find(|e| e["event_type"] == "ActivityTaskStarted")
        .unwrap();
    assert_eq!(started["attributes"]["attempt"], 2);
    assert_eq!(
        started["attributes"]["last_failure"]["timeout_type"], "START_TO_CLOSE",
        "{started}"
    );
    assert_eq!(completed_results(&history).len(), STEPS);
    server.stop().await;
}

async fn fifty_concurrent_runs_inline_their_steps(db: Db) {
    const RUNS: usize = 50;
    let server = spawn_server(db).await;
    let handler = inline_handler(Behaviour::default()).await;
    server.api.register("inline", &handler.inner.url).await;
    let starts = (0..RUNS).map(|i| {
        let api = &server.api;
        async move {
            let (status, body) = api
                .start(&format!("c-{i}"), "W1", "inline", json!({}))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    });
    futures::future::join_all(starts).await;
    // Attempts that timed out on a machine too busy to report them within
    // their start-to-close timeout, retried as pushes: inline ones, whose
    // workflow then goes on in a pushed task, and pushed ones.
    let (mut retried_inline, mut retried_pushed) = (0, 0);
    for i in 0..RUNS {
        let id = format!("c-{i}");
        let result = server.api.result(&id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
        let history = server.api.history(&id).await;
        assert_eq!(event_types(&history), three_step_shape(), "{id}");
        assert_dense(&history);
        assert_eq!(completed_results(&history).len(), STEPS, "{id}");
        for e in history
            .iter()
            .filter(|e| e["event_type"] == "ActivityTaskStarted")
        {
            let scheduled = e["attributes"]["scheduled_event_id"].as_u64().unwrap();
            let inline = history[scheduled as usize - 1]["attributes"]["inline"] == true;
            match (e["attributes"]["attempt"].as_u64(), inline) {
                (Some(1), _) => {}
                (Some(2), true) => retried_inline += 1,
                (Some(2), false) => retried_pushed += 1,
                _ => panic!("{id}: a step ran more than twice: {e}"),
            }
        }
    }
    // Every other session inlined all its steps: one push per run, plus a
    // workflow task and an activity push for each step a deadline left out
    // or an inline attempt's timeout retried, and an activity push for each
    // pushed attempt retried; no push is unaccounted for.
    let stops = handler.log.lock().unwrap().deadline_stops;
    eprintln!(
        "{RUNS} runs: {stops} steps pushed because their session neared its deadline; \
         {retried_inline} inline and {retried_pushed} pushed attempts timed out"
    );
    let refused: Vec<_> = handler
        .log
        .lock()
        .unwrap()
        .checkpoints
        .iter()
        .filter(|(_, status, _)| *status != StatusCode::OK)
        .map(|(_, status, answer)| format!("{status}: {answer}"))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(
        handler.pushes("workflow_task"),
        RUNS + stops + retried_inline
    );
    assert_eq!(
        handler.pushes("activity_task"),
        stops + retried_inline + retried_pushed
    );
    server.stop().await;
}

/// A continuation token of the pushed run, current at its third event.
fn continuation(push: &Value) -> String {
    TaskToken {
        namespace: Namespace("default".into()),
        run_id: push["run_id"].as_str().unwrap().parse().unwrap(),
        task: TokenKind::Continuation(ContinuationToken {
            last_event_id: 3,
            last_event_time: Timestamp(0),
        }),
    }
    .to_string()
}

async fn unsigned_forged_and_malformed_checkpoints_write_nothing(db: Db) {
    let server = spawn_server(db).await;
    // Answers its push normally, after trying bad checkpoints with its token.
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let seen = outcomes.clone();
    let handler = spawn_handler(move |push: Value| {
        let seen = seen.clone();
        async move {
            if push["type"] != "workflow_task" {
                return (StatusCode::OK, json!({"result": null}));
            }
            let url = push["checkpoint_url"].as_str().unwrap().to_owned();
            let schedule = |queue: Option<&str>| {
                let mut a = json!({"activity_id": "1", "activity_type": "step",
                    "input": {"step": 1}, "start_to_close_timeout": "1s"});
                if let Some(q) = queue {
                    a["task_queue"] = json!(q);
                }
                json!([{"command_type": "ScheduleActivityTask", "attributes": a}])
            };
            let good = json!({"task_token": push["task_token"], "commands": schedule(None), "inline": ["1"]});
            let other_secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
            let tries = [
                ("unsigned", good.clone(), None),
                ("forged", good.clone(), Some(other_secret)),
                (
                    "unknown inline id",
                    json!({"task_token": push["task_token"], "commands": schedule(None), "inline": ["9"]}),
                    Some(SECRET),
                ),
                (
                    "other queue",
                    json!({"task_token": push["task_token"], "commands": schedule(Some("elsewhere")), "inline": ["1"]}),
                    Some(SECRET),
                ),
                (
                    "malformed",
                    json!({"task_token": push["task_token"], "commands": "nope"}),
                    Some(SECRET),
                ),
                (
                    "continuation without workflow_time",
                    json!({"task_token": continuation(&push), "commands": schedule(None)}),
                    Some(SECRET),
                ),
            ];
            for (name, body, secret) in tries {
                let (status, answer) = post_signed(&url, &body, secret).await;
                seen.lock().unwrap().push((name, status, answer));
            }
            (
                StatusCode::OK,
                json!({"commands": [{"command_type": "CompleteWorkflowExecution", "attributes": {"result": "plain"}}]}),
            )
        }
    })
    .await;
    server.api.register("inline", &handler.url).await;
    server.api.start("bad", "W1", "inline", json!({})).await;
    let result = server.api.result("bad").await;
    assert_eq!(result["result"], "plain", "{result}");
    let outcomes = outcomes.lock().unwrap().clone();
    let statuses: Vec<_> = outcomes.iter().map(|(n, s, _)| (*n, *s)).collect();
    assert_eq!(
        statuses,
        vec![
            ("unsigned", StatusCode::UNAUTHORIZED),
            ("forged", StatusCode::UNAUTHORIZED),
            ("unknown inline id", StatusCode::BAD_REQUEST),
            ("other queue", StatusCode::BAD_REQUEST),
            ("malformed", StatusCode::BAD_REQUEST),
            (
                "continuation without workflow_time",
                StatusCode::BAD_REQUEST
            ),
        ],
        "{outcomes:#?}"
    );
    assert_eq!(outcomes[0].2["code"], "signature_invalid");
    assert_eq!(outcomes[2].2["code"], "invalid_argument");
    // Nothing any of them sent was written: the push's own answer
    // completed the task.
    let history = server.api.history("bad").await;
    assert_eq!(
        event_types(&history),
        vec![
            "WorkflowExecutionStarted",
            "WorkflowTaskScheduled",
            "WorkflowTaskStarted",
            "WorkflowTaskCompleted",
            "WorkflowExecutionCompleted"
        ]
    );
    server.stop().await;
}
