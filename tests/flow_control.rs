//! Per-endpoint flow control (src/flow.rs, src/dispatch/flow.rs) on real
//! databases with a loopback handler: concurrency keys hold across two
//! nodes on one PostgreSQL database (and on SQLite), checked from the
//! histories' timestamps and the handler's own clock; a rate limit holds
//! within 10 %; bad settings are refused naming the member; a SIGKILLed
//! node's slots free up after their lease.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use baton::time::Timestamp;
use common::node::{free_port, Node};
use common::{sequential_workflow, spawn_handler, Api, Db, TestHandler, SECRET};
use serde_json::{json, Value};

const KEYS: usize = 10;

/// Handler-side intervals of the activities that ran, by key value.
type Ran = Arc<Mutex<BTreeMap<String, Vec<(Instant, Instant)>>>>;

/// One-activity workflows whose activity sleeps `work` and notes when it
/// ran, by the run's `customer_id` (told by its workflow id).
async fn keyed_handler(work: Duration) -> (TestHandler, Ran) {
    let ran: Ran = Arc::default();
    let noted = ran.clone();
    let handler = spawn_handler(move |req: Value| {
        let noted = noted.clone();
        async move {
            if req["type"] == "workflow_task" {
                let plan = [("a", json!({"start_to_close_timeout": "30s"}))];
                return (StatusCode::OK, sequential_workflow(&req, &plan));
            }
            let begun = Instant::now();
            tokio::time::sleep(work).await;
            // `keyed-{i}` runs with customer_id i % KEYS.
            let id = req["workflow_id"].as_str().unwrap_or_default();
            let i: usize = id.trim_start_matches("keyed-").parse().unwrap();
            let key = (i % KEYS).to_string();
            let mut ran = noted.lock().unwrap();
            ran.entry(key).or_default().push((begun, Instant::now()));
            (StatusCode::OK, json!({"result": "ok"}))
        }
    })
    .await;
    (handler, ran)
}

async fn register(api: &Api, url: &str, settings: Value) -> (StatusCode, Value) {
    let mut body = json!({"task_queue": "q", "url": url, "secrets": [SECRET]});
    if let (Some(b), Some(s)) = (body.as_object_mut(), settings.as_object()) {
        for (k, v) in s {
            b.insert(k.clone(), v.clone());
        }
    }
    api.post("/api/v1/namespaces/default/endpoints", body).await
}

fn at(e: &Value) -> i64 {
    e["event_time"]
        .as_str()
        .unwrap()
        .parse::<Timestamp>()
        .unwrap()
        .millis()
}

/// Each workflow task's [Started, Completed] from a history.
fn workflow_task_intervals(history: &[Value]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut started = None;
    for e in history {
        match e["event_type"].as_str().unwrap() {
            "WorkflowTaskStarted" => started = Some(at(e)),
            "WorkflowTaskCompleted" | "WorkflowTaskFailed" | "WorkflowTaskTimedOut" => {
                out.push((started.take().unwrap(), at(e)));
            }
            _ => {}
        }
    }
    out
}

/// Panics if two of the intervals overlap (touching ends are fine).
fn assert_disjoint<T: Ord + Copy + std::fmt::Debug>(key: &str, mut intervals: Vec<(T, T)>) {
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "key {key}: {:?} overlaps {:?}",
            pair[0],
            pair[1]
        );
    }
}

/// 200 workflows over [`KEYS`] keys with limit 1, started round-robin on
/// `apis`: no two tasks of one key overlap, all complete, and a waiting
/// run's describe says why it waits.
async fn keys_serialize(apis: &[Api]) {
    let (handler, ran) = keyed_handler(Duration::from_millis(40)).await;
    let settings = json!({"concurrency_keys": [
        {"key": "customer_id={input/customer_id}", "limit": 1}
    ]});
    let (status, body) = register(&apis[0], &handler.url, settings).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["concurrency_keys"],
        json!([{"key": "customer_id={input/customer_id}", "limit": 1}])
    );
    let ids: Vec<String> = (0..200).map(|i| format!("keyed-{i}")).collect();
    // While they run, some run late in its key's queue is seen waiting,
    // and says so where it waits.
    let watched: Vec<String> = ids.iter().rev().take(40).cloned().collect();
    let watchers = apis.to_vec();
    let watcher = tokio::spawn(async move {
        let begun = Instant::now();
        while begun.elapsed() < Duration::from_secs(30) {
            for id in &watched {
                for api in &watchers {
                    let (_, described) = api
                        .get(&format!("/api/v1/namespaces/default/workflows/{id}"))
                        .await;
                    if let Some(r) = described["waiting_reason"].as_str() {
                        return Some(r.to_owned());
                    }
                }
            }
        }
        None
    });
    let starts = ids.iter().enumerate().map(|(i, id)| {
        let api = apis[i % apis.len()].clone();
        async move {
            let extra = json!({"input": {"customer_id": i % KEYS}, "workflow_task_timeout": "60s"});
            let (status, body) = api.start(id, "One", "q", extra).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    });
    futures::future::join_all(starts).await;
    let mut by_key: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let result = apis[0].result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
        let history = apis[0].history(id).await;
        let intervals = workflow_task_intervals(&history);
        assert_eq!(intervals.len(), 2, "{id}: {history:#?}");
        by_key
            .entry((i % KEYS).to_string())
            .or_default()
            .extend(intervals);
    }
    for (key, intervals) in by_key {
        assert_disjoint(&key, intervals);
    }
    let reason = watcher.await.unwrap();
    let reason = reason.expect("some run was seen waiting for its key");
    assert!(
        reason.starts_with("waiting for concurrency key customer_id=")
            && reason.ends_with("(limit 1)"),
        "{reason}"
    );
    let ran = ran.lock().unwrap().clone();
    assert_eq!(ran.len(), KEYS);
    for (key, intervals) in ran {
        assert_eq!(intervals.len(), 200 / KEYS, "key {key}");
        assert_disjoint(&key, intervals);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_keys_hold_across_two_nodes_on_postgres() {
    let url = common::fresh_postgres_database().await;
    let a = common::spawn_server_with(common::test_options(url.clone())).await;
    let b = common::spawn_server_with(common::test_options(url)).await;
    keys_serialize(&[a.api.clone(), b.api.clone()]).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_keys_hold_on_sqlite() {
    let server = common::spawn_server(Db::Sqlite).await;
    keys_serialize(std::slice::from_ref(&server.api)).await;
    server.stop().await;
}

/// Starts `n` one-task workflows on `api` behind a 20/s limit and returns
/// the pushes per second the handler saw over `window` seconds while the
/// backlog lasted.
async fn measured_rate(api: &Api, n: usize, window: u64) -> f64 {
    let arrived: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let noted = arrived.clone();
    let handler = spawn_handler(move |_req: Value| {
        let noted = noted.clone();
        async move {
            noted.lock().unwrap().push(Instant::now());
            let done = json!({"commands": [{"command_type": "CompleteWorkflowExecution", "attributes": {"result": null}}]});
            (StatusCode::OK, done)
        }
    })
    .await;
    let settings = json!({"rate_limit": {"per_second": 20}});
    let (status, body) = register(api, &handler.url, settings).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["rate_limit"], json!({"per_second": 20.0, "burst": 20}));
    let starts = (0..n).map(|i| {
        let api = api.clone();
        async move {
            let extra = json!({"workflow_task_timeout": "600s"});
            let id = format!("rated-{i}");
            let (status, body) = api.start(&id, "Quick", "q", extra).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    });
    futures::future::join_all(starts).await;
    // The starts compete with the pushes, and the bucket refills while
    // they run: measure from 2 s after they are done, once the burst they
    // left is spent.
    let from = Instant::now() + Duration::from_secs(2);
    let to = from + Duration::from_secs(window);
    tokio::time::sleep_until((to + Duration::from_millis(100)).into()).await;
    let arrived = arrived.lock().unwrap();
    assert!(
        arrived.len() < n,
        "the backlog ran dry before the window closed"
    );
    let inside = arrived.iter().filter(|t| **t >= from && **t < to).count();
    inside as f64 / window as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_within_ten_percent_over_ten_seconds() {
    let server = common::spawn_server(Db::Postgres).await;
    let rate = measured_rate(&server.api, 400, 10).await;
    println!("rate limit 20/s: {rate:.2}/s over 10 s");
    assert!((18.0..=22.0).contains(&rate), "{rate}/s");
    server.stop().await;
}

/// The figure: `cargo test --test flow_control a_rate_limit_holds_over_a_minute -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs for over a minute"]
async fn a_rate_limit_holds_over_a_minute() {
    let server = common::spawn_server(Db::Postgres).await;
    let rate = measured_rate(&server.api, 2_000, 60).await;
    println!("rate limit 20/s: {rate:.2}/s over 60 s");
    assert!((18.0..=22.0).contains(&rate), "{rate}/s");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flow_settings_are_refused_naming_the_member() {
    let server = common::spawn_server(Db::Sqlite).await;
    let cases = [
        (
            json!({"rate_limit": {"per_second": 0}}),
            "rate_limit.per_second",
        ),
        (
            json!({"rate_limit": {"per_second": -2.5}}),
            "rate_limit.per_second",
        ),
        (
            json!({"rate_limit": {"per_second": 5, "burst": 0}}),
            "rate_limit.burst",
        ),
        (json!({"rate_limit": {"burst": 3}}), "per_second"),
        (
            json!({"concurrency_keys": [{"key": "{input/a}", "limit": 0}]}),
            "concurrency_keys[0].limit",
        ),
        (
            json!({"concurrency_keys": [{"key": "{input/a}", "limit": 1}, {"key": "fixed", "limit": 1}]}),
            "concurrency_keys[1].key",
        ),
        (
            json!({"concurrency_keys": [{"key": "{body/a}", "limit": 1}]}),
            "concurrency_keys[0].key",
        ),
        (
            json!({"concurrency_keys": [{"key": "{input/a}", "limit": 1, "extra": 1}]}),
            "extra",
        ),
    ];
    for (settings, member) in cases {
        let (status, body) = register(&server.api, "http://127.0.0.1:9/", settings.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{settings}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(member), "{settings}: {body}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_slots_free_up_after_their_lease() {
    let url = common::fresh_postgres_database().await;
    // The first activity push hangs (the node dies under it); later ones
    // answer at once.
    let pushes: Arc<Mutex<usize>> = Arc::default();
    let counted = pushes.clone();
    let handler = spawn_handler(move |req: Value| {
        let counted = counted.clone();
        async move {
            if req["type"] == "workflow_task" {
                let plan = [("a", json!({"start_to_close_timeout": "4s"}))];
                return (StatusCode::OK, sequential_workflow(&req, &plan));
            }
            let first = {
                let mut n = counted.lock().unwrap();
                *n += 1;
                *n == 1
            };
            if first {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            (StatusCode::OK, json!({"result": "ok"}))
        }
    })
    .await;
    let doomed = Node::start(&url, free_port()).await;
    let settings = json!({"concurrency_keys": [{"key": "{input/customer_id}", "limit": 1}]});
    let (status, body) = register(&doomed.api, &handler.url, settings).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ids: Vec<String> = (0..3).map(|i| format!("held-{i}")).collect();
    for id in &ids {
        let extra = json!({"input": {"customer_id": 7}, "workflow_task_timeout": "60s"});
        let (status, body) = doomed.api.start(id, "One", "q", extra).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let hung = common::eventually(Duration::from_secs(20), || async {
        *pushes.lock().unwrap() >= 1
    })
    .await;
    assert!(hung, "the first activity was never pushed");
    doomed.kill();
    let killed = Instant::now();
    let survivor = Node::start(&url, free_port()).await;
    for id in &ids {
        let result = survivor.api.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
    }
    // The survivor had to wait for the dead node's slot (its lease) or for
    // the hung attempt's start-to-close timeout, whichever came later.
    assert!(killed.elapsed() >= Duration::from_secs(4));
}
