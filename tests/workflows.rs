//! End to end: a real node on loopback pushing to a scripted protocol-level
//! handler. Each scenario runs on SQLite and on PostgreSQL. References are
//! to docs/protocol.md.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{closing_event, event_types, sequential_workflow, spawn_handler, spawn_server, Db};
use serde_json::{json, Value};

on_both_databases!(
    three_activities_run_in_order_and_complete,
    failed_attempts_retry_with_backoff_until_success,
    non_retryable_failures_stop_retries,
    start_to_close_timeout_retries_then_times_out,
    schedule_to_start_timeout_fires_when_no_endpoint_takes_the_task,
    heartbeat_details_survive_into_the_next_attempt,
    activity_completes_asynchronously_by_task_token,
    durable_timer_fires_after_its_duration,
    workflow_run_timeout_closes_the_run,
    workflow_task_timeout_is_recorded_and_retried,
    terminate_closes_the_run_and_refuses_late_results,
    id_reuse_and_conflict_policies,
    forged_or_stale_signatures_are_rejected,
    refused_activity_answers_fail_the_attempt,
    workflow_waits_for_an_approve_signal,
    signals_are_deduplicated_by_request_id,
    signal_with_start_starts_or_signals,
    signals_to_unknown_or_closed_workflows_are_refused,
    cancel_request_lets_the_workflow_cancel_itself,
    queries_answer_from_history_and_write_nothing,
    a_query_to_a_handler_that_hangs_answers_503_within_the_cap,
    runs_stay_pinned_to_their_endpoint_version,
    move_runs_repins_with_an_audit_event,
    a_run_started_without_an_endpoint_pins_on_its_first_push,
    activities_go_to_the_pinned_version_of_their_own_queue_only,
    updates_are_validated_recorded_and_deduplicated,
    continue_as_new_chain_then_result_via_workflow_id,
    workflow_retry_policy_starts_the_next_attempt,
    reset_reruns_the_later_activities,
    reset_of_an_open_run_terminates_it_and_reapplies_signals,
    child_completes_and_the_parent_sees_its_result,
    child_id_already_running_fails_the_start,
    parent_close_policies_reach_open_children,
    signal_and_cancel_external_workflows,
    reset_reapplies_signals_buffered_behind_a_task_in_flight,
    continue_as_new_is_the_upgrade_point,
    children_pin_to_their_queues_current_version,
    nul_in_answers_is_refused_outside_payloads_and_kept_inside,
    long_histories_are_pushed_as_their_events_serialise,
);

fn activity_result(request: &Value) -> (StatusCode, Value) {
    (
        StatusCode::OK,
        json!({"result": {"activity": request["activity_type"], "attempt": request["attempt"]}}),
    )
}

async fn three_activities_run_in_order_and_complete(db: Db) {
    let server = spawn_server(db).await;
    let plan = vec![
        ("charge", json!({})),
        ("reserve", json!({})),
        ("ship", json!({})),
    ];
    let handler = spawn_handler(move |req: Value| {
        let plan = plan.clone();
        async move {
            match req["type"].as_str() {
                Some("workflow_task") => (StatusCode::OK, sequential_workflow(&req, &plan)),
                _ => activity_result(&req),
            }
        }
    })
    .await;
    server.api.register("orders", &handler.url).await;
    let (status, started) = server
        .api
        .start("order-1", "Order", "orders", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let result = server.api.result("order-1").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(
        result["result"],
        json!([
            {"activity": "charge", "attempt": 1},
            {"activity": "reserve", "attempt": 1},
            {"activity": "ship", "attempt": 1}
        ])
    );
    let history = server.api.history("order-1").await;
    let mut expected = vec!["WorkflowExecutionStarted"];
    for _ in 0..3 {
        expected.extend([
            "WorkflowTaskScheduled",
            "WorkflowTaskStarted",
            "WorkflowTaskCompleted",
            "ActivityTaskScheduled",
            "ActivityTaskStarted",
            "ActivityTaskCompleted",
        ]);
    }
    expected.extend([
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowTaskCompleted",
        "WorkflowExecutionCompleted",
    ]);
    assert_eq!(event_types(&history), expected);
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e["event_id"], json!(i + 1), "event ids are dense");
    }
    // protocol.md "Activity task": idempotency key and attempt on every push.
    let run_id = started["run_id"].as_str().unwrap_or_default().to_owned();
    let pushes = handler.received.lock().unwrap().clone();
    let activity_pushes: Vec<&Value> = pushes
        .iter()
        .filter(|p| p["type"] == "activity_task")
        .collect();
    assert_eq!(activity_pushes.len(), 3);
    for (i, p) in activity_pushes.iter().enumerate() {
        assert_eq!(p["idempotency_key"], format!("{run_id}/{}", i + 1));
        assert_eq!(p["attempt"], 1);
    }
    // Workflow tasks carry the history up to their WorkflowTaskStarted.
    let last_wft = pushes
        .iter()
        .rfind(|p| p["type"] == "workflow_task")
        .unwrap();
    let pushed = last_wft["history"].as_array().unwrap();
    assert_eq!(pushed.last().unwrap()["event_type"], "WorkflowTaskStarted");
    assert_eq!(last_wft["history_length"], json!(pushed.len()));
    assert_eq!(last_wft["suggest_continue_as_new"], false);
    server.stop().await;
}

async fn failed_attempts_retry_with_backoff_until_success(db: Db) {
    let server = spawn_server(db).await;
    let attempts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = attempts.clone();
    let options =
        json!({"retry_policy": {"initial_interval": "100ms", "backoff_coefficient": 2.0}});
    let handler = spawn_handler(move |req: Value| {
        let (seen, options) = (seen.clone(), options.clone());
        async move {
            if req["type"] == "workflow_task" {
                return (
                    StatusCode::OK,
                    sequential_workflow(&req, &[("flaky", options)]),
                );
            }
            seen.lock().unwrap().push(Instant::now());
            if req["attempt"].as_u64() < Some(3) {
                let failure = json!({"message": "connection reset", "type": "Transient"});
                return (StatusCode::OK, json!({"failure": failure}));
            }
            activity_result(&req)
        }
    })
    .await;
    server.api.register("q", &handler.url).await;
    server.api.start("retry-1", "Retry", "q", json!({})).await;
    let result = server.api.result("retry-1").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let times = attempts.lock().unwrap().clone();
    assert_eq!(times.len(), 3);
    // Back-off 100 ms then 200 ms (retry policy doubling).
    assert!(times[1] - times[0] >= Duration::from_millis(100));
    assert!(times[2] - times[1] >= Duration::from_millis(200));
    let history = server.api.history("retry-1").await;
    let started = closing_event(&history, "ActivityTaskStarted");
    assert_eq!(started["attributes"]["attempt"], 3);
    assert_eq!(
        started["attributes"]["last_failure"]["message"],
        "connection reset"
    );
    // Retries leave no events of their own.
    assert_eq!(
        event_types(&history)
            .iter()
            .filter(|t| *t == "ActivityTaskStarted")
            .count(),
        1
    );
    server.stop().await;
}

async fn non_retryable_failures_stop_retries(db: Db) {
    let server = spawn_server(db).await;
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let handler = spawn_handler(move |req: Value| {
        let counter = counter.clone();
        async move {
            let wf_id = req["workflow_id"].as_str().unwrap_or_default().to_owned();
            let policy = json!({"retry_policy": {
                "initial_interval": "50ms", "maximum_attempts": 2,
                "non_retryable_error_types": ["CardDeclined"]
            }});
            if req["type"] == "workflow_task" {
                return (
                    StatusCode::OK,
                    sequential_workflow(&req, &[("pay", policy)]),
                );
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let failure = match wf_id.as_str() {
                "by-flag" => json!({"message": "fraud", "type": "Fraud", "non_retryable": true}),
                "by-type" => json!({"message": "declined", "type": "CardDeclined"}),
                _ => json!({"message": "timeout talking to bank", "type": "BankDown"}),
            };
            (StatusCode::OK, json!({"failure": failure}))
        }
    })
    .await;
    server.api.register("q", &handler.url).await;
    for (id, retry_state, attempts) in [
        ("by-flag", "NON_RETRYABLE_FAILURE", 1),
        ("by-type", "NON_RETRYABLE_FAILURE", 1),
        ("by-attempts", "MAXIMUM_ATTEMPTS_REACHED", 2),
    ] {
        calls.store(0, Ordering::SeqCst);
        server.api.start(id, "Pay", "q", json!({})).await;
        let result = server.api.result(id).await;
        assert_eq!(result["status"], "FAILED", "{result}");
        let history = server.api.history(id).await;
        let failed = closing_event(&history, "ActivityTaskFailed");
        assert_eq!(failed["attributes"]["retry_state"], retry_state, "{id}");
        assert_eq!(calls.load(Ordering::SeqCst), attempts, "{id}");
    }
    server.stop().await;
}

async fn start_to_close_timeout_retries_then_times_out(db: Db) {
    let server = spawn_server(db).await;
    let options = json!({"start_to_close_timeout": "300ms",
        "retry_policy": {"initial_interval": "50ms", "maximum_attempts": 2}});
    let handler = spawn_handler(move |req: Value| {
        let options = options.clone();
        async move {
            if req["type"] == "workflow_task" {
                return (
                    StatusCode::OK,
                    sequential_workflow(&req, &[("slow", options)]),
                );
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            activity_result(&req)
        }
    })
    .await;
    server.api.register("q", &handler.url).await;
    server.api.start("stc", "Slow", "q", json!({})).await;
    let result = server.api.result("stc").await;
    assert_eq!(result["status"], "FAILED", "{result}");
    let history = server.api.history("stc").await;
    let timed_out = closing_event(&history, "ActivityTaskTimedOut");
    assert_eq!(
        timed_out["attributes"]["failure"]["timeout_type"],
        "START_TO_CLOSE"
    );
    assert_eq!(
        timed_out["attributes"]["retry_state"],
        "MAXIMUM_ATTEMPTS_REACHED"
    );
    assert_eq!(
        closing_event(&history, "ActivityTaskStarted")["attributes"]["attempt"],
        2
    );
    server.stop().await;
}

async fn schedule_to_start_timeout_fires_when_no_endpoint_takes_the_task(db: Db) {
    let server = spawn_server(db).await;
    let options = json!({"task_queue": "nobody-listens", "schedule_to_start_timeout": "400ms"});
    let handler = spawn_handler(move |req: Value| {
        let options = options.clone();
        async move {
            (
                StatusCode::OK,
                sequential_workflow(&req, &[("orphan", options)]),
            )
        }
    })
    .await;
    server.api.register("q", &handler.url).await;
    server.api.start("s2s", "Orphan", "q", json!({})).await;
    let result = server.api.result("s2s").await;
    assert_eq!(result["status"], "FAILED", "{result}");
    let history = server.api.history("s2s").await;
    let timed_out = closing_event(&history, "ActivityTaskTimedOut");
    assert_eq!(
        timed_out["attributes"]["failure"]["timeout_type"],
        "SCHEDULE_TO_START"
    );
    assert_eq!(timed_out["attributes"]["retry_state"], "TIMEOUT");
    server.stop().await;
}

async fn heartbeat_details_survive_into_the_next_attempt(db: Db) {
    let server = spawn_server(db).await;
    let base = server.api.base.clone();
    let options = json!({"heartbeat_timeout": "300ms", "start_to_close_timeout": "10s",
        "retry_policy": {"initial_interval": "50ms"}});
    let handler = spawn_handler(move |req: Value| {
        let (base, options) = (base.clone(), options.clone());
        async move {
            if req["type"] == "workflow_task" {
                return (
                    StatusCode::OK,
                    sequential_workflow(&req, &[("download", options)]),
                );
            }
            if req["attempt"] == 1 {
                // Record progress, then go silent: the heartbeat timeout fires.
                let answer: Value = reqwest::Client::new()
                    .post(format!(
                        "{base}/api/v1/namespaces/default/activities/heartbeat"
                    ))
                    .json(&json!({"task_token": req["task_token"], "details": {"bytes": 4096}}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(answer["cancel_requested"], false);
                return (StatusCode::ACCEPTED, json!({}));
            }
            (
                StatusCode::OK,
                json!({"result": {"resumed_from": req["heartbeat_details"]}}),
            )
        }
    })
    .await;
    server.api.register("q", &handler.url).await;
    server.api.start("hb", "Download", "q", json!({})).await;
    let result = server.api.result("hb").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["result"], json!([{"resumed_from": {"bytes": 4096}}]));
    let history = server.api.history("hb").await;
    let started = closing_event(&history, "ActivityTaskStarted");
    assert_eq!(started["attributes"]["attempt"], 2);
    assert_eq!(
        started["attributes"]["last_failure"]["timeout_type"],
        "HEARTBEAT"
    );
    server.stop().await;
}

async fn activity_completes_asynchronously_by_task_token(db: Db) {
    let server = spawn_server(db).await;
    let token = started_async_activity(&server, "async", "Approve").await;
    let path = "/api/v1/namespaces/default/activities/complete";
    let heartbeat = "/api/v1/namespaces/default/activities/heartbeat";
    let (status, _) = server
        .api
        .post(heartbeat, json!({"task_token": token}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .api
        .post(path, json!({"task_token": token, "result": "approved"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = server.api.result("async").await;
    assert_eq!(result["result"], json!(["approved"]));
    // DESIGN.md invariant 4: the first completion wins; a duplicate is refused.
    let (status, body) = server
        .api
        .post(path, json!({"task_token": token, "result": "again"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "conflict");
    let (status, body) = server
        .api
        .post(path, json!({"task_token": "garbage", "result": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let history = server.api.history("async").await;
    assert_eq!(
        event_types(&history)
            .iter()
            .filter(|t| *t == "ActivityTaskCompleted")
            .count(),
        1
    );
    server.stop().await;
}

async fn durable_timer_fires_after_its_duration(db: Db) {
    let server = spawn_server(db).await;
    let handler = spawn_handler(|req: Value| async move {
        let history = req["history"].as_array().cloned().unwrap_or_default();
        let fired = history.iter().any(|e| e["event_type"] == "TimerFired");
        let commands = if fired {
            json!([{"command_type": "CompleteWorkflowExecution", "attributes": {"result": "woke"}}])
        } else if history.iter().any(|e| e["event_type"] == "TimerStarted") {
            json!([])
        } else {
            json!([{"command_type": "StartTimer", "attributes": {"timer_id": "nap", "start_to_fire_timeout": "400ms"}}])
        };
        (StatusCode::OK, json!({"commands": commands}))
    })
    .await;
    server.api.register("q", &handler.url).await;
    let begun = Instant::now();
    server.api.start("timer", "Nap", "q", json!({})).await;
    let result = server.api.result("timer").await;
    assert_eq!(result["result"], "woke");
    assert!(begun.elapsed() >= Duration::from_millis(400));
    let history = server.api.history("timer").await;
    let started = closing_event(&history, "TimerStarted");
    let fired = closing_event(&history, "TimerFired");
    assert_eq!(fired["attributes"]["started_event_id"], started["event_id"]);
    server.stop().await;
}

async fn workflow_run_timeout_closes_the_run(db: Db) {
    let server = spawn_server(db).await;
    let handler =
        spawn_handler(|_req: Value| async move { (StatusCode::OK, json!({"commands": []})) }).await;
    server.api.register("q", &handler.url).await;
    server
        .api
        .start(
            "idle",
            "Idle",
            "q",
            json!({"workflow_run_timeout": "500ms"}),
        )
        .await;
    let result = server.api.result("idle").await;
    assert_eq!(result["status"], "TIMED_OUT", "{result}");
    let history = server.api.history("idle").await;
    assert_eq!(
        event_types(&history).last().unwrap(),
        "WorkflowExecutionTimedOut"
    );
    server.stop().await;
}

async fn workflow_task_timeout_is_recorded_and_retried(db: Db) {
    let server = spawn_server(db).await;
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let handler = spawn_handler(move |req: Value| {
        let counter = counter.clone();
        async move {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(1_500)).await;
            }
            let attempt = req["attempt"].clone();
            (StatusCode::OK, json!({"commands": [{"command_type": "CompleteWorkflowExecution", "attributes": {"result": attempt}}]}))
        }
    })
    .await;
    server.api.register("q", &handler.url).await;
    server
        .api
        .start(
            "slow-wft",
            "SlowDecider",
            "q",
            json!({"workflow_task_timeout": "1s"}),
        )
        .await;
    let result = server.api.result("slow-wft").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["result"], 2);
    let history = server.api.history("slow-wft").await;
    assert_eq!(
        event_types(&history),
        [
            "WorkflowExecutionStarted",
            "WorkflowTaskScheduled",
            "WorkflowTaskStarted",
            "WorkflowTaskTimedOut",
            "WorkflowTaskScheduled",
            "WorkflowTaskStarted",
            "WorkflowTaskCompleted",
            "WorkflowExecutionCompleted",
        ]
    );
    server.stop().await;
}

async fn terminate_closes_the_run_and_refuses_late_results(db: Db) {
    let server = spawn_server(db).await;
    let token = started_async_activity(&server, "doomed", "Doomed").await;
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/doomed/terminate",
            json!({"reason": "operator"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let result = server.api.result("doomed").await;
    assert_eq!(result["status"], "TERMINATED");
    let (status, _) = server
        .api
        .post(
            "/api/v1/namespaces/default/activities/complete",
            json!({"task_token": token, "result": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let history = server.api.history("doomed").await;
    let terminated = closing_event(&history, "WorkflowExecutionTerminated");
    assert_eq!(terminated["attributes"]["reason"], "operator");
    assert_eq!(
        event_types(&history).last().unwrap(),
        "WorkflowExecutionTerminated"
    );
    // Terminating again is a conflict, not a second event.
    let (status, _) = server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/doomed/terminate",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    server.stop().await;
}

async fn id_reuse_and_conflict_policies(db: Db) {
    let server = spawn_server(db).await;
    // No endpoint: runs stay open until terminated.
    let api = &server.api;
    let (status, first) = api
        .start("dup", "T", "q", json!({"request_id": "req-1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let run1 = first["run_id"].clone();
    let (status, again) = api
        .start("dup", "T", "q", json!({"request_id": "req-1"}))
        .await;
    assert_eq!(
        (status, &again["run_id"], &again["started"]),
        (StatusCode::OK, &run1, &json!(false))
    );
    let (status, body) = api.start("dup", "T", "q", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "already_exists");
    let (status, body) = api
        .start(
            "dup",
            "T",
            "q",
            json!({"id_conflict_policy": "USE_EXISTING"}),
        )
        .await;
    assert_eq!((status, &body["run_id"]), (StatusCode::OK, &run1));
    let (status, body) = api
        .start(
            "dup",
            "T",
            "q",
            json!({"id_conflict_policy": "TERMINATE_EXISTING"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let run2 = body["run_id"].clone();
    assert_ne!(run1, run2);
    let (_, old) = api
        .get(&format!(
            "/api/v1/namespaces/default/workflows/dup/result?run_id={}",
            run1.as_str().unwrap()
        ))
        .await;
    assert_eq!(old["status"], "TERMINATED");
    api.post(
        "/api/v1/namespaces/default/workflows/dup/terminate",
        json!({}),
    )
    .await;
    let (status, _) = api
        .start(
            "dup",
            "T",
            "q",
            json!({"id_reuse_policy": "REJECT_DUPLICATE"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = api
        .start(
            "dup",
            "T",
            "q",
            json!({"id_reuse_policy": "ALLOW_DUPLICATE_FAILED_ONLY"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "terminated counts as failed");
    api.post(
        "/api/v1/namespaces/default/workflows/dup/terminate",
        json!({}),
    )
    .await;
    let (status, _) = api
        .start(
            "dup",
            "T",
            "q",
            json!({"id_reuse_policy": "ALLOW_DUPLICATE"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = api
        .start("dup2", "T", "q", json!({"id_reuse_policy": "SOMETIMES"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    server.stop().await;
}

async fn forged_or_stale_signatures_are_rejected(db: Db) {
    let server = spawn_server(db).await;
    let handler = spawn_handler(|_req: Value| async move {
        (StatusCode::OK, json!({"commands": [{"command_type": "CompleteWorkflowExecution", "attributes": {"result": 1}}]}))
    })
    .await;
    // Registered with a secret the handler does not know: every push is
    // refused with 401 and nothing runs.
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/endpoints",
            json!({"task_queue": "q", "url": handler.url, "secrets": ["whsec_c2VjcmV0LW5vYm9keS1rbm93cw=="]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.api.start("signed", "Signed", "q", json!({})).await;
    assert!(
        common::eventually(Duration::from_secs(10), || async {
            *handler.rejected.lock().unwrap() >= 2
        })
        .await
    );
    assert!(handler.received.lock().unwrap().is_empty());
    let described = server.api.describe("signed").await;
    let failure = described["pending_workflow_task"]["last_failure"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(failure.contains("401"), "{described}");
    // Rotation: the new secret first, the handler's secret second.
    server
        .api
        .post(
            "/api/v1/namespaces/default/endpoints",
            json!({"task_queue": "q", "url": handler.url,
                   "secrets": ["whsec_c2VjcmV0LW5vYm9keS1rbm93cw==", common::SECRET]}),
        )
        .await;
    let result = server.api.result("signed").await;
    assert_eq!(result["status"], "COMPLETED");
    // A replayed push with a stale timestamp or altered body is refused.
    let client = reqwest::Client::new();
    let body = br#"{"type":"workflow_task"}"#.to_vec();
    let secret: baton::signing::Secret = common::SECRET.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (ts, sent) in [
        (now - 600, body.clone()),
        (now, br#"{"type":"activity_task"}"#.to_vec()),
    ] {
        let signature = baton::signing::sign(std::slice::from_ref(&secret), "msg_1", ts, &body);
        let status = client
            .post(&handler.url)
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(sent)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 401);
    }
    server.stop().await;
}

async fn refused_activity_answers_fail_the_attempt(db: Db) {
    let server = spawn_server(db).await;
    let options = json!({"retry_policy": {"initial_interval": "50ms"}});
    let handler = spawn_handler(move |req: Value| {
        let options = options.clone();
        async move {
            if req["type"] == "workflow_task" {
                return (
                    StatusCode::OK,
                    sequential_workflow(&req, &[("odd", options)]),
                );
            }
            if req["attempt"] == 1 {
                // Well-formed, but nobody asked for a cancellation.
                return (StatusCode::OK, json!({"canceled": {"details": null}}));
            }
            activity_result(&req)
        }
    })
    .await;
    server.api.register("q", &handler.url).await;
    server.api.start("odd", "Odd", "q", json!({})).await;
    let result = server.api.result("odd").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let history = server.api.history("odd").await;
    let started = closing_event(&history, "ActivityTaskStarted");
    assert_eq!(started["attributes"]["attempt"], 2);
    assert_eq!(
        started["attributes"]["last_failure"]["type"],
        "InvalidActivityAnswer"
    );
    server.stop().await;
}

/// A workflow that completes with the input of its first "approve" signal,
/// and cancels itself when cancellation is requested.
fn approval_workflow(request: &Value) -> Value {
    let events = request["history"].as_array().cloned().unwrap_or_default();
    for e in &events {
        if e["event_type"] == "WorkflowExecutionCancelRequested" {
            return json!({"commands": [{"command_type": "CancelWorkflowExecution",
                "attributes": {"details": e["attributes"]["cause"]}}]});
        }
        if e["event_type"] == "WorkflowExecutionSignaled"
            && e["attributes"]["signal_name"] == "approve"
        {
            return json!({"commands": [{"command_type": "CompleteWorkflowExecution",
                "attributes": {"result": e["attributes"]["input"]}}]});
        }
    }
    json!({"commands": []})
}

async fn spawn_approval_handler(server: &common::TestServer) -> common::TestHandler {
    let handler = spawn_handler(|req: Value| async move {
        match req["type"].as_str() {
            Some("workflow_task") => (StatusCode::OK, approval_workflow(&req)),
            _ => activity_result(&req),
        }
    })
    .await;
    server.api.register("approvals", &handler.url).await;
    handler
}

/// Waits until the workflow's first task has completed (it is waiting).
async fn wait_idle(server: &common::TestServer, workflow_id: &str) {
    assert!(
        common::eventually(Duration::from_secs(10), || async {
            event_types(&server.api.history(workflow_id).await)
                .iter()
                .any(|t| t == "WorkflowTaskCompleted")
        })
        .await,
        "{workflow_id} never completed a workflow task"
    );
}

async fn workflow_waits_for_an_approve_signal(db: Db) {
    let server = spawn_server(db).await;
    let _handler = spawn_approval_handler(&server).await;
    let (status, started) = server
        .api
        .start("po-1", "PurchaseOrder", "approvals", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    wait_idle(&server, "po-1").await;
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/po-1/signal/approve",
            json!({"input": {"approver": "ann"}, "identity": "ann@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["run_id"], started["run_id"]);
    let result = server.api.result("po-1").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["result"], json!({"approver": "ann"}));
    let history = server.api.history("po-1").await;
    let signaled = closing_event(&history, "WorkflowExecutionSignaled");
    assert_eq!(signaled["attributes"]["signal_name"], "approve");
    assert_eq!(signaled["attributes"]["identity"], "ann@example.com");
    server.stop().await;
}

async fn signals_are_deduplicated_by_request_id(db: Db) {
    let server = spawn_server(db).await;
    // No endpoint: the run stays open and its tasks wait.
    server.api.start("dedupe", "T", "nowhere", json!({})).await;
    let path = "/api/v1/namespaces/default/workflows/dedupe/signal/poke";
    for _ in 0..3 {
        let (status, body) = server
            .api
            .post(path, json!({"input": 1, "request_id": "sig-1"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = server
        .api
        .post(path, json!({"input": 2, "request_id": "sig-2"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The signals wait behind the first (undelivered) workflow task; a
    // termination appends what is buffered.
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/dedupe/terminate",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let history = server.api.history("dedupe").await;
    let signals: Vec<&Value> = history
        .iter()
        .filter(|e| e["event_type"] == "WorkflowExecutionSignaled")
        .map(|e| &e["attributes"]["request_id"])
        .collect();
    assert_eq!(signals, [&json!("sig-1"), &json!("sig-2")], "{history:#?}");
    server.stop().await;
}

async fn signal_with_start_starts_or_signals(db: Db) {
    let server = spawn_server(db).await;
    let _handler = spawn_approval_handler(&server).await;
    let path = "/api/v1/namespaces/default/workflows/po-2/signal-with-start/approve";
    let body = json!({"workflow_type": "PurchaseOrder", "task_queue": "approvals",
        "input": {"amount": 10}, "signal_input": {"approver": "bob"}});
    let (status, started) = server.api.post(path, body).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(started["started"], true);
    let result = server.api.result("po-2").await;
    assert_eq!(result["result"], json!({"approver": "bob"}), "{result}");
    let types = event_types(&server.api.history("po-2").await);
    assert_eq!(
        types[..3],
        [
            "WorkflowExecutionStarted",
            "WorkflowExecutionSignaled",
            "WorkflowTaskScheduled"
        ]
    );
    // An open run is signalled, not restarted.
    server
        .api
        .start("po-3", "PurchaseOrder", "approvals", json!({}))
        .await;
    wait_idle(&server, "po-3").await;
    let path = "/api/v1/namespaces/default/workflows/po-3/signal-with-start/approve";
    let body = json!({"workflow_type": "PurchaseOrder", "task_queue": "approvals",
        "signal_input": {"approver": "cy"}});
    let (status, signalled) = server.api.post(path, body).await;
    assert_eq!(status, StatusCode::OK, "{signalled}");
    assert_eq!(signalled["started"], false);
    let result = server.api.result("po-3").await;
    assert_eq!(result["run_id"], signalled["run_id"]);
    assert_eq!(result["result"], json!({"approver": "cy"}), "{result}");
    server.stop().await;
}

async fn signals_to_unknown_or_closed_workflows_are_refused(db: Db) {
    let server = spawn_server(db).await;
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/ghost/signal/approve",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "not_found");
    server.api.start("gone", "T", "nowhere", json!({})).await;
    server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/gone/terminate",
            json!({}),
        )
        .await;
    for path in [
        "/api/v1/namespaces/default/workflows/gone/signal/approve",
        "/api/v1/namespaces/default/workflows/gone/cancel",
    ] {
        let (status, body) = server.api.post(path, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {body}");
        assert_eq!(body["code"], "conflict");
    }
    server.stop().await;
}

async fn cancel_request_lets_the_workflow_cancel_itself(db: Db) {
    let server = spawn_server(db).await;
    let _handler = spawn_approval_handler(&server).await;
    server
        .api
        .start("po-4", "PurchaseOrder", "approvals", json!({}))
        .await;
    wait_idle(&server, "po-4").await;
    let path = "/api/v1/namespaces/default/workflows/po-4/cancel";
    let (status, body) = server
        .api
        .post(path, json!({"reason": "order withdrawn"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let result = server.api.result("po-4").await;
    assert_eq!(result["status"], "CANCELED", "{result}");
    assert!(server.api.describe("po-4").await["cancel_requested"] == true);
    let history = server.api.history("po-4").await;
    let requested = closing_event(&history, "WorkflowExecutionCancelRequested");
    assert_eq!(requested["attributes"]["cause"], "order withdrawn");
    let canceled = closing_event(&history, "WorkflowExecutionCanceled");
    assert_eq!(canceled["attributes"]["details"], "order withdrawn");
    server.stop().await;
}

async fn queries_answer_from_history_and_write_nothing(db: Db) {
    let server = spawn_server(db).await;
    let handler = spawn_handler(|req: Value| async move {
        let history = req["history"].as_array().cloned().unwrap_or_default();
        let approved = history.iter().any(|e| e["event_type"] == "WorkflowExecutionSignaled");
        if req["type"] == "query" {
            return match req["query_name"].as_str() {
                Some("status") => (StatusCode::OK, json!({"result": {
                    "approved": approved, "events": req["history_length"], "args": req["query_args"]}})),
                _ => (StatusCode::OK, json!({"failure": {"message": "unknown query", "type": "QueryNotFound"}})),
            };
        }
        let commands = if approved {
            json!([{"command_type": "CompleteWorkflowExecution", "attributes": {"result": "approved"}}])
        } else {
            json!([])
        };
        (StatusCode::OK, json!({"commands": commands}))
    })
    .await;
    server.api.register("q", &handler.url).await;
    server.api.start("po-1", "Approval", "q", json!({})).await;
    let api = server.api.clone();
    let idle = common::eventually(Duration::from_secs(10), || {
        let api = api.clone();
        async move { api.history("po-1").await.len() == 4 }
    })
    .await;
    assert!(idle, "the first workflow task completed");
    let query = "/api/v1/namespaces/default/workflows/po-1/query/status";
    let (status, body) = server.api.post(query, json!({"args": ["verbose"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["result"],
        json!({"approved": false, "events": 4, "args": ["verbose"]})
    );
    assert_eq!(
        server.api.history("po-1").await.len(),
        4,
        "a query writes nothing"
    );
    // An unknown query name is the handler's failure, not the server's.
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/po-1/query/nope",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "query_failed");
    assert!(body["detail"].as_str().unwrap().contains("unknown query"));
    // Closed workflows answer queries too.
    server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/po-1/signal/approve",
            json!({"input": {"by": "ada"}}),
        )
        .await;
    assert_eq!(server.api.result("po-1").await["result"], "approved");
    let (status, body) = server.api.post(query, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["approved"], true);
    // Unknown workflow: 404; endpoint down: 503.
    let (status, _) = server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/nobody/query/status",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.api.register("q", "http://127.0.0.1:9/").await;
    // Nodes reuse an endpoint look-up for up to a second.
    let mut answer = (StatusCode::OK, Value::Null);
    for _ in 0..50 {
        answer = server.api.post(query, json!({})).await;
        if answer.0 != StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = answer;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("did not answer the query"), "{detail}");
    server.stop().await;
}

/// A query waits for its push at most the run's workflow task timeout,
/// capped at 10 s (docs/protocol.md §5.5): with a 120 s task timeout and a
/// handler that never answers queries, the caller still gets a `503` long
/// before the task timeout, not a read timeout.
async fn a_query_to_a_handler_that_hangs_answers_503_within_the_cap(db: Db) {
    let server = spawn_server(db).await;
    let handler = spawn_handler(|req: Value| async move {
        if req["type"] == "query" {
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
        (StatusCode::OK, json!({"commands": []}))
    })
    .await;
    server.api.register("hang", &handler.url).await;
    server
        .api
        .start(
            "slow-q",
            "Approval",
            "hang",
            json!({"workflow_task_timeout": "120s"}),
        )
        .await;
    let api = server.api.clone();
    let idle = common::eventually(Duration::from_secs(10), || {
        let api = api.clone();
        async move { api.history("slow-q").await.len() == 4 }
    })
    .await;
    assert!(idle, "the first workflow task completed");
    let begun = Instant::now();
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/slow-q/query/status",
            json!({}),
        )
        .await;
    let waited = begun.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("did not answer the query"), "{detail}");
    // The bound under test is 10 s against a 120 s task timeout; the slack
    // is for a loaded machine, not a speed goal.
    assert!(waited < Duration::from_secs(60), "waited {waited:?}");
    assert_eq!(
        server.api.history("slow-q").await.len(),
        4,
        "a query writes nothing"
    );
    server.stop().await;
}

/// Starts a one-activity workflow whose activity answers 202 (it will
/// complete asynchronously) and returns that activity's task token.
async fn started_async_activity(
    server: &common::TestServer,
    workflow_id: &str,
    workflow_type: &str,
) -> String {
    let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = tokens.clone();
    let handler = spawn_handler(move |req: Value| {
        let seen = seen.clone();
        async move {
            if req["type"] == "workflow_task" {
                let options = json!({"start_to_close_timeout": "1h"});
                return (
                    StatusCode::OK,
                    sequential_workflow(&req, &[("wait", options)]),
                );
            }
            seen.lock()
                .unwrap()
                .push(req["task_token"].as_str().unwrap().to_owned());
            (StatusCode::ACCEPTED, json!({}))
        }
    })
    .await;
    server.api.register("q", &handler.url).await;
    server
        .api
        .start(workflow_id, workflow_type, "q", json!({}))
        .await;
    let pushed = common::eventually(Duration::from_secs(10), || async {
        !tokens.lock().unwrap().is_empty()
    })
    .await;
    assert!(pushed, "the activity was pushed");
    let token = tokens.lock().unwrap()[0].clone();
    token
}

/// An approval handler registered as `version` of the `approvals` queue.
async fn approval_version(server: &common::TestServer, version: &str) -> common::TestHandler {
    versioned_handler(server, "approvals", version, approval_workflow).await
}

/// A handler running `workflow` (activities answer at once), registered as
/// `version` of `queue`.
async fn versioned_handler(
    server: &common::TestServer,
    queue: &str,
    version: &str,
    workflow: fn(&Value) -> Value,
) -> common::TestHandler {
    let handler = spawn_handler(move |req: Value| async move {
        match req["type"].as_str() {
            Some("workflow_task") => (StatusCode::OK, workflow(&req)),
            _ => activity_result(&req),
        }
    })
    .await;
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/endpoints",
            json!({"task_queue": queue, "url": handler.url, "version": version,
                "secrets": [common::SECRET]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    handler
}

/// The workflow ids a handler received workflow tasks for.
fn workflow_ids_pushed(handler: &common::TestHandler) -> Vec<String> {
    let mut ids: Vec<String> = handler
        .received
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "workflow_task")
        .map(|p| p["workflow_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.dedup();
    ids
}

/// (version, current, open runs) per version of the `approvals` queue.
async fn versions(server: &common::TestServer) -> Vec<(String, bool, i64)> {
    let (status, body) = server
        .api
        .get("/api/v1/namespaces/default/endpoints/approvals/versions")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let version = v["version"].as_str().unwrap().to_owned();
            (
                version,
                v["is_current"] == true,
                v["open_runs"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn v(version: &str, current: bool, open_runs: i64) -> (String, bool, i64) {
    (version.to_owned(), current, open_runs)
}

async fn delete_version(server: &common::TestServer, version: &str) -> (StatusCode, Value) {
    let path = format!("/api/v1/namespaces/default/endpoints/approvals/{version}");
    server.api.call(reqwest::Method::DELETE, &path, None).await
}

async fn approve(server: &common::TestServer, workflow_id: &str) {
    let (status, body) = server
        .api
        .post(
            &format!("/api/v1/namespaces/default/workflows/{workflow_id}/signal/approve"),
            json!({"input": {"approver": "ann"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = server.api.result(workflow_id).await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
}

/// protocol.md §1.4: a run stays on the version it started on; new runs go
/// to the current version; a version drains before it can be deleted.
async fn runs_stay_pinned_to_their_endpoint_version(db: Db) {
    let server = spawn_server(db).await;
    let v1 = approval_version(&server, "v1").await;
    server
        .api
        .start("po-1", "PurchaseOrder", "approvals", json!({}))
        .await;
    wait_idle(&server, "po-1").await;
    assert_eq!(server.api.describe("po-1").await["pinned_version"], "v1");

    let v2 = approval_version(&server, "v2").await;
    server
        .api
        .start("po-2", "PurchaseOrder", "approvals", json!({}))
        .await;
    wait_idle(&server, "po-2").await;
    assert_eq!(server.api.describe("po-2").await["pinned_version"], "v2");
    assert_eq!(
        versions(&server).await,
        [v("v1", false, 1), v("v2", true, 1)]
    );
    let history = server.api.history("po-1").await;
    let started = closing_event(&history, "WorkflowExecutionStarted");
    assert_eq!(started["attributes"]["pinned_version"], "v1");

    // v1 still has an open run: deleting it is refused and changes nothing.
    let (status, body) = delete_version(&server, "v1").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "version_in_use");
    assert_eq!(
        versions(&server).await,
        [v("v1", false, 1), v("v2", true, 1)]
    );

    // The v1 run's next task, after v2 is current, still goes to v1.
    approve(&server, "po-1").await;
    approve(&server, "po-2").await;
    assert_eq!(workflow_ids_pushed(&v1), ["po-1"]);
    assert_eq!(workflow_ids_pushed(&v2), ["po-2"]);
    assert_eq!(
        versions(&server).await,
        [v("v1", false, 0), v("v2", true, 0)]
    );

    // Drained: v1 goes.
    let (status, body) = delete_version(&server, "v1").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(versions(&server).await, [v("v2", true, 0)]);
    server.stop().await;
}

/// protocol.md §1.4: the audited move of a run to another version, and a
/// rollback by promotion.
async fn move_runs_repins_with_an_audit_event(db: Db) {
    let server = spawn_server(db).await;
    let v1 = approval_version(&server, "v1").await;
    for id in ["po-1", "po-2"] {
        server
            .api
            .start(id, "PurchaseOrder", "approvals", json!({}))
            .await;
        wait_idle(&server, id).await;
    }
    let v2 = approval_version(&server, "v2").await;
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/endpoints/approvals/versions/v2/move-runs",
            json!({"from_version": "v1", "workflow_ids": ["po-1"],
                "reason": "v1 calls a retired API", "identity": "ops@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["moved"], 1);
    assert_eq!(
        body["run_ids"][0],
        server.api.describe("po-1").await["execution"]["run_id"]
    );
    assert_eq!(server.api.describe("po-1").await["pinned_version"], "v2");
    assert_eq!(
        versions(&server).await,
        [v("v1", false, 1), v("v2", true, 1)]
    );
    let history = server.api.history("po-1").await;
    let moved = closing_event(&history, "WorkflowExecutionOptionsUpdated");
    assert_eq!(
        moved["attributes"],
        json!({"versioning_override": {"pinned_version": "v2"},
            "previous_pinned_version": "v1", "reason": "v1 calls a retired API",
            "identity": "ops@example.com"})
    );
    // The move schedules a workflow task: v2 replays the run at once.
    assert!(
        common::eventually(Duration::from_secs(10), || async {
            workflow_ids_pushed(&v2).contains(&"po-1".to_owned())
        })
        .await
    );
    approve(&server, "po-1").await;
    assert_eq!(workflow_ids_pushed(&v1), ["po-1", "po-2"]);

    // A rollback: v1 is current again, and new runs pin to it; then every
    // remaining v1 run moves to v2 (no workflow ids: all of them).
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/endpoints/approvals/versions/v1/promote",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["is_current"], true);
    server
        .api
        .start("po-3", "PurchaseOrder", "approvals", json!({}))
        .await;
    wait_idle(&server, "po-3").await;
    assert_eq!(server.api.describe("po-3").await["pinned_version"], "v1");
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/endpoints/approvals/versions/v2/move-runs",
            json!({"from_version": "v1", "reason": "drain v1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["moved"], 2);
    assert_eq!(
        versions(&server).await,
        [v("v1", true, 0), v("v2", false, 2)]
    );
    for id in ["po-2", "po-3"] {
        approve(&server, id).await;
    }
    assert_eq!(
        versions(&server).await,
        [v("v1", true, 0), v("v2", false, 0)]
    );
    server.stop().await;
}

/// protocol.md §1.4: with no endpoint at start the run is unpinned; its
/// first push pins it to the version current then. A forced delete of that
/// version strands it (undelivered, visible in describe) until it returns.
async fn a_run_started_without_an_endpoint_pins_on_its_first_push(db: Db) {
    let server = spawn_server(db).await;
    server
        .api
        .start("po-1", "PurchaseOrder", "approvals", json!({}))
        .await;
    let undelivered = common::eventually(Duration::from_secs(10), || async {
        let described = server.api.describe("po-1").await;
        assert_eq!(described["pinned_version"], Value::Null, "{described}");
        described["pending_workflow_task"]["last_failure"]
            .as_str()
            .is_some_and(|f| f.contains("no endpoint registered for task queue approvals"))
    })
    .await;
    assert!(undelivered, "{}", server.api.describe("po-1").await);
    let v1 = approval_version(&server, "v1").await;
    wait_idle(&server, "po-1").await;
    assert_eq!(server.api.describe("po-1").await["pinned_version"], "v1");
    let history = server.api.history("po-1").await;
    let started = closing_event(&history, "WorkflowExecutionStarted");
    assert_eq!(started["attributes"].get("pinned_version"), None);

    let _v2 = approval_version(&server, "v2").await;
    let (status, body) = server
        .api
        .call(
            reqwest::Method::DELETE,
            "/api/v1/namespaces/default/endpoints/approvals/v1?force=true",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, listed) = server
        .api
        .get("/api/v1/namespaces/default/endpoints/approvals/versions")
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed["versions"][1],
        json!({"version": "v1", "registered": false, "is_current": false, "open_runs": 1})
    );
    // The signal's task has nowhere to go: v2 is current but not the pin.
    server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/po-1/signal/approve",
            json!({"input": {"approver": "ann"}}),
        )
        .await;
    let stranded = common::eventually(Duration::from_secs(10), || async {
        server.api.describe("po-1").await["pending_workflow_task"]["last_failure"]
            .as_str()
            .is_some_and(|f| {
                f.contains("version v1 of task queue approvals, which the run is pinned to")
            })
    })
    .await;
    assert!(stranded, "{}", server.api.describe("po-1").await);
    // v1 comes back: the retried task reaches it and the run completes.
    let v1_again = approval_version(&server, "v1").await;
    let result = server.api.result("po-1").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(workflow_ids_pushed(&v1), ["po-1"]);
    assert_eq!(workflow_ids_pushed(&v1_again), ["po-1"]);
    server.stop().await;
}

/// Schedules `ship` on the run's own queue and `invoice` on `billing`
/// once approved; completes with both results.
fn shipping_workflow(request: &Value) -> Value {
    let events = request["history"].as_array().cloned().unwrap_or_default();
    let of = |t: &str| events.iter().filter(|e| e["event_type"] == t).count();
    if of("ActivityTaskCompleted") == 2 {
        return json!({"commands": [{"command_type": "CompleteWorkflowExecution",
            "attributes": {"result": "shipped"}}]});
    }
    if of("WorkflowExecutionSignaled") == 1 && of("ActivityTaskScheduled") == 0 {
        let activity = |id: &str, queue: Option<&str>| {
            let mut a = json!({"activity_id": id, "activity_type": id,
                "start_to_close_timeout": "10s"});
            if let Some(q) = queue {
                a["task_queue"] = json!(q);
            }
            json!({"command_type": "ScheduleActivityTask", "attributes": a})
        };
        return json!({"commands": [activity("ship", None), activity("invoice", Some("billing"))]});
    }
    json!({"commands": []})
}

fn activities_pushed(handler: &common::TestHandler) -> Vec<String> {
    handler
        .received
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "activity_task")
        .map(|p| p["activity_type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// protocol.md §1.4: an activity on the run's own queue goes to the run's
/// version; one on another queue goes to that queue's current version.
async fn activities_go_to_the_pinned_version_of_their_own_queue_only(db: Db) {
    let server = spawn_server(db).await;
    let orders_v1 = versioned_handler(&server, "orders", "v1", shipping_workflow).await;
    let billing_v1 = versioned_handler(&server, "billing", "v1", shipping_workflow).await;
    server.api.start("o-1", "Order", "orders", json!({})).await;
    wait_idle(&server, "o-1").await;
    let orders_v2 = versioned_handler(&server, "orders", "v2", shipping_workflow).await;
    let billing_v2 = versioned_handler(&server, "billing", "v2", shipping_workflow).await;
    server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/o-1/signal/approve",
            json!({}),
        )
        .await;
    let result = server.api.result("o-1").await;
    assert_eq!(result["result"], "shipped", "{result}");
    assert_eq!(activities_pushed(&orders_v1), ["ship"]);
    assert_eq!(activities_pushed(&billing_v2), ["invoice"]);
    assert!(activities_pushed(&orders_v2).is_empty());
    assert!(activities_pushed(&billing_v1).is_empty());
    server.stop().await;
}

/// A shopping cart written against raw history (docs/protocol.md §5.6):
/// `add_item` is validated (quantity > 0) and answers the number of items;
/// `wait_for_go` is accepted at once but completes only after a `go`
/// signal; `never` is accepted and never completes; a `checkout` signal
/// completes the workflow.
async fn spawn_cart_handler(server: &common::TestServer) -> Arc<AtomicU32> {
    let validations = Arc::new(AtomicU32::new(0));
    let counted = validations.clone();
    let handler = spawn_handler(move |req: Value| {
        let counted = counted.clone();
        async move {
            if req["type"] == "update_validation" {
                counted.fetch_add(1, Ordering::SeqCst);
                let qty = req["update_args"][0]["qty"].as_i64().unwrap_or(0);
                return match req["update_name"].as_str() {
                    Some("add_item") if qty <= 0 => (StatusCode::OK, json!({"failure": {
                        "message": "quantity must be positive", "type": "ApplicationError"}})),
                    Some("add_item" | "wait_for_go" | "never") => (StatusCode::OK, json!({"accepted": true})),
                    _ => (StatusCode::OK, json!({"failure": {"message": "unknown update", "type": "ApplicationError"}})),
                };
            }
            let history = req["history"].as_array().cloned().unwrap_or_default();
            let signaled = |name: &str| {
                history.iter().any(|e| {
                    e["event_type"] == "WorkflowExecutionSignaled"
                        && e["attributes"]["signal_name"] == name
                })
            };
            let completed: Vec<&Value> = history
                .iter()
                .filter(|e| e["event_type"] == "WorkflowExecutionUpdateCompleted")
                .map(|e| &e["attributes"]["update_id"])
                .collect();
            let mut items = 0;
            let mut commands = Vec::new();
            for e in &history {
                if e["event_type"] != "WorkflowExecutionUpdateAdmitted" {
                    continue;
                }
                let a = &e["attributes"];
                if a["update_name"] == "add_item" {
                    items += 1;
                }
                if completed.contains(&&a["update_id"]) {
                    continue;
                }
                let result = match a["update_name"].as_str() {
                    Some("add_item") => json!(items),
                    Some("wait_for_go") if signaled("go") => json!("went"),
                    _ => continue,
                };
                commands.push(json!({"command_type": "CompleteWorkflowUpdate",
                    "attributes": {"update_id": a["update_id"], "result": result}}));
            }
            if signaled("checkout") {
                commands.push(json!({"command_type": "CompleteWorkflowExecution",
                    "attributes": {"result": items}}));
            }
            (StatusCode::OK, json!({"commands": commands}))
        }
    })
    .await;
    server.api.register("carts", &handler.url).await;
    validations
}

async fn updates_are_validated_recorded_and_deduplicated(db: Db) {
    let server = spawn_server(db).await;
    let validations = spawn_cart_handler(&server).await;
    server.api.start("cart-1", "Cart", "carts", json!({})).await;
    wait_idle(&server, "cart-1").await;
    let base = "/api/v1/namespaces/default/workflows/cart-1";
    let add = format!("{base}/update/add_item");
    let (status, body) = server
        .api
        .post(
            &add,
            json!({"args": [{"sku": "A", "qty": 2}], "update_id": "u1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["update_id"], "u1");
    assert_eq!(body["stage"], "COMPLETED");
    assert_eq!(body["result"], 1);
    let types = event_types(&server.api.history("cart-1").await);
    let recorded: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .filter(|t| t.starts_with("WorkflowExecutionUpdate"))
        .collect();
    assert_eq!(
        recorded,
        [
            "WorkflowExecutionUpdateAdmitted",
            "WorkflowExecutionUpdateAccepted",
            "WorkflowExecutionUpdateCompleted"
        ]
    );

    // A rejected update writes nothing.
    let before = server.api.history("cart-1").await;
    let (status, body) = server
        .api
        .post(&add, json!({"args": [{"sku": "B", "qty": 0}]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "update_rejected");
    assert_eq!(body["failure"]["message"], "quantity must be positive");
    assert_eq!(server.api.history("cart-1").await, before);

    // A retry with the same update id gets the first outcome, without a
    // second validation.
    let seen = validations.load(Ordering::SeqCst);
    let (status, body) = server
        .api
        .post(
            &add,
            json!({"args": [{"sku": "C", "qty": 5}], "update_id": "u1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["stage"].clone(), body["result"].clone()),
        (json!("COMPLETED"), json!(1))
    );
    assert_eq!(validations.load(Ordering::SeqCst), seen);
    assert_eq!(server.api.history("cart-1").await, before);

    // Waiting for ACCEPTED answers once the handler runs; the outcome is
    // fetched later by update id.
    let (status, body) = server
        .api
        .post(
            &format!("{base}/update/wait_for_go"),
            json!({"update_id": "u2", "wait_for_stage": "ACCEPTED"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stage"], "ACCEPTED");
    assert!(body.get("result").is_none(), "{body}");
    server
        .api
        .post(&format!("{base}/signal/go"), json!({}))
        .await;
    let (status, body) = server.api.get(&format!("{base}/updates/u2")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["stage"].clone(), body["result"].clone()),
        (json!("COMPLETED"), json!("went"))
    );
    let (status, _) = server.api.get(&format!("{base}/updates/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = server
        .api
        .post(
            &format!("{base}/update/never"),
            json!({"update_id": "u3", "wait_for_stage": "ACCEPTED"}),
        )
        .await;
    assert_eq!(
        (status, body["stage"].clone()),
        (StatusCode::OK, json!("ACCEPTED"))
    );

    // A closed run refuses new updates but still answers known ones; an
    // update it never completed is a conflict for whoever waits on it.
    server
        .api
        .post(&format!("{base}/signal/checkout"), json!({}))
        .await;
    assert_eq!(server.api.result("cart-1").await["result"], 1);
    let (status, body) = server.api.get(&format!("{base}/updates/u3")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("workflow execution already completed"),
        "{body}"
    );
    let (status, body) = server
        .api
        .post(&add, json!({"args": [{"sku": "D", "qty": 1}]}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = server
        .api
        .post(&add, json!({"args": [], "update_id": "u1"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], 1);
    server.stop().await;
}

/// The whole history of one run of a workflow.
async fn run_history(server: &common::TestServer, workflow_id: &str, run_id: &str) -> Vec<Value> {
    let (status, body) = server
        .api
        .get(&format!(
            "/api/v1/namespaces/default/workflows/{workflow_id}/history?run_id={run_id}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["events"].as_array().cloned().unwrap_or_default()
}

/// `GET …/result?{query}`.
async fn result_with(server: &common::TestServer, workflow_id: &str, query: &str) -> Value {
    let (status, body) = server
        .api
        .get(&format!(
            "/api/v1/namespaces/default/workflows/{workflow_id}/result?{query}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The WorkflowExecutionStarted attributes of a workflow task's history.
fn started_attributes(request: &Value) -> Value {
    request["history"][0]["attributes"].clone()
}

fn command(command_type: &str, attributes: Value) -> Value {
    json!({"commands": [{"command_type": command_type, "attributes": attributes}]})
}

async fn continue_as_new_chain_then_result_via_workflow_id(db: Db) {
    let server = spawn_server(db).await;
    // Counts to 3, one run per step, then reports what the last run saw.
    let _handler = spawn_handler(|req: Value| async move {
        let started = started_attributes(&req);
        let n = started["input"]["n"].as_u64().unwrap_or(0);
        let body = if n < 3 {
            command(
                "ContinueAsNewWorkflowExecution",
                json!({"input": {"n": n + 1}}),
            )
        } else {
            command(
                "CompleteWorkflowExecution",
                json!({"result": {"n": n, "memo": started["memo"],
                    "first": started["first_execution_run_id"],
                    "timeout": started["workflow_run_timeout"]}}),
            )
        };
        (StatusCode::OK, body)
    })
    .await;
    server.api.register("counters", &_handler.url).await;
    let extra = json!({"memo": {"team": "a"}, "workflow_run_timeout": "1h"});
    let (status, started) = server
        .api
        .start("count-1", "Counter", "counters", extra)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let first = started["run_id"].as_str().unwrap().to_owned();
    // The result of the first run follows the chain to its last run.
    let result = result_with(&server, "count-1", &format!("run_id={first}&wait=30s")).await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(
        result["result"],
        json!({"n": 3, "memo": {"team": "a"}, "first": first, "timeout": "3600s"})
    );
    assert_ne!(result["run_id"], json!(first));
    // Without following, the first run says how its chain went on.
    let own = result_with(
        &server,
        "count-1",
        &format!("run_id={first}&follow_runs=false"),
    )
    .await;
    assert_eq!(own["status"], "CONTINUED_AS_NEW", "{own}");
    let (_, runs) = server
        .api
        .get("/api/v1/namespaces/default/workflows?workflow_id=count-1")
        .await;
    let statuses: Vec<&str> = runs["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        statuses,
        [
            "COMPLETED",
            "CONTINUED_AS_NEW",
            "CONTINUED_AS_NEW",
            "CONTINUED_AS_NEW"
        ]
    );
    let history = run_history(&server, "count-1", &first).await;
    let events = &history;
    let closed = closing_event(events, "WorkflowExecutionContinuedAsNew");
    assert_eq!(closed["attributes"]["input"], json!({"n": 1}));
    assert_eq!(
        closed["attributes"]["new_execution_run_id"],
        own["new_execution_run_id"]
    );
    let described = server.api.describe("count-1").await;
    assert_eq!(described["memo"], json!({"team": "a"}));
    assert_eq!(described["first_execution_run_id"], json!(first));
    server.stop().await;
}

async fn workflow_retry_policy_starts_the_next_attempt(db: Db) {
    let server = spawn_server(db).await;
    // Fails its first two attempts; a "Fatal" input fails with a
    // non-retryable type.
    let handler = spawn_handler(|req: Value| async move {
        let started = started_attributes(&req);
        let attempt = started["attempt"].as_u64().unwrap_or(0);
        let error_type = started["input"]["error"]
            .as_str()
            .unwrap_or("Flaky")
            .to_owned();
        let body = if attempt < 3 {
            command(
                "FailWorkflowExecution",
                json!({"failure": {"message": format!("attempt {attempt}"), "type": error_type}}),
            )
        } else {
            command(
                "CompleteWorkflowExecution",
                json!({"result": {"attempt": attempt, "input": started["input"]}}),
            )
        };
        (StatusCode::OK, body)
    })
    .await;
    server.api.register("retries", &handler.url).await;
    let policy = json!({"initial_interval": "100ms", "maximum_attempts": 5,
        "non_retryable_error_types": ["Fatal"]});
    let (status, started) = server
        .api
        .start(
            "wf-retry-1",
            "Flaky",
            "retries",
            json!({"retry_policy": policy}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let result = server.api.result("wf-retry-1").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["result"]["attempt"], 3);
    assert_eq!(result["result"]["input"], json!({"id": "wf-retry-1"}));
    let first = started["run_id"].as_str().unwrap();
    let history = run_history(&server, "wf-retry-1", first).await;
    let failed = closing_event(&history, "WorkflowExecutionFailed");
    assert_eq!(failed["attributes"]["retry_state"], "IN_PROGRESS");
    assert!(failed["attributes"]["new_execution_run_id"].is_string());
    let last = server.api.history("wf-retry-1").await;
    assert_eq!(last[0]["attributes"]["attempt"], 3);
    assert_eq!(last[0]["attributes"]["initiator"], "RETRY");
    assert_eq!(
        last[0]["attributes"]["continued_failure"]["message"],
        "attempt 2"
    );

    // A non-retryable error type closes the chain at once.
    let extra = json!({"retry_policy": policy, "input": {"error": "Fatal"}});
    server
        .api
        .start("wf-retry-2", "Flaky", "retries", extra)
        .await;
    let result = server.api.result("wf-retry-2").await;
    assert_eq!(result["status"], "FAILED", "{result}");
    let history = server.api.history("wf-retry-2").await;
    let failed = closing_event(&history, "WorkflowExecutionFailed");
    assert_eq!(failed["attributes"]["retry_state"], "NON_RETRYABLE_FAILURE");
    let (_, runs) = server
        .api
        .get("/api/v1/namespaces/default/workflows?workflow_id=wf-retry-2")
        .await;
    assert_eq!(runs["executions"].as_array().map(Vec::len), Some(1));
    server.stop().await;
}

/// The event id of the `nth` (1-based) WorkflowTaskCompleted of a history.
fn nth_completed_task(history: &[Value], nth: usize) -> i64 {
    history
        .iter()
        .filter(|e| e["event_type"] == "WorkflowTaskCompleted")
        .nth(nth - 1)
        .and_then(|e| e["event_id"].as_i64())
        .unwrap()
}

async fn reset_reruns_the_later_activities(db: Db) {
    let server = spawn_server(db).await;
    let plan = vec![
        ("charge", json!({})),
        ("reserve", json!({})),
        ("ship", json!({})),
    ];
    let runs: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = runs.clone();
    let handler = spawn_handler(move |req: Value| {
        let (plan, seen) = (plan.clone(), seen.clone());
        async move {
            if req["type"] == "workflow_task" {
                return (StatusCode::OK, sequential_workflow(&req, &plan));
            }
            seen.lock()
                .unwrap()
                .push(req["activity_type"].as_str().unwrap_or_default().to_owned());
            activity_result(&req)
        }
    })
    .await;
    server.api.register("orders", &handler.url).await;
    let (_, started) = server
        .api
        .start("reset-1", "Order", "orders", json!({}))
        .await;
    assert_eq!(server.api.result("reset-1").await["status"], "COMPLETED");
    let history = server.api.history("reset-1").await;
    // Back to the task that saw charge's result and scheduled reserve.
    let point = nth_completed_task(&history, 2);
    let (status, reset) = server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/reset-1/reset",
            json!({"event_id": point, "reason": "reserve had a bug"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_ne!(reset["run_id"], started["run_id"]);
    let result = server.api.result("reset-1").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["run_id"], reset["run_id"]);
    assert_eq!(
        runs.lock().unwrap().clone(),
        ["charge", "reserve", "ship", "reserve", "ship"]
    );
    let new_history = server.api.history("reset-1").await;
    let failed = closing_event(&new_history, "WorkflowTaskFailed");
    assert_eq!(failed["attributes"]["cause"], "RESET_WORKFLOW");
    assert_eq!(failed["attributes"]["base_run_id"], started["run_id"]);
    assert_eq!(failed["event_id"].as_i64(), Some(point));
    // The copied prefix is the old run's, event for event.
    assert_eq!(
        new_history[..(point - 1) as usize],
        history[..(point - 1) as usize]
    );
    server.stop().await;
}

async fn reset_of_an_open_run_terminates_it_and_reapplies_signals(db: Db) {
    let server = spawn_server(db).await;
    let _handler = spawn_approval_handler(&server).await;
    let (_, started) = server
        .api
        .start("po-reset", "PurchaseOrder", "approvals", json!({}))
        .await;
    wait_idle(&server, "po-reset").await;
    let signal = "/api/v1/namespaces/default/workflows/po-reset/signal";
    let (status, _) = server
        .api
        .post(&format!("{signal}/note"), json!({"input": "call me"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, reset) = server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/po-reset/reset",
            json!({"reset_type": "FIRST_WORKFLOW_TASK", "reason": "retry approval"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    let new_run = reset["run_id"].as_str().unwrap().to_owned();
    let first = started["run_id"].as_str().unwrap();
    let old = result_with(
        &server,
        "po-reset",
        &format!("run_id={first}&follow_runs=false"),
    )
    .await;
    assert_eq!(old["status"], "TERMINATED", "{old}");
    assert_eq!(old["new_execution_run_id"], json!(new_run));
    // Following from the old run leads to the reset run.
    let followed = result_with(&server, "po-reset", &format!("run_id={first}")).await;
    assert_eq!(followed["run_id"], json!(new_run));
    let old_history = run_history(&server, "po-reset", first).await;
    let terminated = closing_event(&old_history, "WorkflowExecutionTerminated");
    let reason = terminated["attributes"]["reason"].as_str().unwrap();
    assert!(reason.contains(&new_run), "{reason}");
    let history = server.api.history("po-reset").await;
    let note = closing_event(&history, "WorkflowExecutionSignaled");
    assert_eq!(note["attributes"]["input"], "call me");
    wait_idle(&server, "po-reset").await;
    let (status, _) = server
        .api
        .post(&format!("{signal}/approve"), json!({"input": "ok"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let result = server.api.result("po-reset").await;
    assert_eq!(
        (&result["status"], &result["run_id"]),
        (&json!("COMPLETED"), &json!(new_run))
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Child workflows and external signals/cancels (protocol.md §5.6): the
// transfer queue carries each step; a crash between steps only delays it,
// because every row is committed with the event that implies it and every
// step is idempotent (the same outbox the kill tests exercise).

/// One command of a workflow task answer.
fn one_command(command_type: &str, attributes: Value) -> Value {
    json!({"command_type": command_type, "attributes": attributes})
}

fn complete(result: Value) -> Value {
    json!({"commands": [one_command("CompleteWorkflowExecution", json!({"result": result}))]})
}

fn find<'a>(history: &'a [Value], event_type: &str) -> Option<&'a Value> {
    history.iter().find(|e| e["event_type"] == event_type)
}

/// Workflows by type: `Order` starts the children its input lists and
/// completes with what their closing events say; `Ship` completes with its
/// input; `Idle` waits forever; `Notify` signals and cancels the targets
/// its input names and completes with the outcomes.
fn family_workflow(request: &Value) -> Value {
    let history = request["history"].as_array().cloned().unwrap_or_default();
    let input = &history[0]["attributes"]["input"];
    match request["workflow_type"].as_str() {
        Some("Ship") => complete(json!({"shipped": input})),
        Some("Order") => {
            if find(&history, "StartChildWorkflowExecutionInitiated").is_none() {
                let starts: Vec<Value> = input["children"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| one_command("StartChildWorkflowExecution", c))
                    .collect();
                return json!({"commands": starts});
            }
            let n = input["children"].as_array().map_or(0, Vec::len);
            let outcomes: Vec<Value> = history
                .iter()
                .filter(|e| {
                    let t = e["event_type"].as_str().unwrap_or_default();
                    (t.starts_with("ChildWorkflowExecution")
                        && t != "ChildWorkflowExecutionStarted")
                        || t == "StartChildWorkflowExecutionFailed"
                })
                .map(|e| json!({"event": e["event_type"], "attributes": e["attributes"]}))
                .collect();
            if input["wait"] == true || outcomes.len() < n {
                return json!({"commands": []});
            }
            complete(json!(outcomes))
        }
        Some("Notify") => {
            if find(&history, "SignalExternalWorkflowExecutionInitiated").is_none() {
                let mut commands: Vec<Value> = input["signal"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|id| {
                        one_command(
                            "SignalExternalWorkflowExecution",
                            json!({"workflow_id": id, "signal_name": "approve",
                                "input": {"approver": "notify"}}),
                        )
                    })
                    .collect();
                commands.extend(
                    input["cancel"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|id| {
                            one_command(
                                "RequestCancelExternalWorkflowExecution",
                                json!({"workflow_id": id, "reason": "superseded"}),
                            )
                        }),
                );
                return json!({"commands": commands});
            }
            let outcomes: Vec<Value> = history
                .iter()
                .filter(|e| {
                    let t = e["event_type"].as_str().unwrap_or_default();
                    t.starts_with("ExternalWorkflowExecution")
                        || t.ends_with("ExternalWorkflowExecutionFailed")
                })
                .map(|e| {
                    json!([
                        e["event_type"],
                        e["attributes"]["workflow_execution"]["workflow_id"]
                    ])
                })
                .collect();
            let n = input["signal"].as_array().map_or(0, Vec::len)
                + input["cancel"].as_array().map_or(0, Vec::len);
            if outcomes.len() < n {
                return json!({"commands": []});
            }
            complete(json!(outcomes))
        }
        _ => approval_workflow(request),
    }
}

async fn spawn_family_handler(server: &common::TestServer, queues: &[&str]) -> common::TestHandler {
    let handler = spawn_handler(|req: Value| async move {
        match req["type"].as_str() {
            Some("workflow_task") => (StatusCode::OK, family_workflow(&req)),
            _ => activity_result(&req),
        }
    })
    .await;
    for q in queues {
        server.api.register(q, &handler.url).await;
    }
    handler
}

async fn child_completes_and_the_parent_sees_its_result(db: Db) {
    let server = spawn_server(db).await;
    let _handler = spawn_family_handler(&server, &["orders", "shipping"]).await;
    let children = json!([
        {"workflow_id": "ship-1", "workflow_type": "Ship", "task_queue": "shipping", "input": {"line": 1}},
        {"workflow_id": "ship-2", "workflow_type": "Ship", "input": {"line": 2}},
    ]);
    let (status, started) = server
        .api
        .start(
            "order-7",
            "Order",
            "orders",
            json!({"input": {"children": children}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let result = server.api.result("order-7").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let mut outcomes = result["result"].as_array().unwrap().clone();
    assert_eq!(outcomes.len(), 2, "{result}");
    // The children run concurrently and may close in either order.
    outcomes.sort_by_key(|o| o["attributes"]["result"]["shipped"]["line"].as_i64());
    for (o, line) in outcomes.iter().zip([1, 2]) {
        assert_eq!(o["event"], "ChildWorkflowExecutionCompleted", "{o}");
        assert_eq!(
            o["attributes"]["result"],
            json!({"shipped": {"line": line}})
        );
        assert_eq!(o["attributes"]["workflow_type"], "Ship");
    }
    // The child's history names its parent; the default task queue is the
    // parent's.
    let child = server.api.describe("ship-2").await;
    assert_eq!(child["execution"]["task_queue"], "orders", "{child}");
    assert_eq!(child["parent"]["workflow_id"], "order-7");
    assert_eq!(child["parent"]["run_id"], started["run_id"]);
    assert_eq!(child["parent"]["parent_close_policy"], "TERMINATE");
    let first = &server.api.history("ship-1").await[0];
    assert_eq!(
        first["attributes"]["parent"]["initiated_event_id"], 5,
        "{first}"
    );
    // The parent's describe lists both children, closed, with run ids.
    let parent = server.api.describe("order-7").await;
    let listed = parent["children"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{parent}");
    for c in listed {
        assert_eq!(c["status"], "COMPLETED", "{c}");
        assert!(c["run_id"].is_string(), "{c}");
    }
    server.stop().await;
}

async fn child_id_already_running_fails_the_start(db: Db) {
    let server = spawn_server(db).await;
    let _handler = spawn_family_handler(&server, &["orders"]).await;
    // No endpoint serves "nowhere": the run stays open.
    server
        .api
        .start("taken", "Idle", "nowhere", json!({}))
        .await;
    let children = json!([{"workflow_id": "taken", "workflow_type": "Ship"}]);
    server
        .api
        .start(
            "order-8",
            "Order",
            "orders",
            json!({"input": {"children": children}}),
        )
        .await;
    let result = server.api.result("order-8").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let outcome = &result["result"][0];
    assert_eq!(
        outcome["event"], "StartChildWorkflowExecutionFailed",
        "{result}"
    );
    assert_eq!(outcome["attributes"]["cause"], "WORKFLOW_ALREADY_EXISTS");
    // The running workflow is untouched: no parent, still running.
    let taken = server.api.describe("taken").await;
    assert_eq!(taken["execution"]["status"], "RUNNING");
    assert!(taken.get("parent").is_none(), "{taken}");
    assert_eq!(server.api.history("taken").await.len(), 2);
    server.stop().await;
}

async fn parent_close_policies_reach_open_children(db: Db) {
    let server = spawn_server(db).await;
    let _handler = spawn_family_handler(&server, &["orders"]).await;
    let children = json!([
        {"workflow_id": "kid-t", "workflow_type": "Idle", "task_queue": "nowhere"},
        {"workflow_id": "kid-a", "workflow_type": "Idle", "task_queue": "nowhere", "parent_close_policy": "ABANDON"},
        {"workflow_id": "kid-c", "workflow_type": "Idle", "task_queue": "nowhere", "parent_close_policy": "REQUEST_CANCEL"},
    ]);
    server
        .api
        .start(
            "order-9",
            "Order",
            "orders",
            json!({"input": {"children": children, "wait": true}}),
        )
        .await;
    assert!(
        common::eventually(Duration::from_secs(10), || async {
            let d = server.api.describe("order-9").await;
            d["children"]
                .as_array()
                .is_some_and(|c| c.len() == 3 && c.iter().all(|c| c["status"] == "RUNNING"))
        })
        .await,
        "the children never started"
    );
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/order-9/terminate",
            json!({"reason": "operator"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let result = server.api.result("kid-t").await;
    assert_eq!(result["status"], "TERMINATED", "{result}");
    let terminated = closing_event(
        &server.api.history("kid-t").await,
        "WorkflowExecutionTerminated",
    )
    .clone();
    assert_eq!(terminated["attributes"]["reason"], "by parent close policy");
    // Its workflow task is never delivered (no endpoint), so the request
    // waits behind it (§11): describe shows it.
    assert!(
        common::eventually(Duration::from_secs(10), || async {
            server.api.describe("kid-c").await["cancel_requested"] == true
        })
        .await,
        "REQUEST_CANCEL never reached kid-c"
    );
    // ABANDON leaves its child running; the others' outcomes do not reach
    // the closed parent.
    assert_eq!(
        server.api.describe("kid-a").await["execution"]["status"],
        "RUNNING"
    );
    assert_eq!(
        server.api.describe("kid-c").await["execution"]["status"],
        "RUNNING"
    );
    let parent_history = server.api.history("order-9").await;
    assert_eq!(
        event_types(&parent_history).last().map(String::as_str),
        Some("WorkflowExecutionTerminated")
    );
    server.stop().await;
}

async fn signal_and_cancel_external_workflows(db: Db) {
    let server = spawn_server(db).await;
    let _handler = spawn_family_handler(&server, &["orders", "approvals"]).await;
    for id in ["po-x", "po-y"] {
        server
            .api
            .start(id, "PurchaseOrder", "approvals", json!({}))
            .await;
        wait_idle(&server, id).await;
    }
    server
        .api
        .start(
            "notify-1",
            "Notify",
            "orders",
            json!({"input": {"signal": ["po-x", "ghost"], "cancel": ["po-y"]}}),
        )
        .await;
    let result = server.api.result("notify-1").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let mut outcomes: Vec<Value> = result["result"].as_array().unwrap().clone();
    outcomes.sort_by_key(|o| o[1].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        outcomes,
        [
            json!(["SignalExternalWorkflowExecutionFailed", "ghost"]),
            json!(["ExternalWorkflowExecutionSignaled", "po-x"]),
            json!(["ExternalWorkflowExecutionCancelRequested", "po-y"]),
        ]
    );
    let failed = closing_event(
        &server.api.history("notify-1").await,
        "SignalExternalWorkflowExecutionFailed",
    )
    .clone();
    assert_eq!(
        failed["attributes"]["cause"],
        "EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND"
    );
    let x = server.api.result("po-x").await;
    assert_eq!(x["result"], json!({"approver": "notify"}), "{x}");
    let y = server.api.result("po-y").await;
    assert_eq!(y["status"], "CANCELED", "{y}");
    assert_eq!(
        closing_event(
            &server.api.history("po-y").await,
            "WorkflowExecutionCancelRequested"
        )["attributes"]["cause"],
        "superseded"
    );
    server.stop().await;
}
async fn reset_reapplies_signals_buffered_behind_a_task_in_flight(db: Db) {
    let server = spawn_server(db).await;
    // The old run's task after the "hold" signal stays in flight until the
    // gate opens; the reset run's tasks are answered at once.
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let handler = spawn_handler(move |req: Value| {
        let g = g.clone();
        async move {
            let events = req["history"].as_array().cloned().unwrap_or_default();
            let holding = events
                .iter()
                .any(|e| e["attributes"]["signal_name"] == "hold");
            let reset = events
                .iter()
                .any(|e| e["attributes"]["cause"] == "RESET_WORKFLOW");
            if req["type"] == "workflow_task" && holding && !reset {
                g.notified().await;
            }
            (StatusCode::OK, approval_workflow(&req))
        }
    })
    .await;
    server.api.register("approvals", &handler.url).await;
    server
        .api
        .start("po-buffered", "PurchaseOrder", "approvals", json!({}))
        .await;
    wait_idle(&server, "po-buffered").await;
    let signal = "/api/v1/namespaces/default/workflows/po-buffered/signal";
    server.api.post(&format!("{signal}/hold"), json!({})).await;
    let pushed = || {
        handler
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p["type"] == "workflow_task")
            .count()
    };
    assert!(
        common::eventually(Duration::from_secs(10), || async { pushed() == 2 }).await,
        "the held task was never pushed"
    );
    // Buffered behind the held task: only the terminate flushes it.
    let (status, _) = server
        .api
        .post(&format!("{signal}/note"), json!({"input": "late"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, reset) = server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/po-buffered/reset",
            json!({"reset_type": "FIRST_WORKFLOW_TASK", "reason": "unstick"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    gate.notify_one();
    let history = server.api.history("po-buffered").await;
    let signals: Vec<&Value> = history
        .iter()
        .filter(|e| e["event_type"] == "WorkflowExecutionSignaled")
        .map(|e| &e["attributes"]["signal_name"])
        .collect();
    assert_eq!(signals, [&json!("hold"), &json!("note")]);
    server
        .api
        .post(&format!("{signal}/approve"), json!({"input": "ok"}))
        .await;
    let result = server.api.result("po-buffered").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["run_id"], reset["run_id"]);
    server.stop().await;
}

/// Run 0 waits for a `next` signal and continues as new; run 1 completes.
fn two_run_chain(request: &Value) -> Value {
    let events = request["history"].as_array().cloned().unwrap_or_default();
    if started_attributes(request)["input"]["n"] == 1 {
        return command("CompleteWorkflowExecution", json!({"result": "done"}));
    }
    if events
        .iter()
        .any(|e| e["event_type"] == "WorkflowExecutionSignaled")
    {
        return command("ContinueAsNewWorkflowExecution", json!({"input": {"n": 1}}));
    }
    json!({"commands": []})
}

/// protocol.md §1.4: a run stays on its version, but the next run of its
/// chain is new and starts on the current version.
async fn continue_as_new_is_the_upgrade_point(db: Db) {
    let server = spawn_server(db).await;
    let v1 = versioned_handler(&server, "chains", "v1", two_run_chain).await;
    let (_, started) = server
        .api
        .start("chain-1", "Chain", "chains", json!({"input": {"n": 0}}))
        .await;
    wait_idle(&server, "chain-1").await;
    let v2 = versioned_handler(&server, "chains", "v2", two_run_chain).await;
    server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/chain-1/signal/next",
            json!({}),
        )
        .await;
    let result = result_with(&server, "chain-1", "wait=30s").await;
    assert_eq!(result["result"], "done", "{result}");
    let last = server.api.describe("chain-1").await;
    assert_ne!(last["execution"]["run_id"], started["run_id"]);
    assert_eq!(last["pinned_version"], "v2", "{last}");
    let run_ids = |h: &common::TestHandler| -> Vec<Value> {
        let mut ids: Vec<Value> = h
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|p| p["run_id"].clone())
            .collect();
        ids.dedup();
        ids
    };
    assert_eq!(run_ids(&v1), [started["run_id"].clone()]);
    assert_eq!(run_ids(&v2), [last["execution"]["run_id"].clone()]);
    server.stop().await;
}

/// protocol.md §1.4: a child is a new run, pinned to its own task queue's
/// current version, whatever its parent's pin.
async fn children_pin_to_their_queues_current_version(db: Db) {
    let server = spawn_server(db).await;
    let _orders = versioned_handler(&server, "orders", "v1", family_workflow).await;
    let _old = versioned_handler(&server, "shipping", "s1", family_workflow).await;
    let shipping = versioned_handler(&server, "shipping", "s2", family_workflow).await;
    let children = json!([
        {"workflow_id": "ship-1", "workflow_type": "Ship", "task_queue": "shipping", "input": 1},
        {"workflow_id": "ship-2", "workflow_type": "Ship", "input": 2},
    ]);
    server
        .api
        .start(
            "order-1",
            "Order",
            "orders",
            json!({"input": {"children": children}}),
        )
        .await;
    let result = server.api.result("order-1").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let pins: Vec<Value> = futures::future::join_all(
        ["order-1", "ship-1", "ship-2"].map(|id| server.api.describe(id)),
    )
    .await
    .into_iter()
    .map(|d| d["pinned_version"].clone())
    .collect();
    assert_eq!(pins, [json!("v1"), json!("s2"), json!("v1")]);
    assert_eq!(workflow_ids_pushed(&shipping), ["ship-1"]);
    server.stop().await;
}

/// A command of a workflow task answer with U+0000 in one attribute
/// outside its payloads, and the cause its refusal records.
fn nul_command(case: &str) -> (Value, &'static str) {
    let nul = "x\u{0}y";
    let (command_type, attributes, cause) = match case {
        "timer-id" => (
            "StartTimer",
            json!({"timer_id": nul, "start_to_fire_timeout": "1s"}),
            "BAD_START_TIMER_ATTRIBUTES",
        ),
        "activity-queue" => (
            "ScheduleActivityTask",
            json!({"activity_id": "1", "activity_type": "echo", "task_queue": nul,
                   "start_to_close_timeout": "5s"}),
            "BAD_SCHEDULE_ACTIVITY_ATTRIBUTES",
        ),
        "activity-retry" => (
            "ScheduleActivityTask",
            json!({"activity_id": "1", "activity_type": "echo", "start_to_close_timeout": "5s",
                   "retry_policy": {"non_retryable_error_types": ["Fine", nul]}}),
            "BAD_SCHEDULE_ACTIVITY_ATTRIBUTES",
        ),
        "child-id" => (
            "StartChildWorkflowExecution",
            json!({"workflow_id": nul, "workflow_type": "Child"}),
            "BAD_START_CHILD_EXECUTION_ATTRIBUTES",
        ),
        "signal-name" => (
            "SignalExternalWorkflowExecution",
            json!({"workflow_id": "elsewhere", "signal_name": nul}),
            "BAD_SIGNAL_WORKFLOW_EXECUTION_ATTRIBUTES",
        ),
        "marker-name" => (
            "RecordMarker",
            json!({"marker_name": nul}),
            "BAD_RECORD_MARKER_ATTRIBUTES",
        ),
        "continue-type" => (
            "ContinueAsNewWorkflowExecution",
            json!({"workflow_type": nul}),
            "BAD_CONTINUE_AS_NEW_ATTRIBUTES",
        ),
        other => panic!("no case {other}"),
    };
    (
        json!({"command_type": command_type, "attributes": attributes}),
        cause,
    )
}

/// protocol.md §5.4: a command with U+0000 outside its payloads is a bad
/// command on both backends (WorkflowTaskFailed, then the retried task
/// goes on), never an outcome PostgreSQL cannot commit; NULs inside
/// payloads (activity inputs, results, failures) are kept as sent.
async fn nul_in_answers_is_refused_outside_payloads_and_kept_inside(db: Db) {
    const CASES: [&str; 7] = [
        "timer-id",
        "activity-queue",
        "activity-retry",
        "child-id",
        "signal-name",
        "marker-name",
        "continue-type",
    ];
    let server = spawn_server(db).await;
    let plan = vec![
        ("echo", json!({"input": {"text": "in\u{0}put"}})),
        ("boom", json!({})),
    ];
    let handler = spawn_handler(move |req: Value| {
        let plan = plan.clone();
        async move {
            let workflow_id = req["workflow_id"].as_str().unwrap_or_default().to_owned();
            match req["type"].as_str() {
                Some("workflow_task") if workflow_id == "kept" => {
                    (StatusCode::OK, sequential_workflow(&req, &plan))
                }
                Some("workflow_task") if req["attempt"] == 1 => {
                    let (command, _) = nul_command(&workflow_id);
                    (StatusCode::OK, json!({"commands": [command]}))
                }
                Some("workflow_task") => (
                    StatusCode::OK,
                    json!({"commands": [{"command_type": "CompleteWorkflowExecution",
                                         "attributes": {"result": "recovered"}}],
                           "identity": "worker\u{0}1"}),
                ),
                _ if req["activity_type"] == "echo" => (
                    StatusCode::OK,
                    json!({"result": {"got": req["input"], "said": "a\u{0}b"}}),
                ),
                _ => (
                    StatusCode::OK,
                    json!({"failure": {"message": "bad\u{0}news", "type": "Boom\u{0}",
                                       "non_retryable": true}}),
                ),
            }
        }
    })
    .await;
    server.api.register("nul", &handler.url).await;
    for case in CASES.iter().chain(&["kept"]) {
        let (status, started) = server.api.start(case, "Nul", "nul", json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{case}: {started}");
    }
    for case in CASES {
        let (_, cause) = nul_command(case);
        let result = server.api.result(case).await;
        assert_eq!(result["status"], "COMPLETED", "{case}: {result}");
        assert_eq!(result["result"], "recovered", "{case}: {result}");
        let history = server.api.history(case).await;
        let failed = closing_event(&history, "WorkflowTaskFailed");
        assert_eq!(failed["attributes"]["cause"], cause, "{case}: {failed}");
        let message = failed["attributes"]["failure"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            message.contains("contains U+0000 (NUL), which is accepted only inside payloads"),
            "{case}: {message}"
        );
        let completed = closing_event(&history, "WorkflowTaskCompleted");
        assert_eq!(completed["attributes"]["identity"], "worker\u{0}1");
    }
    let result = server.api.result("kept").await;
    assert_eq!(result["status"], "FAILED", "{result}");
    let history = server.api.history("kept").await;
    let completed = closing_event(&history, "ActivityTaskCompleted");
    assert_eq!(
        completed["attributes"]["result"],
        json!({"got": {"text": "in\u{0}put"}, "said": "a\u{0}b"})
    );
    let failed = closing_event(&history, "ActivityTaskFailed");
    assert_eq!(failed["attributes"]["failure"]["message"], "bad\u{0}news");
    assert_eq!(failed["attributes"]["failure"]["type"], "Boom\u{0}");
    server.stop().await;
}

/// Markers a workflow task of `long_histories_…` records.
const MARKERS_PER_TASK: usize = 400;

/// A push's history, as the handler reads it.
#[derive(serde::Deserialize)]
struct PushedHistory {
    #[serde(rename = "type")]
    kind: String,
    history: Vec<baton::engine::Event>,
    history_length: usize,
}

/// A run's history grows past 2,800 events over three nodes on one
/// database: the first with the run cache warm, the second just restarted
/// (the cache cold), the third with a cache too small to keep any run
/// (evicted after every commit). Every workflow task and query push must
/// carry exactly the bytes of serialising its events afresh, and those
/// events must be the stored history.
async fn long_histories_are_pushed_as_their_events_serialise(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("baton.db").display()),
        Db::Postgres => common::fresh_postgres_database().await,
    };
    let bodies: Arc<Mutex<Vec<axum::body::Bytes>>> = Arc::default();
    let handler = raw_marker_handler(bodies.clone()).await;
    let mut signals = 0;
    for cache_bytes in [None, None, Some(1)] {
        let mut options = common::test_options(url.clone());
        if let Some(bytes) = cache_bytes {
            options.apply.run_cache_bytes = bytes;
        }
        let server = common::spawn_server_with(options).await;
        if signals == 0 {
            server.api.register("long", &handler).await;
            let (status, body) = server.api.start("long-1", "Long", "long", json!({})).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        for _ in 0..2 {
            signals += 1;
            let want = (signals + 1) * MARKERS_PER_TASK;
            let path = "/api/v1/namespaces/default/workflows/long-1/signal/more";
            let (status, body) = server.api.post(path, json!({})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let recorded = common::eventually(Duration::from_secs(30), || {
                let api = &server.api;
                async move {
                    let history = api.history("long-1").await;
                    event_types(&history)
                        .iter()
                        .filter(|t| *t == "MarkerRecorded")
                        .count()
                        == want
                }
            })
            .await;
            assert!(
                recorded,
                "the workflow task after signal {signals} recorded its markers"
            );
        }
        let path = "/api/v1/namespaces/default/workflows/long-1/query/count";
        let (status, body) = server.api.post(path, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        server.stop().await;
    }
    let server = common::spawn_server_with(common::test_options(url)).await;
    let stored = server.api.history("long-1").await;
    server.stop().await;
    assert!(stored.len() > 2_800, "{} events", stored.len());
    let bodies = bodies.lock().unwrap().clone();
    let mut checked = 0;
    for body in &bodies {
        let push: PushedHistory = serde_json::from_slice(body).unwrap();
        if push.kind == "activity_task" {
            continue;
        }
        let mut expected = b"\"history\":".to_vec();
        expected.extend(serde_json::to_vec(&push.history).unwrap());
        assert!(
            body.windows(expected.len()).any(|w| w == expected),
            "a {} push of {} events is not its events' serialisation",
            push.kind,
            push.history.len()
        );
        assert_eq!(push.history_length, push.history.len());
        for (i, event) in push.history.iter().enumerate() {
            assert_eq!(event.event_id, i as i64 + 1, "dense, oldest first");
            if let Some(stored) = stored.get(i) {
                assert_eq!(
                    &serde_json::to_value(event).unwrap(),
                    stored,
                    "event {}",
                    i + 1
                );
            }
        }
        checked += 1;
    }
    // Seven workflow tasks (the first, one per signal) and three queries.
    assert!(checked >= 10, "{checked} pushes checked");
    let longest = bodies.iter().map(|b| b.len()).max().unwrap_or(0);
    assert!(longest > 200_000, "the longest push has {longest} bytes");
}

/// A handler that records raw push bodies and runs the `Long` workflow:
/// each workflow task started by the run's start or a new signal records
/// [`MARKERS_PER_TASK`] markers; a query answers with the marker count.
async fn raw_marker_handler(bodies: Arc<Mutex<Vec<axum::body::Bytes>>>) -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: axum::body::Bytes| {
            let bodies = bodies.clone();
            async move {
                bodies.lock().unwrap().push(body.clone());
                let req: Value = serde_json::from_slice(&body).unwrap();
                let history = req["history"].as_array().cloned().unwrap_or_default();
                let count = |t: &str| history.iter().filter(|e| e["event_type"] == t).count();
                let markers = count("MarkerRecorded");
                let reply = match req["type"].as_str() {
                    Some("query") => json!({"result": markers}),
                    _ if markers / MARKERS_PER_TASK > count("WorkflowExecutionSignaled") => {
                        json!({"commands": []})
                    }
                    _ => {
                        let commands: Vec<Value> = (0..MARKERS_PER_TASK)
                            .map(|i| {
                                json!({"command_type": "RecordMarker", "attributes": {
                                "marker_name": format!("m{}", markers + i),
                                "details": {"i": markers + i, "pad": "x".repeat(40)}}})
                            })
                            .collect();
                        json!({"commands": commands})
                    }
                };
                axum::Json(reply)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/")
}
