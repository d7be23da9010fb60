//! Custom search attributes end to end, on SQLite and PostgreSQL: the
//! registry's REST routes and their refusals, attributes set at start and
//! upserted by workflow code (a scripted handler answering with raw
//! commands) found by list queries with ORDER BY and pages, shown by
//! describe and in the history, and many runs upserting at once.
// Tests and their shared fixtures unwrap freely.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration as StdDuration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use common::{event_types, spawn_handler, spawn_server, Api, Db};

on_both_databases!(
    the_registry_adds_lists_removes_and_refuses_bad_input,
    attributes_set_at_start_and_upserted_are_queryable,
    a_bad_upsert_fails_the_workflow_task,
    many_runs_upserting_concurrently_end_with_their_last_values
);

const SA: &str = "/api/v1/namespaces/default/search-attributes";

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn register(api: &Api, attributes: Value) {
    let (status, body) = api
        .post(SA, json!({ "search_attributes": attributes }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn custom(api: &Api) -> Value {
    let (status, body) = api.get(SA).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["custom_attributes"].clone()
}

/// The workflow ids a list query returns, following every page.
async fn list(api: &Api, query: &str, page_size: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let (status, body) = api
            .get(&format!(
                "/api/v1/namespaces/default/workflows?query={}&page_size={page_size}&next_page_token={}",
                enc(query),
                enc(&token)
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        for e in body["executions"].as_array().cloned().unwrap_or_default() {
            ids.push(e["workflow_id"].as_str().unwrap_or_default().to_owned());
        }
        match body["next_page_token"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_owned(),
            _ => return ids,
        }
    }
}

async fn count(api: &Api, query: &str) -> i64 {
    let (status, body) = api
        .get(&format!(
            "/api/v1/namespaces/default/workflow-count?query={}",
            enc(query)
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body["count"].as_i64().unwrap_or(-1)
}

async fn the_registry_adds_lists_removes_and_refuses_bad_input(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    register(
        api,
        json!({"CustomerId": "Keyword", "Priority": "Int", "Tags": "KeywordList"}),
    )
    .await;
    let (_, listed) = api.get(SA).await;
    assert_eq!(
        listed["custom_attributes"],
        json!({"CustomerId": "Keyword", "Priority": "Int", "Tags": "KeywordList"})
    );
    // The system attributes are listed too, as Temporal lists them.
    assert_eq!(listed["system_attributes"]["WorkflowType"], "Keyword");
    assert_eq!(listed["system_attributes"]["StartTime"], "Datetime");

    let before = custom(api).await;
    for (attributes, status, names) in [
        (
            json!({"CustomerId": "Keyword"}),
            StatusCode::CONFLICT,
            "CustomerId",
        ),
        (
            json!({"WorkflowType": "Keyword"}),
            StatusCode::BAD_REQUEST,
            "WorkflowType",
        ),
        (
            json!({"Amount": "Float"}),
            StatusCode::BAD_REQUEST,
            "Amount",
        ),
        (json!({"1st": "Int"}), StatusCode::BAD_REQUEST, "1st"),
        (
            json!({"TemporalThing": "Int"}),
            StatusCode::BAD_REQUEST,
            "TemporalThing",
        ),
        // Two Int slots are left: the third of the request has none, and
        // the first two are not registered either.
        (
            json!({"I1": "Int", "I2": "Int", "I3": "Int"}),
            StatusCode::BAD_REQUEST,
            "I3",
        ),
        // All or nothing: the good name is not registered with the bad.
        (
            json!({"Fine": "Text", "CustomerId": "Keyword"}),
            StatusCode::CONFLICT,
            "CustomerId",
        ),
    ] {
        let (got, body) = api
            .post(SA, json!({ "search_attributes": attributes }))
            .await;
        assert_eq!(got, status, "{attributes}: {body}");
        assert_eq!(
            body["status"].as_u64(),
            Some(u64::from(status.as_u16())),
            "{body}"
        );
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(names), "{attributes}: {detail}");
        assert_eq!(
            custom(api).await,
            before,
            "{attributes} changed the registry"
        );
    }

    let (status, _) = api
        .call(Method::DELETE, &format!("{SA}/CustomerId"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api
        .call(Method::DELETE, &format!("{SA}/CustomerId"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        custom(api).await,
        json!({"Priority": "Int", "Tags": "KeywordList"})
    );
    // A removed name is unknown to queries; registering it again works.
    let (status, body) = api
        .get("/api/v1/namespaces/default/workflows?query=CustomerId%20%3D%20'c'")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("CustomerId"));
    register(api, json!({"CustomerId": "Keyword"})).await;
    server.stop().await;
}

/// Input `{"id": "wf-N"}`: the first task upserts Priority 100 + N and a
/// tag, removes CustomerId for N = 0, and completes the run.
fn upserting_workflow(request: &Value) -> Value {
    let n: i64 = request["history"][0]["attributes"]["input"]["id"]
        .as_str()
        .and_then(|id| id.trim_start_matches("wf-").parse().ok())
        .unwrap_or(-1);
    let mut attributes = json!({"Priority": 100 + n, "Tags": [format!("t{}", n % 3), "all"]});
    if n == 0 {
        attributes["CustomerId"] = Value::Null;
    }
    json!({"commands": [
        {"command_type": "UpsertWorkflowSearchAttributes",
         "attributes": {"search_attributes": attributes}},
        {"command_type": "CompleteWorkflowExecution", "attributes": {"result": n}},
    ]})
}

async fn attributes_set_at_start_and_upserted_are_queryable(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    register(
        api,
        json!({"CustomerId": "Keyword", "Priority": "Int", "Tags": "KeywordList",
               "Note": "Text", "Due": "Datetime", "Score": "Double", "Urgent": "Bool"}),
    )
    .await;
    let handler =
        spawn_handler(|req: Value| async move { (StatusCode::OK, upserting_workflow(&req)) }).await;
    api.register("main", &handler.url).await;

    for n in 0..6 {
        let (status, body) = api
            .start(
                &format!("wf-{n}"),
                "Order",
                "main",
                json!({"search_attributes": {
                    "CustomerId": format!("c{}", n % 2),
                    "Priority": n,
                    "Note": format!("Order number {n}, big RED box"),
                    "Due": format!("2026-01-0{}T00:00:00+01:00", n + 1),
                    "Score": n as f64 / 2.0,
                    "Urgent": n % 2 == 0,
                }}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for n in 0..6 {
        assert_eq!(api.result(&format!("wf-{n}")).await["status"], "COMPLETED");
    }

    // Set at start, kept after the upsert (CustomerId removed on wf-0).
    let mut c0 = list(api, "CustomerId = 'c0'", 100).await;
    c0.sort();
    assert_eq!(c0, ["wf-2", "wf-4"]);
    assert_eq!(list(api, "CustomerId IS NULL", 100).await, ["wf-0"]);
    assert_eq!(count(api, "Note = 'red box'").await, 6);
    assert_eq!(count(api, "Note = 'number 3'").await, 1);
    assert_eq!(count(api, "Note != 'green'").await, 6);
    assert_eq!(count(api, "Urgent = true").await, 3);
    assert_eq!(count(api, "Score >= 1.5").await, 3);
    assert_eq!(
        list(api, "Due < '2026-01-02T00:00:00Z' ORDER BY Due", 100).await,
        ["wf-0", "wf-1"]
    );
    // Upserted by workflow code; ORDER BY a custom Int over pages of 2.
    assert_eq!(
        list(api, "Priority >= 102 ORDER BY Priority DESC", 2).await,
        ["wf-5", "wf-4", "wf-3", "wf-2"]
    );
    assert_eq!(
        list(api, "Priority BETWEEN 101 AND 103 ORDER BY Priority", 1).await,
        ["wf-1", "wf-2", "wf-3"]
    );
    let mut t1 = list(api, "Tags = 't1' AND ExecutionStatus = 'Completed'", 100).await;
    t1.sort();
    assert_eq!(t1, ["wf-1", "wf-4"]);
    assert_eq!(count(api, "Tags IN ('t0', 't2')").await, 4);
    assert_eq!(count(api, "Tags = 'all'").await, 6);
    // ORDER BY a custom Keyword, missing values first when descending.
    assert_eq!(
        list(api, "ORDER BY CustomerId DESC, Priority", 4).await,
        ["wf-0", "wf-1", "wf-3", "wf-5", "wf-2", "wf-4"]
    );

    // Describe shows the current values with their types; the history
    // the upsert.
    let d = api.describe("wf-0").await;
    assert_eq!(
        d["search_attributes"]["Priority"],
        json!({"type": "Int", "value": 100})
    );
    assert_eq!(
        d["search_attributes"]["Due"],
        json!({"type": "Datetime", "value": "2025-12-31T23:00:00.000Z"})
    );
    assert!(d["search_attributes"].get("CustomerId").is_none(), "{d}");
    let history = api.history("wf-0").await;
    assert!(event_types(&history).contains(&"UpsertWorkflowSearchAttributes".to_owned()));
    let upsert = history
        .iter()
        .find(|e| e["event_type"] == "UpsertWorkflowSearchAttributes")
        .expect("an upsert event");
    assert_eq!(
        upsert["attributes"]["search_attributes"]["CustomerId"],
        Value::Null
    );
    assert!(upsert["attributes"]["workflow_task_completed_event_id"].is_i64());

    // Refusals name the attribute or token; nothing is started.
    for (attributes, names) in [
        (json!({"Priority": "high"}), "Priority"),
        (json!({"Nope": 1}), "Nope"),
        (json!({"Due": "yesterday"}), "Due"),
        (json!({"Tags": ["a", 1]}), "Tags"),
    ] {
        let (status, body) = api
            .start(
                "refused",
                "Order",
                "main",
                json!({"search_attributes": attributes}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{attributes}: {body}");
        assert!(
            body["detail"].as_str().unwrap_or_default().contains(names),
            "{body}"
        );
    }
    let (status, _) = api
        .get("/api/v1/namespaces/default/workflows/refused")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (query, token) in [
        ("Missing = 'x'", "Missing"),
        ("Priority = 'x'", "'x'"),
        ("CustomerId > 'c'", ">"),
        ("Note < 'a'", "<"),
        ("Tags != 'a'", "!="),
        ("ORDER BY Tags", "Tags"),
        ("ORDER BY Note", "Note"),
    ] {
        let (status, body) = api
            .get(&format!(
                "/api/v1/namespaces/default/workflows?query={}",
                enc(query)
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["token"], token, "{query}: {body}");
    }
    server.stop().await;
}

async fn a_bad_upsert_fails_the_workflow_task(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    register(api, json!({"Priority": "Int"})).await;
    let handler = spawn_handler(|_req: Value| async move {
        (
            StatusCode::OK,
            json!({"commands": [
                {"command_type": "UpsertWorkflowSearchAttributes",
                 "attributes": {"search_attributes": {"Priority": "high"}}},
            ]}),
        )
    })
    .await;
    api.register("main", &handler.url).await;
    let (status, body) = api.start("bad", "Order", "main", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let failed = common::eventually(StdDuration::from_secs(10), || async {
        api.history("bad")
            .await
            .iter()
            .any(|e| e["event_type"] == "WorkflowTaskFailed")
    })
    .await;
    assert!(failed, "the workflow task never failed");
    let history = api.history("bad").await;
    let failure = common::closing_event(&history, "WorkflowTaskFailed");
    assert_eq!(failure["attributes"]["cause"], "BAD_SEARCH_ATTRIBUTES");
    let message = failure["attributes"]["failure"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("Priority"), "{message}");
    assert!(!event_types(&history).contains(&"UpsertWorkflowSearchAttributes".to_owned()));
    assert_eq!(count(api, "Priority IS NOT NULL").await, 0);
    server.stop().await;
}

/// Each run upserts `Step` = 1..=UPSERTS, one workflow task each (a 1 ms
/// timer between them), then completes.
const UPSERTS: i64 = 5;

fn stepping_workflow(request: &Value) -> Value {
    let history = request["history"].as_array().cloned().unwrap_or_default();
    let done = history
        .iter()
        .filter(|e| e["event_type"] == "UpsertWorkflowSearchAttributes")
        .count() as i64;
    let waiting = history
        .iter()
        .filter(|e| e["event_type"] == "TimerStarted")
        .count() as i64
        > history
            .iter()
            .filter(|e| e["event_type"] == "TimerFired")
            .count() as i64;
    if waiting {
        return json!({"commands": []});
    }
    if done == UPSERTS {
        return json!({"commands": [{"command_type": "CompleteWorkflowExecution", "attributes": {}}]});
    }
    json!({"commands": [
        {"command_type": "UpsertWorkflowSearchAttributes",
         "attributes": {"search_attributes": {"Step": done + 1, "Stage": format!("s{}", done + 1)}}},
        {"command_type": "StartTimer",
         "attributes": {"timer_id": format!("t{done}"), "start_to_fire_timeout": "1ms"}},
    ]})
}

async fn many_runs_upserting_concurrently_end_with_their_last_values(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    register(api, json!({"Step": "Int", "Stage": "Keyword"})).await;
    let handler =
        spawn_handler(|req: Value| async move { (StatusCode::OK, stepping_workflow(&req)) }).await;
    api.register("main", &handler.url).await;
    let starts = (0..50).map(|n| {
        let api = api.clone();
        async move {
            let (status, body) = api
                .start(
                    &format!("many-{n}"),
                    "Steps",
                    "main",
                    json!({"search_attributes": {"Step": 0}}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    });
    futures::future::join_all(starts).await;
    for n in 0..50 {
        assert_eq!(
            api.result(&format!("many-{n}")).await["status"],
            "COMPLETED"
        );
    }
    assert_eq!(count(api, "Step = 5 AND Stage = 's5'").await, 50);
    assert_eq!(count(api, "Step < 5").await, 0);
    for n in [0, 17, 49] {
        let d = api.describe(&format!("many-{n}")).await;
        assert_eq!(d["search_attributes"]["Step"]["value"], 5, "{d}");
        let upserts = api
            .history(&format!("many-{n}"))
            .await
            .iter()
            .filter(|e| e["event_type"] == "UpsertWorkflowSearchAttributes")
            .count();
        assert_eq!(upserts as i64, UPSERTS);
    }
    server.stop().await;
}
