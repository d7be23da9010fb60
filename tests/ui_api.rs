//! What the REST API gained for the web UI, on SQLite and PostgreSQL: the
//! endpoint list's `last_push_errors` (what the node saw when pushes to an
//! endpoint version failed, here a handler that refuses the signature with
//! 401: newest first, at most five, kept apart per version), describe's
//! `buffered_events` (a signal waiting behind the workflow task in flight),
//! and `pinned_version` in run listings. And the web UI's calls with a
//! namespace-scoped reader key: its login (`GET /api/v1/namespaces`) lets
//! the key in and offers its namespace only, and every page's reads work.

#[macro_use]
mod common;

use std::time::Duration;

use common::{eventually, spawn_handler, spawn_server, Db, SECRET};
use reqwest::StatusCode;
use serde_json::{json, Value};

const WRONG_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async fn push_errors_of_a_misconfigured_endpoint(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    let handler = spawn_handler(|_| async { (StatusCode::OK, json!({"commands": []})) }).await;
    // v1 signs with a secret the handler does not know: every push is a 401.
    let (status, body) = api
        .post(
            "/api/v1/namespaces/default/endpoints",
            json!({"task_queue": "q", "version": "v1", "url": handler.url, "secrets": [WRONG_SECRET]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for i in 0..3 {
        let (status, body) = api.start(&format!("wf-{i}"), "W", "q", json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let errors = |list: &Value, version: &str| -> Vec<Value> {
        list["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["version"] == version)
            .and_then(|e| e["last_push_errors"].as_array().cloned())
            .unwrap_or_default()
    };
    let mut list = Value::Null;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while errors(&list, "v1").len() < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        list = api.get("/api/v1/namespaces/default/endpoints").await.1;
    }
    assert_eq!(errors(&list, "v1").len(), 5, "five errors kept: {list}");
    let v1 = errors(&list, "v1");
    for e in &v1 {
        assert_eq!(e["status_code"], 401, "{e}");
        let message = e["message"].as_str().unwrap_or("");
        assert!(
            message.starts_with("answered 401 Unauthorized"),
            "{message}"
        );
        assert!(message.contains("bad signature"), "{message}");
    }
    let times: Vec<&str> = v1.iter().filter_map(|e| e["time"].as_str()).collect();
    assert_eq!(times.len(), 5);
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    assert!(*handler.rejected.lock().expect("lock") >= 5);

    // A correctly configured version of the same queue has none of them.
    let (status, _) = api
        .post(
            "/api/v1/namespaces/default/endpoints",
            json!({"task_queue": "q", "version": "v2", "url": handler.url, "secrets": [SECRET]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = api.get("/api/v1/namespaces/default/endpoints").await;
    assert_eq!(errors(&list, "v2"), Vec::<Value>::new(), "{list}");
    assert_eq!(errors(&list, "v1").len(), 5);
    server.stop().await;
}

async fn buffered_signals_and_pinned_versions(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    let (release, released) = tokio::sync::watch::channel(false);
    // The first workflow task is held until released; a signal sent
    // meanwhile waits behind it.
    let handler = spawn_handler(move |request| {
        let mut released = released.clone();
        async move {
            let signaled = request["history"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["event_type"] == "WorkflowExecutionSignaled");
            if !signaled {
                let _ = released.wait_for(|r| *r).await;
                return (StatusCode::OK, json!({"commands": []}));
            }
            (
                StatusCode::OK,
                json!({"commands": [{"command_type": "CompleteWorkflowExecution", "attributes": {"result": "done"}}]}),
            )
        }
    })
    .await;
    api.register("q", &handler.url).await;
    let (status, body) = api.start("held", "W", "q", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            !handler.received.lock().expect("lock").is_empty()
        })
        .await,
        "the first task was pushed"
    );
    let (status, body) = api
        .post(
            "/api/v1/namespaces/default/workflows/held/signal/go",
            json!({"input": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let d = api.describe("held").await;
    let buffered = d["buffered_events"].as_array().cloned().unwrap_or_default();
    assert_eq!(buffered.len(), 1, "{d}");
    assert_eq!(buffered[0]["event_type"], "WorkflowExecutionSignaled");
    assert_eq!(buffered[0]["name"], "go");
    assert!(buffered[0]["time"].is_string());
    assert!(d["pending_workflow_task"].is_object(), "{d}");

    let (_, list) = api.get("/api/v1/namespaces/default/workflows").await;
    assert_eq!(list["executions"][0]["pinned_version"], "default", "{list}");

    release.send_replace(true);
    let result = api.result("held").await;
    assert_eq!(result["result"], "done", "{result}");
    assert_eq!(api.describe("held").await["buffered_events"], json!([]));
    server.stop().await;
}

/// The calls `ui/app` makes, in order, with a reader key of `default` on a
/// server that has a bootstrap key and a second namespace.
async fn ui_login_and_pages_with_a_scoped_reader_key(db: Db) {
    let mut options = common::test_options(common::database_url(db).await);
    options.api_key = Some("ui-bootstrap-key-0123456789".to_owned());
    let server = common::spawn_server_with(options).await;
    let admin = &server.api;
    let (status, body) = admin
        .post("/api/v1/namespaces", json!({"name": "other"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, created) = admin
        .post(
            "/api/v1/apikeys",
            json!({"role": "reader", "namespace": "default"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().expect("key").to_owned();
    let ui = common::Api::new(admin.base.clone(), Some(key));
    // The login: any valid key may list namespaces, and sees its own.
    let (status, list) = ui.get("/api/v1/namespaces").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let names: Vec<&str> = list["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["default"]);
    for path in [
        "/api/v1/namespaces/default/workflows?page_size=50",
        "/api/v1/namespaces/default/workflow-count",
        "/api/v1/namespaces/default/endpoints",
        "/api/v1/namespaces/default/schedules",
    ] {
        let (status, body) = ui.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    // The switcher offers no other namespace, and typing one in the URL
    // finds nothing.
    let (status, _) = ui.get("/api/v1/namespaces/other/workflows").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

on_both_databases!(
    push_errors_of_a_misconfigured_endpoint,
    buffered_signals_and_pinned_versions,
    ui_login_and_pages_with_a_scoped_reader_key
);
