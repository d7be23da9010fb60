//! `baton serve` as real child processes on one PostgreSQL database:
//! SIGKILL of a node in the middle of 200 workflows, and two nodes sharing
//! 1,000 workflows (DESIGN.md invariants 1, 4 and 5).
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use common::{sequential_workflow, spawn_handler, Api};
use serde_json::{json, Value};

/// A `baton serve` child process.
struct Node {
    child: Child,
    api: Api,
}

impl Node {
    async fn start(database_url: &str, port: u16) -> Node {
        let child = Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["serve", "--database-url", database_url, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--poll-interval-ms", "200"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn baton serve");
        let api = Api::new(format!("http://127.0.0.1:{port}"), None);
        let ready = common::eventually(Duration::from_secs(30), || {
            let api = api.clone();
            async move {
                reqwest::get(format!("{}/readyz", api.base))
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await;
        assert!(ready, "baton serve did not become ready on port {port}");
        Node { child, api }
    }

    fn kill(mut self) {
        // SIGKILL: no shutdown code runs.
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A handler for 3-activity workflows whose activities take `work` and
/// count how often each (run, activity) was executed.
async fn counting_handler(
    work: Duration,
) -> (common::TestHandler, Arc<Mutex<HashMap<String, u32>>>) {
    let executions: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let seen = executions.clone();
    let options =
        json!({"start_to_close_timeout": "3s", "retry_policy": {"initial_interval": "200ms"}});
    let handler = spawn_handler(move |req: Value| {
        let (seen, options) = (seen.clone(), options.clone());
        async move {
            if req["type"] == "workflow_task" {
                let plan = [
                    ("a", options.clone()),
                    ("b", options.clone()),
                    ("c", options),
                ];
                return (StatusCode::OK, sequential_workflow(&req, &plan));
            }
            tokio::time::sleep(work).await;
            let key = req["idempotency_key"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            *seen.lock().unwrap().entry(key).or_default() += 1;
            (StatusCode::OK, json!({"result": req["activity_id"]}))
        }
    })
    .await;
    (handler, executions)
}

async fn start_all(apis: &[&Api], ids: &[String]) {
    for (i, id) in ids.iter().enumerate() {
        let api = apis[i % apis.len()];
        let (status, body) = api
            .start(id, "Three", "q", json!({"workflow_task_timeout": "2s"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// Every workflow completed, with each activity's result recorded once.
async fn assert_all_completed_once(api: &Api, ids: &[String]) {
    for id in ids {
        let result = api.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
        assert_eq!(result["result"], json!(["1", "2", "3"]), "{id}");
        let history = api.history(id).await;
        let completed: Vec<&Value> = history
            .iter()
            .filter(|e| e["event_type"] == "ActivityTaskCompleted")
            .collect();
        assert_eq!(completed.len(), 3, "{id}: {history:#?}");
        for (i, e) in history.iter().enumerate() {
            assert_eq!(e["event_id"], json!(i + 1), "{id}: dense event ids");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_loses_nothing_and_records_each_result_once() {
    let url = common::fresh_postgres_database().await;
    let (handler, executions) = counting_handler(Duration::from_millis(30)).await;
    let port = free_port();
    let node = Node::start(&url, port).await;
    node.api.register("q", &handler.url).await;
    let ids: Vec<String> = (0..200).map(|i| format!("crash-{i}")).collect();
    start_all(&[&node.api], &ids).await;
    // Let some work happen, then kill -9 while most runs are mid-flight.
    let seen = executions.clone();
    assert!(
        common::eventually(Duration::from_secs(30), || async {
            seen.lock().unwrap().len() >= 150
        })
        .await
    );
    let api = node.api.clone();
    node.kill();
    let in_flight = executions.lock().unwrap().len();
    assert!(in_flight < 600, "the kill came after everything finished");
    let _restarted = Node::start(&url, port).await;
    assert_all_completed_once(&api, &ids).await;
    // Every activity ran at least once (at-least-once execution).
    assert_eq!(executions.lock().unwrap().len(), 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_database_and_complete_each_task_once() {
    let url = common::fresh_postgres_database().await;
    let (handler, executions) = counting_handler(Duration::ZERO).await;
    let a = Node::start(&url, free_port()).await;
    let b = Node::start(&url, free_port()).await;
    a.api.register("q", &handler.url).await;
    let ids: Vec<String> = (0..1_000).map(|i| format!("pair-{i}")).collect();
    start_all(&[&a.api, &b.api], &ids).await;
    assert_all_completed_once(&b.api, &ids).await;
    let executions = executions.lock().unwrap();
    assert_eq!(executions.len(), 3_000);
    // With both nodes healthy nothing is redelivered.
    let repeated = executions.values().filter(|n| **n > 1).count();
    assert_eq!(
        repeated, 0,
        "activities executed more than once without any failure"
    );
}
