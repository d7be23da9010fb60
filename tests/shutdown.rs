//! Graceful shutdown of a `baton serve` node under load: SIGTERM to one of
//! two nodes on one PostgreSQL while 500 workflows are in flight. The node
//! turns unready first (`/readyz` 503 while it drains, other calls refused
//! with a 503 problem), finishes the pushes it had sent, hands back those that
//! were waiting for their endpoint (recorded as undelivered, so the other
//! node pushes them again after the short delivery back-off, without
//! waiting for a lease or a timeout) and exits 0 well within its drain
//! timeout. Nothing is lost and no activity runs twice; how soon the
//! survivor took over the stopped node's work is printed.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::node::{free_port, Node};
use common::{sequential_workflow, spawn_handler, SECRET};
use futures::StreamExt as _;
use serde_json::{json, Value};

const RUNS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_hands_back_and_loses_nothing() {
    let url = common::fresh_postgres_database().await;
    // When each workflow was pushed anything, and how often each activity
    // ran.
    let pushes: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let executions: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    // Activities wait until every run has started, so how far the work
    // got at the SIGTERM does not depend on how fast the starts were.
    let (open, gate) = tokio::sync::watch::channel(false);
    let handler = {
        let (pushes, executions) = (pushes.clone(), executions.clone());
        spawn_handler(move |req: Value| {
            let (pushes, executions) = (pushes.clone(), executions.clone());
            let mut gate = gate.clone();
            async move {
                let id = req["workflow_id"].as_str().unwrap().to_owned();
                pushes.lock().unwrap().push((id, Instant::now()));
                if req["type"] == "workflow_task" {
                    let plan = [("a", json!({})), ("b", json!({})), ("c", json!({}))];
                    return (StatusCode::OK, sequential_workflow(&req, &plan));
                }
                let _ = gate.wait_for(|open| *open).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let key = req["idempotency_key"].as_str().unwrap().to_owned();
                *executions.lock().unwrap().entry(key).or_default() += 1;
                (StatusCode::OK, json!({"result": req["activity_id"]}))
            }
        })
        .await
    };
    let (a, b) = (
        Node::start(&url, free_port()).await,
        Node::start(&url, free_port()).await,
    );
    // A small limit, so the stopped node has pushes waiting for it.
    let (status, body) = a
        .api
        .post(
            "/api/v1/namespaces/default/endpoints",
            json!({"task_queue": "q", "url": handler.url, "secrets": [SECRET], "max_concurrency": 20}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ids: Vec<String> = (0..RUNS).map(|i| format!("drain-{i}")).collect();
    let starts = futures::stream::iter(ids.iter().enumerate().map(|(i, id)| {
        let api = if i % 2 == 0 { &a.api } else { &b.api };
        api.start(id, "Three", "q", json!({}))
    }));
    let started: Vec<(StatusCode, Value)> = starts.buffer_unordered(20).collect().await;
    for (status, body) in started {
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    open.send_replace(true);
    let seen = executions.clone();
    assert!(
        common::eventually(Duration::from_secs(60), || async {
            seen.lock().unwrap().len() >= RUNS / 2
        })
        .await
    );
    let survivor = b.api.clone();
    // `/readyz` of the stopped node, polled from just before the SIGTERM
    // until its listener is gone: it turns 503 first and stays so while
    // the node drains; API calls meanwhile get a 503 problem.
    let stopping = a.api.clone();
    let readyz = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut seen: Vec<(Instant, u16)> = Vec::new();
        let mut refused_start = None;
        loop {
            let r = http
                .get(format!("{}/readyz", stopping.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            let Ok(r) = r else { break };
            let status = r.status().as_u16();
            seen.push((Instant::now(), status));
            if status == 503 && refused_start.is_none() {
                refused_start = Some(stopping.start("late", "Three", "q", json!({})).await);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (seen, refused_start, Instant::now())
    });
    let signalled = Instant::now();
    let (status, took) = a.terminate().await;
    let exited = Instant::now();
    let (seen, refused_start, gone) = readyz.await.unwrap();
    let first_unready = seen.iter().position(|(_, s)| *s == 503);
    let first_unready = first_unready.expect("/readyz never answered 503 while the node stopped");
    assert!(
        seen[first_unready..].iter().all(|(_, s)| *s == 503),
        "/readyz turned ready again while draining: {seen:?}"
    );
    let (unready_at, _) = seen[first_unready];
    let (last_503, _) = seen[seen.len() - 1];
    eprintln!(
        "shutdown: /readyz 503 {:?} after the SIGTERM, answered 503 until {:?} before the exit \
         (listener gone {:?} after it)",
        unready_at.saturating_duration_since(signalled),
        exited.saturating_duration_since(last_503),
        gone.saturating_duration_since(exited)
    );
    let (late_status, late_body) = refused_start.unwrap();
    assert_eq!(late_status, StatusCode::SERVICE_UNAVAILABLE, "{late_body}");
    assert!(
        late_body["detail"]
            .as_str()
            .unwrap()
            .contains("shutting down"),
        "{late_body}"
    );
    let (stored, _) = b.api.get("/api/v1/namespaces/default/workflows/late").await;
    assert_eq!(stored, StatusCode::NOT_FOUND, "a refused start was stored");
    let done_at_exit = executions.lock().unwrap().len();
    eprintln!("shutdown: exited {status} after {took:?}, {done_at_exit} activities done");
    assert!(status.success(), "the stopped node exited with {status}");
    assert!(
        took < Duration::from_secs(20),
        "exited after {took:?}, past its drain timeout"
    );
    assert!(
        done_at_exit < RUNS * 3,
        "the SIGTERM came after everything finished"
    );
    for id in &ids {
        let result = survivor.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
    }
    let executions = executions.lock().unwrap().clone();
    assert_eq!(executions.len(), RUNS * 3);
    let twice: Vec<_> = executions.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "activities that ran more than once: {twice:?}"
    );
    // Work the stopped node still had when it exited was pushed again by
    // the survivor: the first push after the exit of a workflow started on
    // the stopped node (its pushes stay there while it runs).
    let pushes = pushes.lock().unwrap();
    let stopped_nodes: HashSet<&str> = ids.iter().step_by(2).map(String::as_str).collect();
    let mut resumed: HashMap<&str, Duration> = HashMap::new();
    for (id, at) in pushes.iter() {
        if *at > exited && stopped_nodes.contains(id.as_str()) {
            let after = at.duration_since(exited);
            let first = resumed.entry(id.as_str()).or_insert(after);
            *first = (*first).min(after);
        }
    }
    let first = resumed.values().min();
    eprintln!(
        "shutdown: SIGTERM to exit {took:?} (exit 0), {done_at_exit} of {} activities done then; \
         {} of the stopped node's workflows pushed after the exit, the first {first:?} after it",
        RUNS * 3,
        resumed.len(),
    );
    // The survivor is at its endpoint's limit with its own work, so the
    // handed-back pushes queue behind it; without the hand-back they would
    // come back only by the 10 s start-to-close timeout.
    if let Some(first) = first {
        assert!(
            *first < Duration::from_secs(5),
            "the survivor took {first:?} to take over the stopped node's work"
        );
    }
}
