//! OpenTelemetry traces end to end: a `baton dev` (SQLite) and a `baton
//! serve` (PostgreSQL) process exporting over
//! OTLP/HTTP to a receiver in this test (protobuf decoded with
//! opentelemetry-proto's types), runs started with a W3C `traceparent`
//! and pushed to a real handler on loopback. Every push of a run carries a
//! `traceparent` in the client's trace whose parent is the push's span;
//! the start call's span is the client span's child and the push spans are
//! the start span's children. Many runs at once, each in its own trace.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use common::node::{free_port, Node};
use common::{sequential_workflow, spawn_handler};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message as _;
use serde_json::{json, Value};

/// A span as the receiver got it: ids in hex.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
}

type Spans = Arc<Mutex<Vec<Received>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn strings(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes
        .iter()
        .filter_map(|kv| {
            let value = match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => s.clone(),
                AnyValue::IntValue(i) => i.to_string(),
                AnyValue::BoolValue(b) => b.to_string(),
                other => format!("{other:?}"),
            };
            Some((kv.key.clone(), value))
        })
        .collect()
}

async fn export(State(spans): State<Spans>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut spans = spans.lock().unwrap();
    for rs in request.resource_spans {
        let resource = rs
            .resource
            .map(|r| strings(&r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                spans.push(Received {
                    service: service.clone(),
                    name: s.name,
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    attributes: strings(&s.attributes),
                });
            }
        }
    }
    StatusCode::OK
}

/// An OTLP/HTTP receiver on loopback: its base URL and what it received.
async fn receiver() -> (String, Spans) {
    let spans = Spans::default();
    let app = Router::new()
        .route("/v1/traces", post(export))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), spans)
}

/// A random W3C trace id and span id.
fn ids() -> (String, String) {
    let u = uuid::Uuid::new_v4().simple().to_string();
    let s = uuid::Uuid::new_v4().simple().to_string();
    (u, s[..16].to_owned())
}

const RUNS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_on_sqlite_traces() {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
    command
        .args(["dev", "--db", ":memory:", "--listen"])
        .arg(format!("127.0.0.1:{port}"));
    pushes_carry_the_clients_trace_and_spans_are_exported(command, port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_traces() {
    let url = common::fresh_postgres_database().await;
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
    command
        .args(["serve", "--database-url", &url, "--listen"])
        .arg(format!("127.0.0.1:{port}"));
    pushes_carry_the_clients_trace_and_spans_are_exported(command, port).await;
}

async fn pushes_carry_the_clients_trace_and_spans_are_exported(mut command: Command, port: u16) {
    let (otlp, spans) = receiver().await;
    let handler = spawn_handler(|req: Value| async move {
        if req["type"] == "workflow_task" {
            let plan = [("charge", json!({}))];
            return (StatusCode::OK, sequential_workflow(&req, &plan));
        }
        (StatusCode::OK, json!({"result": "charged"}))
    })
    .await;
    command
        .env("RUST_LOG", "warn")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .env_remove("OTEL_TRACES_SAMPLER")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let node = Node::spawn(command, port).await;
    node.api.register("pay", &handler.url).await;

    // Many runs at once, each started in a trace of its own.
    let http = reqwest::Client::new();
    let mut clients: HashMap<String, (String, String)> = HashMap::new();
    let mut starts = Vec::new();
    for i in 0..RUNS {
        let id = format!("traced-{i}");
        let (trace_id, span_id) = ids();
        clients.insert(id.clone(), (trace_id.clone(), span_id.clone()));
        let (http, base) = (http.clone(), node.api.base.clone());
        // Half with W3C level 2's random-trace-id flag as well (0x02).
        let flags = if i % 2 == 0 { "01" } else { "03" };
        starts.push(tokio::spawn(async move {
            http.post(format!("{base}/api/v1/namespaces/default/workflows/{id}"))
                .header("traceparent", format!("00-{trace_id}-{span_id}-{flags}"))
                .header("tracestate", "vendor=opaque")
                .json(&json!({"workflow_type": "Pay", "task_queue": "pay", "input": {}}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for s in starts {
        assert_eq!(s.await.unwrap(), reqwest::StatusCode::CREATED);
    }
    // A malformed traceparent is ignored, as the W3C spec asks: the run
    // starts, in a trace of the server's.
    let (status, body) = {
        let resp = http
            .post(format!(
                "{}/api/v1/namespaces/default/workflows/untraced",
                node.api.base
            ))
            .header("traceparent", "00-not-a-trace-01")
            .json(&json!({"workflow_type": "Pay", "task_queue": "pay", "input": {}}))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    };
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    for id in clients
        .keys()
        .chain(std::iter::once(&"untraced".to_owned()))
    {
        let result = node.api.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
    }

    // Every push carried the run's trace: 2 workflow tasks and 1 activity
    // per run, each with the span id of its own push span.
    let pushed: Vec<(String, String, String)> = {
        let received = handler.received.lock().unwrap();
        let headers = handler.headers.lock().unwrap();
        received
            .iter()
            .zip(headers.iter())
            .map(|(body, h)| {
                let id = body["workflow_id"].as_str().unwrap().to_owned();
                let tp = h
                    .get("traceparent")
                    .unwrap_or_else(|| panic!("a push of {id} without traceparent"))
                    .to_str()
                    .unwrap()
                    .to_owned();
                let ts = h
                    .get("tracestate")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                (id, tp, ts)
            })
            .collect()
    };
    let mut push_span_ids: HashMap<String, Vec<String>> = HashMap::new();
    for (id, tp, ts) in &pushed {
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(parts[0], "00");
        if let Some((trace_id, client_span)) = clients.get(id) {
            assert_eq!(parts[1], trace_id, "{id}: the push left the client's trace");
            assert_ne!(
                parts[2], client_span,
                "{id}: the parent must be the push span"
            );
            assert_eq!(parts[3], "01", "{id}: sampled");
            assert_eq!(ts, "vendor=opaque", "{id}: tracestate");
        } else {
            assert_ne!(parts[1], "00000000000000000000000000000000");
        }
        push_span_ids
            .entry(id.clone())
            .or_default()
            .push(parts[2].to_owned());
    }
    for id in clients.keys() {
        assert_eq!(push_span_ids[id].len(), 3, "{id}: pushes {push_span_ids:?}");
    }
    // The run started without a (valid) traceparent has none stored: each
    // push span is a root of its own trace (this node exports, so the
    // header is sent all the same).
    let untraced: Vec<String> = pushed
        .iter()
        .filter(|(id, _, _)| id == "untraced")
        .map(|(_, tp, _)| tp.split('-').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(untraced.len(), 3);
    assert!(
        untraced[0] != untraced[1] && untraced[1] != untraced[2],
        "{untraced:?}"
    );

    // The exported spans: the start call's span is the client span's child
    // and every push span (those whose ids the handler saw) is the start
    // span's child, all in the client's trace.
    let exported = spans;
    let all_exported = common::eventually(Duration::from_secs(20), || {
        let spans = exported.clone();
        let wanted: usize = push_span_ids.values().map(Vec::len).sum();
        async move {
            let spans = spans.lock().unwrap();
            spans.iter().filter(|s| s.name.starts_with("push ")).count() >= wanted
        }
    })
    .await;
    let spans = exported.lock().unwrap().clone();
    assert!(all_exported, "push spans missing; got {spans:#?}");
    for (id, (trace_id, client_span)) in &clients {
        let start = spans
            .iter()
            .find(|s| {
                s.trace_id == *trace_id
                    && s.name == "POST /api/v1/namespaces/{namespace}/workflows/{workflow_id}"
            })
            .unwrap_or_else(|| panic!("{id}: no start span in its trace"));
        assert_eq!(start.service, "baton");
        assert_eq!(&start.parent_span_id, client_span, "{id}");
        assert_eq!(start.attributes["http.response.status_code"], "201");
        assert_eq!(
            start.attributes["http.route"],
            "/api/v1/namespaces/{namespace}/workflows/{workflow_id}"
        );
        for push_span in &push_span_ids[id] {
            let push = spans
                .iter()
                .find(|s| s.span_id == *push_span)
                .unwrap_or_else(|| panic!("{id}: push span {push_span} not exported"));
            assert_eq!(&push.trace_id, trace_id, "{id}");
            assert_eq!(push.parent_span_id, start.span_id, "{id}: {push:?}");
            assert_eq!(push.attributes["namespace"], "default");
            assert_eq!(push.attributes["task_queue"], "pay");
            assert_eq!(push.attributes["outcome"], "answered");
            assert!(push.attributes.contains_key("endpoint_version"));
            assert!(["push workflow", "push activity"].contains(&push.name.as_str()));
        }
    }

    // Signal-with-start stores its trace like a start; a signal's API span
    // continues the signal's trace (here to a closed run: 404, still traced).
    let traced_post = |path: &str, (trace, span): &(String, String), body: Value| {
        http.post(format!("{}{path}", node.api.base))
            .header("traceparent", format!("00-{trace}-{span}-01"))
            .json(&body)
            .send()
    };
    let sws = ids();
    let resp = traced_post(
        "/api/v1/namespaces/default/workflows/sws/signal-with-start/poke",
        &sws,
        json!({"workflow_type": "Pay", "task_queue": "pay", "input": {}, "signal_input": {}}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
    assert_eq!(node.api.result("sws").await["status"], "COMPLETED");
    let (sws_trace, _) = sws;
    let signal = ids();
    let resp = traced_post(
        "/api/v1/namespaces/default/workflows/traced-0/signal/poke",
        &signal,
        json!({"input": {}}),
    )
    .await
    .unwrap();
    let (signal_trace, signal_span) = signal;
    let signal_status = resp.status().as_u16().to_string();
    {
        let received = handler.received.lock().unwrap();
        let headers = handler.headers.lock().unwrap();
        let sws: Vec<&str> = received
            .iter()
            .zip(headers.iter())
            .filter(|(b, _)| b["workflow_id"] == "sws")
            .map(|(_, h)| h["traceparent"].to_str().unwrap())
            .collect();
        assert_eq!(sws.len(), 3, "{sws:?}");
        for tp in sws {
            assert_eq!(tp.split('-').nth(1), Some(sws_trace.as_str()), "{tp}");
        }
    }
    let signal_exported = common::eventually(Duration::from_secs(20), || {
        let exported = exported.clone();
        let (signal_trace, signal_span) = (signal_trace.clone(), signal_span.clone());
        async move {
            exported.lock().unwrap().iter().any(|s| {
                s.trace_id == signal_trace
                    && s.parent_span_id == signal_span
                    && s.name
                        == "POST /api/v1/namespaces/{namespace}/workflows/{workflow_id}/signal/{signal_name}"
            })
        }
    })
    .await;
    assert!(signal_exported, "no signal span (answered {signal_status})");
    drop(node);
}
