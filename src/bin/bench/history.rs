//! W8: history scaling. One workflow of `k` sequential tiny activities per
//! `k` (by default 100, 1,000 and 10,000) and per handler mode, against a
//! loopback handler of its own that speaks the raw push protocol:
//!
//! - `whole`: keeps nothing between pushes and registers no features, so
//!   every workflow task carries, and is decided from, the whole history;
//! - `sticky`: answers `sticky: true` and keeps each run's tallies, so a
//!   push carries only the events since its last task (docs/protocol.md
//!   §5.10);
//! - `paged`: a serverless handler (keeps nothing) registered with the
//!   `history_pages` feature: past `--push-history-bytes` a push carries
//!   the newest events and the handler pages in the rest, every task.
//!
//! Measured per `k`, over the first and the last tenth of the steps (one
//! step: a workflow task, the activity it schedules, their commits):
//! server CPU per step (this process's CPU clock less the handler's own:
//! each push's handling is timed on its thread's CPU clock, so what is
//! left is the node and the driver's one long-polling result request), the handler's CPU per step,
//! the bytes of each workflow task push and the history length; then the
//! whole run's CPU (this process, and the bench database's PostgreSQL
//! backends) and wall time. In `paged` mode the handler's HTTP client
//! (the page requests) counts as server CPU; the parsing of the pages as
//! the handler's, and their bytes are printed apart.
//!
//! With `--step-payload-bytes N` each activity returns N bytes and the
//! handler reads every result it replays (all of a whole or paged history,
//! the new ones of a sticky push). Payloads past the node's
//! `--payload-reference-bytes` are stored by reference (docs/protocol.md
//! §9.1): the handler registers `payload_references` and resolves each
//! reference from the push's `payloads`, else through the signed payload
//! route, whose answers' bytes are printed apart too (`bytes_fetched`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::{call, cpu_seconds, SECRET};

/// How the handler keeps (or does not keep) what it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Whole,
    Sticky,
    Paged,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Whole => "whole",
            Mode::Sticky => "sticky",
            Mode::Paged => "paged",
        }
    }
}

/// Where a run stands; one workflow runs at a time.
struct Progress {
    /// The steps of the workflow running now.
    steps: AtomicUsize,
    /// The handler's CPU so far, in nanoseconds.
    handler_ns: AtomicU64,
    /// Bytes of workflow task pushes so far.
    pushed: AtomicU64,
    /// Bytes of history pages read so far.
    paged: AtomicU64,
    /// Bytes of payloads fetched through the payload route so far.
    fetched: AtomicU64,
    /// Bytes of each activity's result.
    payload_bytes: AtomicUsize,
    /// Samples taken at the start of chosen workflow tasks.
    samples: Mutex<Vec<Sample>>,
}

static PROGRESS: Progress = Progress {
    steps: AtomicUsize::new(0),
    handler_ns: AtomicU64::new(0),
    pushed: AtomicU64::new(0),
    paged: AtomicU64::new(0),
    fetched: AtomicU64::new(0),
    payload_bytes: AtomicUsize::new(0),
    samples: Mutex::new(Vec::new()),
};

#[derive(Clone, Copy)]
struct Sample {
    /// Activities completed when the workflow task was pushed.
    done: usize,
    process_ns: u64,
    handler_ns: u64,
    pushed: u64,
    paged: u64,
    fetched: u64,
    history_length: usize,
    history_size_bytes: u64,
}

/// What a sticky handler keeps of a run: its tallies, as of an event.
#[derive(Clone, Copy, Default)]
struct Tally {
    last_event_id: i64,
    done: usize,
    scheduled: usize,
    started: usize,
}

impl Tally {
    fn add(&mut self, events: &[Lite]) {
        for e in events {
            match e.event_type.as_str() {
                "ActivityTaskCompleted" => self.done += 1,
                "ActivityTaskScheduled" => self.scheduled += 1,
                "WorkflowTaskStarted" => self.started += 1,
                _ => {}
            }
            self.last_event_id = e.event_id;
        }
    }
}

/// The sticky handler's runs, by run id.
static KEPT: Mutex<Option<HashMap<String, Tally>>> = Mutex::new(None);

/// What W8 runs.
pub struct Plan<'a> {
    pub steps: &'a [usize],
    pub modes: &'a [Mode],
    /// Bytes of each activity's result (0: tiny).
    pub payload_bytes: usize,
}

pub async fn run(
    http: &reqwest::Client,
    base: &str,
    database_url: &str,
    plan: Plan<'_>,
) -> anyhow::Result<()> {
    PROGRESS.payload_bytes.store(plan.payload_bytes, Relaxed);
    let app = Router::new()
        .route("/whole", post(|b: Bytes| handle(Mode::Whole, b)))
        .route("/sticky", post(|b: Bytes| handle(Mode::Sticky, b)))
        .route("/paged", post(|b: Bytes| handle(Mode::Paged, b)))
        // Whole histories with payloads in place run to tens of MB.
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024 * 1024));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    for &mode in plan.modes {
        let features = match mode {
            Mode::Paged => json!(["history_pages", "payload_references"]),
            Mode::Whole | Mode::Sticky => json!(["payload_references"]),
        };
        let (status, body) = call(
            http,
            &format!("{base}/api/v1/namespaces/default/endpoints"),
            json!({"task_queue": format!("bench-history-{}", mode.name()),
                   "url": format!("http://{addr}/{}", mode.name()), "secrets": [SECRET],
                   "features": features}),
        )
        .await?;
        anyhow::ensure!(status == 201, "registering the endpoint failed: {body}");
        for &k in plan.steps {
            one(http, base, database_url, k, mode).await?;
        }
    }
    Ok(())
}

async fn one(
    http: &reqwest::Client,
    base: &str,
    database_url: &str,
    k: usize,
    mode: Mode,
) -> anyhow::Result<()> {
    PROGRESS.steps.store(k, Relaxed);
    PROGRESS.pushed.store(0, Relaxed);
    PROGRESS.paged.store(0, Relaxed);
    PROGRESS.fetched.store(0, Relaxed);
    lock(&PROGRESS.samples).clear();
    let pg_before = postgres_by_pid();
    let cpu_before = process_ns();
    let begun = Instant::now();
    let id = format!("W8-{k}-{}", uuid::Uuid::new_v4().simple());
    let (status, body) = call(
        http,
        &format!("{base}/api/v1/namespaces/default/workflows/{id}"),
        json!({"workflow_type": "Sequential", "task_queue": format!("bench-history-{}", mode.name())}),
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
            "bytes_paged": ((to.paged - from.paged) as f64 / n).round() as u64,
            "bytes_fetched": ((to.fetched - from.fetched) as f64 / n).round() as u64,
            "history_size_bytes": [from.history_size_bytes, to.history_size_bytes],
        })
    };
    let start = per_step(a, b);
    let end = per_step(c, d);
    let ratio = |f: &str| round(end[f].as_f64().unwrap_or(0.0) / start[f].as_f64().unwrap_or(1.0));
    let line = json!({
        "workload": "W8",
        "mode": mode.name(),
        "steps": k,
        "step_payload_bytes": PROGRESS.payload_bytes.load(Relaxed),
        "window_steps": w,
        "first_tenth": start,
        "last_tenth": end,
        "server_cpu_end_over_start": ratio("server_cpu_ms"),
        "seconds": round(wall),
        "cpu_seconds": {"baton_process": round(cpu), "postgres_backends": round(pg_cpu)},
        "bytes_pushed_total": d.pushed,
        "bytes_paged_total": d.paged,
        "bytes_fetched_total": d.fetched,
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

/// What the handler reads of a push: the type, the run, where its history
/// starts, and of each event its id and type.
#[derive(Deserialize)]
struct Push {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    run_id: String,
    #[serde(default)]
    activity_id: String,
    #[serde(default)]
    history: Vec<Lite>,
    #[serde(default)]
    history_length: usize,
    #[serde(default)]
    history_first_event_id: Option<i64>,
    #[serde(default)]
    history_reference: Option<String>,
    #[serde(default)]
    history_url: Option<String>,
    #[serde(default)]
    history_size_bytes: u64,
    /// Payloads beside the references, by digest (docs/protocol.md §9.1).
    #[serde(default)]
    payloads: HashMap<String, Box<RawValue>>,
}

#[derive(Deserialize)]
struct Lite {
    event_id: i64,
    event_type: String,
    #[serde(default)]
    attributes: LiteAttributes,
}

/// The one attribute the handler reads: an activity's result.
#[derive(Default, Deserialize)]
struct LiteAttributes {
    #[serde(default)]
    result: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct Page {
    events: Vec<Lite>,
    next_first_event_id: i64,
    #[serde(default)]
    payloads: HashMap<String, Box<RawValue>>,
}

/// The digest of the reference `result` is, if it is one.
fn reference(result: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Reference {
        #[serde(rename = "$baton_payload")]
        payload: Digest,
    }
    #[derive(Deserialize)]
    struct Digest {
        sha256: String,
    }
    serde_json::from_str::<Reference>(result.get())
        .ok()
        .map(|r| r.payload.sha256)
}

async fn handle(mode: Mode, body: Bytes) -> (StatusCode, axum::Json<Value>) {
    let begun = thread_ns();
    let parsed = serde_json::from_slice::<Push>(&body);
    let mut spent = thread_ns().saturating_sub(begun);
    let Ok(push) = parsed else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({})));
    };
    if push.kind == "activity_task" {
        let size = PROGRESS.payload_bytes.load(Relaxed);
        let result = match size {
            0 => json!({"ok": true}),
            // Each step's own payload (the same one would be stored once).
            n => json!({"step": push.activity_id, "pad": "x".repeat(n)}),
        };
        PROGRESS.handler_ns.fetch_add(spent, Relaxed);
        return (StatusCode::OK, axum::Json(json!({"result": result})));
    }
    // What the handler holds of the events before the push's first.
    let kept = match (mode, push.history_first_event_id) {
        (Mode::Sticky, Some(first)) => lock(&KEPT)
            .get_or_insert_with(HashMap::new)
            .remove(&push.run_id)
            .filter(|t| t.last_event_id == first - 1),
        _ => None,
    };
    let mut tally = match (kept, push.history_first_event_id) {
        (Some(t), _) => t,
        (None, None) => Tally::default(),
        (None, Some(first)) => match page_in(&push, first, &mut spent).await {
            Ok(t) => t,
            Err(e) => {
                eprintln!("W8: paging in failed: {e:#}");
                return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({})));
            }
        },
    };
    if let Err(e) = resolve(&push, &push.history, &push.payloads, &mut spent).await {
        eprintln!("W8: resolving payloads failed: {e:#}");
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({})));
    }
    let begun = thread_ns();
    tally.add(&push.history);
    let answer = decide(mode, &push, tally, body.len());
    spent += thread_ns().saturating_sub(begun);
    PROGRESS.handler_ns.fetch_add(spent, Relaxed);
    (StatusCode::OK, axum::Json(answer))
}

/// POSTs `body` to `url`, signed with the endpoint's secret (as a handler
/// signs page and payload requests), and returns the answer's bytes.
async fn post_signed(url: &str, body: &Value) -> anyhow::Result<Bytes> {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let http = HTTP.get_or_init(reqwest::Client::new);
    let secret: baton::signing::Secret = SECRET.parse()?;
    let body = serde_json::to_vec(body)?;
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .header(baton::signing::ID_HEADER, &id)
        .header(baton::signing::TIMESTAMP_HEADER, ts.to_string())
        .header(
            baton::signing::SIGNATURE_HEADER,
            baton::signing::sign(std::slice::from_ref(&secret), &id, ts, &body),
        )
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 200, "{url} answered {}", resp.status());
    Ok(resp.bytes().await?)
}

/// The tallies of events `1 .. first` of a partial push, paged in through
/// the signed page route; the parsing's CPU is added to `spent`.
async fn page_in(push: &Push, first: i64, spent: &mut u64) -> anyhow::Result<Tally> {
    let url = push.history_url.as_deref().context("no history_url")?;
    let mut tally = Tally::default();
    let mut next = 1;
    while next < first {
        let request = json!({"history_reference": push.history_reference, "first_event_id": next});
        let bytes = post_signed(url, &request).await?;
        PROGRESS.paged.fetch_add(bytes.len() as u64, Relaxed);
        let begun = thread_ns();
        let page: Page = serde_json::from_slice(&bytes)?;
        *spent += thread_ns().saturating_sub(begun);
        resolve(push, &page.events, &page.payloads, spent).await?;
        let begun = thread_ns();
        tally.add(&page.events);
        *spent += thread_ns().saturating_sub(begun);
        anyhow::ensure!(page.next_first_event_id > next, "a page must move on");
        next = page.next_first_event_id;
    }
    Ok(tally)
}

/// Reads the results of `events` that are references as an SDK does:
/// from `inlined`, else through the signed payload route (in one request
/// for all of them), parsing each; the parsing's CPU is added to `spent`.
async fn resolve(
    push: &Push,
    events: &[Lite],
    inlined: &HashMap<String, Box<RawValue>>,
    spent: &mut u64,
) -> anyhow::Result<()> {
    let begun = thread_ns();
    let mut missing = Vec::new();
    for e in events {
        let Some(digest) = e.attributes.result.as_deref().and_then(reference) else {
            continue;
        };
        match inlined.get(&digest) {
            Some(payload) => drop(serde_json::from_str::<Value>(payload.get())?),
            None => missing.push(digest),
        }
    }
    *spent += thread_ns().saturating_sub(begun);
    let url = push
        .history_url
        .as_deref()
        .map(|u| u.replace("workflow-tasks/history", "payloads"));
    for chunk in missing.chunks(100) {
        let mut wanted: Vec<String> = chunk.to_vec();
        while !wanted.is_empty() {
            let url = url.as_deref().context("no history_url")?;
            let bytes = post_signed(url, &json!({"run_id": push.run_id, "sha256": wanted})).await?;
            PROGRESS.fetched.fetch_add(bytes.len() as u64, Relaxed);
            let begun = thread_ns();
            #[derive(Deserialize)]
            struct Fetched {
                payloads: HashMap<String, Value>,
            }
            let fetched: Fetched = serde_json::from_slice(&bytes)?;
            *spent += thread_ns().saturating_sub(begun);
            anyhow::ensure!(
                !fetched.payloads.is_empty(),
                "the payload route must move on"
            );
            wanted.retain(|d| !fetched.payloads.contains_key(d));
        }
    }
    Ok(())
}

fn decide(mode: Mode, push: &Push, tally: Tally, bytes: usize) -> Value {
    let done = tally.done;
    let k = PROGRESS.steps.load(Relaxed);
    let w = window(k);
    if [0, w, k - w, k].contains(&done) && tally.started == done + 1 {
        // Sampled before this push's bytes are counted, as its step is
        // the window's next.
        let sample = Sample {
            done,
            process_ns: process_ns(),
            handler_ns: PROGRESS.handler_ns.load(Relaxed),
            pushed: PROGRESS.pushed.load(Relaxed),
            paged: PROGRESS.paged.load(Relaxed),
            fetched: PROGRESS.fetched.load(Relaxed),
            history_length: push.history_length,
            history_size_bytes: push.history_size_bytes,
        };
        lock(&PROGRESS.samples).push(sample);
    }
    PROGRESS.pushed.fetch_add(bytes as u64, Relaxed);
    let commands = if done == k {
        json!([{"command_type": "CompleteWorkflowExecution", "attributes": {"result": {"ok": true}}}])
    } else if tally.scheduled > done {
        json!([])
    } else {
        json!([{"command_type": "ScheduleActivityTask", "attributes": {
            "activity_id": format!("a{done}"), "activity_type": "Tiny",
            "input": {"step": done}, "start_to_close_timeout": "30s"}}])
    };
    if mode != Mode::Sticky {
        return json!({"commands": commands});
    }
    lock(&KEPT)
        .get_or_insert_with(HashMap::new)
        .insert(push.run_id.clone(), tally);
    json!({"commands": commands, "sticky": true})
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
