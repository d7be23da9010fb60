//! End-to-end tests of inbound webhook sources on a real node (both
//! databases), with deliveries signed as the providers sign them and
//! posted over loopback HTTP: a Stripe `payment_intent.succeeded` signals
//! the waiting workflow once however often it is delivered or replayed; a
//! GitHub `pull_request` closed+merged starts a workflow and an unmerged
//! one is ignored; a Standard Webhooks event signed by the official
//! `standardwebhooks` Python package (sdk-py's dev extra) is accepted and a
//! forged one refused and logged without its body; a failed action answers
//! 503 and the sender's retry succeeds once the cause is gone; an update
//! action is admitted once however often it is delivered.

#[macro_use]
mod common;

use std::process::Command;
use std::time::Duration as StdDuration;

use axum::http::StatusCode;
use baton::time::{Clock, SystemClock};
use common::{event_types, eventually, spawn_handler, spawn_server, spawn_server_with, Api, Db};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

on_both_databases!(
    stripe_payment_signals_the_waiting_workflow_once,
    github_merged_pull_request_starts_a_workflow,
    standard_webhooks_signed_by_the_official_library,
    failed_action_answers_5xx_and_the_retry_succeeds,
    update_action_is_admitted_once,
    signatures_are_checked_against_the_wall_clock_when_time_is_skipped,
);

const STRIPE_SECRET: &str = "whsec_stripe_test_secret";
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn now_secs() -> i64 {
    SystemClock.now().millis() / 1000
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Posts raw bytes to a source's public URL with `headers` and no key.
async fn deliver(
    base: &str,
    source: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!(
            "{base}/api/v1/namespaces/default/webhooks/{source}"
        ))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.expect("server reachable");
    let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn stripe_headers(body: &[u8], t: i64) -> Vec<(&'static str, String)> {
    let sig = hmac_hex(STRIPE_SECRET, &[t.to_string().as_bytes(), b".", body]);
    vec![("stripe-signature", format!("t={t},v1={sig}"))]
}

async fn create_source(api: &Api, body: Value) {
    let (status, answer) = api.post("/api/v1/namespaces/default/webhooks", body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert!(answer.get("secrets").is_none(), "secrets are never shown");
}

async fn deliveries(api: &Api, source: &str) -> Vec<Value> {
    let (status, body) = api
        .get(&format!(
            "/api/v1/namespaces/default/webhooks/{source}/deliveries"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Workflows that wait for a signal and complete with its input; they
/// park on a long timer meanwhile.
async fn waiting_handler() -> common::TestHandler {
    spawn_handler(|req: Value| async move {
        if req["type"] == "update_validation" {
            return (StatusCode::OK, json!({"accepted": true}));
        }
        if req["type"] != "workflow_task" {
            return (StatusCode::OK, json!({"result": null}));
        }
        let history = req["history"].as_array().cloned().unwrap_or_default();
        if let Some(signal) = history
            .iter()
            .find(|e| e["event_type"] == "WorkflowExecutionSignaled")
        {
            let result = signal["attributes"]["input"].clone();
            return (
                StatusCode::OK,
                json!({"commands": [{"command_type": "CompleteWorkflowExecution", "attributes": {"result": result}}]}),
            );
        }
        let parked = history.iter().any(|e| e["event_type"] == "TimerStarted");
        let commands = if parked {
            json!([])
        } else {
            json!([{"command_type": "StartTimer", "attributes": {"timer_id": "park", "start_to_fire_timeout": "1h"}}])
        };
        (StatusCode::OK, json!({"commands": commands}))
    })
    .await
}

fn signals(history: &[Value]) -> usize {
    event_types(history)
        .iter()
        .filter(|t| *t == "WorkflowExecutionSignaled")
        .count()
}

async fn stripe_payment_signals_the_waiting_workflow_once(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    let handler = waiting_handler().await;
    api.register("payments", &handler.url).await;
    let (status, body) = api
        .start("order-pi_123", "Order", "payments", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    create_source(
        api,
        json!({"source_id": "stripe", "scheme": {"type": "stripe"}, "secrets": ["whsec_old", STRIPE_SECRET],
            "rules": [{"name": "paid", "events": ["payment_intent.succeeded"],
                "action": {"type": "signal", "workflow_id": "order-{/data/object/id}", "signal": "paid",
                    "input": {"amount": "{/data/object/amount}", "event": "{/id}"}}}]}),
    )
    .await;

    let event = json!({"id": "evt_1", "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_123", "amount": 2000}}});
    let bytes = serde_json::to_vec(&event).expect("json");
    // Stripe retries a delivery with a fresh timestamp and signature.
    for i in 0..3 {
        let headers = stripe_headers(&bytes, now_secs() - i);
        let (status, answer) = deliver(&api.base, "stripe", &headers, &bytes).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["outcome"], "acted", "{answer}");
        assert_eq!(answer["delivery_id"], "stripe:evt_1");
    }
    let result = api.result("order-pi_123").await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["result"], json!({"amount": 2000, "event": "evt_1"}));
    assert_eq!(signals(&api.history("order-pi_123").await), 1);

    // Stale (an hour old) and forged deliveries: refused, logged bodiless.
    let stale = stripe_headers(&bytes, now_secs() - 3600);
    let (status, answer) = deliver(&api.base, "stripe", &stale, &bytes).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["code"], "signature_invalid");
    let mut forged = bytes.clone();
    forged.extend_from_slice(b" ");
    let headers = stripe_headers(&bytes, now_secs());
    let (status, _) = deliver(&api.base, "stripe", &headers, &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer) = deliver(&api.base, "stripe", &[], &bytes).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    let log = deliveries(api, "stripe").await;
    assert_eq!(log.len(), 6, "{log:#?}");
    let refused: Vec<&Value> = log.iter().filter(|d| d["outcome"] == "refused").collect();
    assert_eq!(refused.len(), 3);
    assert!(refused
        .iter()
        .all(|d| d["verified"] == false && d.get("delivery_id").is_none()));
    // The error names how far the timestamp is from the server's clock:
    // an hour, plus the time since the test read its own (a second
    // boundary may fall in between).
    let error = refused[2]["error"].as_str().unwrap_or_default();
    let away: i64 = error
        .split_once("s away")
        .and_then(|(before, _)| before.rsplit(' ').next()?.parse().ok())
        .unwrap_or_default();
    assert!((3600..=3610).contains(&away), "{:?}", refused[2]);
    let acted: Vec<&Value> = log.iter().filter(|d| d["outcome"] == "acted").collect();
    assert_eq!(acted.len(), 3);
    assert!(acted
        .iter()
        .all(|d| d["rule"] == "paid" && d["workflow_id"] == "order-pi_123"));

    // Replaying a delivery routes it again with the same request id: it
    // acts, and still signals once.
    let first = acted.last().expect("oldest acted")["delivery"]
        .as_str()
        .expect("seq")
        .to_owned();
    let (status, answer) = api
        .post(
            &format!("/api/v1/namespaces/default/webhooks/stripe/deliveries/{first}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["replay_of"], first.as_str());
    assert_eq!(answer["outcome"], "acted");
    assert_eq!(signals(&api.history("order-pi_123").await), 1);
    // A refused delivery kept nothing to replay.
    let refused_seq = refused[0]["delivery"].as_str().expect("seq");
    let (status, _) = api
        .post(
            &format!("/api/v1/namespaces/default/webhooks/stripe/deliveries/{refused_seq}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    server.stop().await;
}

fn github_headers(body: &[u8], delivery: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-github-event", "pull_request".to_owned()),
        ("x-github-delivery", delivery.to_owned()),
        (
            "x-hub-signature-256",
            format!("sha256={}", hmac_hex(GITHUB_SECRET, &[body])),
        ),
    ]
}

async fn github_merged_pull_request_starts_a_workflow(db: Db) {
    // With an API key: the config routes need it, the sender does not.
    let url = match db {
        Db::Sqlite => "sqlite::memory:".to_owned(),
        Db::Postgres => common::fresh_postgres_database().await,
    };
    let mut options = common::test_options(url);
    options.api_key = Some("admin-key".into());
    let server = spawn_server_with(options).await;
    let api = &server.api;
    let handler = waiting_handler().await;
    api.register("deploys", &handler.url).await;
    let source = json!({"source_id": "github", "scheme": {"type": "github"}, "secrets": [GITHUB_SECRET],
        "rules": [{"name": "merged", "events": ["pull_request"],
            "when": [{"pointer": "/action", "equals": "closed"}, {"pointer": "/pull_request/merged", "equals": true}],
            "action": {"type": "start", "workflow_id": "deploy-{/repository/name}-{/number}",
                "workflow_type": "Deploy", "task_queue": "deploys", "input": ["{/pull_request/merge_commit_sha}"]}}]});
    let anonymous = Api::new(api.base.clone(), None);
    let (status, _) = anonymous
        .post("/api/v1/namespaces/default/webhooks", source.clone())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    create_source(api, source).await;

    let merged = json!({"action": "closed", "number": 7, "repository": {"name": "app"},
        "pull_request": {"merged": true, "merge_commit_sha": "abc123"}});
    let bytes = serde_json::to_vec(&merged).expect("json");
    let headers = github_headers(&bytes, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    for _ in 0..2 {
        let (status, answer) = deliver(&api.base, "github", &headers, &bytes).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["action"], "start");
    }
    let described = api.describe("deploy-app-7").await;
    assert_eq!(
        described["execution"]["workflow_type"], "Deploy",
        "{described}"
    );
    let history = api.history("deploy-app-7").await;
    assert_eq!(history[0]["attributes"]["input"], json!(["abc123"]));
    let (status, list) = api
        .get("/api/v1/namespaces/default/workflows?query=WorkflowType%3D%22Deploy%22")
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        list["executions"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );

    // Closed without merging: accepted, recorded as ignored.
    let unmerged = json!({"action": "closed", "number": 8, "repository": {"name": "app"},
        "pull_request": {"merged": false}});
    let bytes = serde_json::to_vec(&unmerged).expect("json");
    let (status, answer) =
        deliver(&api.base, "github", &github_headers(&bytes, "d-2"), &bytes).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "ignored");
    assert!(answer.get("rule").is_none());
    let log = deliveries(api, "github").await;
    assert_eq!(log[0]["outcome"], "ignored");
    assert_eq!(log[0]["delivery_id"], "github:d-2");

    // Bad configuration is a 400 naming the field; delete removes the log.
    let (status, body) = api
        .post(
            "/api/v1/namespaces/default/webhooks",
            json!({"source_id": "bad", "scheme": {"type": "github"}, "secrets": ["s"],
                "rules": [{"name": "r", "action": {"type": "signal", "workflow_id": "{number}", "signal": "s"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("rules/0/action/workflow_id:"),
        "{body}"
    );
    let (status, _) = api
        .call(
            reqwest::Method::DELETE,
            "/api/v1/namespaces/default/webhooks/github",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = deliver(&api.base, "github", &headers, &bytes).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// Signs `body` with the official `standardwebhooks` package from sdk-py's
/// virtualenv (`BATON_PY_VENV`, which scripts/test.sh sets up before the
/// cargo tests, or sdk-py/.venv); returns (webhook-id, webhook-timestamp,
/// webhook-signature).
fn sign_with_standardwebhooks(msg_id: &str, body: &str) -> (String, String, String) {
    let venv = std::env::var("BATON_PY_VENV")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/sdk-py/.venv").to_owned());
    let python = format!("{venv}/bin/python");
    let script = "import sys, datetime\n\
        from standardwebhooks.webhooks import Webhook\n\
        now = datetime.datetime.now(datetime.timezone.utc)\n\
        print(int(now.timestamp()))\n\
        print(Webhook(sys.argv[1]).sign(sys.argv[2], now, sys.argv[3]))\n";
    let out = Command::new(&python)
        .args(["-c", script, SW_SECRET, msg_id, body])
        .output()
        .expect("sdk-py/.venv has python with the dev extra (standardwebhooks)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = text.lines();
    let ts = lines.next().expect("timestamp").to_owned();
    let sig = lines.next().expect("signature").to_owned();
    (msg_id.to_owned(), ts, sig)
}

async fn standard_webhooks_signed_by_the_official_library(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    let handler = waiting_handler().await;
    api.register("partners", &handler.url).await;
    create_source(
        api,
        json!({"source_id": "partner", "scheme": {"type": "standard_webhooks"}, "secrets": [SW_SECRET],
            "rules": [{"name": "invoice", "events": ["invoice.paid"],
                "action": {"type": "signal_with_start", "workflow_id": "invoice-{/data/invoice}",
                    "signal": "paid", "input": "{/data}", "workflow_type": "Invoice", "task_queue": "partners"}}]}),
    )
    .await;
    let body = r#"{"type":"invoice.paid","timestamp":"2026-01-01T00:00:00Z","data":{"invoice":"in_9","total":12}}"#;
    let (id, ts, sig) = sign_with_standardwebhooks("msg_2xyz", body);
    let headers = vec![
        ("webhook-id", id),
        ("webhook-timestamp", ts),
        ("webhook-signature", sig),
    ];
    let (status, answer) = deliver(&api.base, "partner", &headers, body.as_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["action"], "signal_with_start");
    let result = api.result("invoice-in_9").await;
    assert_eq!(
        result["result"],
        json!({"invoice": "in_9", "total": 12}),
        "{result}"
    );

    let forged = body.replace("12", "1200");
    let (status, answer) = deliver(&api.base, "partner", &headers, forged.as_bytes()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let log = deliveries(api, "partner").await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["outcome"], "refused");
    assert_eq!(
        log[0]["error"],
        "no signature matches any configured secret"
    );
    assert_eq!(log[1]["outcome"], "acted");
    assert_eq!(log[1]["delivery_id"], "standard_webhooks:msg_2xyz");
    server.stop().await;
}

async fn failed_action_answers_5xx_and_the_retry_succeeds(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    let handler = waiting_handler().await;
    api.register("payments", &handler.url).await;
    create_source(
        api,
        json!({"source_id": "stripe", "scheme": {"type": "stripe"}, "secrets": [STRIPE_SECRET],
            "rules": [{"name": "paid", "events": ["payment_intent.succeeded"],
                "action": {"type": "signal", "workflow_id": "order-{/data/object/id}", "signal": "paid"}}]}),
    )
    .await;
    let event = json!({"id": "evt_9", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_9"}}});
    let bytes = serde_json::to_vec(&event).expect("json");
    // No such workflow yet: 503, so Stripe retries.
    let (status, answer) = deliver(
        &api.base,
        "stripe",
        &stripe_headers(&bytes, now_secs()),
        &bytes,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["code"], "webhook_action_failed");
    let log = deliveries(api, "stripe").await;
    assert_eq!(log[0]["outcome"], "failed");
    assert!(
        log[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("order-pi_9"),
        "{log:?}"
    );

    // A payload the templates cannot map also fails (and is retried).
    let odd = serde_json::to_vec(
        &json!({"id": "evt_10", "type": "payment_intent.succeeded", "data": {}}),
    )
    .expect("json");
    let (status, _) = deliver(&api.base, "stripe", &stripe_headers(&odd, now_secs()), &odd).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(deliveries(api, "stripe").await[0]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("/data/object/id"));

    let (status, body) = api
        .start("order-pi_9", "Order", "payments", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, answer) = deliver(
        &api.base,
        "stripe",
        &stripe_headers(&bytes, now_secs()),
        &bytes,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let done = eventually(StdDuration::from_secs(20), || async {
        signals(&api.history("order-pi_9").await) == 1
    })
    .await;
    assert!(done);
    server.stop().await;
}

async fn update_action_is_admitted_once(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    let handler = waiting_handler().await;
    api.register("payments", &handler.url).await;
    let (status, body) = api
        .start("order-pi_5", "Order", "payments", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    create_source(
        api,
        json!({"source_id": "stripe", "scheme": {"type": "stripe"}, "secrets": [STRIPE_SECRET],
            "rules": [{"name": "refund", "events": ["charge.refunded"],
                "action": {"type": "update", "workflow_id": "order-{/data/object/payment_intent}",
                    "update": "refund", "input": ["{/data/object/amount_refunded}"]}}]}),
    )
    .await;
    let event = json!({"id": "evt_r1", "type": "charge.refunded",
        "data": {"object": {"payment_intent": "pi_5", "amount_refunded": 300}}});
    let bytes = serde_json::to_vec(&event).expect("json");
    for _ in 0..2 {
        let headers = stripe_headers(&bytes, now_secs());
        let (status, answer) = deliver(&api.base, "stripe", &headers, &bytes).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["action"], "update");
    }
    let history = api.history("order-pi_5").await;
    let admitted: Vec<&Value> = history
        .iter()
        .filter(|e| e["event_type"] == "WorkflowExecutionUpdateAdmitted")
        .collect();
    assert_eq!(admitted.len(), 1, "{history:#?}");
    assert_eq!(admitted[0]["attributes"]["input"], json!([300]));
    assert_eq!(
        admitted[0]["attributes"]["update_id"],
        "webhook:stripe:stripe:evt_r1"
    );
    server.stop().await;
}

async fn signatures_are_checked_against_the_wall_clock_when_time_is_skipped(db: Db) {
    let url = match db {
        Db::Sqlite => "sqlite::memory:".to_owned(),
        Db::Postgres => common::fresh_postgres_database().await,
    };
    let mut options = common::test_options(url);
    options.time_skipping = true;
    let server = spawn_server_with(options).await;
    let api = &server.api;
    create_source(
        api,
        json!({"source_id": "stripe", "scheme": {"type": "stripe"}, "secrets": [STRIPE_SECRET]}),
    )
    .await;
    let (status, body) = api
        .post("/api/v1/dev/time/skip", json!({"duration": "2h"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A sender signs with the real time; the skipped clock must not make
    // it stale (no rule: ignored, 200).
    let bytes = br#"{"id":"evt_t","type":"x"}"#;
    let (status, answer) = deliver(
        &api.base,
        "stripe",
        &stripe_headers(bytes, now_secs()),
        bytes,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "ignored");
    server.stop().await;
}
