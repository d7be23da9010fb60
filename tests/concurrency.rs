//! Many commands to one run at once, end to end on both databases
//! (DESIGN.md invariant 7: one writer per run on a node, nothing dropped):
//! a workflow fanning out to 1,000 parallel activities and one to 200
//! parallel children, 500 concurrent signals to one run, 100 concurrent
//! updates to one run. Every result must be recorded once and every
//! activity executed once; the time each took is printed.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{spawn_handler, spawn_server, Db};
use serde_json::{json, Value};

on_both_databases!(
    fan_out_to_1000_activities_records_each_result_once,
    fan_out_to_200_children_records_each_result_once,
    concurrent_signals_to_one_run_are_all_recorded_in_order,
    concurrent_updates_to_one_run_each_get_their_own_outcome,
    queries_and_update_validators_see_signals_buffered_behind_a_task,
);

const ACTIVITIES: usize = 1_000;
const CHILDREN: usize = 200;
const SIGNALS: usize = 500;
const UPDATES: usize = 100;

fn events_of<'a>(request: &'a Value, event_type: &'a str) -> impl Iterator<Item = &'a Value> {
    request["history"]
        .as_array()
        .map(|h| h.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(move |e| e["event_type"] == event_type)
}

fn complete(result: Value) -> Value {
    json!({"commands": [{"command_type": "CompleteWorkflowExecution", "attributes": {"result": result}}]})
}

/// First task: schedule `n` activities at once. Later tasks: complete once
/// every one has a result, else wait.
fn fan_out_workflow(request: &Value, n: usize) -> Value {
    if events_of(request, "ActivityTaskScheduled").next().is_none() {
        let commands: Vec<Value> = (0..n)
            .map(|i| {
                json!({"command_type": "ScheduleActivityTask", "attributes": {
                    "activity_id": format!("a{i}"), "activity_type": "work",
                    "input": {"i": i}, "start_to_close_timeout": "60s"}})
            })
            .collect();
        return json!({"commands": commands});
    }
    let done: Vec<i64> = events_of(request, "ActivityTaskCompleted")
        .map(|e| e["attributes"]["result"]["i"].as_i64().unwrap())
        .collect();
    if done.len() == n {
        return complete(json!(done.iter().sum::<i64>()));
    }
    json!({"commands": []})
}

async fn fan_out_to_1000_activities_records_each_result_once(db: Db) {
    let server = spawn_server(db).await;
    let executions: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let seen = executions.clone();
    let handler = spawn_handler(move |req: Value| {
        let seen = seen.clone();
        async move {
            match req["type"].as_str() {
                Some("workflow_task") => (StatusCode::OK, fan_out_workflow(&req, ACTIVITIES)),
                _ => {
                    let id = req["activity_id"].as_str().unwrap().to_owned();
                    *seen.lock().unwrap().entry(id).or_default() += 1;
                    (StatusCode::OK, json!({"result": req["input"]}))
                }
            }
        }
    })
    .await;
    server.api.register("fan", &handler.url).await;
    let begun = Instant::now();
    let (status, body) = server.api.start("fan-1", "FanOut", "fan", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let result = server.api.result("fan-1").await;
    let took = begun.elapsed();
    eprintln!("{db:?}: fan-out to {ACTIVITIES} activities completed in {took:.2?}");
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let n = ACTIVITIES as i64;
    assert_eq!(result["result"], json!(n * (n - 1) / 2));

    let history = server.api.history("fan-1").await;
    let mut completed = HashSet::new();
    for e in history
        .iter()
        .filter(|e| e["event_type"] == "ActivityTaskCompleted")
    {
        let sched = e["attributes"]["scheduled_event_id"].as_i64().unwrap();
        assert!(completed.insert(sched), "activity {sched} completed twice");
    }
    assert_eq!(completed.len(), ACTIVITIES, "every result recorded once");
    let executions = executions.lock().unwrap().clone();
    assert_eq!(executions.len(), ACTIVITIES);
    let repeated: Vec<_> = executions.iter().filter(|(_, n)| **n != 1).collect();
    assert!(repeated.is_empty(), "executed more than once: {repeated:?}");
    server.stop().await;
}

/// A parent that starts `n` children at once and completes when all have
/// completed; each child completes at once with its input.
fn children_workflow(request: &Value, n: usize) -> Value {
    if request["workflow_type"] == "Child" {
        let input = events_of(request, "WorkflowExecutionStarted")
            .next()
            .map(|e| e["attributes"]["input"].clone())
            .unwrap_or(Value::Null);
        return complete(input);
    }
    if events_of(request, "StartChildWorkflowExecutionInitiated")
        .next()
        .is_none()
    {
        let parent = request["workflow_id"].as_str().unwrap();
        let commands: Vec<Value> = (0..n)
            .map(|i| {
                json!({"command_type": "StartChildWorkflowExecution", "attributes": {
                    "workflow_id": format!("{parent}-child-{i}"), "workflow_type": "Child",
                    "input": {"i": i}}})
            })
            .collect();
        return json!({"commands": commands});
    }
    let done: Vec<i64> = events_of(request, "ChildWorkflowExecutionCompleted")
        .map(|e| e["attributes"]["result"]["i"].as_i64().unwrap())
        .collect();
    if done.len() == n {
        return complete(json!(done.iter().sum::<i64>()));
    }
    json!({"commands": []})
}

async fn fan_out_to_200_children_records_each_result_once(db: Db) {
    let server = spawn_server(db).await;
    let handler =
        spawn_handler(
            |req: Value| async move { (StatusCode::OK, children_workflow(&req, CHILDREN)) },
        )
        .await;
    server.api.register("kids", &handler.url).await;
    let begun = Instant::now();
    let (status, body) = server
        .api
        .start("parent-1", "Parent", "kids", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let result = server.api.result("parent-1").await;
    let took = begun.elapsed();
    eprintln!("{db:?}: fan-out to {CHILDREN} children completed in {took:.2?}");
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let n = CHILDREN as i64;
    assert_eq!(result["result"], json!(n * (n - 1) / 2));
    let history = server.api.history("parent-1").await;
    for kind in [
        "ChildWorkflowExecutionStarted",
        "ChildWorkflowExecutionCompleted",
    ] {
        let mut seen = HashSet::new();
        for e in history.iter().filter(|e| e["event_type"] == kind) {
            let initiated = e["attributes"]["initiated_event_id"].as_i64().unwrap();
            assert!(seen.insert(initiated), "{kind} twice for {initiated}");
        }
        assert_eq!(seen.len(), CHILDREN, "one {kind} per child");
    }
    // Each child started once: one run per child workflow id.
    let pushed_children: HashSet<String> = handler
        .received
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p["workflow_type"] == "Child")
        .map(|p| p["run_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pushed_children.len(), CHILDREN, "one run per child");
    server.stop().await;
}

/// Waits for the signals named in `expected` (signal names), then
/// completes with the names in history order.
fn signal_workflow(request: &Value, expected: usize) -> Value {
    let names: Vec<Value> = events_of(request, "WorkflowExecutionSignaled")
        .map(|e| e["attributes"]["signal_name"].clone())
        .collect();
    if names.len() >= expected {
        return complete(json!(names));
    }
    json!({"commands": []})
}

async fn concurrent_signals_to_one_run_are_all_recorded_in_order(db: Db) {
    let server = spawn_server(db).await;
    let handler = spawn_handler(|req: Value| async move {
        // A slow handler keeps a workflow task in flight most of the time,
        // so most signals are buffered behind it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        (StatusCode::OK, signal_workflow(&req, SIGNALS))
    })
    .await;
    server.api.register("sig", &handler.url).await;
    let (status, body) = server.api.start("sig-1", "Signals", "sig", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Ten waves of 50 at once: every signal of a wave is accepted before
    // the next wave is sent, so acceptance orders the waves.
    let begun = Instant::now();
    const WAVE: usize = 50;
    for wave in 0..SIGNALS / WAVE {
        let calls = (0..WAVE).map(|i| {
            let api = server.api.clone();
            async move {
                let name = format!("s{:03}", wave * WAVE + i);
                api.post(
                    &format!("/api/v1/namespaces/default/workflows/sig-1/signal/{name}"),
                    json!({"input": i, "request_id": name}),
                )
                .await
            }
        });
        for (status, body) in futures::future::join_all(calls).await {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    eprintln!(
        "{db:?}: {SIGNALS} signals accepted in {:.2?}",
        begun.elapsed()
    );
    let result = server.api.result("sig-1").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let names: Vec<String> = result["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), SIGNALS, "every signal recorded once");
    let distinct: HashSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), SIGNALS, "no signal recorded twice");
    let waves: Vec<usize> = names
        .iter()
        .map(|n| n[1..].parse::<usize>().unwrap() / WAVE)
        .collect();
    assert!(
        waves.windows(2).all(|w| w[0] <= w[1]),
        "a signal accepted later is recorded after the earlier ones: {waves:?}"
    );
    server.stop().await;
}

/// Accepts every update; completes each with its argument doubled. The
/// workflow closes once `n` updates were completed.
fn update_workflow(request: &Value, n: usize) -> Value {
    if request["type"] == "update_validation" {
        return json!({"accepted": true});
    }
    let completed: HashSet<String> = events_of(request, "WorkflowExecutionUpdateCompleted")
        .map(|e| e["attributes"]["update_id"].as_str().unwrap().to_owned())
        .collect();
    let mut commands: Vec<Value> = Vec::new();
    for e in events_of(request, "WorkflowExecutionUpdateAdmitted") {
        let id = e["attributes"]["update_id"].as_str().unwrap().to_owned();
        if completed.contains(&id) {
            continue;
        }
        let arg = e["attributes"]["input"][0].as_i64().unwrap_or(-1);
        commands.push(
            json!({"command_type": "CompleteWorkflowUpdate", "attributes": {
            "update_id": id, "result": arg * 2}}),
        );
    }
    if completed.len() + commands.len() >= n {
        commands.push(
            json!({"command_type": "CompleteWorkflowExecution", "attributes": {"result": n}}),
        );
    }
    json!({"commands": commands})
}

async fn concurrent_updates_to_one_run_each_get_their_own_outcome(db: Db) {
    let server = spawn_server(db).await;
    let handler =
        spawn_handler(|req: Value| async move { (StatusCode::OK, update_workflow(&req, UPDATES)) })
            .await;
    server.api.register("upd", &handler.url).await;
    let (status, body) = server.api.start("upd-1", "Updates", "upd", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let begun = Instant::now();
    let calls = (0..UPDATES).map(|i| {
        let api = server.api.clone();
        async move {
            let (status, body) = api
                .post(
                    "/api/v1/namespaces/default/workflows/upd-1/update/double",
                    json!({"update_id": format!("u{i}"), "args": [i], "wait_for_stage": "COMPLETED"}),
                )
                .await;
            (i, status, body)
        }
    });
    let outcomes: BTreeMap<usize, (StatusCode, Value)> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|(i, s, b)| (i, (s, b)))
        .collect();
    eprintln!(
        "{db:?}: {UPDATES} concurrent updates answered in {:.2?}",
        begun.elapsed()
    );
    for (i, (status, body)) in &outcomes {
        assert_eq!(*status, StatusCode::OK, "update u{i}: {body}");
        assert_eq!(body["update_id"], json!(format!("u{i}")), "{body}");
        assert_eq!(body["stage"], "COMPLETED", "{body}");
        assert_eq!(body["result"], json!(i * 2), "{body}");
    }
    let result = server.api.result("upd-1").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    server.stop().await;
}

/// A workflow whose tasks take 500 ms, so a signal sent meanwhile is
/// buffered. Its query answers how many signals its history has; its
/// validator accepts an update only once the `unlock` signal is in it.
async fn slow_signal_counter(request: Value) -> (StatusCode, Value) {
    let signals = events_of(&request, "WorkflowExecutionSignaled").count();
    let unlocked = events_of(&request, "WorkflowExecutionSignaled")
        .any(|e| e["attributes"]["signal_name"] == "unlock");
    match request["type"].as_str().unwrap() {
        "query" => (StatusCode::OK, json!({"result": signals})),
        "update_validation" if unlocked => (StatusCode::OK, json!({"accepted": true})),
        "update_validation" => (
            StatusCode::OK,
            json!({"failure": {"message": "locked", "type": "Locked"}}),
        ),
        _ => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let done = events_of(&request, "WorkflowExecutionUpdateAdmitted")
                .map(|e| {
                    json!({"command_type": "CompleteWorkflowUpdate", "attributes": {
                    "update_id": e["attributes"]["update_id"], "result": "ok"}})
                })
                .collect::<Vec<_>>();
            (StatusCode::OK, json!({"commands": done}))
        }
    }
}

/// DESIGN.md invariant 8 (protocol.md §5.5, §5.6): a query or an update's
/// validator sees every event accepted before it, including signals
/// buffered behind a workflow task in flight.
async fn queries_and_update_validators_see_signals_buffered_behind_a_task(db: Db) {
    let server = spawn_server(db).await;
    let handler = spawn_handler(slow_signal_counter).await;
    server.api.register("slow", &handler.url).await;
    let (status, body) = server.api.start("cons-1", "Slow", "slow", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let in_flight = |h: &common::TestHandler| {
        h.received
            .lock()
            .unwrap()
            .iter()
            .any(|p| p["type"] == "workflow_task")
    };
    assert!(
        common::eventually(Duration::from_secs(10), || async { in_flight(&handler) }).await,
        "the first workflow task was pushed"
    );
    let base = "/api/v1/namespaces/default/workflows/cons-1";
    let (status, body) = server
        .api
        .post(&format!("{base}/signal/ping"), json!({"input": 1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .api
        .post(&format!("{base}/query/count"), json!({"args": []}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["result"],
        json!(1),
        "the query saw the accepted signal"
    );

    // Again with an update whose validator needs the signal sent just
    // before it, while the task that signal arrived behind is in flight.
    let (status, body) = server
        .api
        .post(&format!("{base}/signal/unlock"), json!({"input": 2}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .api
        .post(
            &format!("{base}/update/open"),
            json!({"update_id": "u1", "args": [], "wait_for_stage": "COMPLETED"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the validator saw the signal: {body}"
    );
    assert_eq!(body["result"], "ok", "{body}");
    server.stop().await;
}
