//! Batch jobs end to end on a real node, on SQLite and PostgreSQL: every
//! operation (terminate, cancel, signal, reset to the first and last
//! workflow task, delete) over a query, touching exactly the matching
//! runs once; stopping a job midway; idempotent starts and listing; bad
//! input refused with a 400 naming the field, nothing stored; work done
//! before a crash recognised; racing starts and commands; and a stopping
//! node handing its job over (PostgreSQL). The SIGKILL tests on two nodes
//! are in tests/cluster.rs.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{eventually, parking_handler, spawn_server, start_parked, Api, Db, TestHandler};
use serde_json::{json, Value};

on_both_databases!(
    terminate_by_query_touches_exactly_the_matching_runs,
    cancel_signal_and_reset_reach_each_matching_run_once,
    delete_removes_closed_runs_and_fails_open_ones,
    stop_ends_a_job_midway,
    starts_are_idempotent_and_jobs_list_newest_first,
    bad_input_is_a_400_naming_the_field_and_stores_nothing,
    work_done_before_a_crash_is_recognised_and_counted_once,
    racing_starts_and_racing_commands_count_each_run_once,
    a_query_over_a_custom_search_attribute_names_the_runs,
);

async fn start_batch(api: &Api, body: Value) -> Value {
    let (status, job) = api.post("/api/v1/namespaces/default/batches", body).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    job
}

/// Waits for the job to close and returns it.
async fn closed_job(api: &Api, id: &str) -> Value {
    let path = format!("/api/v1/namespaces/default/batches/{id}");
    for _ in 0..1_500 {
        let (status, job) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if job["state"] != "RUNNING" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("batch {id} did not close");
}

fn count_of(history: &[Value], event_type: &str) -> usize {
    history
        .iter()
        .filter(|e| e["event_type"] == event_type)
        .count()
}

async fn setup(db: Db) -> (common::TestServer, TestHandler) {
    let server = spawn_server(db).await;
    let handler = parking_handler().await;
    server.api.register("q", &handler.url).await;
    (server, handler)
}

async fn terminate_by_query_touches_exactly_the_matching_runs(db: Db) {
    let (server, _handler) = setup(db).await;
    let api = &server.api;
    let matching = start_parked(api, "Doomed", "doomed", 12).await;
    let others = start_parked(api, "Kept", "kept", 4).await;
    let job = start_batch(
        api,
        json!({"batch_id": "t1", "query": "WorkflowType = \"Doomed\" AND ExecutionStatus = \"Running\"",
               "operation": "terminate", "reason": "stuck", "rps": 200}),
    )
    .await;
    assert_eq!(job["total"], 12, "{job}");
    assert_eq!(job["state"], "RUNNING");
    let job = closed_job(api, "t1").await;
    assert_eq!(job["state"], "COMPLETED", "{job}");
    assert_eq!(
        (job["done"].clone(), job["failed"].clone()),
        (json!(12), json!(0))
    );
    assert!(job["closed_at"].is_string(), "{job}");
    for id in &matching {
        let history = api.history(id).await;
        assert_eq!(count_of(&history, "WorkflowExecutionTerminated"), 1, "{id}");
        let event = common::closing_event(&history, "WorkflowExecutionTerminated");
        assert_eq!(event["attributes"]["reason"], "stuck");
        assert_eq!(event["attributes"]["identity"], "batch/t1");
    }
    for id in &others {
        assert_eq!(
            api.describe(id).await["execution"]["status"],
            "RUNNING",
            "{id}"
        );
    }
    // Terminated runs no longer match: the same job again finds nothing.
    let again = start_batch(
        api,
        json!({"batch_id": "t2", "query": "WorkflowType = \"Doomed\" AND ExecutionStatus = \"Running\"",
               "operation": "terminate"}),
    )
    .await;
    assert_eq!(again["total"], 0);
    assert_eq!(closed_job(api, "t2").await["done"], 0);
    server.stop().await;
}

async fn cancel_signal_and_reset_reach_each_matching_run_once(db: Db) {
    let (server, _handler) = setup(db).await;
    let api = &server.api;
    let cancelled = start_parked(api, "C", "c", 5).await;
    let signalled = start_parked(api, "S", "s", 5).await;
    let first = start_parked(api, "RF", "rf", 3).await;
    let last = start_parked(api, "RL", "rl", 3).await;
    let bystanders = start_parked(api, "Other", "o", 3).await;
    for body in [
        json!({"batch_id": "cancel", "query": "WorkflowType = \"C\"", "operation": "cancel", "reason": "cleanup"}),
        json!({"batch_id": "signal", "query": "WorkflowType = \"S\"", "operation": "signal",
               "signal_name": "poke", "input": {"n": 7}}),
        json!({"batch_id": "rf", "query": "WorkflowType = \"RF\"", "operation": "reset",
               "reset_type": "FIRST_WORKFLOW_TASK", "reason": "bad deploy"}),
        json!({"batch_id": "rl", "query": "WorkflowType = \"RL\"", "operation": "reset",
               "reset_type": "LAST_WORKFLOW_TASK", "reason": "bad deploy"}),
    ] {
        start_batch(api, body).await;
    }
    for (id, total) in [("cancel", 5), ("signal", 5), ("rf", 3), ("rl", 3)] {
        let job = closed_job(api, id).await;
        assert_eq!(job["state"], "COMPLETED", "{job}");
        assert_eq!(
            (job["total"].clone(), job["done"].clone()),
            (json!(total), json!(total)),
            "{job}"
        );
        assert_eq!(job["failed"], 0, "{job}");
    }
    for id in &cancelled {
        let result = api.result(id).await;
        assert_eq!(result["status"], "CANCELED", "{id}: {result}");
        let history = api.history(id).await;
        assert_eq!(count_of(&history, "WorkflowExecutionCancelRequested"), 1);
        let event = common::closing_event(&history, "WorkflowExecutionCancelRequested");
        assert_eq!(event["attributes"]["cause"], "cleanup");
    }
    for id in &signalled {
        let history = api.history(id).await;
        assert_eq!(count_of(&history, "WorkflowExecutionSignaled"), 1, "{id}");
        let event = common::closing_event(&history, "WorkflowExecutionSignaled");
        assert_eq!(event["attributes"]["signal_name"], "poke");
        assert_eq!(event["attributes"]["input"], json!({"n": 7}));
        assert_eq!(api.describe(id).await["execution"]["status"], "RUNNING");
    }
    for id in first.iter().chain(&last) {
        // The workflow id's current run is the reset's new run, running;
        // the base run was terminated naming it.
        let (status, list) = api
            .get(&format!(
                "/api/v1/namespaces/default/workflows?workflow_id={id}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let runs = list["executions"].as_array().cloned().unwrap_or_default();
        assert_eq!(runs.len(), 2, "{id}: one reset, one new run: {list}");
        let statuses: Vec<&str> = runs.iter().filter_map(|r| r["status"].as_str()).collect();
        assert!(
            statuses.contains(&"RUNNING") && statuses.contains(&"TERMINATED"),
            "{statuses:?}"
        );
    }
    for id in &bystanders {
        let history = api.history(id).await;
        assert_eq!(api.describe(id).await["execution"]["status"], "RUNNING");
        assert_eq!(count_of(&history, "WorkflowExecutionSignaled"), 0);
        assert_eq!(count_of(&history, "WorkflowExecutionCancelRequested"), 0);
    }
    server.stop().await;
}

async fn delete_removes_closed_runs_and_fails_open_ones(db: Db) {
    let (server, _handler) = setup(db).await;
    let api = &server.api;
    let closed = start_parked(api, "D", "d", 6).await;
    let open = start_parked(api, "D", "open", 2).await;
    start_batch(
        api,
        json!({"batch_id": "close", "query": "WorkflowType = \"D\" AND WorkflowId STARTS_WITH \"d-\"",
               "operation": "terminate"}),
    )
    .await;
    assert_eq!(closed_job(api, "close").await["done"], 6);
    // Every run of the type: the six closed are deleted, the two open fail.
    start_batch(
        api,
        json!({"batch_id": "delete", "query": "WorkflowType = \"D\"", "operation": "delete"}),
    )
    .await;
    let job = closed_job(api, "delete").await;
    assert_eq!(job["state"], "COMPLETED", "{job}");
    assert_eq!(
        (
            job["total"].clone(),
            job["done"].clone(),
            job["failed"].clone()
        ),
        (json!(8), json!(6), json!(2))
    );
    let failures = job["failures"].as_array().cloned().unwrap_or_default();
    let mut failed: Vec<&str> = failures
        .iter()
        .filter_map(|f| f["workflow_id"].as_str())
        .collect();
    failed.sort_unstable();
    assert_eq!(failed, ["open-0", "open-1"]);
    assert!(failures
        .iter()
        .all(|f| f["reason"] == "the run is open" && f["run_id"].is_string()));
    for id in &closed {
        let (status, _) = api
            .get(&format!("/api/v1/namespaces/default/workflows/{id}"))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id} was not deleted");
    }
    for id in &open {
        assert_eq!(api.describe(id).await["execution"]["status"], "RUNNING");
    }
    server.stop().await;
}

async fn stop_ends_a_job_midway(db: Db) {
    let (server, _handler) = setup(db).await;
    let api = &server.api;
    let ids = start_parked(api, "Slow", "slow", 40).await;
    start_batch(
        api,
        json!({"batch_id": "slow", "query": "WorkflowType = \"Slow\"", "operation": "terminate", "rps": 10}),
    )
    .await;
    let path = "/api/v1/namespaces/default/batches/slow";
    let started = eventually(Duration::from_secs(20), || async {
        api.get(path).await.1["done"].as_i64().unwrap_or(0) >= 3
    })
    .await;
    assert!(started, "the job made no progress");
    let (status, job) = api.post(&format!("{path}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["stop_requested"], true);
    let job = closed_job(api, "slow").await;
    assert_eq!(job["state"], "STOPPED", "{job}");
    let done = job["done"].as_i64().unwrap();
    assert!((3..40).contains(&done), "{job}");
    // What it counted is what it did, and nothing after the stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut terminated = 0;
    for id in &ids {
        if api.describe(id).await["execution"]["status"] == "TERMINATED" {
            terminated += 1;
        }
    }
    assert_eq!(terminated, done);
    // Stopping a closed job changes nothing.
    let (status, again) = api.post(&format!("{path}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        (again["state"].clone(), again["done"].clone()),
        (json!("STOPPED"), json!(done))
    );
    server.stop().await;
}

async fn starts_are_idempotent_and_jobs_list_newest_first(db: Db) {
    let (server, _handler) = setup(db).await;
    let api = &server.api;
    start_parked(api, "I", "i", 2).await;
    let body = json!({"request_id": "req-1", "query": "WorkflowType = \"I\"", "operation": "signal", "signal_name": "once"});
    let first = start_batch(api, body.clone()).await;
    assert_eq!(first["batch_id"], "req-1");
    let (status, retry) = api.post("/api/v1/namespaces/default/batches", body).await;
    assert_eq!(status, StatusCode::OK, "{retry}");
    assert_eq!(retry["created_at"], first["created_at"]);
    // The same id with another request id is a conflict.
    let (status, problem) = api
        .post(
            "/api/v1/namespaces/default/batches",
            json!({"batch_id": "req-1", "query": "WorkflowType = \"I\"", "operation": "cancel"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    for i in 0..4 {
        start_batch(
            api,
            json!({"batch_id": format!("later-{i}"), "query": "WorkflowType = \"None\"", "operation": "cancel"}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => {
                format!("/api/v1/namespaces/default/batches?page_size=2&next_page_token={t}")
            }
            None => "/api/v1/namespaces/default/batches?page_size=2".to_owned(),
        };
        let (status, page) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for b in page["batches"].as_array().unwrap() {
            seen.push(b["batch_id"].as_str().unwrap().to_owned());
        }
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["later-3", "later-2", "later-1", "later-0", "req-1"]);
    let job = closed_job(api, "req-1").await;
    assert_eq!(job["done"], 2);
    let (status, _) = api.get("/api/v1/namespaces/default/batches/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .post("/api/v1/namespaces/default/batches/nope/stop", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

async fn bad_input_is_a_400_naming_the_field_and_stores_nothing(db: Db) {
    let (server, _handler) = setup(db).await;
    let api = &server.api;
    let q = "WorkflowType = \"X\"";
    let cases = [
        (
            json!({"query": "WorkflowType = ", "operation": "terminate"}),
            "query",
        ),
        (
            json!({"query": "Nope = \"x\"", "operation": "terminate"}),
            "Nope",
        ),
        (json!({"query": "", "operation": "terminate"}), "query"),
        (
            json!({"query": format!("{q} ORDER BY StartTime"), "operation": "terminate"}),
            "ORDER BY",
        ),
        (json!({"query": q}), "operation"),
        (json!({"query": q, "operation": "explode"}), "operation"),
        (json!({"query": q, "operation": "signal"}), "signal_name"),
        (
            json!({"query": q, "operation": "signal", "signal_name": ""}),
            "signal_name",
        ),
        (json!({"query": q, "operation": "reset"}), "reset_type"),
        (
            json!({"query": q, "operation": "reset", "reset_type": "MIDDLE"}),
            "reset_type",
        ),
        (
            json!({"query": q, "operation": "reset", "reset_type": "LAST_WORKFLOW_TASK"}),
            "reason",
        ),
        (
            json!({"query": q, "operation": "terminate", "rps": 0}),
            "rps",
        ),
        (
            json!({"query": q, "operation": "terminate", "rps": -3}),
            "rps",
        ),
        (
            json!({"query": q, "operation": "terminate", "batch_id": ""}),
            "batch_id",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = api
            .post("/api/v1/namespaces/default/batches", body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(field),
            "{body}: {detail:?} should name {field}"
        );
    }
    let (status, problem) = api
        .post(
            "/api/v1/namespaces/nope/batches",
            json!({"query": q, "operation": "terminate"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (_, list) = api.get("/api/v1/namespaces/default/batches").await;
    assert_eq!(list["batches"], json!([]), "nothing was stored");
    let (status, _) = api
        .get("/api/v1/namespaces/default/batches?page_size=0")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .get("/api/v1/namespaces/default/batches?next_page_token=zz")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

/// What a node killed mid-page leaves behind, made by hand: some runs
/// already terminated (or signalled) by the job, with its identity and
/// request id, before the job counted them. The job applies them again,
/// recognises its own work and counts each run once; a run closed by
/// someone else is a failure.
async fn work_done_before_a_crash_is_recognised_and_counted_once(db: Db) {
    let (server, _handler) = setup(db).await;
    let api = &server.api;
    let doomed = start_parked(api, "Crash", "crash", 4).await;
    let signalled = start_parked(api, "CrashSig", "crash-sig", 3).await;
    for id in &doomed[..2] {
        let path = format!("/api/v1/namespaces/default/workflows/{id}/terminate");
        let (status, body) = api
            .post(&path, json!({"reason": "stuck", "identity": "batch/redo"}))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let path = format!(
        "/api/v1/namespaces/default/workflows/{}/terminate",
        doomed[2]
    );
    let (status, _) = api.post(&path, json!({"reason": "someone else"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let run_id = api.describe(&signalled[0]).await["execution"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!(
        "/api/v1/namespaces/default/workflows/{}/signal/poke",
        signalled[0]
    );
    let body = json!({"input": 1, "request_id": format!("batch/redo-sig/{run_id}"),
        "identity": "batch/redo-sig"});
    let (status, body) = api.post(&path, body).await;
    assert!(status.is_success(), "{body}");

    start_batch(
        api,
        json!({"batch_id": "redo", "query": "WorkflowType = \"Crash\"", "operation": "terminate",
               "reason": "stuck"}),
    )
    .await;
    let job = closed_job(api, "redo").await;
    assert_eq!(
        (
            job["total"].clone(),
            job["done"].clone(),
            job["failed"].clone()
        ),
        (json!(4), json!(3), json!(1)),
        "{job}"
    );
    assert_eq!(job["failures"][0]["workflow_id"], doomed[2].as_str());
    assert_eq!(
        job["failures"][0]["reason"],
        "the run is already closed (TERMINATED)"
    );
    for id in &doomed {
        let history = api.history(id).await;
        assert_eq!(count_of(&history, "WorkflowExecutionTerminated"), 1, "{id}");
    }

    start_batch(
        api,
        json!({"batch_id": "redo-sig", "query": "WorkflowType = \"CrashSig\"",
               "operation": "signal", "signal_name": "poke", "input": 1}),
    )
    .await;
    let job = closed_job(api, "redo-sig").await;
    assert_eq!(
        (job["done"].clone(), job["failed"].clone()),
        (json!(3), json!(0)),
        "{job}"
    );
    for id in &signalled {
        let history = api.history(id).await;
        assert_eq!(count_of(&history, "WorkflowExecutionSignaled"), 1, "{id}");
    }
    server.stop().await;
}

/// Eight identical starts at once make one job (one 201, the rest its
/// replay); while it runs, every matching run is also signalled and half
/// of them terminated over the API at the same time. Each run ends with
/// one termination, and the job counts every run once: done (its own
/// terminate) or failed (closed by the other caller first).
async fn racing_starts_and_racing_commands_count_each_run_once(db: Db) {
    let (server, _handler) = setup(db).await;
    let api = &server.api;
    let ids = start_parked(api, "Race", "race", 40).await;
    let body = json!({"request_id": "race-1", "query": "WorkflowType = \"Race\"",
        "operation": "terminate", "reason": "batch", "rps": 100});
    let starts = (0..8).map(|_| {
        let (api, body) = (api.clone(), body.clone());
        tokio::spawn(async move { api.post("/api/v1/namespaces/default/batches", body).await })
    });
    let direct = ids.iter().enumerate().map(|(i, id)| {
        let (api, id) = (api.clone(), id.clone());
        tokio::spawn(async move {
            let base = format!("/api/v1/namespaces/default/workflows/{id}");
            api.post(&format!("{base}/signal/poke"), json!({"input": 1}))
                .await;
            if i % 2 == 0 {
                api.post(&format!("{base}/terminate"), json!({"reason": "direct"}))
                    .await;
            }
        })
    });
    let mut created = 0;
    for answer in futures::future::join_all(starts).await {
        let (status, job) = answer.unwrap();
        assert!(
            matches!(status, StatusCode::CREATED | StatusCode::OK),
            "{job}"
        );
        assert_eq!(job["batch_id"], "race-1");
        created += usize::from(status == StatusCode::CREATED);
    }
    assert_eq!(created, 1);
    futures::future::join_all(direct).await;
    let job = closed_job(api, "race-1").await;
    let (done, failed) = (
        job["done"].as_i64().unwrap(),
        job["failed"].as_i64().unwrap(),
    );
    assert_eq!(
        (job["total"].as_i64(), done + failed),
        (Some(40), 40),
        "{job}"
    );
    let mut by_batch = 0;
    for id in &ids {
        let history = api.history(id).await;
        assert_eq!(count_of(&history, "WorkflowExecutionTerminated"), 1, "{id}");
        let event = common::closing_event(&history, "WorkflowExecutionTerminated");
        by_batch += i64::from(event["attributes"]["reason"] == "batch");
    }
    assert_eq!(by_batch, done, "{job}");
    let (_, list) = api.get("/api/v1/namespaces/default/batches").await;
    assert_eq!(list["batches"].as_array().map(Vec::len), Some(1));
    server.stop().await;
}

/// A node stopped gracefully (SIGTERM's path) hands its job over at once:
/// its progress is written and the job made due, so another node on the
/// same database finishes it well before the lease would have run out,
/// each run terminated once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_node_hands_its_job_over_at_once() {
    let url = common::fresh_postgres_database().await;
    let a = common::spawn_server_with(common::test_options(url.clone())).await;
    let handler = parking_handler().await;
    a.api.register("q", &handler.url).await;
    let ids = start_parked(&a.api, "Handover", "handover", 100).await;
    start_batch(
        &a.api,
        json!({"batch_id": "handover", "query": "WorkflowType = \"Handover\"",
               "operation": "terminate", "reason": "handover", "rps": 50}),
    )
    .await;
    let path = "/api/v1/namespaces/default/batches/handover";
    let progressed = eventually(Duration::from_secs(20), || async {
        a.api.get(path).await.1["done"].as_i64().unwrap_or(0) >= 10
    })
    .await;
    assert!(progressed, "no progress on the first node");
    a.stop().await;
    let b = common::spawn_server_with(common::test_options(url)).await;
    let (_, job) = b.api.get(path).await;
    assert_eq!(job["state"], "RUNNING", "{job}");
    let begun = std::time::Instant::now();
    let job = closed_job(&b.api, "handover").await;
    assert_eq!(
        (job["total"].clone(), job["done"].clone()),
        (json!(100), json!(100)),
        "{job}"
    );
    // At 50 runs/s the rest takes under 2 s; waiting out the lease, 10 s more.
    assert!(
        begun.elapsed() < Duration::from_secs(7),
        "took {:?}",
        begun.elapsed()
    );
    for id in &ids {
        let history = b.api.history(id).await;
        assert_eq!(count_of(&history, "WorkflowExecutionTerminated"), 1, "{id}");
    }
    b.stop().await;
}

/// A batch query over a custom search attribute, set at start: only the
/// runs with the value are touched; an unregistered attribute is a 400.
async fn a_query_over_a_custom_search_attribute_names_the_runs(db: Db) {
    let (server, _handler) = setup(db).await;
    let api = &server.api;
    let (status, body) = api
        .post(
            "/api/v1/namespaces/default/search-attributes",
            json!({"search_attributes": {"CustomerId": "Keyword"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for n in 0..6 {
        let extra = json!({"search_attributes": {"CustomerId": format!("c{}", n % 2)}});
        let (status, body) = api.start(&format!("sa-{n}"), "Sa", "q", extra).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    start_batch(
        api,
        json!({"batch_id": "sa", "query": "CustomerId = \"c1\"", "operation": "terminate"}),
    )
    .await;
    let job = closed_job(api, "sa").await;
    assert_eq!(
        (job["total"].clone(), job["done"].clone()),
        (json!(3), json!(3)),
        "{job}"
    );
    for n in 0..6 {
        let status = api.describe(&format!("sa-{n}")).await["execution"]["status"].clone();
        let want = if n % 2 == 1 { "TERMINATED" } else { "RUNNING" };
        assert_eq!(status, want, "sa-{n}");
    }
    let (status, problem) = api
        .post(
            "/api/v1/namespaces/default/batches",
            json!({"query": "Unregistered = \"x\"", "operation": "terminate"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["token"], "Unregistered");
    server.stop().await;
}
