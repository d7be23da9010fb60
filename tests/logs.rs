//! JSON logs: a `baton dev --log-format json` (SQLite) and a `baton serve`
//! with `BATON_LOG_FORMAT=json` (PostgreSQL) serve traced calls and shut
//! down; every line they wrote on stderr is a JSON object, and the lines
//! logged while serving a call that came with a `traceparent` carry its
//! trace id.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};

use common::node::{free_port, Node};
use serde_json::{json, Value};

/// Runs `command` (a node on `port`), makes a few traced calls, stops it
/// with SIGTERM and returns its stderr lines, parsed.
async fn json_lines(mut command: Command, port: u16) -> (String, Vec<Value>) {
    command
        .env("RUST_LOG", "info,tower_http=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut node = Node::spawn(command, port).await;
    let mut stderr = node.child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let http = reqwest::Client::new();
    for i in 0..10 {
        let resp = http
            .post(format!(
                "{}/api/v1/namespaces/default/workflows/logged-{i}",
                node.api.base
            ))
            .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
            .json(&json!({"workflow_type": "W", "task_queue": "nobody-serves", "input": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
    }
    let (status, _) = node.terminate().await;
    assert!(status.success(), "{status}");
    let text = reader.join().unwrap();
    let lines = text
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect();
    (trace_id, lines)
}

fn check(trace_id: &str, lines: &[Value]) {
    assert!(!lines.is_empty());
    for line in lines {
        assert!(line.is_object(), "{line}");
        for key in ["timestamp", "level", "target"] {
            assert!(line.get(key).is_some(), "no {key}: {line}");
        }
    }
    assert!(
        lines.iter().any(|l| l["message"] == "baton listening"),
        "{lines:#?}"
    );
    // Every line logged while serving the traced calls (tower_http's, at
    // debug here) carries the caller's trace.
    let traced: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["span"]["uri"]
                .as_str()
                .is_some_and(|u| u.contains("/workflows/logged-"))
        })
        .collect();
    assert_eq!(traced.len(), 20, "two lines per traced call: {lines:#?}");
    for line in &traced {
        assert_eq!(line["trace_id"], trace_id, "{line}");
    }
    for line in traced {
        let span_id = line["span_id"].as_str().unwrap();
        assert_eq!(span_id.len(), 16, "{line}");
        assert_ne!(
            span_id, "00f067aa0ba902b7",
            "the server's span, not the caller's"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_writes_json_lines_with_trace_ids() {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
    command
        .args([
            "dev",
            "--db",
            ":memory:",
            "--log-format",
            "json",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .env_remove("BATON_LOG_FORMAT");
    let (trace_id, lines) = json_lines(command, port).await;
    check(&trace_id, &lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_the_format_from_the_environment() {
    let url = common::fresh_postgres_database().await;
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
    command
        .args(["serve", "--database-url", &url, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env("BATON_LOG_FORMAT", "json");
    let (trace_id, lines) = json_lines(command, port).await;
    check(&trace_id, &lines);
}

#[test]
fn an_unknown_format_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["dev", "--db", ":memory:", "--log-format", "xml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--log-format"), "{stderr}");
    assert!(stderr.contains("xml"), "{stderr}");
}
