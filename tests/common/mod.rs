//! Shared fixtures for the end-to-end tests: a real Baton node on loopback
//! (SQLite in memory or a fresh PostgreSQL database), a scripted
//! protocol-level handler that verifies every push's signature and answers
//! with raw commands, and a small REST client.
#![allow(dead_code)] // Each test binary uses a different subset.

pub mod node;

/// Runs each named `async fn(Db)` scenario of the including file twice, as
/// `sqlite::<name>` and `postgres::<name>` tests (`#[macro_use] mod common;`).
#[allow(unused_macros)] // Each test binary uses a different subset.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::Postgres).await;
                }
            )*
        }
    };
}

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use baton::engine::Limits;
use baton::server::{self, Options, Running};
use baton::signing::{self, Headers, Secret};
use baton::time::{Clock, SystemClock};
use baton::{claim, dispatch};
use serde_json::{json, Value};

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The PostgreSQL server the tests use.
pub fn postgres_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates an empty database on the test PostgreSQL server and returns its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection as _;
    let admin = postgres_url();
    let name = format!("baton_e2e_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test: {e}"));
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = reqwest::Url::parse(&admin).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub api: Api,
    running: Running,
}

impl TestServer {
    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// Fast polling and short back-offs, so tests don't wait on defaults.
pub fn test_options(database_url: String) -> Options {
    let claim = claim::Options {
        batch: 64,
        poll_interval: baton::time::Duration(100),
    };
    Options {
        listen: "127.0.0.1:0".parse().expect("loopback address"),
        database_url,
        api_key: None,
        limits: Limits {
            workflow_task_initial_backoff: baton::time::Duration(50),
            workflow_task_max_backoff: baton::time::Duration(500),
            delivery_initial_backoff: baton::time::Duration(50),
            delivery_max_backoff: baton::time::Duration(500),
            ..Limits::default()
        },
        apply: baton::apply::Options::default(),
        dispatch: dispatch::Options {
            claim: claim.clone(),
            ..dispatch::Options::default()
        },
        timers: claim,
        time_skipping: false,
        tls: Default::default(),
        ui: false,
        default_retention: baton::store::DEFAULT_RETENTION,
        batch_max_rps: 1_000.0,
    }
}

/// A fresh database of `db`: SQLite in memory or a new PostgreSQL database.
pub async fn database_url(db: Db) -> String {
    match db {
        Db::Sqlite => "sqlite::memory:".to_owned(),
        Db::Postgres => fresh_postgres_database().await,
    }
}

pub async fn spawn_server(db: Db) -> TestServer {
    spawn_server_with(test_options(database_url(db).await)).await
}

pub async fn spawn_server_with(options: Options) -> TestServer {
    let api_key = options.api_key.clone();
    let running = server::start(options).await.expect("server starts");
    let addr = running.addr;
    TestServer {
        addr,
        api: Api::new(format!("http://{addr}"), api_key),
        running,
    }
}

type Reply = Pin<Box<dyn Future<Output = (StatusCode, Value)> + Send>>;
type Script = Arc<dyn Fn(Value) -> Reply + Send + Sync>;

/// A handler endpoint on loopback. Every push is verified (401 otherwise,
/// counted in `rejected`); accepted bodies are recorded in `received`, and
/// their headers, in the same order, in `headers`.
pub struct TestHandler {
    pub url: String,
    pub received: Arc<Mutex<Vec<Value>>>,
    pub headers: Arc<Mutex<Vec<HeaderMap>>>,
    pub rejected: Arc<Mutex<usize>>,
}

#[derive(Clone)]
struct HandlerState {
    secrets: Arc<Vec<Secret>>,
    script: Script,
    received: Arc<Mutex<Vec<Value>>>,
    headers: Arc<Mutex<Vec<HeaderMap>>>,
    rejected: Arc<Mutex<usize>>,
}

pub async fn spawn_handler<F, Fut>(script: F) -> TestHandler
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (StatusCode, Value)> + Send + 'static,
{
    let script: Script = Arc::new(move |v| Box::pin(script(v)));
    let state = HandlerState {
        secrets: Arc::new(vec![SECRET.parse().expect("valid secret")]),
        script,
        received: Arc::default(),
        headers: Arc::default(),
        rejected: Arc::default(),
    };
    let (received, headers, rejected) = (
        state.received.clone(),
        state.headers.clone(),
        state.rejected.clone(),
    );
    let app = Router::new().route("/", post(handle)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind handler");
    let addr = listener.local_addr().expect("handler address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TestHandler {
        url: format!("http://{addr}/"),
        received,
        headers,
        rejected,
    }
}

async fn handle(
    State(s): State<HandlerState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let lookup = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = SystemClock.now().millis() / 1000;
    if signing::verify(&s.secrets, Headers::from_lookup(lookup), &body, now).is_err() {
        *s.rejected.lock().expect("lock") += 1;
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "bad signature"})),
        );
    }
    let request: Value = serde_json::from_slice(&body).expect("pushes are JSON");
    {
        // One lock order everywhere: bodies, then headers.
        let mut received = s.received.lock().expect("lock");
        received.push(request.clone());
        s.headers.lock().expect("lock").push(headers.clone());
    }
    let (status, reply) = (s.script)(request).await;
    (status, axum::Json(reply))
}

/// Posts `body` signed with `secret` (none: unsigned) as the SDKs sign
/// what they send the server (checkpoints, history page requests).
pub async fn post_signed(url: &str, body: &Value, secret: Option<&str>) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(body).expect("JSON");
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(bytes.clone());
    if let Some(secret) = secret {
        let secret: Secret = secret.parse().expect("valid secret");
        let id = format!("msg_{}", uuid::Uuid::now_v7());
        let ts = SystemClock.now().millis() / 1000;
        req = req
            .header(signing::ID_HEADER, &id)
            .header(signing::TIMESTAMP_HEADER, ts.to_string())
            .header(
                signing::SIGNATURE_HEADER,
                signing::sign(&[secret], &id, ts, &bytes),
            );
    }
    let resp = req.send().await.expect("the server answers");
    let status = StatusCode::from_u16(resp.status().as_u16()).expect("a status");
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The workflow logic most tests use, written against raw history: run the
/// activity types in `plan` one after another, then complete with their
/// results. A failed or timed-out activity fails the workflow.
pub fn sequential_workflow(request: &Value, plan: &[(&str, Value)]) -> Value {
    let events = request["history"].as_array().cloned().unwrap_or_default();
    let mut results = Vec::new();
    let mut scheduled = 0;
    for e in &events {
        match e["event_type"].as_str().unwrap_or_default() {
            "ActivityTaskScheduled" => scheduled += 1,
            "ActivityTaskCompleted" => results.push(e["attributes"]["result"].clone()),
            "ActivityTaskFailed" | "ActivityTaskTimedOut" => {
                let failure = e["attributes"]["failure"].clone();
                return json!({"commands": [{"command_type": "FailWorkflowExecution", "attributes": {"failure": {
                    "message": "activity failed", "type": "ActivityError", "cause": failure
                }}}]});
            }
            _ => {}
        }
    }
    if results.len() == plan.len() {
        return json!({"commands": [{"command_type": "CompleteWorkflowExecution", "attributes": {"result": results}}]});
    }
    if scheduled > results.len() {
        // Still waiting for the activity in flight.
        return json!({"commands": []});
    }
    let (activity_type, options) = &plan[results.len()];
    let mut attributes = json!({
        "activity_id": format!("{}", results.len() + 1),
        "activity_type": activity_type,
        "input": {"step": results.len() + 1},
        "start_to_close_timeout": "10s",
    });
    if let (Some(a), Some(o)) = (attributes.as_object_mut(), options.as_object()) {
        for (k, v) in o {
            a.insert(k.clone(), v.clone());
        }
    }
    json!({"commands": [{"command_type": "ScheduleActivityTask", "attributes": attributes}]})
}

/// A handler for 3-activity workflows whose activities take `work` (with
/// `start_to_close`, retried after 200 ms) and count how often each
/// (run, activity) was executed, by idempotency key.
pub async fn counting_handler(
    work: StdDuration,
    start_to_close: &str,
) -> (
    TestHandler,
    Arc<Mutex<std::collections::HashMap<String, u32>>>,
) {
    let executions: Arc<Mutex<std::collections::HashMap<String, u32>>> = Arc::default();
    let seen = executions.clone();
    let options = json!({"start_to_close_timeout": start_to_close, "retry_policy": {"initial_interval": "200ms"}});
    let handler = spawn_handler(move |req: Value| {
        let (seen, options) = (seen.clone(), options.clone());
        async move {
            if req["type"] == "workflow_task" {
                let plan = [
                    ("a", options.clone()),
                    ("b", options.clone()),
                    ("c", options),
                ];
                return (StatusCode::OK, sequential_workflow(&req, &plan));
            }
            tokio::time::sleep(work).await;
            let key = req["idempotency_key"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            *seen.lock().expect("lock").entry(key).or_default() += 1;
            (StatusCode::OK, json!({"result": req["activity_id"]}))
        }
    })
    .await;
    (handler, executions)
}

/// Workflows that park on a one-hour timer and close as Canceled when
/// asked to cancel.
pub async fn parking_handler() -> TestHandler {
    spawn_handler(|req: Value| async move {
        if req["type"] != "workflow_task" {
            return (StatusCode::OK, json!({"result": null}));
        }
        let history = req["history"].as_array().cloned().unwrap_or_default();
        let has = |t: &str| history.iter().any(|e| e["event_type"] == t);
        let commands = if has("WorkflowExecutionCancelRequested") {
            json!([{"command_type": "CancelWorkflowExecution", "attributes": {}}])
        } else if has("TimerStarted") {
            json!([])
        } else {
            json!([{"command_type": "StartTimer", "attributes": {
                "timer_id": "park", "start_to_fire_timeout": "1h"
            }}])
        };
        (StatusCode::OK, json!({"commands": commands}))
    })
    .await
}

/// Starts `n` runs of `workflow_type`, ids `<prefix>-<i>`, and waits until
/// each has parked (its first workflow task completed).
pub async fn start_parked(api: &Api, workflow_type: &str, prefix: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    for id in &ids {
        let (status, body) = api.start(id, workflow_type, "q", json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for id in &ids {
        let parked = eventually(StdDuration::from_secs(30), || async {
            event_types(&api.history(id).await).contains(&"TimerStarted".to_owned())
        })
        .await;
        assert!(parked, "{id} did not park");
    }
    ids
}

/// A thin REST client for tests.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
    api_key: Option<String>,
}

impl Api {
    pub fn new(base: String, api_key: Option<String>) -> Api {
        Api {
            base,
            http: reqwest::Client::new(),
            api_key,
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("server reachable");
        let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn register(&self, task_queue: &str, url: &str) {
        self.register_with_features(task_queue, url, json!([]))
            .await;
    }

    /// Registers `url` for `task_queue` with protocol `features`
    /// (docs/protocol.md §1.5).
    pub async fn register_with_features(&self, task_queue: &str, url: &str, features: Value) {
        let (status, body) = self
            .post(
                "/api/v1/namespaces/default/endpoints",
                json!({"task_queue": task_queue, "url": url, "secrets": [SECRET], "features": features}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["features"], features);
    }

    pub async fn start(
        &self,
        workflow_id: &str,
        workflow_type: &str,
        task_queue: &str,
        extra: Value,
    ) -> (StatusCode, Value) {
        let mut body = json!({"workflow_type": workflow_type, "task_queue": task_queue, "input": {"id": workflow_id}});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        self.post(
            &format!("/api/v1/namespaces/default/workflows/{workflow_id}"),
            body,
        )
        .await
    }

    /// Waits (bounded) for the workflow to close and returns the result body.
    pub async fn result(&self, workflow_id: &str) -> Value {
        for _ in 0..30 {
            let (status, body) = self
                .get(&format!(
                    "/api/v1/namespaces/default/workflows/{workflow_id}/result?wait=10s"
                ))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if body["status"] != "RUNNING" {
                return body;
            }
        }
        panic!("workflow {workflow_id} did not close");
    }

    pub async fn history(&self, workflow_id: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!(
                "/api/v1/namespaces/default/workflows/{workflow_id}/history?page_size=10000"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["events"].as_array().cloned().unwrap_or_default()
    }

    pub async fn describe(&self, workflow_id: &str) -> Value {
        let (status, body) = self
            .get(&format!(
                "/api/v1/namespaces/default/workflows/{workflow_id}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// The first event of `event_type` in a history; panics if there is none.
pub fn closing_event<'a>(history: &'a [Value], event_type: &str) -> &'a Value {
    history
        .iter()
        .find(|e| e["event_type"] == event_type)
        .unwrap_or_else(|| panic!("no {event_type} in {history:#?}"))
}

/// The event types of a history, in order.
pub fn event_types(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Polls `check` every 20 ms until it returns true, for at most `limit`.
pub async fn eventually<F, Fut>(limit: StdDuration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    false
}
