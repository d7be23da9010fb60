//! JSON Schema validation end to end, on SQLite and PostgreSQL: an endpoint
//! version registered with input schemas refuses a start, a signal, a
//! signal-with-start and an update whose payload breaks them with a 400
//! listing each violation's JSON pointer, and writes nothing for them (no
//! run, no history event); a run is checked against the version it is
//! pinned to, so schemas change with a new endpoint version; a batch
//! signal is checked per run, failing the runs whose schema refuses it;
//! the REST routes read and replace a version's schemas.
// Tests and their shared fixtures unwrap freely.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration as StdDuration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use common::{event_types, eventually, parking_handler, spawn_server, Api, Db, SECRET};

on_both_databases!(
    refused_calls_write_nothing,
    schemas_change_with_the_endpoint_version,
    schemas_are_read_and_replaced_over_rest,
    a_batch_signal_is_checked_against_each_runs_schema
);

const WF: &str = "/api/v1/namespaces/default/workflows";
const ENDPOINTS: &str = "/api/v1/namespaces/default/endpoints";

/// An `Order` workflow whose one argument has an integer `amount`, whose
/// `approve` signal takes a boolean and whose `resize` update an integer.
fn order_schemas(signal_type: &str) -> Value {
    json!({"workflows": {"Order": {
        "input": {
            "type": "array",
            "prefixItems": [{
                "type": "object",
                "properties": {"amount": {"type": "integer"}},
                "required": ["amount"]
            }]
        },
        "signals": {"approve": {"type": "array", "prefixItems": [{"type": signal_type}]}},
        "updates": {"resize": {"type": "array", "prefixItems": [{"type": "integer"}]}}
    }}})
}

async fn register(api: &Api, url: &str, version: &str, schemas: Value) {
    let body = json!({"task_queue": "q", "url": url, "secrets": [SECRET],
        "version": version, "schemas": schemas});
    let (status, body) = api.post(ENDPOINTS, body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn start(api: &Api, id: &str, input: Value) -> (StatusCode, Value) {
    let body = json!({"workflow_type": "Order", "task_queue": "q", "input": input});
    api.post(&format!("{WF}/{id}"), body).await
}

/// The pointers of an `invalid_input` problem, after checking its shape.
fn pointers(status: StatusCode, problem: &Value) -> Vec<String> {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "invalid_input", "{problem}");
    let errors = problem["errors"].as_array().expect("an errors array");
    assert!(!errors.is_empty(), "{problem}");
    errors
        .iter()
        .map(|e| {
            assert!(e["message"].is_string(), "{e}");
            e["pointer"].as_str().expect("pointer").to_owned()
        })
        .collect()
}

async fn not_found(api: &Api, id: &str) {
    let (status, body) = api.get(&format!("{WF}/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{id} exists: {body}");
}

async fn parked(api: &Api, id: &str) {
    let ok = eventually(StdDuration::from_secs(30), || async {
        event_types(&api.history(id).await).contains(&"TimerStarted".to_owned())
    })
    .await;
    assert!(ok, "{id} did not park");
}

async fn refused_calls_write_nothing(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    let handler = parking_handler().await;
    register(api, &handler.url, "v1", order_schemas("boolean")).await;

    // A start whose amount is a string: refused naming /0/amount (the
    // first argument's member), and no run exists.
    let (status, problem) = start(api, "bad", json!([{"amount": "ten"}])).await;
    assert_eq!(pointers(status, &problem), ["/0/amount"]);
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("/0/amount"), "{detail}");
    not_found(api, "bad").await;
    // Every violation is listed.
    let (status, problem) = start(api, "bad", json!([{}, 1])).await;
    assert_eq!(pointers(status, &problem), ["/0"]);
    not_found(api, "bad").await;

    let (status, body) = start(api, "good", json!([{"amount": 10}])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    parked(api, "good").await;
    let before = api.history("good").await;

    // A signal with a wrong payload is refused before it is recorded.
    let signal = format!("{WF}/good/signal/approve");
    let (status, problem) = api.post(&signal, json!({"input": ["yes"]})).await;
    assert_eq!(pointers(status, &problem), ["/0"]);
    // An update with a wrong argument too.
    let update = format!("{WF}/good/update/resize");
    let (status, problem) = api
        .post(
            &update,
            json!({"args": ["big"], "wait_for_stage": "ACCEPTED"}),
        )
        .await;
    assert_eq!(pointers(status, &problem), ["/0"]);
    assert_eq!(api.history("good").await, before, "nothing was recorded");

    // A good signal is recorded; the history grows by it.
    let (status, body) = api.post(&signal, json!({"input": [true]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let signaled = eventually(StdDuration::from_secs(30), || async {
        event_types(&api.history("good").await).contains(&"WorkflowExecutionSignaled".to_owned())
    })
    .await;
    assert!(signaled);

    // Signal-with-start checks both payloads before it starts anything.
    let sws = |input: Value, signal_input: Value| {
        json!({"workflow_type": "Order", "task_queue": "q",
            "input": input, "signal_input": signal_input})
    };
    let path = format!("{WF}/sws/signal-with-start/approve");
    let (status, problem) = api
        .post(&path, sws(json!([{"amount": 1}]), json!([3])))
        .await;
    assert_eq!(pointers(status, &problem), ["/0"]);
    assert!(problem["detail"].as_str().unwrap().contains("signal_input"));
    not_found(api, "sws").await;
    let (status, problem) = api
        .post(&path, sws(json!([{"amount": 1.5}]), json!([true])))
        .await;
    assert_eq!(pointers(status, &problem), ["/0/amount"]);
    not_found(api, "sws").await;
    let (status, body) = api
        .post(&path, sws(json!([{"amount": 1}]), json!([true])))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Types and handlers without a schema accept anything.
    let (status, body) = api
        .post(
            &format!("{WF}/other"),
            json!({"workflow_type": "Other", "task_queue": "q", "input": "ten"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api
        .post(&format!("{WF}/good/signal/other"), json!({"input": "x"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop().await;
}

async fn schemas_change_with_the_endpoint_version(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    let handler = parking_handler().await;
    register(api, &handler.url, "v1", order_schemas("boolean")).await;
    let (status, body) = start(api, "old", json!([{"amount": 1}])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    parked(api, "old").await;

    // v2's approve signal takes a string; new starts are checked against
    // v2, the run pinned to v1 against v1.
    register(api, &handler.url, "v2", order_schemas("string")).await;
    let (status, body) = start(api, "new", json!([{"amount": 2}])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    parked(api, "new").await;
    let approve = |id: &str, input: Value| {
        let path = format!("{WF}/{id}/signal/approve");
        async move { api.post(&path, json!({ "input": input })).await }
    };
    let (status, problem) = approve("old", json!(["yes"])).await;
    assert_eq!(pointers(status, &problem), ["/0"]);
    let (status, body) = approve("new", json!(["yes"])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, problem) = approve("new", json!([true])).await;
    assert_eq!(pointers(status, &problem), ["/0"]);
    let (status, body) = approve("old", json!([true])).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A version registered without schemas checks nothing.
    register(api, &handler.url, "v3", Value::Null).await;
    let (status, body) = start(api, "v3-run", json!([{"amount": "ten"}])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.stop().await;
}

async fn schemas_are_read_and_replaced_over_rest(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    let handler = parking_handler().await;
    register(api, &handler.url, "v1", Value::Null).await;
    let path = format!("{ENDPOINTS}/q/versions/v1/schemas");
    let (status, body) = api.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["schemas"], json!({}));

    // Replaced: starts from now on are checked.
    let schemas = order_schemas("boolean");
    let (status, body) = api
        .call(Method::PUT, &path, Some(json!({ "schemas": schemas })))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["schemas"], schemas);
    let (status, body) = api.get(&path).await;
    assert_eq!((status, &body["schemas"]), (StatusCode::OK, &schemas));
    let (status, problem) = start(api, "bad", json!([{"amount": "ten"}])).await;
    assert_eq!(pointers(status, &problem), ["/0/amount"]);
    not_found(api, "bad").await;

    // A schema that does not compile is refused naming where it is, and
    // the stored ones stay.
    let broken =
        json!({"schemas": {"workflows": {"Order": {"signals": {"approve": {"type": 5}}}}}});
    let (status, problem) = api.call(Method::PUT, &path, Some(broken.clone())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("schemas.workflows.Order.signals.approve"),
        "{detail}"
    );
    let (_, body) = api.get(&path).await;
    assert_eq!(body["schemas"], schemas);
    // At registration too.
    let mut reg =
        json!({"task_queue": "q", "url": handler.url, "secrets": [SECRET], "version": "v2"});
    reg["schemas"] = broken["schemas"].clone();
    let (status, problem) = api.post(ENDPOINTS, reg).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    // An unknown member of the schemas is refused, naming it.
    let (status, problem) = api
        .call(
            Method::PUT,
            &path,
            Some(json!({"schemas": {"workflow": {}}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("workflow"),
        "{problem}"
    );

    // An unknown version is a 404, for both verbs.
    let nine = format!("{ENDPOINTS}/q/versions/v9/schemas");
    let (status, _) = api.get(&nine).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .call(Method::PUT, &nine, Some(json!({ "schemas": schemas })))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// A batch signal over runs of two types: the `Order` runs, whose schema
/// refuses its input, fail with the violation and record nothing; the run
/// of a type without a schema is signalled.
async fn a_batch_signal_is_checked_against_each_runs_schema(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    let handler = parking_handler().await;
    register(api, &handler.url, "v1", order_schemas("boolean")).await;
    for id in ["order-1", "order-2"] {
        let (status, body) = start(api, id, json!([{"amount": 1}])).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        parked(api, id).await;
    }
    let other = json!({"workflow_type": "Other", "task_queue": "q", "input": []});
    let (status, body) = api.post(&format!("{WF}/other"), other).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    parked(api, "other").await;
    let before = [api.history("order-1").await, api.history("order-2").await];

    let job = json!({"batch_id": "approve", "operation": "signal",
        "query": "WorkflowType = \"Order\" OR WorkflowType = \"Other\"",
        "signal_name": "approve", "input": ["yes"]});
    let (status, body) = api.post("/api/v1/namespaces/default/batches", job).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut job = Value::Null;
    for _ in 0..1_500 {
        job = api
            .get("/api/v1/namespaces/default/batches/approve")
            .await
            .1;
        if job["state"] != "RUNNING" {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert_eq!(job["state"], "COMPLETED", "{job}");
    assert_eq!(
        (job["done"].clone(), job["failed"].clone()),
        (json!(1), json!(2)),
        "{job}"
    );
    let failures = job["failures"].as_array().cloned().unwrap_or_default();
    let mut failed: Vec<&str> = failures
        .iter()
        .filter_map(|f| f["workflow_id"].as_str())
        .collect();
    failed.sort_unstable();
    assert_eq!(failed, ["order-1", "order-2"], "{job}");
    for f in &failures {
        let reason = f["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("/0"),
            "the reason names the pointer: {reason}"
        );
    }
    let after = [api.history("order-1").await, api.history("order-2").await];
    assert_eq!(after, before, "nothing was recorded on the refused runs");
    let signaled = eventually(StdDuration::from_secs(30), || async {
        event_types(&api.history("other").await).contains(&"WorkflowExecutionSignaled".to_owned())
    })
    .await;
    assert!(signaled, "the run without a schema was signalled");
    server.stop().await;
}
