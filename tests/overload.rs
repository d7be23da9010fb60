//! Congestion behind an endpoint's `max_concurrency`, with no fault at all
//! (DESIGN.md invariant 7; protocol.md §1.3): 1,000 workflows started at
//! once, each running three 1-second activities (start-to-close 5 s),
//! pushed to an endpoint that takes 100 at a time. Pushes queue on the node
//! in arrival order; an attempt's start-to-close clock must not run while
//! its push waits, so no attempt times out and each activity executes
//! once. Throughput stays at the endpoint's capacity: the drain should
//! approach 1,000 × 3 s / 100 = 30 s, and is printed.
//!
//! Also, on both databases: attempts that wait behind the limit for longer
//! than their whole start-to-close timeout are neither timed out nor
//! retried (the node holds their timers off while they wait).
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{counting_handler, sequential_workflow, spawn_handler, spawn_server, Db, SECRET};
use futures::StreamExt;
use serde_json::{json, Value};

const WORKFLOWS: usize = 1_000;
const MAX_CONCURRENCY: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_max_concurrency_drains_at_capacity_without_retries() {
    let server = spawn_server(Db::Postgres).await;
    let executions: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // When the handler last answered: the last workflow's closing task.
    let last_answer = Arc::new(Mutex::new(Instant::now()));
    let handler = {
        let (executions, running, peak) = (executions.clone(), running.clone(), peak.clone());
        let last_answer = last_answer.clone();
        spawn_handler(move |req: Value| {
            let (executions, running, peak) = (executions.clone(), running.clone(), peak.clone());
            let last_answer = last_answer.clone();
            async move {
                if req["type"] == "workflow_task" {
                    *last_answer.lock().unwrap() = Instant::now();
                    let options = json!({"start_to_close_timeout": "5s"});
                    let plan = [
                        ("a", options.clone()),
                        ("b", options.clone()),
                        ("c", options),
                    ];
                    return (StatusCode::OK, sequential_workflow(&req, &plan));
                }
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let key = req["idempotency_key"].as_str().unwrap().to_owned();
                *executions.lock().unwrap().entry(key).or_default() += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                (StatusCode::OK, json!({"result": req["activity_id"]}))
            }
        })
        .await
    };
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/endpoints",
            json!({"task_queue": "busy", "url": handler.url, "secrets": [SECRET],
                   "max_concurrency": MAX_CONCURRENCY}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let begun = Instant::now();
    let ids: Vec<String> = (0..WORKFLOWS).map(|i| format!("busy-{i}")).collect();
    futures::stream::iter(ids.iter().cloned())
        .for_each_concurrent(50, |id| {
            let api = server.api.clone();
            async move {
                let (status, body) = api.start(&id, "Three", "busy", json!({})).await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
            }
        })
        .await;
    let started = begun.elapsed();
    let mut scheduled = 0;
    let mut max_attempt = 0;
    // The drain ends with the handler's last answer, the closing workflow
    // task of the last run (its commit follows within milliseconds); the
    // checks below take longer than that and are not counted.
    for id in &ids {
        let result = server.api.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
        let history = server.api.history(id).await;
        for e in &history {
            match e["event_type"].as_str().unwrap() {
                "ActivityTaskScheduled" => scheduled += 1,
                "ActivityTaskStarted" => {
                    max_attempt = max_attempt.max(e["attributes"]["attempt"].as_i64().unwrap());
                }
                _ => {}
            }
        }
    }
    let drained = last_answer.lock().unwrap().duration_since(begun);
    let executed: u32 = executions.lock().unwrap().values().sum();
    let ratio = f64::from(executed) / scheduled as f64;
    eprintln!(
        "overload: {WORKFLOWS} workflows × 3 × 1 s activities behind max_concurrency \
         {MAX_CONCURRENCY}: started in {started:.1?}, drained in {drained:.1?} \
         (ideal {} s); {executed} executions for {scheduled} scheduled activities \
         (ratio {ratio:.3}), highest attempt {max_attempt}, peak concurrency {}",
        WORKFLOWS * 3 / MAX_CONCURRENCY,
        peak.load(Ordering::SeqCst)
    );
    assert_eq!(scheduled, WORKFLOWS * 3);
    assert!(ratio <= 1.05, "executions per scheduled activity: {ratio}");
    assert!(
        peak.load(Ordering::SeqCst) <= MAX_CONCURRENCY,
        "the endpoint was overrun"
    );
    server.stop().await;
}

on_both_databases!(attempts_queued_longer_than_their_timeout_are_not_timed_out);

/// Six workflows of three 0.5 s activities (start-to-close 1 s) behind an
/// endpoint that takes one push at a time: the last first activity waits
/// 2.5 s for its turn, far beyond its 1 s. Every activity runs once, on
/// its first attempt.
async fn attempts_queued_longer_than_their_timeout_are_not_timed_out(db: Db) {
    const RUNS: usize = 6;
    let server = spawn_server(db).await;
    let (handler, executions) = counting_handler(Duration::from_millis(500), "1s").await;
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/endpoints",
            json!({"task_queue": "narrow", "url": handler.url, "secrets": [SECRET],
                   "max_concurrency": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ids: Vec<String> = (0..RUNS).map(|i| format!("narrow-{i}")).collect();
    futures::future::join_all(ids.iter().map(|id| {
        let api = server.api.clone();
        async move {
            let (status, body) = api.start(id, "Three", "narrow", json!({})).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }))
    .await;
    for id in &ids {
        let result = server.api.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
        let history = server.api.history(id).await;
        for e in history
            .iter()
            .filter(|e| e["event_type"] == "ActivityTaskStarted")
        {
            assert_eq!(e["attributes"]["attempt"], 1, "{id}: {e}");
        }
    }
    let executions = executions.lock().unwrap().clone();
    assert_eq!(executions.len(), RUNS * 3);
    assert!(executions.values().all(|n| *n == 1), "{executions:?}");
    server.stop().await;
}
