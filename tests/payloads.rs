//! Payloads by reference (docs/protocol.md §9.1), end to end: a real node
//! on loopback and a raw protocol-level handler whose runs carry large
//! inputs, signals, activity inputs and results. Handlers with the
//! `payload_references` feature get references (with the payloads replay
//! reads inlined, or fetched through the signed payload route when the
//! budget is 0), handlers without it get the payloads in place, and REST
//! keeps references in histories but puts results back. On SQLite and on
//! PostgreSQL, with many runs at once.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use common::{post_signed, spawn_handler, spawn_server_with, test_options, Db, SECRET};
use serde_json::{json, Value};

on_both_databases!(
    handlers_with_the_feature_get_references_with_the_payloads_beside,
    handlers_with_the_feature_fetch_what_a_push_does_not_inline,
    handlers_without_the_feature_get_payloads_in_place,
    the_payload_routes_refuse_what_they_must,
    references_carry_on_to_a_child_and_back_to_its_parent,
);

/// Past this many bytes the test server stores a payload by reference.
const THRESHOLD: u64 = 1024;
/// Activities per run.
const STEPS: usize = 3;
/// Runs at once.
const RUNS: usize = 8;

const MARKER: &str = "$baton_payload";

fn big(tag: &str, n: usize) -> Value {
    json!({"tag": tag, "pad": "p".repeat(n)})
}

fn digest_of(value: &Value) -> Option<String> {
    value
        .get(MARKER)
        .and_then(|r| r["sha256"].as_str())
        .map(str::to_owned)
}

#[derive(Default)]
struct Seen {
    /// Pushes whose JSON held a payload of over [`THRESHOLD`] bytes.
    large_pushes: usize,
    pushes: usize,
    /// References the handler fetched through the payload route.
    fetched: usize,
    /// References the pushes came with payloads for.
    inlined: usize,
    /// Whether any push or answer held a reference.
    references: usize,
}

/// Puts in place the reference `value` is: from the push's `payloads`,
/// else through the signed payload route.
async fn resolve(value: &Value, push: &Value, route: &str, seen: &Mutex<Seen>) -> Value {
    let Some(digest) = digest_of(value) else {
        return value.clone();
    };
    seen.lock().unwrap().references += 1;
    if let Some(inlined) = push["payloads"].get(&digest) {
        seen.lock().unwrap().inlined += 1;
        return inlined.clone();
    }
    let body = json!({"run_id": push["run_id"], "sha256": [digest]});
    let (status, answer) = post_signed(route, &body, Some(SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    seen.lock().unwrap().fetched += 1;
    answer["payloads"][&digest].clone()
}

/// The workflow: waits for a signal, then runs [`STEPS`] activities whose
/// input is the run's input and the signal's, then completes with the
/// activities' results. Replay reads the run's input, the signal and the
/// results, so those are what it resolves.
async fn workflow_task(push: &Value, route: &str, seen: &Mutex<Seen>) -> Value {
    let mut input = Value::Null;
    let mut signal = None;
    let mut results = Vec::new();
    let mut scheduled = 0;
    for e in push["history"].as_array().unwrap() {
        let a = &e["attributes"];
        match e["event_type"].as_str().unwrap() {
            "WorkflowExecutionStarted" => input = resolve(&a["input"], push, route, seen).await,
            "WorkflowExecutionSignaled" => {
                signal = Some(resolve(&a["input"], push, route, seen).await)
            }
            "ActivityTaskScheduled" => scheduled += 1,
            "ActivityTaskCompleted" => results.push(resolve(&a["result"], push, route, seen).await),
            _ => {}
        }
    }
    assert_eq!(input["tag"], push["workflow_id"], "the run's own input");
    let Some(signal) = signal else {
        return json!({"commands": []});
    };
    assert_eq!(
        signal["tag"],
        json!(format!("signal-{}", push["workflow_id"].as_str().unwrap()))
    );
    if results.len() == STEPS {
        let tags: Vec<Value> = results.iter().map(|r| r["tag"].clone()).collect();
        let result = json!({"tags": tags, "pad": "r".repeat(4_000)});
        return json!({"commands": [{"command_type": "CompleteWorkflowExecution", "attributes": {"result": result}}]});
    }
    if scheduled > results.len() {
        return json!({"commands": []});
    }
    let step = results.len() + 1;
    json!({"commands": [{"command_type": "ScheduleActivityTask", "attributes": {
        "activity_id": step.to_string(), "activity_type": "echo",
        "input": [input, signal], "start_to_close_timeout": "10s"}}]})
}

async fn activity_task(push: &Value, route: &str, seen: &Mutex<Seen>) -> Value {
    let input = resolve(&push["input"], push, route, seen).await;
    let (run_input, signal) = (&input[0], &input[1]);
    assert_eq!(run_input["tag"], push["workflow_id"]);
    assert!(signal["tag"].as_str().unwrap().starts_with("signal-"));
    let tag = format!(
        "{}/{}",
        push["workflow_id"].as_str().unwrap(),
        push["activity_id"].as_str().unwrap()
    );
    json!({"result": big(&tag, 3_000)})
}

/// Whether `value` holds a string longer than [`THRESHOLD`].
fn holds_large(value: &Value) -> bool {
    match value {
        Value::String(s) => s.len() as u64 > THRESHOLD,
        Value::Array(a) => a.iter().any(holds_large),
        Value::Object(o) => o.iter().any(|(k, v)| k != "payloads" && holds_large(v)),
        _ => false,
    }
}

async fn handler(server: &common::TestServer) -> (common::TestHandler, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let route = format!("http://{}/api/v1/namespaces/default/payloads", server.addr);
    let handler = spawn_handler(move |push: Value| {
        let (seen, route) = (s.clone(), route.clone());
        async move {
            {
                let mut s = seen.lock().unwrap();
                s.pushes += 1;
                if holds_large(&push) {
                    s.large_pushes += 1;
                }
            }
            let answer = match push["type"].as_str() {
                Some("workflow_task") => workflow_task(&push, &route, &seen).await,
                Some("activity_task") => activity_task(&push, &route, &seen).await,
                other => panic!("unexpected push {other:?}"),
            };
            (StatusCode::OK, answer)
        }
    })
    .await;
    (handler, seen)
}

async fn server(db: Db, push_payload_bytes: u64) -> common::TestServer {
    let mut options = test_options(common::database_url(db).await);
    options.apply.payload_reference_bytes = THRESHOLD;
    options.dispatch.push_payload_bytes = push_payload_bytes;
    spawn_server_with(options).await
}

/// Starts [`RUNS`] runs with large inputs, signals each with a large
/// payload (all at once), and checks every result and history.
async fn run_all(api: &common::Api, queue: &str) -> Vec<Vec<Value>> {
    let ids: Vec<String> = (0..RUNS).map(|i| format!("{queue}-{i}")).collect();
    for id in &ids {
        let (status, body) = api
            .start(id, "claims", queue, json!({"input": big(id, 5_000)}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let signals = ids.iter().map(|id| {
        let path = format!("/api/v1/namespaces/default/workflows/{id}/signal/go");
        let body = json!({"input": big(&format!("signal-{id}"), 6_000)});
        async move { api.post(&path, body).await }
    });
    for (status, body) in futures::future::join_all(signals).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut histories = Vec::new();
    for id in &ids {
        let result = api.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{result}");
        let tags: Vec<String> = (1..=STEPS).map(|s| format!("{id}/{s}")).collect();
        assert_eq!(
            result["result"]["tags"],
            json!(tags),
            "the result is put back in place"
        );
        assert_eq!(result["result"]["pad"].as_str().unwrap().len(), 4_000);
        histories.push(api.history(id).await);
    }
    histories
}

/// REST histories hold references where payloads were large (the run's
/// input, the signal, every activity's input and result), nothing large
/// is left in an event, and the activities' identical inputs are one
/// stored payload.
fn check_histories(histories: &[Vec<Value>]) {
    for history in histories {
        for e in history {
            assert!(!holds_large(e), "an event holds a large payload: {e}");
        }
        let started = &history[0]["attributes"]["input"];
        assert!(digest_of(started).is_some(), "{started}");
        let inputs: BTreeSet<String> = history
            .iter()
            .filter(|e| e["event_type"] == "ActivityTaskScheduled")
            .map(|e| digest_of(&e["attributes"]["input"]).unwrap())
            .collect();
        assert_eq!(inputs.len(), 1, "the same activity input is stored once");
        let results = history
            .iter()
            .filter(|e| e["event_type"] == "ActivityTaskCompleted")
            .filter(|e| digest_of(&e["attributes"]["result"]).is_some())
            .count();
        assert_eq!(results, STEPS);
        let signal = history
            .iter()
            .find(|e| e["event_type"] == "WorkflowExecutionSignaled")
            .unwrap();
        assert!(digest_of(&signal["attributes"]["input"]).is_some());
    }
}

async fn handlers_with_the_feature_get_references_with_the_payloads_beside(db: Db) {
    let server = server(db, 2 * 1024 * 1024).await;
    let (handler, seen) = handler(&server).await;
    server
        .api
        .register_with_features("inlined", &handler.url, json!(["payload_references"]))
        .await;
    let histories = run_all(&server.api, "inlined").await;
    check_histories(&histories);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.large_pushes, 0, "no push carried a payload in place");
        assert!(
            seen.references > 0 && seen.inlined == seen.references,
            "every reference came with its payload"
        );
        assert_eq!(seen.fetched, 0);
    }
    server.stop().await;
}

async fn handlers_with_the_feature_fetch_what_a_push_does_not_inline(db: Db) {
    let server = server(db, 0).await;
    let (handler, seen) = handler(&server).await;
    server
        .api
        .register_with_features("fetched", &handler.url, json!(["payload_references"]))
        .await;
    let histories = run_all(&server.api, "fetched").await;
    check_histories(&histories);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.large_pushes, 0);
        assert_eq!(seen.inlined, 0, "a budget of 0 inlines nothing");
        assert!(seen.fetched > 0 && seen.fetched == seen.references);
    }
    server.stop().await;
}

async fn handlers_without_the_feature_get_payloads_in_place(db: Db) {
    let server = server(db, 2 * 1024 * 1024).await;
    let (handler, seen) = handler(&server).await;
    server
        .api
        .register_with_features("in-place", &handler.url, json!([]))
        .await;
    let histories = run_all(&server.api, "in-place").await;
    check_histories(&histories);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.references, 0, "the handler never saw a reference");
        assert!(
            seen.large_pushes >= RUNS * (STEPS + 1),
            "pushes carried the payloads"
        );
    }
    server.stop().await;
}

async fn the_payload_routes_refuse_what_they_must(db: Db) {
    let server = server(db, 2 * 1024 * 1024).await;
    let (handler, _) = handler(&server).await;
    server
        .api
        .register_with_features("refusals", &handler.url, json!(["payload_references"]))
        .await;
    let api = &server.api;
    let histories = run_all(api, "refusals").await;
    let described = api.describe("refusals-0").await;
    let run_id = described["execution"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_run = api.describe("refusals-1").await["execution"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = digest_of(&histories[0][0]["attributes"]["input"]).unwrap();
    let theirs = digest_of(&histories[1][0]["attributes"]["input"]).unwrap();
    let route = format!("http://{}/api/v1/namespaces/default/payloads", server.addr);

    let good = json!({"run_id": run_id, "sha256": [mine]});
    let (status, answer) = post_signed(&route, &good, Some(SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["payloads"][&mine]["tag"], "refusals-0");

    let forged = "whsec_c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1lbmRwb2ludHMtMDA=";
    let many: Vec<String> = (0..101).map(|_| mine.clone()).collect();
    let cases = [
        (good.clone(), None, StatusCode::UNAUTHORIZED),
        (good.clone(), Some(forged), StatusCode::UNAUTHORIZED),
        (
            json!({"run_id": run_id, "sha256": ["ABC"]}),
            Some(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"run_id": run_id, "sha256": []}),
            Some(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"run_id": run_id, "sha256": many}),
            Some(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"run_id": "nope", "sha256": [mine]}),
            Some(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"run_id": run_id, "sha256": [mine], "x": 1}),
            Some(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        // Another run's payload is not this run's to read.
        (
            json!({"run_id": run_id, "sha256": [theirs]}),
            Some(SECRET),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"run_id": baton::ids::RunId::generate().to_string(), "sha256": [mine]}),
            Some(SECRET),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (body, secret, expected) in cases {
        let (status, problem) = post_signed(&route, &body, secret).await;
        assert_eq!(status, expected, "{body} → {problem}");
        assert!(problem["detail"].is_string(), "{problem}");
    }

    let get = |run: &str, digest: &str| {
        format!("/api/v1/namespaces/default/workflows/refusals-0/runs/{run}/payloads/{digest}")
    };
    let (status, view) = api.get(&get(&run_id, &mine)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["sha256"], json!(mine));
    assert_eq!(view["value"]["tag"], "refusals-0");
    assert_eq!(
        view["size_bytes"].as_u64().unwrap(),
        serde_json::to_vec(&view["value"]).unwrap().len() as u64
    );
    for (path, expected) in [
        (get(&run_id, &theirs), StatusCode::NOT_FOUND),
        (get(&other_run, &theirs), StatusCode::NOT_FOUND),
        (get(&run_id, "xyz"), StatusCode::BAD_REQUEST),
    ] {
        let (status, problem) = api.get(&path).await;
        assert_eq!(status, expected, "{path} → {problem}");
    }

    // A run deleted takes its references with it; another run that
    // references the same payload keeps it. (The twin's queue has no
    // endpoint: it is never pushed.)
    let (status, body) = api
        .start(
            "refusals-twin",
            "claims",
            "no-endpoint",
            json!({"input": big("refusals-0", 5_000)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let twin = api.history("refusals-twin").await;
    assert_eq!(
        digest_of(&twin[0]["attributes"]["input"]),
        Some(mine.clone()),
        "the same payload, stored once"
    );
    let (status, body) = api
        .call(
            reqwest::Method::DELETE,
            "/api/v1/namespaces/default/workflows/refusals-0",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = post_signed(&route, &good, Some(SECRET)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the deleted run's references are gone"
    );
    let twin_id = api.describe("refusals-twin").await["execution"]["run_id"].clone();
    let twin_path = format!(
        "/api/v1/namespaces/default/workflows/refusals-twin/runs/{}/payloads/{mine}",
        twin_id.as_str().unwrap()
    );
    let (status, view) = api.get(&twin_path).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["value"]["tag"], "refusals-0");
    server.stop().await;
}

/// A parent starts children with a large input and completes with their
/// large results: the child's input and the parent's
/// ChildWorkflowExecutionCompleted result are references the transfer
/// copied from another run's event, which the handler resolves through
/// the route signed for the run it is replaying: the copies are linked.
async fn references_carry_on_to_a_child_and_back_to_its_parent(db: Db) {
    let server = server(db, 0).await;
    let route = format!("http://{}/api/v1/namespaces/default/payloads", server.addr);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let handler = spawn_handler(move |push: Value| {
        let (seen, route) = (s.clone(), route.clone());
        async move {
            let mut input = Value::Null;
            let mut child = None;
            for e in push["history"].as_array().unwrap() {
                let a = &e["attributes"];
                match e["event_type"].as_str().unwrap() {
                    "WorkflowExecutionStarted" => input = resolve(&a["input"], &push, &route, &seen).await,
                    "ChildWorkflowExecutionCompleted" => {
                        child = Some(resolve(&a["result"], &push, &route, &seen).await)
                    }
                    _ => {}
                }
            }
            let id = push["workflow_id"].as_str().unwrap().to_owned();
            let complete = |result: Value| {
                json!({"commands": [{"command_type": "CompleteWorkflowExecution", "attributes": {"result": result}}]})
            };
            let answer = match (push["workflow_type"].as_str().unwrap(), child) {
                ("child", _) => complete(big(&format!("{}/done", input["tag"].as_str().unwrap()), 3_000)),
                ("parent", Some(result)) => complete(json!({"child": result["tag"]})),
                ("parent", None) if push["history"].as_array().unwrap().iter().any(|e| e["event_type"] == "StartChildWorkflowExecutionInitiated") => json!({"commands": []}),
                ("parent", None) => json!({"commands": [{"command_type": "StartChildWorkflowExecution", "attributes": {
                    "workflow_id": format!("{id}-child"), "workflow_type": "child", "input": input}}]}),
                (other, _) => panic!("unexpected workflow type {other}"),
            };
            (StatusCode::OK, answer)
        }
    })
    .await;
    let api = &server.api;
    api.register_with_features("family", &handler.url, json!(["payload_references"]))
        .await;
    let ids: Vec<String> = (0..RUNS).map(|i| format!("family-{i}")).collect();
    for id in &ids {
        let (status, body) = api
            .start(id, "parent", "family", json!({"input": big(id, 5_000)}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for id in &ids {
        let result = api.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{result}");
        assert_eq!(result["result"]["child"], json!(format!("{id}/done")));
        let parent = api.history(id).await;
        let child = api.history(&format!("{id}-child")).await;
        let initiated = parent
            .iter()
            .find(|e| e["event_type"] == "StartChildWorkflowExecutionInitiated")
            .unwrap();
        let passed = digest_of(&initiated["attributes"]["input"]).unwrap();
        assert_eq!(
            digest_of(&parent[0]["attributes"]["input"]),
            Some(passed.clone())
        );
        assert_eq!(
            digest_of(&child[0]["attributes"]["input"]),
            Some(passed),
            "the child's input is the parent's payload"
        );
        let completed = parent
            .iter()
            .find(|e| e["event_type"] == "ChildWorkflowExecutionCompleted")
            .unwrap();
        assert!(digest_of(&completed["attributes"]["result"]).is_some());
    }
    // Nothing is inlined (budget 0): each parent task fetched the parent's
    // input, and the child's input and result were fetched at least once.
    let fetched = seen.lock().unwrap().fetched;
    assert!(fetched >= RUNS * 3, "{fetched} fetches");

    server.stop().await;
}
