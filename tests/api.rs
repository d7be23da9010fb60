//! Bad input, end to end: every malformed, mistyped, unknown, oversized or
//! unauthorised request earns an `application/problem+json` answer with the
//! right status and stable `code`, a readable `detail`, and changes no stored
//! data. Also what the server does with workflow task answers that break the
//! history (a recorded WorkflowTaskFailed, DESIGN.md invariant 6) and with
//! garbage answers (no history change; the task is retried).
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::routing::post;
use axum::Router;
use baton::engine::{ActivityToken, TaskToken, TokenKind, WorkflowTaskToken};
use baton::ids::Namespace;
use baton::time::Timestamp;
use common::{
    event_types, eventually, sequential_workflow, spawn_handler, spawn_server, spawn_server_with,
    test_options, Api, Db, TestHandler, TestServer,
};
use reqwest::Method;
use serde_json::{json, Value};

on_both_databases!(
    malformed_json_bodies_are_refused,
    wrong_json_types_are_refused,
    unknown_fields_are_refused,
    unknown_namespaces_are_not_found,
    unknown_workflows_and_runs_are_not_found,
    invalid_namespace_names_are_refused,
    oversized_payloads_are_refused,
    invalid_timeouts_are_refused,
    invalid_enums_are_refused,
    invalid_page_sizes_and_tokens_are_refused,
    malformed_and_stale_task_tokens_are_refused,
    invalid_endpoint_registrations_are_refused,
    invalid_version_changes_are_refused,
    invalid_workflow_starts_are_refused,
    invalid_resets_are_refused,
    commands_that_break_the_history_fail_the_workflow_task,
    garbage_answers_leave_the_history_unchanged_and_are_retried,
    invalid_and_rejected_updates_write_nothing,
    nul_characters_are_refused_outside_payloads,
    nul_characters_in_payloads_round_trip,
    empty_values_and_nulls_follow_the_spec,
);

const NS: &str = "/api/v1/namespaces";
const WF: &str = "/api/v1/namespaces/default/workflows";
const ACTIVITIES: &str = "/api/v1/namespaces/default/activities";

// ---------------------------------------------------------------------------
// Fixture: a node with some data worth protecting.

/// A node holding a completed workflow (`done-1`), one sleeping on a
/// one-hour timer (`sleeping-1`) and an endpoint for task queue `q`. The
/// handler also runs `Async` workflows whose activity answers 202.
struct Fixture {
    server: TestServer,
    handler: TestHandler,
}

async fn fixture(db: Db) -> Fixture {
    let server = spawn_server(db).await;
    let handler = spawn_handler(|req: Value| async move {
        let workflow_type = req["workflow_type"].as_str().unwrap_or_default();
        match (req["type"].as_str(), workflow_type) {
            (Some("workflow_task"), "Sleeper") => (
                StatusCode::OK,
                json!({"commands": [{"command_type": "StartTimer", "attributes": {
                    "timer_id": "nap", "start_to_fire_timeout": "1h"
                }}]}),
            ),
            (Some("workflow_task"), "Async") => (
                StatusCode::OK,
                sequential_workflow(&req, &[("later", json!({"start_to_close_timeout": "1h"}))]),
            ),
            (Some("workflow_task"), _) => (
                StatusCode::OK,
                sequential_workflow(&req, &[("greet", json!({}))]),
            ),
            (_, "Async") => (StatusCode::ACCEPTED, json!({})),
            // Every update's validator says no.
            (Some("update_validation"), _) => (
                StatusCode::OK,
                json!({"failure": {"message": "not in stock", "type": "ApplicationError"}}),
            ),
            _ => (StatusCode::OK, json!({"result": "hello"})),
        }
    })
    .await;
    let api = &server.api;
    api.register("q", &handler.url).await;
    let (status, body) = api.start("done-1", "Greeter", "q", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(api.result("done-1").await["status"], "COMPLETED");
    let (status, body) = api.start("sleeping-1", "Sleeper", "q", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let asleep = eventually(Duration::from_secs(5), || async {
        api.describe("sleeping-1").await["pending_timers"]
            .as_array()
            .is_some_and(|t| t.len() == 1)
    })
    .await;
    assert!(asleep, "sleeping-1 never started its timer");
    Fixture { server, handler }
}

impl Fixture {
    fn api(&self) -> &Api {
        &self.server.api
    }

    async fn run_id(&self, workflow_id: &str) -> String {
        let d = self.api().describe(workflow_id).await;
        d["execution"]["run_id"].as_str().unwrap().to_owned()
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// Everything an API client can read back: namespaces, and per namespace
/// its endpoints, its workflow list and every listed run's history.
async fn snapshot(api: &Api) -> Value {
    let (status, namespaces) = api.get(NS).await;
    assert_eq!(status, StatusCode::OK, "{namespaces}");
    let mut out = serde_json::Map::new();
    for ns in namespaces["namespaces"].as_array().unwrap() {
        let name = ns["name"].as_str().unwrap();
        let (status, mut endpoints) = api.get(&format!("{NS}/{name}/endpoints")).await;
        assert_eq!(status, StatusCode::OK, "{endpoints}");
        // The node's recent push failures are not stored data: a push
        // failing between the two snapshots changes them.
        for e in endpoints["endpoints"].as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("last_push_errors");
        }
        // Each queue's versions with their open-run counts: what a move or
        // a delete would change.
        let mut versions = serde_json::Map::new();
        for e in endpoints["endpoints"].as_array().unwrap() {
            let queue = e["task_queue"].as_str().unwrap();
            let (status, v) = api
                .get(&format!("{NS}/{name}/endpoints/{queue}/versions"))
                .await;
            assert_eq!(status, StatusCode::OK, "{v}");
            versions.insert(queue.to_owned(), v);
        }
        let (status, workflows) = api
            .get(&format!("{NS}/{name}/workflows?page_size=1000"))
            .await;
        assert_eq!(status, StatusCode::OK, "{workflows}");
        let mut histories = serde_json::Map::new();
        for w in workflows["executions"].as_array().unwrap() {
            let (workflow_id, run_id) = (
                w["workflow_id"].as_str().unwrap(),
                w["run_id"].as_str().unwrap(),
            );
            let (status, history) = api
                .get(&format!(
                    "{NS}/{name}/workflows/{workflow_id}/history?run_id={run_id}&page_size=10000"
                ))
                .await;
            assert_eq!(status, StatusCode::OK, "{history}");
            histories.insert(run_id.to_owned(), history["events"].clone());
        }
        out.insert(
            name.to_owned(),
            json!({"namespace": ns, "endpoints": endpoints, "versions": versions,
                "workflows": workflows, "histories": histories}),
        );
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------
// Raw requests and problem checks.

enum Body {
    Empty,
    Json(Value),
    /// Bytes sent as they are, with this content type.
    Raw(&'static str, Vec<u8>),
}

fn raw(text: &str) -> Body {
    Body::Raw("application/json", text.as_bytes().to_vec())
}

struct Reply {
    status: StatusCode,
    content_type: String,
    headers: reqwest::header::HeaderMap,
    text: String,
}

async fn send(
    base: &str,
    method: Method,
    path: &str,
    body: Body,
    authorization: Option<&str>,
) -> Reply {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method, format!("{base}{path}"))
        .timeout(Duration::from_secs(30));
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    req = match body {
        Body::Empty => req,
        Body::Json(v) => req.json(&v),
        Body::Raw(content_type, bytes) => {
            req.header(header::CONTENT_TYPE, content_type).body(bytes)
        }
    };
    let resp = req.send().await.expect("server reachable");
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    Reply {
        status,
        content_type,
        headers,
        text,
    }
}

/// Checks that `reply` is an RFC 9457 problem with this status and code,
/// and a one-line `detail` that mentions `detail`.
fn assert_problem(
    what: &str,
    reply: &Reply,
    status: StatusCode,
    code: &str,
    detail: &str,
) -> Value {
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
    assert_eq!(
        reply.content_type, "application/problem+json",
        "{what}: {}",
        reply.text
    );
    let problem: Value = serde_json::from_str(&reply.text)
        .unwrap_or_else(|e| panic!("{what}: problem is not JSON ({e}): {}", reply.text));
    assert_eq!(problem["code"], code, "{what}: {problem}");
    assert_eq!(problem["status"], status.as_u16(), "{what}: {problem}");
    assert_eq!(
        problem["type"],
        format!("https://baton.dev/errors/{code}"),
        "{what}: {problem}"
    );
    assert!(
        problem["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{what}: {problem}"
    );
    let text = problem["detail"].as_str().unwrap_or_default();
    assert!(
        text.contains(detail),
        "{what}: detail {text:?} should mention {detail:?}"
    );
    assert!(
        !text.contains('\n') && text.len() <= 600,
        "{what}: detail is not one readable line: {text:?}"
    );
    problem
}

/// Sends a bad request; checks the problem it earns and that no stored data
/// changed.
async fn refused(
    api: &Api,
    method: Method,
    path: &str,
    body: Body,
    (status, code, detail): (StatusCode, &str, &str),
) -> Value {
    let what = format!("{method} {path}");
    let before = snapshot(api).await;
    let reply = send(&api.base, method, path, body, None).await;
    let problem = assert_problem(&what, &reply, status, code, detail);
    let after = snapshot(api).await;
    assert_eq!(before, after, "{what} changed stored data");
    problem
}

fn bad_request(detail: &str) -> (StatusCode, &'static str, &str) {
    (StatusCode::BAD_REQUEST, "invalid_argument", detail)
}

fn not_found(detail: &str) -> (StatusCode, &'static str, &str) {
    (StatusCode::NOT_FOUND, "not_found", detail)
}

fn start_body(extra: Value) -> Value {
    let mut body = json!({"workflow_type": "Greeter", "task_queue": "q", "input": {"n": 1}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

// ---------------------------------------------------------------------------
// Request validation.

async fn malformed_json_bodies_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let cases: Vec<(String, Body, &str)> = vec![
        (NS.into(), raw(r#"{"name": "half"#), "EOF while parsing"),
        (NS.into(), raw(""), "EOF while parsing"),
        (NS.into(), raw(r#"{"name": "x",}"#), "trailing comma"),
        (
            NS.into(),
            raw(r#"{"name": "x"} {"name": "y"}"#),
            "trailing characters",
        ),
        (
            NS.into(),
            raw("name=x"),
            "Failed to parse the request body as JSON",
        ),
        // Valid JSON, but not declared as JSON.
        (
            NS.into(),
            Body::Raw("text/plain", br#"{"name": "plain"}"#.to_vec()),
            "Content-Type",
        ),
        (NS.into(), Body::Empty, "Content-Type"),
        (
            format!("{WF}/new-1"),
            raw("{'workflow_type': 'x'}"),
            "key must be a string",
        ),
        (
            format!("{WF}/done-1/terminate"),
            raw("{"),
            "EOF while parsing",
        ),
        (
            "/api/v1/namespaces/default/endpoints".into(),
            raw(r#"{"task_queue": "q", "#),
            "EOF while parsing",
        ),
        (
            format!("{ACTIVITIES}/complete"),
            raw(r#"{"task_token": }"#),
            "expected value",
        ),
        (
            format!("{ACTIVITIES}/heartbeat"),
            raw("\u{1}"),
            "expected value",
        ),
    ];
    for (path, body, detail) in cases {
        refused(api, Method::POST, &path, body, bad_request(detail)).await;
    }
    fx.stop().await;
}

async fn wrong_json_types_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let start = format!("{WF}/new-1");
    let endpoints = "/api/v1/namespaces/default/endpoints";
    let cases: Vec<(String, Value, &str)> = vec![
        (
            NS.into(),
            json!({"name": 5}),
            "invalid type: integer `5`, expected a string",
        ),
        (
            NS.into(),
            json!({"name": "x", "description": ["a"]}),
            "invalid type: sequence",
        ),
        (
            NS.into(),
            json!(null),
            "invalid type: null, expected a JSON object",
        ),
        (
            NS.into(),
            json!("ns"),
            "invalid type: string \"ns\", expected a JSON object",
        ),
        // A JSON array is not an object, even when its items would fit the
        // fields in order.
        (
            NS.into(),
            json!(["sneaky"]),
            "invalid type: sequence, expected a JSON object",
        ),
        (
            NS.into(),
            json!(["sneaky", "described"]),
            "expected a JSON object",
        ),
        (
            start.clone(),
            json!({"workflow_type": 5, "task_queue": "q"}),
            "invalid type: integer `5`",
        ),
        (
            start.clone(),
            json!({"workflow_type": "T", "task_queue": ["q"]}),
            "invalid type: sequence",
        ),
        (
            start.clone(),
            json!({"workflow_type": "T"}),
            "missing field `task_queue`",
        ),
        (
            start.clone(),
            start_body(json!({"workflow_run_timeout": 30})),
            "invalid type: integer `30`",
        ),
        (
            start.clone(),
            start_body(json!({"request_id": 7})),
            "invalid type: integer `7`",
        ),
        (
            start.clone(),
            json!(["Greeter", "q"]),
            "expected a JSON object",
        ),
        (
            endpoints.into(),
            json!({"task_queue": "q", "url": "http://x/", "max_concurrency": -1}),
            "invalid value: integer `-1`",
        ),
        (
            endpoints.into(),
            json!({"task_queue": "q", "url": "http://x/", "max_concurrency": "9"}),
            "invalid type: string",
        ),
        (
            endpoints.into(),
            json!({"task_queue": "q", "url": "http://x/", "secrets": common::SECRET}),
            "invalid type: string",
        ),
        (
            endpoints.into(),
            json!({"task_queue": 1, "url": "http://x/"}),
            "invalid type: integer",
        ),
        (
            format!("{WF}/sleeping-1/terminate"),
            json!({"reason": {"why": "x"}}),
            "invalid type: map",
        ),
        (
            format!("{WF}/sleeping-1/terminate"),
            json!({"run_id": 12}),
            "invalid type: integer",
        ),
        (
            format!("{ACTIVITIES}/complete"),
            json!({"task_token": 1}),
            "invalid type: integer",
        ),
        (
            format!("{ACTIVITIES}/fail"),
            json!({"task_token": "t", "failure": "boom"}),
            "invalid type: string",
        ),
    ];
    for (path, body, detail) in cases {
        refused(
            api,
            Method::POST,
            &path,
            Body::Json(body),
            bad_request(detail),
        )
        .await;
    }
    fx.stop().await;
}

async fn unknown_fields_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let endpoints = "/api/v1/namespaces/default/endpoints";
    let cases: Vec<(String, Value, &str)> = vec![
        (
            NS.into(),
            json!({"name": "x", "colour": "red"}),
            "unknown field `colour`",
        ),
        (
            format!("{WF}/new-1"),
            start_body(json!({"workflow_id": "new-1"})),
            "unknown field `workflow_id`",
        ),
        (
            format!("{WF}/new-1"),
            start_body(json!({"id_reuse": "REJECT_DUPLICATE"})),
            "unknown field `id_reuse`",
        ),
        (
            endpoints.into(),
            json!({"task_queue": "q", "url": "http://x/", "secret": common::SECRET}),
            "unknown field `secret`",
        ),
        (
            format!("{WF}/sleeping-1/terminate"),
            json!({"reason": "r", "force": true}),
            "unknown field `force`",
        ),
        (
            format!("{ACTIVITIES}/complete"),
            json!({"task_token": "t", "results": 1}),
            "unknown field `results`",
        ),
    ];
    for (path, body, detail) in cases {
        refused(
            api,
            Method::POST,
            &path,
            Body::Json(body),
            bad_request(detail),
        )
        .await;
    }
    // Query strings are just as strict.
    let queries = [
        format!("{WF}?limit=5"),
        format!("{WF}/sleeping-1?runid=x"),
        format!("{WF}/sleeping-1/history?page=2"),
        format!("{WF}/sleeping-1/result?timeout=1s"),
    ];
    for path in &queries {
        refused(
            api,
            Method::GET,
            path,
            Body::Empty,
            bad_request("unknown field"),
        )
        .await;
    }
    fx.stop().await;
}

async fn unknown_namespaces_are_not_found(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let detail = "namespace nowhere not found";
    let ns = "/api/v1/namespaces/nowhere";
    let run_id = fx.run_id("sleeping-1").await;
    let gets = [
        ns.to_owned(),
        format!("{ns}/endpoints"),
        format!("{ns}/workflows"),
        format!("{ns}/workflows/sleeping-1"),
        format!("{ns}/workflows/sleeping-1?run_id={run_id}"),
        format!("{ns}/workflows/sleeping-1/history"),
        format!("{ns}/workflows/sleeping-1/result"),
    ];
    for path in &gets {
        refused(api, Method::GET, path, Body::Empty, not_found(detail)).await;
    }
    let posts = [
        (format!("{ns}/workflows/new-1"), start_body(json!({}))),
        (
            format!("{ns}/workflows/sleeping-1/terminate"),
            json!({"reason": "r"}),
        ),
        (
            format!("{ns}/endpoints"),
            json!({"task_queue": "q", "url": "http://127.0.0.1:9/", "secrets": [common::SECRET]}),
        ),
    ];
    for (path, body) in posts {
        refused(
            api,
            Method::POST,
            &path,
            Body::Json(body),
            not_found(detail),
        )
        .await;
    }
    refused(
        api,
        Method::DELETE,
        &format!("{ns}/endpoints/q/default"),
        Body::Empty,
        not_found(detail),
    )
    .await;
    // A well-formed task token naming the unknown namespace and a real run.
    let token = activity_token("nowhere", &run_id, 5, 1);
    refused(
        api,
        Method::POST,
        &format!("{ns}/activities/complete"),
        Body::Json(json!({"task_token": token, "result": 1})),
        (StatusCode::NOT_FOUND, "not_found", "not found"),
    )
    .await;
    fx.stop().await;
}

async fn unknown_workflows_and_runs_are_not_found(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let ghost = "workflow ghost not found";
    for path in [
        format!("{WF}/ghost"),
        format!("{WF}/ghost/history"),
        format!("{WF}/ghost/result"),
        format!("{WF}/ghost/result?wait=1s"),
    ] {
        refused(api, Method::GET, &path, Body::Empty, not_found(ghost)).await;
    }
    refused(
        api,
        Method::POST,
        &format!("{WF}/ghost/terminate"),
        Body::Json(json!({"reason": "r"})),
        not_found(ghost),
    )
    .await;
    // A run id that exists nowhere, and one that belongs to another workflow.
    let unknown_run = uuid::Uuid::now_v7().to_string();
    let other_run = fx.run_id("done-1").await;
    for run_id in [&unknown_run, &other_run] {
        let missing = "workflow sleeping-1 not found";
        for path in [
            format!("{WF}/sleeping-1?run_id={run_id}"),
            format!("{WF}/sleeping-1/history?run_id={run_id}"),
            format!("{WF}/sleeping-1/result?run_id={run_id}"),
        ] {
            refused(api, Method::GET, &path, Body::Empty, not_found(missing)).await;
        }
        refused(
            api,
            Method::POST,
            &format!("{WF}/sleeping-1/terminate"),
            Body::Json(json!({"run_id": run_id, "reason": "r"})),
            not_found(missing),
        )
        .await;
    }
    // A run id that is not one at all.
    for run_id in ["not-a-uuid", "12345"] {
        refused(
            api,
            Method::GET,
            &format!("{WF}/sleeping-1?run_id={run_id}"),
            Body::Empty,
            bad_request("invalid run_id"),
        )
        .await;
        refused(
            api,
            Method::POST,
            &format!("{WF}/sleeping-1/terminate"),
            Body::Json(json!({"run_id": run_id})),
            bad_request("invalid run_id"),
        )
        .await;
    }
    // Closed runs cannot be terminated again.
    refused(
        api,
        Method::POST,
        &format!("{WF}/done-1/terminate"),
        Body::Json(json!({"reason": "again"})),
        (StatusCode::CONFLICT, "conflict", "closed"),
    )
    .await;
    // Unknown endpoint versions.
    refused(
        api,
        Method::DELETE,
        "/api/v1/namespaces/default/endpoints/q/v9",
        Body::Empty,
        not_found("no endpoint version v9 for task queue q"),
    )
    .await;
    refused(
        api,
        Method::DELETE,
        "/api/v1/namespaces/default/endpoints/elsewhere/default",
        Body::Empty,
        not_found("no endpoint version default for task queue elsewhere"),
    )
    .await;
    fx.stop().await;
}

async fn invalid_namespace_names_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let long = "a".repeat(65);
    for name in [
        "",
        "has space",
        "-leading-dash",
        ".hidden",
        "a/b",
        "semi;colon",
        "ünïcode",
        "tab\tname",
        long.as_str(),
    ] {
        refused(
            api,
            Method::POST,
            NS,
            Body::Json(json!({"name": name})),
            bad_request("invalid namespace name"),
        )
        .await;
    }
    refused(
        api,
        Method::POST,
        NS,
        Body::Json(json!({"name": "default"})),
        (StatusCode::CONFLICT, "already_exists", "already exists"),
    )
    .await;
    // The longest valid name is accepted: the boundary is where it says.
    let (status, body) = api.post(NS, json!({"name": "a".repeat(64)})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    fx.stop().await;
}

async fn oversized_payloads_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let limit = 2 * 1024 * 1024;
    // Input just over the 2 MiB payload limit (the JSON string's quotes
    // count), in a body well under the 6 MiB body limit.
    let input = "x".repeat(limit);
    refused(
        api,
        Method::POST,
        &format!("{WF}/big-1"),
        Body::Json(start_body(json!({"input": input}))),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "exceeds the limit of 2097152 bytes",
        ),
    )
    .await;
    // Exactly at the limit is fine (checked against a fresh workflow id).
    let at_limit = "x".repeat(limit - 2);
    let (status, body) = api
        .post(
            &format!("{WF}/big-ok"),
            start_body(json!({"input": at_limit})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    api.post(
        &format!("{WF}/big-ok/terminate"),
        json!({"reason": "cleanup"}),
    )
    .await;
    // Bodies above the 6 MiB body limit never reach a handler.
    let huge = "y".repeat(6 * 1024 * 1024 + 1);
    for path in [
        format!("{WF}/big-2"),
        NS.to_owned(),
        format!("{WF}/sleeping-1/terminate"),
    ] {
        let body = serde_json::to_vec(&json!({"input": huge})).unwrap();
        refused(
            api,
            Method::POST,
            &path,
            Body::Raw("application/json", body),
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "too large",
            ),
        )
        .await;
    }
    // Terminate details are payloads like any other.
    let details = "d".repeat(3 * 1024 * 1024);
    let (status, body) = api
        .post(
            &format!("{WF}/sleeping-1/terminate"),
            json!({"reason": "r", "details": details}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    fx.stop().await;
}

async fn invalid_timeouts_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let path = format!("{WF}/timed-1");
    for field in [
        "workflow_execution_timeout",
        "workflow_run_timeout",
        "workflow_task_timeout",
    ] {
        for zero in ["0s", "0ms", "0"] {
            refused(
                api,
                Method::POST,
                &path,
                Body::Json(start_body(json!({field: zero}))),
                bad_request(&format!("{field} must be greater than zero")),
            )
            .await;
        }
        for bad in ["-5s", "soon", "", "10 parsecs", "1e400s", "-1 day"] {
            refused(
                api,
                Method::POST,
                &path,
                Body::Json(start_body(json!({field: bad}))),
                bad_request("duration"),
            )
            .await;
        }
    }
    for bad in ["soon", "-1s", "1x"] {
        refused(
            api,
            Method::GET,
            &format!("{WF}/sleeping-1/result?wait={bad}"),
            Body::Empty,
            bad_request("duration"),
        )
        .await;
    }
    fx.stop().await;
}

async fn invalid_enums_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let path = format!("{WF}/enum-1");
    let cases = [
        (
            json!({"id_reuse_policy": "SOMETIMES"}),
            "unknown variant `SOMETIMES`",
        ),
        (
            json!({"id_reuse_policy": "allow_duplicate"}),
            "unknown variant `allow_duplicate`",
        ),
        (json!({"id_reuse_policy": ""}), "unknown variant ``"),
        // serde_json reports a non-string where a unit variant belongs as a
        // syntax error; the detail still names the field.
        (
            json!({"id_reuse_policy": 2}),
            "id_reuse_policy: expected value",
        ),
        (
            json!({"id_conflict_policy": "IGNORE"}),
            "unknown variant `IGNORE`",
        ),
        // (`null` is absent: empty_values_and_nulls_follow_the_spec.)
    ];
    for (extra, detail) in cases {
        refused(
            api,
            Method::POST,
            &path,
            Body::Json(start_body(extra)),
            bad_request(detail),
        )
        .await;
    }
    for status in ["bogus", "RUN", "1"] {
        refused(
            api,
            Method::GET,
            &format!("{WF}?status={status}"),
            Body::Empty,
            bad_request(&format!("unknown status \"{status}\"")),
        )
        .await;
    }
    refused(
        api,
        Method::GET,
        &format!("{WF}?started_after=yesterday"),
        Body::Empty,
        bad_request("started_after"),
    )
    .await;
    fx.stop().await;
}

async fn invalid_page_sizes_and_tokens_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    for (size, detail) in [
        ("0", "page_size 0 is not within 1..=1000"),
        ("1001", "page_size 1001 is not within 1..=1000"),
        ("-5", "page_size -5 is not within 1..=1000"),
        ("ten", "page_size"),
        ("1.5", "page_size"),
        ("99999999999999999999", "page_size"),
    ] {
        refused(
            api,
            Method::GET,
            &format!("{WF}?page_size={size}"),
            Body::Empty,
            bad_request(detail),
        )
        .await;
    }
    for (size, detail) in [
        ("0", "page_size 0 is not within 1..=10000"),
        ("10001", "page_size 10001 is not within 1..=10000"),
        ("x", "page_size"),
    ] {
        refused(
            api,
            Method::GET,
            &format!("{WF}/done-1/history?page_size={size}"),
            Body::Empty,
            bad_request(detail),
        )
        .await;
    }
    // base64url("hello"), base64url("1:not-a-run"), and not base64 at all.
    for token in ["aGVsbG8", "MTpub3QtYS1ydW4", "!!!", "%FF%FE"] {
        refused(
            api,
            Method::GET,
            &format!("{WF}?next_page_token={token}"),
            Body::Empty,
            bad_request("invalid next_page_token"),
        )
        .await;
    }
    for token in ["abc", "-", "1.5"] {
        refused(
            api,
            Method::GET,
            &format!("{WF}/done-1/history?next_page_token={token}"),
            Body::Empty,
            bad_request("invalid next_page_token"),
        )
        .await;
    }
    // Positive control: the tokens the server hands out do page.
    let (status, first) = api.get(&format!("{WF}?page_size=1")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let token = first["next_page_token"].as_str().unwrap();
    let (status, second) = api
        .get(&format!("{WF}?page_size=1&next_page_token={token}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let ids: HashSet<&str> = [&first, &second]
        .iter()
        .map(|p| p["executions"][0]["workflow_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, HashSet::from(["done-1", "sleeping-1"]));
    let (status, page) = api.get(&format!("{WF}/done-1/history?page_size=2")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["next_page_token"], "2");
    fx.stop().await;
}

fn activity_token(namespace: &str, run_id: &str, scheduled_event_id: i64, attempt: u32) -> String {
    TaskToken {
        namespace: Namespace(namespace.to_owned()),
        run_id: run_id.parse().unwrap(),
        task: TokenKind::Activity(ActivityToken {
            scheduled_event_id,
            attempt,
        }),
    }
    .to_string()
}

fn b64(raw: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

async fn malformed_and_stale_task_tokens_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let (status, body) = api.post(NS, json!({"name": "other"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api.start("async-1", "Async", "q", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let push = || {
        fx.handler
            .received
            .lock()
            .unwrap()
            .iter()
            .find(|p| p["type"] == "activity_task" && p["workflow_id"] == "async-1")
            .cloned()
    };
    assert!(eventually(Duration::from_secs(5), || async { push().is_some() }).await);
    let push = push().unwrap();
    let token = push["task_token"].as_str().unwrap().to_owned();
    let run_id = push["run_id"].as_str().unwrap().to_owned();
    let parsed: TaskToken = token.parse().unwrap();
    let TokenKind::Activity(real) = parsed.task else {
        panic!("activity push with a workflow token: {push}");
    };
    let workflow_token = TaskToken {
        namespace: Namespace("default".into()),
        run_id: run_id.parse().unwrap(),
        task: TokenKind::Workflow(WorkflowTaskToken {
            seq: 1,
            attempt: 1,
            started_at: Timestamp(0),
        }),
    }
    .to_string();
    let malformed = [
        String::new(),
        "garbage".to_owned(),
        b64("v1:default:not-a-uuid:a:5:1"),
        b64(&format!("v2:default:{run_id}:a:5:1")),
        b64(&format!("v1:default:{run_id}:x:5:1")),
        b64(&format!("v1:default:{run_id}:a:five:1")),
        b64(&format!("v1:default:{run_id}:a:5:-1")),
        b64(&format!("v1:default:{run_id}:a:5")),
        format!("{token}=="),
    ];
    let endpoints = ["complete", "fail", "cancel", "heartbeat"];
    let body_for = |endpoint: &str, token: &str| match endpoint {
        "fail" => json!({"task_token": token, "failure": {"message": "nope"}}),
        "complete" => json!({"task_token": token, "result": 1}),
        _ => json!({"task_token": token}),
    };
    for endpoint in endpoints {
        let path = format!("{ACTIVITIES}/{endpoint}");
        for t in &malformed {
            let body = Body::Json(body_for(endpoint, t));
            refused(
                api,
                Method::POST,
                &path,
                body,
                bad_request("malformed task_token"),
            )
            .await;
        }
        let body = Body::Json(body_for(endpoint, &workflow_token));
        refused(
            api,
            Method::POST,
            &path,
            body,
            bad_request("workflow task token"),
        )
        .await;
        // A good token presented in the wrong namespace.
        let body = Body::Json(body_for(endpoint, &token));
        refused(
            api,
            Method::POST,
            &format!("/api/v1/namespaces/other/activities/{endpoint}"),
            body,
            bad_request("another namespace"),
        )
        .await;
        // Well formed, but naming no run, or a run that has no such attempt.
        let unknown_run = activity_token("default", &uuid::Uuid::now_v7().to_string(), 5, 1);
        let body = Body::Json(body_for(endpoint, &unknown_run));
        refused(api, Method::POST, &path, body, not_found("not found")).await;
        for (sched, attempt) in [
            (real.scheduled_event_id, real.attempt + 1),
            (real.scheduled_event_id + 100, real.attempt),
        ] {
            let stale = activity_token("default", &run_id, sched, attempt);
            let body = Body::Json(body_for(endpoint, &stale));
            refused(
                api,
                Method::POST,
                &path,
                body,
                (StatusCode::CONFLICT, "conflict", ""),
            )
            .await;
        }
    }
    // Heartbeat details above the payload limit.
    refused(
        api,
        Method::POST,
        &format!("{ACTIVITIES}/heartbeat"),
        Body::Json(json!({"task_token": token, "details": "x".repeat(2 * 1024 * 1024)})),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "exceeds the limit",
        ),
    )
    .await;
    // Cancellation cannot be reported when none was requested.
    refused(
        api,
        Method::POST,
        &format!("{ACTIVITIES}/cancel"),
        Body::Json(json!({"task_token": token})),
        bad_request("none was requested"),
    )
    .await;
    // The real token works once; afterwards it is stale.
    let (status, body) = api
        .post(
            &format!("{ACTIVITIES}/complete"),
            json!({"task_token": token, "result": "done"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(api.result("async-1").await["status"], "COMPLETED");
    for endpoint in endpoints {
        let body = Body::Json(body_for(endpoint, &token));
        refused(
            api,
            Method::POST,
            &format!("{ACTIVITIES}/{endpoint}"),
            body,
            (StatusCode::CONFLICT, "conflict", ""),
        )
        .await;
    }
    fx.stop().await;
}

async fn invalid_endpoint_registrations_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let path = "/api/v1/namespaces/default/endpoints";
    let cases = [
        (
            json!({"task_queue": "", "url": "http://x/"}),
            "task_queue must not be empty",
        ),
        (
            json!({"task_queue": "q2", "url": "not a url"}),
            "invalid url",
        ),
        (json!({"task_queue": "q2", "url": ""}), "invalid url"),
        (
            json!({"task_queue": "q2", "url": "ftp://x/"}),
            "url must be http or https",
        ),
        (
            json!({"task_queue": "q2", "url": "http://x/", "version": ""}),
            "version must be non-empty",
        ),
        (
            json!({"task_queue": "q2", "url": "http://x/", "version": "a/b"}),
            "contain no '/'",
        ),
        (
            json!({"task_queue": "q2", "url": "http://x/", "max_concurrency": 0}),
            "max_concurrency must be at least 1",
        ),
        (
            json!({"task_queue": "q2", "url": "http://x/", "secrets": ["not base64!"]}),
            "invalid signing secret",
        ),
        (
            json!({"task_queue": "q2", "url": "http://x/", "secrets": ["whsec_"]}),
            "invalid signing secret",
        ),
        (
            json!({"task_queue": "q2", "url": "http://x/", "secrets": ["whpk_c2VjcmV0"]}),
            "invalid signing secret",
        ),
        (
            json!({"task_queue": "q2", "url": "http://x/", "secrets": [common::SECRET, "whsec_!!!"]}),
            "invalid signing secret",
        ),
        (json!({"url": "http://x/"}), "missing field `task_queue`"),
        (json!({"task_queue": "q2"}), "missing field `url`"),
    ];
    for (body, detail) in cases {
        refused(
            api,
            Method::POST,
            path,
            Body::Json(body),
            bad_request(detail),
        )
        .await;
    }
    fx.stop().await;
}

/// Promotions, moves and deletes of endpoint versions that cannot be
/// carried out: nothing changes, not even the pins of open runs.
async fn invalid_version_changes_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let q = "/api/v1/namespaces/default/endpoints/q";
    let move_to = |to: &str| format!("{q}/versions/{to}/move-runs");
    let valid = json!({"from_version": "default", "reason": "drain"});
    let with = |extra: Value| {
        let mut body = valid.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Body::Json(body)
    };
    // `sleeping-1` is open and pinned to `default`, the only version of q.
    let cases = [
        (
            move_to("v9"),
            with(json!({})),
            not_found("no endpoint version v9 for task queue q"),
        ),
        (
            move_to("default"),
            Body::Json(json!({"from_version": "default"})),
            bad_request("missing field `reason`"),
        ),
        (
            move_to("default"),
            with(json!({"reason": " "})),
            bad_request("reason must not be empty"),
        ),
        (
            move_to("default"),
            with(json!({})),
            bad_request("from_version and the version to move to are both default"),
        ),
        (
            move_to("default"),
            with(json!({"from_version": "old", "workflow_ids": ["sleeping-1"]})),
            bad_request(
                "workflow sleeping-1 has no open run of task queue q pinned to version old",
            ),
        ),
        (
            move_to("default"),
            with(json!({"from_version": "old", "workflow_ids": ["done-1"]})),
            bad_request("workflow done-1 has no open run"),
        ),
        (
            move_to("default"),
            with(json!({"from_version": "old", "workflow_ids": ["nobody"]})),
            bad_request("workflow nobody has no open run"),
        ),
        (
            move_to("default"),
            with(json!({"to_version": "x"})),
            bad_request("unknown field `to_version`"),
        ),
        (
            format!("{q}/versions/v9/promote"),
            Body::Empty,
            not_found("no endpoint version v9 for task queue q"),
        ),
    ];
    for (path, body, problem) in cases {
        refused(api, Method::POST, &path, body, problem).await;
    }
    let problem = (
        StatusCode::CONFLICT,
        "version_in_use",
        "1 open run(s) are pinned to version default of task queue q",
    );
    refused(
        api,
        Method::DELETE,
        &format!("{q}/default"),
        Body::Empty,
        problem,
    )
    .await;
    refused(
        api,
        Method::DELETE,
        &format!("{q}/default?force=maybe"),
        Body::Empty,
        bad_request("force"),
    )
    .await;
    refused(
        api,
        Method::GET,
        "/api/v1/namespaces/default/endpoints/nowhere/versions",
        Body::Empty,
        not_found("no endpoint is registered for task queue nowhere"),
    )
    .await;
    assert_eq!(
        api.describe("sleeping-1").await["pinned_version"],
        "default"
    );
    fx.stop().await;
}

async fn invalid_workflow_starts_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let long_id = "w".repeat(1001);
    let cases = [
        (
            long_id.as_str(),
            json!({}),
            "workflow_id must be at most 1000 bytes",
        ),
        (
            "new-1",
            json!({"workflow_type": ""}),
            "workflow_type must not be empty",
        ),
        (
            "new-1",
            json!({"task_queue": ""}),
            "task_queue must not be empty",
        ),
        ("new-1", json!({"memo": [1]}), "memo must be a JSON object"),
        (
            "new-1",
            json!({"retry_policy": {"backoff_coefficient": 0.5}}),
            "backoff_coefficient must be at least 1.0",
        ),
    ];
    for (id, extra, detail) in cases {
        refused(
            api,
            Method::POST,
            &format!("{WF}/{id}"),
            Body::Json(start_body(extra)),
            bad_request(detail),
        )
        .await;
    }
    let conflicts = [
        ("sleeping-1", json!({})),
        ("sleeping-1", json!({"id_conflict_policy": "FAIL"})),
        ("done-1", json!({"id_reuse_policy": "REJECT_DUPLICATE"})),
        (
            "done-1",
            json!({"id_reuse_policy": "ALLOW_DUPLICATE_FAILED_ONLY"}),
        ),
    ];
    for (id, extra) in conflicts {
        refused(
            api,
            Method::POST,
            &format!("{WF}/{id}"),
            Body::Json(start_body(extra)),
            (StatusCode::CONFLICT, "already_exists", id),
        )
        .await;
    }
    // The longest valid id is accepted.
    let longest = "w".repeat(1000);
    let (status, body) = api
        .post(&format!("{WF}/{longest}"), start_body(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    fx.stop().await;
}

async fn invalid_resets_are_refused(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let reset = |id: &str| format!("{WF}/{id}/reset");
    let history = api.history("done-1").await;
    let started = history
        .iter()
        .find(|e| e["event_type"] == "WorkflowTaskStarted")
        .and_then(|e| e["event_id"].as_i64())
        .unwrap();
    let cases = [
        (
            json!({"event_id": started, "reason": "x"}),
            "is not a WorkflowTaskCompleted event",
        ),
        (
            json!({"event_id": 999, "reason": "x"}),
            "is not a WorkflowTaskCompleted event",
        ),
        (
            json!({"event_id": 4, "reset_type": "FIRST_WORKFLOW_TASK", "reason": "x"}),
            "exactly one of event_id and reset_type",
        ),
        (
            json!({"reason": "x"}),
            "exactly one of event_id and reset_type",
        ),
        (
            json!({"reset_type": "LAST_WORKFLOW_TASK", "reason": ""}),
            "reason must not be empty",
        ),
        (json!({"reset_type": "LAST_WORKFLOW_TASK"}), "reason"),
        (
            json!({"reset_type": "SOMEWHERE", "reason": "x"}),
            "reset_type",
        ),
    ];
    for (body, detail) in cases {
        refused(
            api,
            Method::POST,
            &reset("done-1"),
            Body::Json(body),
            bad_request(detail),
        )
        .await;
    }
    let body = json!({"reset_type": "LAST_WORKFLOW_TASK", "reason": "x"});
    refused(
        api,
        Method::POST,
        &reset("nobody"),
        Body::Json(body.clone()),
        not_found("nobody"),
    )
    .await;
    let run_id = fx.run_id("sleeping-1").await;
    let mut with_run = body;
    with_run["run_id"] = json!(run_id);
    refused(
        api,
        Method::POST,
        &reset("done-1"),
        Body::Json(with_run),
        not_found("done-1"),
    )
    .await;
    fx.stop().await;
}

// ---------------------------------------------------------------------------
// Workflow task answers.

/// Workflow ids, the bad first answer, the expected cause and a fragment of
/// the recorded failure message.
fn history_breaking_answers() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let activity = |id: &str, activity_type: &str| {
        json!({"command_type": "ScheduleActivityTask", "attributes": {
            "activity_id": id, "activity_type": activity_type, "start_to_close_timeout": "10s"
        }})
    };
    let timer = json!({"command_type": "StartTimer", "attributes": {
        "timer_id": "t", "start_to_fire_timeout": "1h"
    }});
    let complete =
        json!({"command_type": "CompleteWorkflowExecution", "attributes": {"result": 1}});
    vec![
        (
            "duplicate-activity",
            json!([activity("a", "greet"), activity("a", "greet")]),
            "SCHEDULE_ACTIVITY_DUPLICATE_ID",
            "activity id \"a\" is already in use",
        ),
        (
            "empty-activity-type",
            json!([activity("a", "")]),
            "BAD_SCHEDULE_ACTIVITY_ATTRIBUTES",
            "activity_type must not be empty",
        ),
        (
            "cancel-unknown-activity",
            json!([{"command_type": "RequestCancelActivityTask", "attributes": {"activity_id": "ghost"}}]),
            "BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES",
            "no open activity with id \"ghost\"",
        ),
        (
            "duplicate-timer",
            json!([timer, timer]),
            "START_TIMER_DUPLICATE_ID",
            "timer id \"t\" is already in use",
        ),
        (
            "cancel-unknown-timer",
            json!([{"command_type": "CancelTimer", "attributes": {"timer_id": "ghost"}}]),
            "BAD_CANCEL_TIMER_ATTRIBUTES",
            "no open timer with id \"ghost\"",
        ),
        (
            "complete-not-last",
            json!([complete, timer]),
            "BAD_COMPLETE_WORKFLOW_EXECUTION_ATTRIBUTES",
            "closes the workflow but is not the last command",
        ),
        (
            "bad-continue-as-new",
            json!([{"command_type": "ContinueAsNewWorkflowExecution", "attributes": {
                "task_queue": "", "input": 1
            }}]),
            "BAD_CONTINUE_AS_NEW_ATTRIBUTES",
            "task_queue must not be empty",
        ),
        (
            "oversized-result",
            json!([{"command_type": "CompleteWorkflowExecution", "attributes": {
                "result": "r".repeat(2 * 1024 * 1024)
            }}]),
            "PAYLOADS_TOO_LARGE",
            "exceeds the limit",
        ),
    ]
}

async fn commands_that_break_the_history_fail_the_workflow_task(db: Db) {
    let server = spawn_server(db).await;
    let cases = history_breaking_answers();
    let bad: HashMap<String, Value> = cases
        .iter()
        .map(|(id, commands, ..)| ((*id).to_owned(), commands.clone()))
        .collect();
    // Counts workflow task pushes per workflow: the first answer is bad,
    // later ones run the workflow properly.
    let pushes: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let handler = spawn_handler(move |req: Value| {
        let (bad, pushes) = (bad.clone(), pushes.clone());
        async move {
            if req["type"] != "workflow_task" {
                return (StatusCode::OK, json!({"result": "hello"}));
            }
            let id = req["workflow_id"].as_str().unwrap().to_owned();
            let n = {
                let mut pushes = pushes.lock().unwrap();
                let n = pushes.entry(id.clone()).or_default();
                *n += 1;
                *n
            };
            if n == 1 {
                return (StatusCode::OK, json!({"commands": bad[&id]}));
            }
            (
                StatusCode::OK,
                sequential_workflow(&req, &[("greet", json!({}))]),
            )
        }
    })
    .await;
    server.api.register("q", &handler.url).await;
    for (id, _, cause, message) in &cases {
        let (status, body) = server.api.start(id, "Breaker", "q", json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{id}: {body}");
        let result = server.api.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
        assert_eq!(result["result"], json!(["hello"]), "{id}");
        let history = server.api.history(id).await;
        assert_eq!(
            event_types(&history),
            [
                "WorkflowExecutionStarted",
                "WorkflowTaskScheduled",
                "WorkflowTaskStarted",
                // The bad answer left only this: none of its commands ran.
                "WorkflowTaskFailed",
                "WorkflowTaskScheduled",
                "WorkflowTaskStarted",
                "WorkflowTaskCompleted",
                "ActivityTaskScheduled",
                "ActivityTaskStarted",
                "ActivityTaskCompleted",
                "WorkflowTaskScheduled",
                "WorkflowTaskStarted",
                "WorkflowTaskCompleted",
                "WorkflowExecutionCompleted",
            ],
            "{id}"
        );
        let failed = &history[3]["attributes"];
        assert_eq!(failed["cause"], *cause, "{id}: {failed}");
        assert_eq!(failed["scheduled_event_id"], 2, "{id}: {failed}");
        assert_eq!(failed["started_event_id"], 3, "{id}: {failed}");
        let text = failed["failure"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{id}: {text:?} lacks {message:?}");
        // The good answer's activity was the only one ever pushed.
        let activity_pushes = handler
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p["type"] == "activity_task" && p["workflow_id"] == *id)
            .count();
        assert_eq!(activity_pushes, 1, "{id}");
    }
    server.stop().await;
}

/// A handler that answers workflow tasks with whatever `answer` returns,
/// sent as is (no JSON encoding). It does not check signatures: the server
/// under test is the one misbehaving party we care about here.
async fn spawn_raw_handler<F>(answer: F) -> String
where
    F: Fn(&Value) -> (StatusCode, String) + Send + Sync + 'static,
{
    let answer = Arc::new(answer);
    let app = Router::new().route(
        "/",
        post(move |body: Bytes| {
            let answer = answer.clone();
            async move {
                let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let (status, text) = answer(&request);
                (status, [(header::CONTENT_TYPE, "application/json")], text)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/")
}

async fn garbage_answers_leave_the_history_unchanged_and_are_retried(db: Db) {
    let server = spawn_server(db).await;
    // Workflow id, HTTP status, raw answer, fragment of the recorded failure.
    let cases: Vec<(&str, StatusCode, &str, &str)> = vec![
        (
            "not-json",
            StatusCode::OK,
            "this is not json",
            "unparseable answer",
        ),
        (
            "unknown-field",
            StatusCode::OK,
            r#"{"commands": [], "verdict": "ok"}"#,
            "unknown field `verdict`",
        ),
        (
            "both",
            StatusCode::OK,
            r#"{"commands": [], "failure": {"failure": {"message": "boom"}}}"#,
            "exactly one of `commands`, `failure` and `checkpointed`",
        ),
        (
            "neither",
            StatusCode::OK,
            "{}",
            "exactly one of `commands`, `failure` and `checkpointed`",
        ),
        (
            "unknown-command",
            StatusCode::OK,
            r#"{"commands": [{"command_type": "LaunchRocket", "attributes": {}}]}"#,
            "unknown variant `LaunchRocket`",
        ),
        (
            "bad-attributes",
            StatusCode::OK,
            r#"{"commands": [{"command_type": "StartTimer", "attributes": {"timer_id": "t"}}]}"#,
            "missing field `start_to_fire_timeout`",
        ),
        (
            "json-array",
            StatusCode::OK,
            "[[]]",
            "must be a JSON object",
        ),
        (
            "server-error",
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"oops": true}"#,
            "500",
        ),
    ];
    let garbage: HashMap<String, (StatusCode, String)> = cases
        .iter()
        .map(|(id, status, text, _)| ((*id).to_owned(), (*status, (*text).to_owned())))
        .collect();
    let healed: Arc<Mutex<HashSet<String>>> = Arc::default();
    let heal = healed.clone();
    let url = spawn_raw_handler(move |req| {
        let id = req["workflow_id"].as_str().unwrap_or_default();
        if heal.lock().unwrap().contains(id) {
            let done = json!({"commands": [{"command_type": "CompleteWorkflowExecution",
                "attributes": {"result": "healed"}}]});
            return (StatusCode::OK, done.to_string());
        }
        garbage[id].clone()
    })
    .await;
    server.api.register("q", &url).await;
    let pending = |id: &'static str| {
        let api = server.api.clone();
        async move { api.describe(id).await["pending_workflow_task"].clone() }
    };
    for (id, _, _, fragment) in cases {
        let (status, body) = server.api.start(id, "Garbage", "q", json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{id}: {body}");
        // The task is retried (attempt 3 means two answers were refused).
        let retried = eventually(Duration::from_secs(10), || async {
            pending(id).await["attempt"].as_u64() >= Some(3)
        })
        .await;
        assert!(retried, "{id}: task not retried: {}", pending(id).await);
        let task = pending(id).await;
        let last_failure = task["last_failure"].as_str().unwrap_or_default();
        assert!(
            last_failure.contains(fragment),
            "{id}: last_failure {last_failure:?} lacks {fragment:?}"
        );
        assert_eq!(
            event_types(&server.api.history(id).await),
            ["WorkflowExecutionStarted", "WorkflowTaskScheduled"],
            "{id}: a garbage answer changed the history"
        );
        healed.lock().unwrap().insert(id.to_owned());
        let result = server.api.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
        assert_eq!(result["result"], "healed", "{id}");
        assert_eq!(
            event_types(&server.api.history(id).await),
            [
                "WorkflowExecutionStarted",
                "WorkflowTaskScheduled",
                "WorkflowTaskStarted",
                "WorkflowTaskCompleted",
                "WorkflowExecutionCompleted",
            ],
            "{id}"
        );
        let described = server.api.describe(id).await;
        assert!(
            described.get("pending_workflow_task").is_none(),
            "{id}: {described}"
        );
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Authorisation and routing (SQLite only: no stored data is involved beyond
// what the snapshot compares).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_right_api_key_are_unauthorized() {
    let key = "s3cret-key";
    let mut options = test_options("sqlite::memory:".to_owned());
    options.api_key = Some(key.to_owned());
    let server = spawn_server_with(options).await;
    let api = &server.api;
    let base = &api.base;
    let wrong = [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cret-ke"),
        Some("Bearer s3cret-key2"),
        Some("Bearer "),
        Some("s3cret-key"),
        Some("Basic czNjcmV0LWtleTo="),
        Some("Token s3cret-key"),
        Some("Bearers3cret-key"),
        Some("Bearer\ts3cret-key"),
        Some("Bear s3cret-key"),
    ];
    let requests = [
        (Method::GET, NS.to_owned(), None),
        (
            Method::POST,
            NS.to_owned(),
            Some(json!({"name": "intruder"})),
        ),
        (Method::GET, format!("{NS}/default"), None),
        (Method::GET, WF.to_owned(), None),
        (
            Method::POST,
            format!("{WF}/intruder-1"),
            Some(start_body(json!({}))),
        ),
        (
            Method::POST,
            "/api/v1/namespaces/default/endpoints".to_owned(),
            Some(json!({"task_queue": "q", "url": "http://127.0.0.1:9/"})),
        ),
        (
            Method::DELETE,
            "/api/v1/namespaces/default/endpoints/q/default".to_owned(),
            None,
        ),
        (
            Method::POST,
            format!("{ACTIVITIES}/complete"),
            Some(json!({"task_token": "x"})),
        ),
    ];
    for (method, path, body) in &requests {
        for authorization in wrong {
            let before = snapshot(api).await;
            let body = body.clone().map_or(Body::Empty, Body::Json);
            let reply = send(base, method.clone(), path, body, authorization).await;
            let what = format!("{method} {path} with {authorization:?}");
            assert_problem(
                &what,
                &reply,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid API key",
            );
            assert_eq!(before, snapshot(api).await, "{what} changed stored data");
        }
    }
    // Health checks stay open for load balancers and orchestrators.
    for path in ["/healthz", "/readyz"] {
        let reply = send(base, Method::GET, path, Body::Empty, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
    }
    // The right key works, whatever the scheme's case (RFC 9110 §11.1).
    for scheme in ["Bearer ", "bearer ", "BEARER ", "bEaReR ", "Bearer   "] {
        let auth = format!("{scheme}{key}");
        let reply = send(base, Method::GET, NS, Body::Empty, Some(&auth)).await;
        assert_eq!(reply.status, StatusCode::OK, "{auth:?}: {}", reply.text);
    }
    let auth = format!("Bearer {key}");
    let body = Body::Json(json!({"name": "welcome"}));
    let reply = send(base, Method::POST, NS, body, Some(&auth)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let (status, listed) = api.get(NS).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = listed["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "welcome"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_are_problems() {
    let fx = fixture(Db::Sqlite).await;
    let api = fx.api();
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/api"),
        (Method::GET, "/api/v1/nope"),
        (Method::POST, "/api/v2/namespaces"),
        (
            Method::GET,
            "/api/v1/namespaces/default/workflows/done-1/unknown",
        ),
        (Method::GET, "/api/v1/namespaces/default/endpoints/q"),
        (Method::GET, "/healthz/extra"),
    ] {
        let detail = format!("no route for {method} {path}");
        refused(api, method, path, Body::Empty, not_found(&detail)).await;
    }
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_request_targets_are_problems() {
    let fx = fixture(Db::Sqlite).await;
    let api = fx.api();
    let long = "x".repeat(20 * 1024);
    let longer = "y".repeat(60 * 1024);
    for (method, path) in [
        (Method::GET, format!("{WF}/{long}")),
        (Method::POST, format!("{WF}/{longer}/terminate")),
        (Method::GET, format!("{WF}?workflow_type={long}")),
        (Method::GET, format!("/api/v1/nope/{long}")),
    ] {
        let reply = send(&api.base, method.clone(), &path, Body::Empty, None).await;
        assert_problem(
            &format!("{method} ({} bytes)", path.len()),
            &reply,
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "at most 16384 are accepted",
        );
    }
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_and_undecodable_paths_are_problems() {
    let fx = fixture(Db::Sqlite).await;
    let api = fx.api();
    for (method, path) in [
        (Method::DELETE, NS),
        (Method::PUT, "/api/v1/namespaces/default"),
        (
            Method::GET,
            "/api/v1/namespaces/default/workflows/done-1/terminate",
        ),
        (Method::POST, "/healthz"),
        (
            Method::GET,
            "/api/v1/namespaces/default/endpoints/q/default",
        ),
    ] {
        refused(
            api,
            method,
            path,
            Body::Empty,
            (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "is not allowed on",
            ),
        )
        .await;
    }
    // RFC 9110: a 405 names the methods that are allowed.
    let reply = send(&api.base, Method::DELETE, NS, Body::Empty, None).await;
    let allow = reply
        .headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok());
    assert_eq!(allow, Some("GET,HEAD,POST"), "{:?}", reply.headers);
    // Path segments that are not UTF-8 once percent-decoded.
    for path in [
        "/api/v1/namespaces/%FF",
        "/api/v1/namespaces/default/workflows/%C3%28",
        "/api/v1/namespaces/default/workflows/%FF/history",
    ] {
        refused(api, Method::GET, path, Body::Empty, bad_request("UTF-8")).await;
    }
    fx.stop().await;
}

async fn invalid_and_rejected_updates_write_nothing(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let update = format!("{WF}/sleeping-1/update/add_item");
    let problem = refused(
        api,
        Method::POST,
        &update,
        Body::Json(json!({"args": [{"sku": "A"}], "update_id": "u1"})),
        (StatusCode::BAD_REQUEST, "update_rejected", "not in stock"),
    )
    .await;
    assert_eq!(problem["failure"]["message"], "not in stock", "{problem}");
    // A rejected update leaves no id behind.
    refused(
        api,
        Method::GET,
        &format!("{WF}/sleeping-1/updates/u1"),
        Body::Empty,
        not_found("update u1 not found"),
    )
    .await;
    for (body, detail) in [
        (
            json!({"update_id": "x".repeat(1001)}),
            "update_id must be at most 1000 bytes",
        ),
        (json!({"update_id": 7}), "update_id"),
        (json!({"wait_for_stage": "SOON"}), "wait_for_stage"),
        (json!({"args": [], "extra": 1}), "extra"),
    ] {
        refused(
            api,
            Method::POST,
            &update,
            Body::Json(body),
            bad_request(detail),
        )
        .await;
    }
    refused(
        api,
        Method::GET,
        &format!("{WF}/sleeping-1/updates/u1?wait_for_stage=SOON"),
        Body::Empty,
        bad_request("wait_for_stage"),
    )
    .await;
    refused(
        api,
        Method::POST,
        &update,
        Body::Json(json!({"args": ["x".repeat(3 * 1024 * 1024)]})),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "exceeds the limit",
        ),
    )
    .await;
    refused(
        api,
        Method::POST,
        &format!("{WF}/ghost/update/add_item"),
        Body::Json(json!({})),
        not_found("workflow ghost not found"),
    )
    .await;
    refused(
        api,
        Method::GET,
        &format!("{WF}/ghost/updates/u1"),
        Body::Empty,
        not_found("workflow ghost not found"),
    )
    .await;
    refused(
        api,
        Method::POST,
        &format!("{WF}/done-1/update/add_item"),
        Body::Json(json!({})),
        (StatusCode::CONFLICT, "conflict", "closed"),
    )
    .await;
    fx.stop().await;
}

// ---------------------------------------------------------------------------
// U+0000 (NUL): PostgreSQL's `text` cannot hold it, SQLite can. Both
// backends refuse it the same way outside payloads, and keep it inside them.

async fn nul_characters_are_refused_outside_payloads(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let nul = "a\u{0}b";
    let run_id = fx.run_id("sleeping-1").await;
    let endpoints = "/api/v1/namespaces/default/endpoints";
    let post =
        |path: String, body: Value, detail: &'static str| (Method::POST, path, Some(body), detail);
    let get = |path: String, detail: &'static str| (Method::GET, path, None, detail);
    let cases: Vec<(Method, String, Option<Value>, &str)> = vec![
        // Bodies: every kind of field, nested ones and names of fields.
        post(
            NS.into(),
            json!({"name": nul}),
            "field /name contains U+0000",
        ),
        post(
            NS.into(),
            json!({"name": "ok", "description": nul}),
            "field /description",
        ),
        post(
            NS.into(),
            json!({ nul: "x" }),
            "the name of field /a\\u0000b",
        ),
        post(
            format!("{WF}/new-1"),
            start_body(json!({"workflow_type": nul})),
            "field /workflow_type",
        ),
        post(
            format!("{WF}/new-1"),
            start_body(json!({"task_queue": nul})),
            "field /task_queue",
        ),
        post(
            format!("{WF}/new-1"),
            start_body(json!({"request_id": nul})),
            "field /request_id",
        ),
        post(
            format!("{WF}/new-1"),
            start_body(json!({"identity": nul})),
            "field /identity",
        ),
        post(
            format!("{WF}/new-1"),
            start_body(json!({"retry_policy": {"non_retryable_error_types": ["x", nul]}})),
            "field /retry_policy/non_retryable_error_types/1",
        ),
        post(
            format!("{WF}/new-1/signal-with-start/go"),
            json!({"workflow_type": "Greeter", "task_queue": nul}),
            "field /task_queue",
        ),
        post(
            format!("{WF}/sleeping-1/signal/go"),
            json!({"request_id": nul}),
            "field /request_id",
        ),
        post(
            format!("{WF}/sleeping-1/signal/go"),
            json!({"run_id": nul}),
            "field /run_id",
        ),
        post(
            format!("{WF}/sleeping-1/cancel"),
            json!({"reason": nul}),
            "field /reason",
        ),
        post(
            format!("{WF}/sleeping-1/terminate"),
            json!({"reason": nul}),
            "field /reason",
        ),
        post(
            format!("{WF}/sleeping-1/update/add"),
            json!({"update_id": nul}),
            "field /update_id",
        ),
        post(
            format!("{WF}/done-1/reset"),
            json!({"reason": nul, "event_id": 3}),
            "field /reason",
        ),
        post(
            endpoints.into(),
            json!({"task_queue": nul, "url": "http://127.0.0.1:9/"}),
            "field /task_queue",
        ),
        post(
            endpoints.into(),
            json!({"task_queue": "q2", "url": format!("http://127.0.0.1:9/{nul}")}),
            "field /url",
        ),
        post(
            endpoints.into(),
            json!({"task_queue": "q2", "url": "http://127.0.0.1:9/", "version": nul}),
            "field /version",
        ),
        post(
            format!("{endpoints}/q/versions/v9/move-runs"),
            json!({"from_version": nul, "reason": "r"}),
            "field /from_version",
        ),
        post(
            format!("{ACTIVITIES}/complete"),
            json!({"task_token": nul}),
            "field /task_token",
        ),
        post(
            format!("{ACTIVITIES}/heartbeat"),
            json!({"task_token": nul}),
            "field /task_token",
        ),
        // Path segments, percent-encoded.
        get(format!("{NS}/de%00fault"), "path parameter namespace"),
        get(format!("{WF}/done%00-1"), "path parameter workflow_id"),
        post(
            format!("{WF}/new%00-1"),
            start_body(json!({})),
            "path parameter workflow_id",
        ),
        post(
            format!("{WF}/sleeping-1/signal/g%00o"),
            json!({}),
            "path parameter signal_name",
        ),
        post(
            format!("{WF}/new-1/signal-with-start/g%00o"),
            start_body(json!({})),
            "path parameter signal_name",
        ),
        post(
            format!("{WF}/done-1/query/st%00atus"),
            json!({}),
            "path parameter query_name",
        ),
        post(
            format!("{WF}/sleeping-1/update/a%00dd"),
            json!({}),
            "path parameter update_name",
        ),
        get(
            format!("{WF}/sleeping-1/updates/u%00"),
            "path parameter update_id",
        ),
        (
            Method::DELETE,
            format!("{endpoints}/q%00/default"),
            None,
            "path parameter task_queue",
        ),
        (
            Method::DELETE,
            format!("{endpoints}/q/v%00"),
            None,
            "path parameter version",
        ),
        // Query strings: list filters, run ids, page tokens, names.
        get(
            format!("{WF}?workflow_type=G%00"),
            "query parameter workflow_type",
        ),
        get(
            format!("{WF}?workflow_id=d%00"),
            "query parameter workflow_id",
        ),
        get(format!("{WF}?status=%00"), "query parameter status"),
        get(
            format!("{WF}?next_page_token=%00"),
            "query parameter next_page_token",
        ),
        get(format!("{WF}?%00=1"), "the name of a query parameter"),
        get(
            format!("{WF}/sleeping-1?run_id={run_id}%00"),
            "query parameter run_id",
        ),
        get(
            format!("{WF}/done-1/history?next_page_token=x%00"),
            "query parameter next_page_token",
        ),
        get(
            format!("{WF}/done-1/result?run_id=%00"),
            "query parameter run_id",
        ),
    ];
    for (method, path, body, detail) in cases {
        let body = body.map_or(Body::Empty, Body::Json);
        refused(api, method, &path, body, bad_request(detail)).await;
    }
    fx.stop().await;
}

/// Payloads are the user's JSON: a NUL in one is stored and comes back as
/// sent (escaped in the JSON text both backends keep).
async fn nul_characters_in_payloads_round_trip(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let payload = json!({"text": "a\u{0}b", "key\u{0}": ["\u{0}"]});
    let body = start_body(json!({"input": payload, "memo": {"note": "x\u{0}y"}}));
    let (status, started) = api.post(&format!("{WF}/nul-1"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let described = api.describe("nul-1").await;
    assert_eq!(described["memo"], json!({"note": "x\u{0}y"}), "{described}");
    let history = api.history("nul-1").await;
    assert_eq!(history[0]["attributes"]["input"], payload, "{}", history[0]);
    let signal = json!({"input": payload, "request_id": "r-nul"});
    let (status, body) = api
        .post(&format!("{WF}/sleeping-1/signal/go"), signal)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let signalled = eventually(Duration::from_secs(5), || async {
        api.history("sleeping-1").await.iter().any(|e| {
            e["event_type"] == "WorkflowExecutionSignaled" && e["attributes"]["input"] == payload
        })
    })
    .await;
    assert!(signalled, "{:?}", api.history("sleeping-1").await);
    // Namespace listings and workflow lists still read back on both.
    let (status, list) = api.get(&format!("{WF}?workflow_id=nul-1")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["executions"].as_array().unwrap().len(), 1, "{list}");
    fx.stop().await;
}

/// The spec refuses these empty values (openapi.rs checks the spec side):
/// an empty run id is no UUID, an empty duration, status or task token no
/// value. A `null` memo is the same as none.
async fn empty_values_and_nulls_follow_the_spec(db: Db) {
    let fx = fixture(db).await;
    let api = fx.api();
    let cases: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::GET,
            format!("{WF}/done-1?run_id="),
            None,
            "invalid run_id \"\"",
        ),
        (
            Method::GET,
            format!("{WF}/done-1/history?run_id="),
            None,
            "invalid run_id",
        ),
        (
            Method::GET,
            format!("{WF}/done-1/result?run_id="),
            None,
            "invalid run_id",
        ),
        (
            Method::POST,
            format!("{WF}/sleeping-1/signal/go"),
            Some(json!({"run_id": ""})),
            "invalid run_id",
        ),
        (
            Method::POST,
            format!("{WF}/sleeping-1/terminate"),
            Some(json!({"run_id": "", "reason": "r"})),
            "invalid run_id",
        ),
        (
            Method::GET,
            format!("{WF}/done-1/result?wait="),
            None,
            "wait",
        ),
        (Method::GET, format!("{WF}?status="), None, "unknown status"),
        (
            Method::POST,
            format!("{WF}/new-1"),
            Some(start_body(json!({"workflow_run_timeout": ""}))),
            "workflow_run_timeout",
        ),
        (
            Method::POST,
            format!("{ACTIVITIES}/complete"),
            Some(json!({"task_token": ""})),
            "malformed task_token",
        ),
        // A failure's members are never null (details, a payload, aside).
        (
            Method::POST,
            format!("{ACTIVITIES}/fail"),
            Some(json!({"task_token": "t", "failure": {"message": "m", "type": null}})),
            "failure.type: invalid type: null",
        ),
        (
            Method::POST,
            format!("{ACTIVITIES}/fail"),
            Some(json!({"task_token": "t", "failure": {"message": "m", "cause": null}})),
            "failure.cause: invalid type: null",
        ),
        (
            Method::POST,
            format!("{ACTIVITIES}/fail"),
            Some(json!({"task_token": "t", "failure": {"message": "m", "kind": null}})),
            "failure.kind: expected value",
        ),
        (
            Method::POST,
            format!("{ACTIVITIES}/fail"),
            Some(json!({"task_token": "t", "failure": {"message": "m", "stack_trace": null}})),
            // Members of the flattened extra part are named by their failure.
            "failure: invalid type: null, expected a string",
        ),
        (
            Method::POST,
            format!("{ACTIVITIES}/fail"),
            Some(
                json!({"task_token": "t", "failure": {"message": "m", "cause": {
                    "message": "c", "kind": "ACTIVITY",
                    "activity_failure_info": {"activity_type": "a", "activity_id": "1", "retry_state": null}
                }}}),
            ),
            "failure.cause: ",
        ),
        // With `details: null` the body parses; the token is what is wrong.
        (
            Method::POST,
            format!("{ACTIVITIES}/fail"),
            Some(json!({"task_token": "t", "failure": {"message": "m", "details": null}})),
            "malformed task_token",
        ),
        // A list's items are never null.
        (
            Method::POST,
            format!("{WF}/new-2"),
            Some(start_body(
                json!({"retry_policy": {"non_retryable_error_types": ["A", null]}}),
            )),
            "retry_policy.non_retryable_error_types[1]: invalid type: null",
        ),
    ];
    for (method, path, body, detail) in cases {
        let body = body.map_or(Body::Empty, Body::Json);
        refused(api, method, &path, body, bad_request(detail)).await;
    }
    let (status, body) = api
        .post(
            &format!("{WF}/memo-null"),
            start_body(json!({"memo": null})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let described = api.describe("memo-null").await;
    assert!(
        described.get("memo").is_none_or(Value::is_null),
        "{described}"
    );
    // Every optional top-level body field takes `null` for absent.
    let accepted = [
        (
            NS.to_owned(),
            json!({"name": "nulls", "description": null}),
            StatusCode::CREATED,
        ),
        (
            "/api/v1/namespaces/default/endpoints".to_owned(),
            json!({"task_queue": "qn", "url": "http://127.0.0.1:9/", "secrets": null}),
            StatusCode::CREATED,
        ),
        (
            format!("{WF}/null-1"),
            start_body(
                json!({"workflow_type": "Sleeper", "id_reuse_policy": null, "id_conflict_policy": null}),
            ),
            StatusCode::CREATED,
        ),
        (
            format!("{WF}/null-2/signal-with-start/go"),
            start_body(json!({"workflow_type": "Sleeper", "id_reuse_policy": null})),
            StatusCode::CREATED,
        ),
        (
            format!("{WF}/null-1/cancel"),
            json!({"reason": null}),
            StatusCode::ACCEPTED,
        ),
        (
            format!("{WF}/null-2/terminate"),
            json!({"reason": null}),
            StatusCode::NO_CONTENT,
        ),
        (
            format!("{WF}/done-1/reset"),
            json!({"reset_type": "LAST_WORKFLOW_TASK", "reason": "r", "reapply_signals": null}),
            StatusCode::OK,
        ),
        // So does every member of a retry policy.
        (
            format!("{WF}/null-3"),
            start_body(json!({"workflow_type": "Sleeper", "retry_policy": {
                "initial_interval": null, "backoff_coefficient": null, "maximum_interval": null,
                "maximum_attempts": null, "non_retryable_error_types": null
            }})),
            StatusCode::CREATED,
        ),
        (
            format!("{WF}/null-4/signal-with-start/go"),
            start_body(json!({"workflow_type": "Sleeper", "retry_policy": {
                "maximum_attempts": 2, "non_retryable_error_types": null
            }})),
            StatusCode::CREATED,
        ),
        // A memo's values are payloads: `null` is a value.
        (
            format!("{WF}/null-5"),
            start_body(json!({"workflow_type": "Sleeper", "memo": {"a": null}})),
            StatusCode::CREATED,
        ),
    ];
    for (path, body, status) in accepted {
        let (got, answer) = api.post(&path, body.clone()).await;
        assert_eq!(got, status, "POST {path} {body}: {answer}");
    }
    assert_eq!(api.describe("null-5").await["memo"], json!({"a": null}));
    fx.stop().await;
}

/// One HTTP/1.1 response read off a raw connection: status, lowercased
/// header fields, body (`Content-Length` or chunked).
async fn read_response(
    conn: &mut tokio::io::BufReader<tokio::net::TcpStream>,
) -> (u16, HashMap<String, String>, String) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
    let mut line = String::new();
    conn.read_line(&mut line).await.unwrap();
    let status: u16 = line
        .split(' ')
        .nth(1)
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
        .parse()
        .unwrap();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        conn.read_line(&mut line).await.unwrap();
        let field = line.trim_end();
        if field.is_empty() {
            break;
        }
        let (name, value) = field.split_once(':').unwrap();
        headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
    }
    let mut body = Vec::new();
    if let Some(n) = headers.get("content-length") {
        body.resize(n.parse().unwrap(), 0);
        conn.read_exact(&mut body).await.unwrap();
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|t| t == "chunked")
    {
        loop {
            line.clear();
            conn.read_line(&mut line).await.unwrap();
            let size = usize::from_str_radix(line.trim_end(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk).await.unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    (status, headers, String::from_utf8(body).unwrap())
}

/// Asserts a raw response is the guard's 414 problem.
fn assert_uri_problem(what: &str, status: u16, headers: &HashMap<String, String>, body: &str) {
    assert_eq!(status, 414, "{what}: {body}");
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("application/problem+json"),
        "{what}"
    );
    assert_eq!(headers.get("connection").map(String::as_str), Some("close"));
    let problem: Value = serde_json::from_str(body).unwrap();
    assert_eq!(problem["code"], "uri_too_long", "{what}: {problem}");
    assert_eq!(problem["status"], 414, "{what}: {problem}");
    assert_eq!(problem["type"], "https://baton.dev/errors/uri_too_long");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("at most 16384 are accepted")),
        "{what}: {problem}"
    );
}

/// Past hyper's own URI limit (64 KiB) and its read buffer (~400 KiB) the
/// connection guard answers, with the same problem; the client gets it
/// even while it is still sending the rest of its request line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_targets_hyper_would_refuse_get_a_problem_too() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = spawn_server(Db::Sqlite).await;
    for (what, target) in [
        ("100 KB path", format!("{WF}/{}", "x".repeat(100_000))),
        (
            "1 MB query",
            format!("{WF}?workflow_type={}", "y".repeat(1_000_000)),
        ),
    ] {
        let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let mut conn = tokio::io::BufReader::new(stream);
        let request = format!("GET {target} HTTP/1.1\r\nhost: baton\r\n\r\n");
        conn.get_mut().write_all(request.as_bytes()).await.unwrap();
        let (status, headers, body) = read_response(&mut conn).await;
        assert_uri_problem(what, status, &headers, &body);
        // And then the connection is closed.
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).await.unwrap();
        assert!(
            rest.is_empty(),
            "{what}: {}",
            String::from_utf8_lossy(&rest)
        );
    }
    server.stop().await;
}

/// The guard follows request framing: keep-alive and pipelined requests
/// (bodies with long lines, chunked ones) are answered as before, in order,
/// and an overlong request line after them gets its problem last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_and_pipelined_requests_pass_the_connection_guard() {
    use tokio::io::AsyncWriteExt as _;
    let server = spawn_server(Db::Sqlite).await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut conn = tokio::io::BufReader::new(stream);
    // Keep-alive: one request, its answer, the next.
    for _ in 0..3 {
        conn.get_mut()
            .write_all(b"GET /api/v1/namespaces/default HTTP/1.1\r\nhost: baton\r\n\r\n")
            .await
            .unwrap();
        let (status, _, body) = read_response(&mut conn).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["name"],
            "default"
        );
    }
    // Pipelined, in one write: a namespace created with a body holding a
    // line longer than the guard's limit, one created with a chunked body,
    // a read of each, then an overlong request line.
    let description = "d".repeat(40_000);
    let first = json!({"name": "piped-1", "description": description}).to_string();
    let second = json!({"name": "piped-2"}).to_string();
    let mut pipeline = format!(
        "POST {NS} HTTP/1.1\r\nhost: baton\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{first}",
        first.len()
    );
    pipeline.push_str(&format!(
        "POST {NS} HTTP/1.1\r\nhost: baton\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\n\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
        second.len()
    ));
    pipeline.push_str(&format!("GET {NS}/piped-1 HTTP/1.1\r\nhost: baton\r\n\r\n"));
    pipeline.push_str(&format!("GET {NS}/piped-2 HTTP/1.1\r\nhost: baton\r\n\r\n"));
    pipeline.push_str(&format!(
        "GET {NS}/{} HTTP/1.1\r\nhost: baton\r\n\r\n",
        "z".repeat(200_000)
    ));
    conn.get_mut().write_all(pipeline.as_bytes()).await.unwrap();
    for expected in [201, 201] {
        let (status, _, body) = read_response(&mut conn).await;
        assert_eq!(status, expected, "{body}");
    }
    for name in ["piped-1", "piped-2"] {
        let (status, _, body) = read_response(&mut conn).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["name"], name);
    }
    let (status, headers, body) = read_response(&mut conn).await;
    assert_uri_problem("after the pipeline", status, &headers, &body);
    server.stop().await;
}
