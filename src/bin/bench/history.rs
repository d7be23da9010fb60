//! W8: history scaling. One workflow of `k` sequential tiny activities per
//! `k` (by default 100, 1,000 and 10,000), against a loopback handler of
//! its own that speaks the raw push protocol and keeps no state between
//! pushes, so every workflow task carries, and is decided from, the whole
//! history.
//!
//! Measured per `k`, over the first and the last tenth of the steps (one
//! step: a workflow task, the activity it schedules, their commits):
//! server CPU per step (this process's CPU clock less the handler's own:
//! each push's handling is timed on its thread's CPU clock, so what is
//! left is the node and the driver's one long-polling result request), the handler's CPU per step,
//! the bytes of each workflow task push and the history length; then the
//! whole run's CPU (this process, and the bench database's PostgreSQL
//! backends) and wall time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{call, cpu_seconds, SECRET};

/// Where a run stands; one workflow runs at a time.
struct Progress {
    /// The steps of the workflow running now.
    steps: AtomicUsize,
    /// The handler's CPU so far, in nanoseconds.
    handler_ns: AtomicU64,
    /// Bytes of workflow task pushes so far.
    pushed: AtomicU64,
    /// Samples taken at the start of chosen workflow tasks.
    samples: Mutex<Vec<Sample>>,
}

static PROGRESS: Progress = Progress {
    steps: AtomicUsize::new(0),
    handler_ns: AtomicU64::new(0),
    pushed: AtomicU64::new(0),
    samples: Mutex::new(Vec::new()),
};

#[derive(Clone, Copy)]
struct Sample {
    /// Activities completed when the workflow task was pushed.
    done: usize,
    process_ns: u64,
    handler_ns: u64,
    pushed: u64,
    history_length: usize,
}

pub async fn run(
    http: &reqwest::Client,
    base: &str,
    database_url: &str,
    steps: &[usize],
) -> anyhow::Result<()> {
    let app = Router::new().route("/", post(handle));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let (status, body) = call(
        http,
        &format!("{base}/api/v1/namespaces/default/endpoints"),
        json!({"task_queue": "bench-history", "url": format!("http://{addr}/"), "secrets": [SECRET]}),
    )
    .await?;
    anyhow::ensure!(status == 201, "registering the endpoint failed: {body}");
    for &k in steps {
        one(http, base, database_url, k).await?;
    }
    Ok(())
}

async fn one(
    http: &reqwest::Client,
    base: &str,
    database_url: &str,
    k: usize,
) -> anyhow::Result<()> {
    PROGRESS.steps.store(k, Relaxed);
    lock(&PROGRESS.samples).clear();
    let pg_before = postgres_by_pid();
    let cpu_before = process_ns();
    let begun = Instant::now();
    let id = format!("W8-{k}-{}", uuid::Uuid::new_v4().simple());
    let (status, body) = call(
        http,
        &format!("{base}/api/v1/namespaces/default/workflows/{id}"),
        json!({"workflow_type": "Sequential", "task_queue": "bench-history"}),
    )
    .await?;
    anyhow::ensure!(status == 201, "start failed: {body}");
    super::result(http, base, &id).await?;
    let wall = begun.elapsed().as_secs_f64();
    let cpu = (process_ns() - cpu_before) as f64 / 1e9;
    let pg_cpu = backends_cpu(database_url, &pg_before).await?;
    let samples = lock(&PROGRESS.samples).clone();
    let at = |done: usize| samples.iter().find(|s| s.done == done).copied();
    let w = window(k);
    let (Some(a), Some(b), Some(c), Some(d)) = (at(0), at(w), at(k - w), at(k)) else {
        anyhow::bail!("W8 k={k}: the handler did not see every sampled workflow task");
    };
    let per_step = |from: Sample, to: Sample| {
        let n = (to.done - from.done) as f64;
        let handler = to.handler_ns - from.handler_ns;
        let server = (to.process_ns - from.process_ns).saturating_sub(handler);
        json!({
            "history_length": [from.history_length, to.history_length],
            "server_cpu_ms": round(server as f64 / n / 1e6),
            "handler_cpu_ms": round(handler as f64 / n / 1e6),
            "bytes_pushed": ((to.pushed - from.pushed) as f64 / n).round() as u64,
        })
    };
    let start = per_step(a, b);
    let end = per_step(c, d);
    let ratio = |f: &str| round(end[f].as_f64().unwrap_or(0.0) / start[f].as_f64().unwrap_or(1.0));
    let line = json!({
        "workload": "W8",
        "steps": k,
        "window_steps": w,
        "first_tenth": start,
        "last_tenth": end,
        "server_cpu_end_over_start": ratio("server_cpu_ms"),
        "seconds": round(wall),
        "cpu_seconds": {"baton_process": round(cpu), "postgres_backends": round(pg_cpu)},
        "bytes_pushed_total": d.pushed,
    });
    println!("{line}");
    Ok(())
}

/// CPU seconds of every PostgreSQL server process, by pid.
fn postgres_by_pid() -> HashMap<String, f64> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            stat.contains("(postgres)").then(|| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    cpu_seconds(&stat),
                )
            })
        })
        .collect()
}

/// CPU seconds the bench database's backends (those connected now: the
/// node's pool) used since `before`. The PostgreSQL server is shared, so
/// its other processes are left out.
async fn backends_cpu(database_url: &str, before: &HashMap<String, f64>) -> anyhow::Result<f64> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    let pids: Vec<i32> = sqlx::query_scalar(
        "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()",
    )
    .fetch_all(&mut conn)
    .await?;
    let now = postgres_by_pid();
    Ok(pids
        .iter()
        .map(|p| p.to_string())
        .filter_map(|p| Some(now.get(&p)? - before.get(&p).unwrap_or(&0.0)))
        .sum())
}

/// Steps in each measured window: a tenth, at least one.
fn window(k: usize) -> usize {
    (k / 10).max(1)
}

fn round(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the handler reads of a push: the type, and of each event its type.
#[derive(Deserialize)]
struct Push {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    history: Vec<Lite>,
}

#[derive(Deserialize)]
struct Lite {
    event_type: String,
}

async fn handle(body: Bytes) -> (StatusCode, axum::Json<Value>) {
    let begun = thread_ns();
    let answer = decide(&body);
    let spent = thread_ns().saturating_sub(begun);
    PROGRESS.handler_ns.fetch_add(spent, Relaxed);
    answer
}

fn decide(body: &[u8]) -> (StatusCode, axum::Json<Value>) {
    let Ok(push) = serde_json::from_slice::<Push>(body) else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({})));
    };
    if push.kind == "activity_task" {
        return (StatusCode::OK, axum::Json(json!({"result": {"ok": true}})));
    }
    let count = |t: &str| push.history.iter().filter(|e| e.event_type == t).count();
    let done = count("ActivityTaskCompleted");
    let k = PROGRESS.steps.load(Relaxed);
    let w = window(k);
    if [0, w, k - w, k].contains(&done) && count("WorkflowTaskStarted") == done + 1 {
        // Sampled before this push's bytes are counted, as its step is
        // the window's next.
        let sample = Sample {
            done,
            process_ns: process_ns(),
            handler_ns: PROGRESS.handler_ns.load(Relaxed),
            pushed: PROGRESS.pushed.load(Relaxed),
            history_length: push.history.len(),
        };
        lock(&PROGRESS.samples).push(sample);
    }
    PROGRESS.pushed.fetch_add(body.len() as u64, Relaxed);
    let commands = if done == k {
        json!([{"command_type": "CompleteWorkflowExecution", "attributes": {"result": {"ok": true}}}])
    } else if count("ActivityTaskScheduled") > done {
        json!([])
    } else {
        json!([{"command_type": "ScheduleActivityTask", "attributes": {
            "activity_id": format!("a{done}"), "activity_type": "Tiny",
            "input": {"step": done}, "start_to_close_timeout": "30s"}}])
    };
    (StatusCode::OK, axum::Json(json!({"commands": commands})))
}

/// Nanoseconds of CPU this thread has used.
fn thread_ns() -> u64 {
    cpu_ns(rustix::time::ClockId::ThreadCPUTime)
}

/// Nanoseconds of CPU all of this process's threads have used.
fn process_ns() -> u64 {
    cpu_ns(rustix::time::ClockId::ProcessCPUTime)
}

fn cpu_ns(clock: rustix::time::ClockId) -> u64 {
    let t = rustix::time::clock_gettime(clock);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}
