//! Paged and sticky pushes (docs/protocol.md §5.10), end to end: a real
//! node on loopback and a raw protocol-level handler that keeps each run's
//! events between tasks when it answers `sticky`, pages in what a push
//! lacks through the signed page route, and checks every history it
//! assembles against the run's history over REST. On SQLite and on
//! PostgreSQL, with many runs at once.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use baton::engine::HistoryReference;
use baton::ids::Namespace;
use baton::time::{Clock, SystemClock, Timestamp};
use common::{
    post_signed, sequential_workflow, spawn_handler, spawn_server_with, test_options, Db, SECRET,
};
use serde_json::{json, Value};

on_both_databases!(
    sticky_pushes_carry_only_the_new_events,
    a_handler_without_the_instance_pages_in_the_rest,
    a_failed_task_ends_the_sticky_pushes,
    paged_pushes_stay_under_the_bound_and_queries_page_in,
    pages_come_from_the_store_when_the_node_keeps_no_runs,
    the_page_route_refuses_what_it_must,
);

/// Result padding: each step's result makes the history grow by ~1 KiB.
const PAD: usize = 1_000;

/// How the handler answers and what it keeps.
#[derive(Clone, Copy)]
struct Mode {
    /// Answer workflow tasks `sticky` and keep the runs' events.
    sticky: bool,
    /// Forget a run's events after every other task (a second process
    /// behind the same URL, an evicted cache entry).
    forget_every_other: bool,
    /// Answer the task after this many completed activities with a
    /// failure (once per run).
    fail_after: Option<usize>,
}

/// One workflow task push as the handler saw it.
#[derive(Clone, Debug)]
struct Seen {
    workflow_id: String,
    first_event_id: i64,
    /// Events the push carried, and the events the handler assembled.
    carried: usize,
    assembled: Vec<Value>,
    /// Bytes of the push's `history` member, and its `history_size_bytes`.
    history_bytes: usize,
    size_bytes: u64,
    paged_in: bool,
}

#[derive(Default)]
struct Memory {
    /// Per run: the events the handler holds (sticky).
    kept: HashMap<String, Vec<Value>>,
    tasks: HashMap<String, usize>,
    failed: Vec<String>,
    seen: Vec<Seen>,
    page_requests: usize,
}

/// Pages in events `1 .. first` of a partial push.
async fn page_in(push: &Value, memory: &Mutex<Memory>) -> Vec<Value> {
    let url = push["history_url"].as_str().unwrap();
    let first = push["history_first_event_id"].as_i64().unwrap();
    let mut events = Vec::new();
    let mut next = 1;
    while next < first {
        memory.lock().unwrap().page_requests += 1;
        let body = json!({"history_reference": push["history_reference"], "first_event_id": next});
        let (status, page) = post_signed(url, &body, Some(SECRET)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        next = page["next_first_event_id"].as_i64().unwrap();
    }
    assert_eq!(next, first, "the last page ends where the push starts");
    events
}

/// The whole history a push stands for: what the handler kept (if it
/// ends right before the push) or paged in, then the push's events.
async fn assemble(push: &Value, memory: &Mutex<Memory>, keep: bool) -> (Vec<Value>, bool) {
    let carried = push["history"].as_array().unwrap().clone();
    let Some(first) = push["history_first_event_id"].as_i64() else {
        return (carried, false);
    };
    let wf = push["workflow_id"].as_str().unwrap().to_owned();
    let held = if keep {
        memory.lock().unwrap().kept.remove(&wf)
    } else {
        None
    };
    let (mut events, paged_in) = match held {
        Some(h) if h.len() as i64 == first - 1 => (h, false),
        _ => (page_in(push, memory).await, true),
    };
    events.extend(carried);
    (events, paged_in)
}

fn completed_results(history: &[Value]) -> usize {
    history
        .iter()
        .filter(|e| e["event_type"] == "ActivityTaskCompleted")
        .count()
}

async fn paging_handler(steps: usize, mode: Mode) -> (common::TestHandler, Arc<Mutex<Memory>>) {
    let memory = Arc::new(Mutex::new(Memory::default()));
    let m = memory.clone();
    let plan: Vec<(&'static str, Value)> = (0..steps).map(|_| ("pad", json!({}))).collect();
    let handler = spawn_handler(move |push: Value| {
        let (memory, plan) = (m.clone(), plan.clone());
        async move {
            match push["type"].as_str() {
                Some("workflow_task") => workflow_task(&push, &plan, mode, &memory).await,
                Some("query") => {
                    let (history, _) = assemble(&push, &memory, false).await;
                    assert_eq!(
                        history.len() as i64,
                        push["history_length"].as_i64().unwrap()
                    );
                    (
                        StatusCode::OK,
                        json!({"result": completed_results(&history)}),
                    )
                }
                _ => {
                    let step = push["input"]["step"].clone();
                    let pad = "x".repeat(PAD);
                    (
                        StatusCode::OK,
                        json!({"result": {"step": step, "pad": pad}}),
                    )
                }
            }
        }
    })
    .await;
    (handler, memory)
}

async fn workflow_task(
    push: &Value,
    plan: &[(&str, Value)],
    mode: Mode,
    memory: &Mutex<Memory>,
) -> (StatusCode, Value) {
    let wf = push["workflow_id"].as_str().unwrap().to_owned();
    let (history, paged_in) = assemble(push, memory, mode.sticky).await;
    assert_eq!(
        history.len() as i64,
        push["history_length"].as_i64().unwrap(),
        "{wf}: the assembled history has every event"
    );
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e["event_id"], json!(i + 1), "{wf}: dense event ids");
    }
    let task = {
        let mut m = memory.lock().unwrap();
        m.seen.push(Seen {
            workflow_id: wf.clone(),
            first_event_id: push["history_first_event_id"].as_i64().unwrap_or(1),
            carried: push["history"].as_array().unwrap().len(),
            assembled: history.clone(),
            history_bytes: serde_json::to_vec(&push["history"]).unwrap().len(),
            size_bytes: push["history_size_bytes"].as_u64().unwrap(),
            paged_in,
        });
        let n = m.tasks.entry(wf.clone()).or_default();
        *n += 1;
        *n
    };
    let done = completed_results(&history);
    let fail = mode.fail_after == Some(done) && !memory.lock().unwrap().failed.contains(&wf);
    if fail {
        memory.lock().unwrap().failed.push(wf);
        return (
            StatusCode::OK,
            json!({"failure": {"failure": {"message": "flaky"}}, "sticky": true}),
        );
    }
    let mut request = push.clone();
    request["history"] = Value::Array(history.clone());
    let mut answer = sequential_workflow(&request, plan);
    if mode.sticky {
        answer["sticky"] = json!(true);
        let forget = mode.forget_every_other && task % 2 == 0;
        if !forget {
            memory.lock().unwrap().kept.insert(wf, history);
        }
    }
    (StatusCode::OK, answer)
}

async fn server(db: Db, push_history_bytes: u64) -> common::TestServer {
    let mut options = test_options(common::database_url(db).await);
    options.dispatch.push_history_bytes = push_history_bytes;
    spawn_server_with(options).await
}

/// Starts `n` runs `{prefix}-{i}` on `queue` and waits for each result.
async fn run_all(api: &common::Api, queue: &str, prefix: &str, n: usize, steps: usize) {
    for i in 0..n {
        let (status, body) = api
            .start(&format!("{prefix}-{i}"), "pages", queue, json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for i in 0..n {
        let result = api.result(&format!("{prefix}-{i}")).await;
        assert_eq!(result["status"], "COMPLETED", "{result}");
        let steps_done = result["result"].as_array().unwrap();
        assert_eq!(steps_done.len(), steps, "{result}");
    }
}

/// Every history a push stood for is a prefix of the run's history.
async fn check_assembled(api: &common::Api, seen: &[Seen]) {
    let mut histories: HashMap<String, Vec<Value>> = HashMap::new();
    for s in seen {
        if !histories.contains_key(&s.workflow_id) {
            histories.insert(s.workflow_id.clone(), api.history(&s.workflow_id).await);
        }
        let whole = &histories[&s.workflow_id];
        // The task's transient events are persisted when it completes,
        // with the same ids and attributes (their times too).
        assert_eq!(
            &whole[..s.assembled.len()],
            &s.assembled[..],
            "{}: the assembled history is the run's",
            s.workflow_id
        );
    }
}

async fn sticky_pushes_carry_only_the_new_events(db: Db) {
    let steps = 8;
    let mode = Mode {
        sticky: true,
        forget_every_other: false,
        fail_after: None,
    };
    let (handler, memory) = paging_handler(steps, mode).await;
    let server = server(db, 1024 * 1024).await;
    // No features: sticky pushes need none (the answer asks for them).
    server
        .api
        .register_with_features("sticky", &handler.url, json!([]))
        .await;
    run_all(&server.api, "sticky", "sticky", 12, steps).await;
    let (seen, page_requests) = {
        let m = memory.lock().unwrap();
        (m.seen.clone(), m.page_requests)
    };
    let mut by_run: HashMap<&str, Vec<&Seen>> = HashMap::new();
    for s in &seen {
        by_run.entry(s.workflow_id.as_str()).or_default().push(s);
    }
    assert_eq!(by_run.len(), 12);
    for (wf, tasks) in &by_run {
        assert_eq!(
            tasks.len(),
            steps + 1,
            "{wf}: one task per step and one to close"
        );
        assert_eq!(tasks[0].first_event_id, 1, "{wf}: the first push is whole");
        for pair in tasks.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            // Right after the WorkflowTaskStarted the handler answered.
            assert_eq!(
                after.first_event_id,
                before.assembled.len() as i64 + 1,
                "{wf}: a sticky push starts after the last task"
            );
            assert_eq!(
                after.assembled[after.first_event_id as usize - 1]["event_type"],
                "WorkflowTaskCompleted"
            );
            assert!(!after.paged_in, "{wf}: nothing to page in");
            assert!(after.carried <= 7, "{wf}: only the new events");
        }
    }
    assert_eq!(page_requests, 0);
    check_assembled(&server.api, &seen).await;
    server.stop().await;
}

async fn a_handler_without_the_instance_pages_in_the_rest(db: Db) {
    let steps = 6;
    let mode = Mode {
        sticky: true,
        forget_every_other: true,
        fail_after: None,
    };
    let (handler, memory) = paging_handler(steps, mode).await;
    let server = server(db, 1024 * 1024).await;
    server
        .api
        .register_with_features("forgetful", &handler.url, json!(["history_pages"]))
        .await;
    run_all(&server.api, "forgetful", "forgetful", 20, steps).await;
    let seen = memory.lock().unwrap().seen.clone();
    let paged: Vec<&Seen> = seen.iter().filter(|s| s.paged_in).collect();
    // Tasks 3, 5, 7 of each run follow a forgotten one.
    assert_eq!(
        paged.len(),
        20 * 3,
        "every push after a forgotten instance pages in"
    );
    assert!(paged.iter().all(|s| s.first_event_id > 1));
    check_assembled(&server.api, &seen).await;
    server.stop().await;
}

async fn a_failed_task_ends_the_sticky_pushes(db: Db) {
    let steps = 4;
    let mode = Mode {
        sticky: true,
        forget_every_other: false,
        fail_after: Some(2),
    };
    let (handler, memory) = paging_handler(steps, mode).await;
    let server = server(db, 1024 * 1024).await;
    server
        .api
        .register_with_features("failing", &handler.url, json!([]))
        .await;
    run_all(&server.api, "failing", "failing", 5, steps).await;
    let seen = memory.lock().unwrap().seen.clone();
    for i in 0..5 {
        let wf = format!("failing-{i}");
        let tasks: Vec<&Seen> = seen.iter().filter(|s| s.workflow_id == wf).collect();
        // Tasks after 0, 1 and 2 results; the one after 2 failed (sticky
        // asked with a failure is ignored) and its retry goes whole, then
        // sticky again.
        let failed_at = tasks
            .iter()
            .position(|s| completed_results(&s.assembled) == 2)
            .unwrap();
        assert!(tasks[failed_at].first_event_id > 1, "{wf}: sticky before");
        assert_eq!(
            tasks[failed_at + 1].first_event_id,
            1,
            "{wf}: whole after a failure"
        );
        assert!(
            tasks[failed_at + 2].first_event_id > 1,
            "{wf}: sticky again"
        );
    }
    check_assembled(&server.api, &seen).await;
    server.stop().await;
}

async fn paged_pushes_stay_under_the_bound_and_queries_page_in(db: Db) {
    let steps = 16;
    let bound: u64 = 8 * 1024;
    let mode = Mode {
        sticky: false,
        forget_every_other: false,
        fail_after: None,
    };
    let (handler, memory) = paging_handler(steps, mode).await;
    let server = server(db, bound).await;
    let api = &server.api;
    api.register_with_features("paged", &handler.url, json!(["history_pages"]))
        .await;
    api.register_with_features("whole", &handler.url, json!([]))
        .await;
    run_all(api, "paged", "paged", 6, steps).await;
    run_all(api, "whole", "whole", 2, steps).await;
    let seen = memory.lock().unwrap().seen.clone();
    let largest_event = seen
        .iter()
        .flat_map(|s| s.assembled.iter())
        .map(|e| serde_json::to_vec(e).unwrap().len())
        .max()
        .unwrap();
    for s in &seen {
        if s.workflow_id.starts_with("whole") {
            assert_eq!(s.first_event_id, 1, "no feature, no pages");
            continue;
        }
        if s.first_event_id > 1 {
            assert!(s.paged_in);
            // The newest persisted events within a quarter of the bound (at
            // least one), then the task's own events.
            assert!(
                s.history_bytes <= bound as usize / 4 + 3 * largest_event,
                "{}: {} bytes pushed",
                s.workflow_id,
                s.history_bytes
            );
        } else {
            // (The push's size counts its transient WorkflowTaskScheduled
            // too; the bound is checked on the persisted events.)
            assert!(
                s.size_bytes <= bound + 512,
                "{}: past the bound, paged",
                s.workflow_id
            );
        }
    }
    let paged = seen.iter().filter(|s| s.paged_in).count();
    assert!(paged >= 6 * 4, "the longer histories are paged: {paged}");
    // A query of a closed run with a long history pages in too.
    let before = memory.lock().unwrap().page_requests;
    let (status, body) = api
        .post(
            "/api/v1/namespaces/default/workflows/paged-0/query/results",
            json!({"args": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], json!(steps));
    assert!(memory.lock().unwrap().page_requests > before);
    check_assembled(api, &seen).await;
    server.stop().await;
}

/// With no run cache the page route reads and encodes the events from the
/// store (the cached runs' pages are slices of their kept encoding).
async fn pages_come_from_the_store_when_the_node_keeps_no_runs(db: Db) {
    let steps = 16;
    let mode = Mode {
        sticky: false,
        forget_every_other: false,
        fail_after: None,
    };
    let (handler, memory) = paging_handler(steps, mode).await;
    let mut options = test_options(common::database_url(db).await);
    options.dispatch.push_history_bytes = 8 * 1024;
    options.apply.run_cache_bytes = 0;
    let server = spawn_server_with(options).await;
    let api = &server.api;
    api.register_with_features("paged", &handler.url, json!(["history_pages"]))
        .await;
    run_all(api, "paged", "uncached", 4, steps).await;
    let seen = memory.lock().unwrap().seen.clone();
    let paged = seen.iter().filter(|s| s.paged_in).count();
    assert!(paged >= 4 * 4, "the longer histories are paged: {paged}");
    check_assembled(api, &seen).await;
    server.stop().await;
}

async fn the_page_route_refuses_what_it_must(db: Db) {
    let mode = Mode {
        sticky: true,
        forget_every_other: false,
        fail_after: None,
    };
    let (handler, memory) = paging_handler(3, mode).await;
    let server = server(db, 1024 * 1024).await;
    let api = &server.api;
    api.register_with_features("refusals", &handler.url, json!([]))
        .await;
    run_all(api, "refusals", "refusals", 1, 3).await;
    let described = api.describe("refusals-0").await;
    let run_id = described["execution"]["run_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let url = format!(
        "http://{}/api/v1/namespaces/default/workflow-tasks/history",
        server.addr
    );
    let reference = |through: i64, expires_at: i64, ns: &str| {
        HistoryReference {
            namespace: Namespace::from(ns),
            run_id,
            through,
            expires_at: Timestamp(expires_at),
        }
        .to_string()
    };
    let later = SystemClock.now().millis() + 600_000;
    let good = json!({"history_reference": reference(4, later, "default"), "first_event_id": 1});
    let (status, page) = post_signed(&url, &good, Some(SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<i64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        (ids, page["next_first_event_id"].clone()),
        (vec![1, 2, 3, 4], json!(5))
    );
    let (status, page) = post_signed(
        &url,
        &json!({"history_reference": reference(4, later, "default"), "first_event_id": 3}),
        Some(SECRET),
    )
    .await;
    assert_eq!(
        (status, page["events"][0]["event_id"].clone()),
        (StatusCode::OK, json!(3))
    );
    let forged = "whsec_c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1lbmRwb2ludHMtMDA=";
    let cases = [
        (good.clone(), None, StatusCode::UNAUTHORIZED),
        (good.clone(), Some(forged), StatusCode::UNAUTHORIZED),
        (
            json!({"history_reference": "not-a-reference", "first_event_id": 1}),
            Some(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"history_reference": reference(4, later, "default"), "first_event_id": 0}),
            Some(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"history_reference": reference(4, later, "default"), "first_event_id": 5}),
            Some(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"history_reference": reference(4, later, "default"), "first_event_id": 1, "extra": 1}),
            Some(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"history_reference": reference(4, later, "other"), "first_event_id": 1}),
            Some(SECRET),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"history_reference": reference(4, 1_000, "default"), "first_event_id": 1}),
            Some(SECRET),
            StatusCode::CONFLICT,
        ),
    ];
    for (body, secret, expected) in cases {
        let (status, problem) = post_signed(&url, &body, secret).await;
        assert_eq!(status, expected, "{body} → {problem}");
        assert!(problem["detail"].is_string(), "{problem}");
    }
    let unknown = HistoryReference {
        namespace: Namespace::from("default"),
        run_id: baton::ids::RunId::generate(),
        through: 4,
        expires_at: Timestamp(later),
    };
    let (status, _) = post_signed(
        &url,
        &json!({"history_reference": unknown.to_string(), "first_event_id": 1}),
        Some(SECRET),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Refusals wrote nothing.
    assert_eq!(memory.lock().unwrap().page_requests, 0);
    let history = api.history("refusals-0").await;
    assert_eq!(
        history.last().unwrap()["event_type"],
        "WorkflowExecutionCompleted"
    );
    server.stop().await;
}
