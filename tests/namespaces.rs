//! Namespaces end to end on both databases: create with a description and
//! a retention, describe with counts of open and closed runs, update,
//! list; bad retentions refused with nothing changed. Retention: with time
//! skipping, closed runs past it disappear (describe, history, list) and
//! open runs never do; `DELETE …/workflows/{id}` deletes a closed run at
//! once.
// Tests and their shared fixtures unwrap freely.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use common::{
    eventually, fresh_postgres_database, spawn_server, spawn_server_with, test_options, Db,
};

on_both_databases!(
    namespaces_keep_a_retention_and_count_their_runs,
    closed_runs_past_retention_disappear,
);

const NS: &str = "/api/v1/namespaces";

async fn namespaces_keep_a_retention_and_count_their_runs(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    let (status, created) = api
        .post(
            NS,
            json!({"name": "production", "description": "Production workflows", "retention": "30d"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["retention"], "2592000s");
    let (status, plain) = api.post(NS, json!({"name": "plain"})).await;
    assert_eq!(status, StatusCode::CREATED, "{plain}");
    assert_eq!(plain["retention"], "2592000s", "the default is 30 days");

    for id in ["order-1", "order-2"] {
        let (status, body) = api
            .post(
                &format!("{NS}/production/workflows/{id}"),
                json!({"workflow_type": "Order", "task_queue": "main"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = api
        .post(
            &format!("{NS}/production/workflows/order-2/terminate"),
            json!({"reason": "stuck"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let describe = |name: &'static str| async move {
        let (status, body) = api.get(&format!("{NS}/{name}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    };
    let described = describe("production").await;
    assert_eq!(
        described,
        json!({
            "name": "production",
            "description": "Production workflows",
            "retention": "2592000s",
            "created_at": created["created_at"],
            "open_runs": 1,
            "closed_runs": 1,
        })
    );
    assert_eq!(describe("plain").await["open_runs"], 0);

    let patch = |name: &'static str, body: Value| async move {
        api.call(Method::PATCH, &format!("{NS}/{name}"), Some(body))
            .await
    };
    let (status, updated) = patch("production", json!({"retention": "72h"})).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["retention"], "259200s");
    assert_eq!(updated["description"], "Production workflows", "kept");
    let (status, updated) = patch("production", json!({"description": "Prod"})).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["retention"], "259200s", "kept");

    // Refused, naming the problem, and nothing changes.
    for (body, detail) in [
        (json!({"retention": "-1d"}), "retention"),
        (json!({"retention": "0s"}), "retention must be positive"),
        (json!({"retention": "soon"}), "retention"),
        (json!({"retention": 30}), "retention"),
        (json!({"retain": "1d"}), "retain"),
    ] {
        let (status, problem) = patch("production", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        let shown = problem["detail"].as_str().unwrap();
        assert!(shown.contains(detail), "{body}: {shown}");
    }
    let (status, problem) = api
        .post(NS, json!({"name": "bad", "retention": "0s"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, _) = api.get(&format!("{NS}/bad")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused create stores nothing"
    );
    let after = describe("production").await;
    assert_eq!(
        (&after["description"], &after["retention"]),
        (&json!("Prod"), &json!("259200s"))
    );
    let (status, problem) = patch("nope", json!({"retention": "1d"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");

    let (status, listed) = api.get(NS).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let retentions: Vec<(&str, &str)> = listed["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap(),
                n["retention"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        retentions,
        [
            ("default", "2592000s"),
            ("plain", "2592000s"),
            ("production", "259200s")
        ]
    );
    server.stop().await;
}

async fn closed_runs_past_retention_disappear(db: Db) {
    let url = match db {
        Db::Sqlite => "sqlite::memory:".to_owned(),
        Db::Postgres => fresh_postgres_database().await,
    };
    let server = spawn_server_with(baton::server::Options {
        time_skipping: true,
        default_retention: baton::store::DEFAULT_RETENTION,
        ..test_options(url)
    })
    .await;
    let api = &server.api;
    let (status, body) = api
        .post(NS, json!({"name": "short", "retention": "1d"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let wf = |ns: &str, id: &str| format!("{NS}/{ns}/workflows/{id}");
    for (ns, id) in [
        ("short", "done-1"),
        ("short", "done-2"),
        ("short", "open-1"),
        ("default", "kept-1"),
    ] {
        let (status, body) = api
            .post(
                &wf(ns, id),
                json!({"workflow_type": "Order", "task_queue": "main"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        if id.starts_with("open") {
            continue;
        }
        let (status, body) = api
            .post(
                &format!("{}/terminate", wf(ns, id)),
                json!({"reason": "done"}),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    // DELETE: a closed run at once; an open one is refused.
    let delete = |path: String| async move { api.call(Method::DELETE, &path, None).await };
    let (status, body) = delete(wf("short", "done-2")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for path in [
        wf("short", "done-2"),
        format!("{}/history", wf("short", "done-2")),
    ] {
        let (status, body) = api.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, body) = delete(wf("short", "open-1")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("terminate it"),
        "{body}"
    );
    let (status, body) = delete(wf("short", "done-2")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = api.get(&format!("{NS}/short")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["open_runs"], &body["closed_runs"]),
        (&json!(1), &json!(1))
    );

    // Within the retention nothing goes; past it the closed run does.
    let (status, body) = api
        .post("/api/v1/dev/time/skip", json!({"duration": "2d"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let gone = eventually(std::time::Duration::from_secs(10), || async {
        let (status, _) = api.get(&wf("short", "done-1")).await;
        status == StatusCode::NOT_FOUND
    })
    .await;
    assert!(gone, "done-1 outlived its namespace's retention");
    let (status, body) = api.get(&format!("{}/history", wf("short", "done-1"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, listed) = api.get(&format!("{NS}/short/workflows")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let ids: Vec<&str> = listed["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["workflow_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["open-1"], "open runs are never deleted");
    let (_, body) = api.get(&format!("{NS}/short")).await;
    assert_eq!(
        (&body["open_runs"], &body["closed_runs"]),
        (&json!(1), &json!(0))
    );
    // The default namespace keeps closed runs for 30 days.
    let (status, body) = api.get(&wf("default", "kept-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop().await;
}
