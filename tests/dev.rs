//! `baton dev --time-skipping`: tests move the server's clock instead of
//! waiting.

// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{closing_event, spawn_handler, spawn_server, Db};
use serde_json::{json, Value};

/// `baton dev --time-skipping`: a 7-day durable timer fires as soon as the
/// clock is skipped to it; without the flag the dev routes do not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_skipping_fires_a_week_long_timer_at_once() {
    let mut options = common::test_options("sqlite::memory:".to_owned());
    options.time_skipping = true;
    let server = common::spawn_server_with(options).await;
    let handler = spawn_handler(|req: Value| async move {
        let history = req["history"].as_array().cloned().unwrap_or_default();
        let commands = if history.iter().any(|e| e["event_type"] == "TimerFired") {
            json!([{"command_type": "CompleteWorkflowExecution", "attributes": {"result": "a week later"}}])
        } else if history.iter().any(|e| e["event_type"] == "TimerStarted") {
            json!([])
        } else {
            json!([{"command_type": "StartTimer", "attributes": {"timer_id": "week", "start_to_fire_timeout": "7 days"}}])
        };
        (StatusCode::OK, json!({"commands": commands}))
    })
    .await;
    server.api.register("q", &handler.url).await;
    server.api.start("trial", "Trial", "q", json!({})).await;
    let api = server.api.clone();
    let timer_started = common::eventually(Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            let history = api.history("trial").await;
            history.iter().any(|e| e["event_type"] == "TimerStarted")
        }
    })
    .await;
    assert!(timer_started);
    let (_, before) = server.api.get("/api/v1/dev/time").await;
    let begun = Instant::now();
    let (status, after) = server
        .api
        .post("/api/v1/dev/time/skip", json!({"to_next_timer": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{after}");
    let skipped = after["skipped"]
        .as_str()
        .unwrap()
        .trim_end_matches('s')
        .parse::<f64>()
        .unwrap();
    assert!(skipped >= 6.9 * 86_400.0, "{before} -> {after}");
    let result = server.api.result("trial").await;
    assert_eq!(result["result"], "a week later");
    assert!(begun.elapsed() < Duration::from_secs(5));
    let history = server.api.history("trial").await;
    let fired = closing_event(&history, "TimerFired");
    let started = closing_event(&history, "TimerStarted");
    let at = |e: &Value| {
        e["event_time"]
            .as_str()
            .unwrap()
            .parse::<baton::time::Timestamp>()
            .unwrap()
    };
    assert!(at(fired).millis() - at(started).millis() >= 7 * 86_400_000);
    server.stop().await;

    let plain = spawn_server(Db::Sqlite).await;
    let (status, body) = plain
        .api
        .post("/api/v1/dev/time/skip", json!({"duration": "1h"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    plain.stop().await;
}
