//! `baton-bench`: fixed workloads against a real node on PostgreSQL, with a
//! lightweight loopback handler that speaks the raw push protocol. Prints one
//! JSON line per workload: throughput, end-to-end latency percentiles and CPU
//! time per workflow (this process = server + handler + load driver, and the
//! PostgreSQL server processes).
//!
//! W1: 2,000 workflows of 3 sequential activities, 50 in flight.
//! W2: 200 one-activity workflows one after another (latency).
//! W3: 500 workflows that sleep 1 s on a durable timer, 100 in flight
//!     (overhead beyond the 1 s).
//! W4: 100,000 workflows left open on a 1-hour timer: this process's
//!     resident memory (server + handler + driver) once all are waiting,
//!     against the same before the first start.
//! W5: overload: 1,000 workflows started at once, each running three 1 s
//!     activities (start-to-close 5 s) on an endpoint that takes 100 at a
//!     time: the time to drain (ideal 1,000 × 3 s / 100 = 30 s), executions
//!     per scheduled activity, the highest attempt and the peak concurrency
//!     the handler saw.
//!
//! W6: 10,000 schedules with 1-minute intervals (jitter off), each starting
//!     a workflow that completes at once, for 3 minutes: this process's
//!     and PostgreSQL's CPU per fired action, and how late the runs started
//!     behind their nominal times (p50/p99).
//!
//! W7: list queries at 1,000,000 closed runs (p50/p99 by query shape) and
//!     the retention deleter's runs/s (`visibility.rs`).
//!
//! W8: one workflow of k sequential tiny activities for each k of
//!     `--history-steps` (100, 1,000, 10,000) and each handler mode of
//!     `--history-modes` (whole, sticky, paged): server and handler CPU per
//!     step and bytes per workflow task push over the first and the last
//!     tenth of the run, total CPU and wall (`history.rs`).
//!
//! Each of W1–W3 also prints the database transactions committed per
//! workflow (`pg_stat_database.xact_commit`, reads included: every
//! statement outside a transaction is one), and the pushes and pushed
//! bytes per workflow. With `--inline` the handler runs W1's and W2's
//! activities inline, committing each step with a signed checkpoint
//! (docs/protocol.md §5.9), and their checkpoints per workflow are
//! printed too.
//!
//! Usage: `cargo run --release --bin baton-bench -- [--workloads W1,W2,W3]
//! [--database-url URL] [--scale 0.1] [--no-metrics]`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use baton::engine::Limits;
use baton::server::{self, Options};
use baton::time::Clock as _;

use baton::{claim, dispatch};
use clap::Parser;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

mod history;
mod visibility;

// The node's allocator, as in the `baton` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET: &str = "whsec_YmF0b24tYmVuY2htYXJrLXNlY3JldC1rZXktMzI=";

#[derive(Parser)]
struct Args {
    /// Comma-separated workloads to run (W7 and W8 only when named: W7 seeds
    /// a million runs, a few GB).
    #[arg(long, default_value = "W1,W2,W3,W4,W5,W6")]
    workloads: String,
    /// A PostgreSQL URL; by default a fresh database is created on
    /// postgres://postgres@127.0.0.1:5432/postgres and dropped afterwards.
    #[arg(long, env = "BATON_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Multiplies workflow counts (e.g. 0.1 for a smoke run).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// How many minutes of W6's schedules are measured.
    #[arg(long, default_value_t = 3)]
    schedule_minutes: i64,
    /// Closed runs W7 seeds (before `--scale`).
    #[arg(long, default_value_t = 1_000_000)]
    visibility_runs: usize,
    /// Requests per W7 query shape.
    #[arg(long, default_value_t = 200)]
    visibility_queries: usize,
    /// How long W7 lets the retention deleter work.
    #[arg(long, default_value_t = 60)]
    deleter_seconds: u64,
    /// Record no metrics (a no-op recorder in place of the Prometheus
    /// one), to measure what metrics cost.
    #[arg(long)]
    no_metrics: bool,
    /// W8's workflow lengths, in sequential activities.
    #[arg(long, default_value = "100,1000,10000", value_delimiter = ',')]
    history_steps: Vec<usize>,
    /// W8's handler modes: `whole` (no state, whole histories), `sticky`
    /// (keeps each run, gets the new events), `paged` (no state, pages
    /// in past `--push-history-bytes`).
    #[arg(
        long,
        value_enum,
        default_value = "whole,sticky,paged",
        value_delimiter = ','
    )]
    history_modes: Vec<history::Mode>,
    /// The node's paging bound (as `baton serve --push-history-bytes`).
    #[arg(long, default_value_t = 1024 * 1024)]
    push_history_bytes: u64,
    /// W8: each activity's result is this many bytes (0: tiny), and the
    /// handler reads every result it replays, resolving references
    /// (docs/protocol.md §9.1) as an SDK does.
    #[arg(long, default_value_t = 0)]
    step_payload_bytes: usize,
    /// The node's claim-check threshold (as `baton serve
    /// --payload-reference-bytes`; 0: payloads stay in the history).
    #[arg(long, default_value_t = 128 * 1024)]
    payload_reference_bytes: u64,
    /// The node's run cache budget in MiB (as `baton serve --run-cache-mb`).
    #[arg(long, default_value_t = 64)]
    run_cache_mb: usize,
    /// The handler runs the activities of W1 and W2 inline, one checkpoint
    /// per step, instead of answering each push alone.
    #[arg(long)]
    inline: bool,
}

struct Workload {
    name: &'static str,
    workflows: usize,
    in_flight: usize,
    workflow_type: &'static str,
    /// Subtracted from latencies (W3's sleep).
    baseline: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    INLINE.store(args.inline, Relaxed);
    if args.no_metrics {
        // Installed before the node's own recorder, which then records
        // into nothing (`telemetry::install`).
        metrics::set_global_recorder(metrics::NoopRecorder)
            .map_err(|e| anyhow::anyhow!("installing the no-op recorder: {e}"))?;
    }
    let (url, admin) = match &args.database_url {
        Some(u) => (u.clone(), None),
        None => {
            let admin = "postgres://postgres@127.0.0.1:5432/postgres".to_owned();
            (fresh_database(&admin).await?, Some(admin))
        }
    };
    let handler = spawn_handler().await?;
    let options = Options {
        listen: "127.0.0.1:0".parse()?,
        database_url: url.clone(),
        api_key: None,
        // W8's longest run (10,000 steps) records about 60,000 events.
        limits: Limits {
            max_history_events: 100_000,
            ..Limits::default()
        },
        apply: baton::apply::Options {
            run_cache_bytes: args.run_cache_mb * 1024 * 1024,
            payload_reference_bytes: args.payload_reference_bytes,
        },
        dispatch: dispatch::Options {
            push_history_bytes: args.push_history_bytes,
            ..dispatch::Options::default()
        },
        timers: claim::Options::default(),
        time_skipping: false,
        tls: Default::default(),
        ui: false,
        default_retention: baton::store::DEFAULT_RETENTION,
        batch_max_rps: 1_000.0,
    };
    let node = server::start(options).await?;
    let base = format!("http://{}", node.addr);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let (status, body) = call(
        &http,
        &format!("{base}/api/v1/namespaces/default/endpoints"),
        json!({"task_queue": "bench", "url": format!("http://{handler}/"), "secrets": [SECRET], "max_concurrency": 500}),
    )
    .await?;
    anyhow::ensure!(status == 201, "registering the endpoint failed: {body}");

    let scaled = |n: usize| ((n as f64 * args.scale).round() as usize).max(1);
    let all = [
        Workload {
            name: "W1",
            workflows: scaled(2_000),
            in_flight: 50,
            workflow_type: "ThreeActivities",
            baseline: Duration::ZERO,
        },
        Workload {
            name: "W2",
            workflows: scaled(200),
            in_flight: 1,
            workflow_type: "OneActivity",
            baseline: Duration::ZERO,
        },
        Workload {
            name: "W3",
            workflows: scaled(500),
            in_flight: 100,
            workflow_type: "SleepOneSecond",
            baseline: Duration::from_secs(1),
        },
    ];
    let wanted = |name: &str| args.workloads.split(',').any(|n| n.trim() == name);
    for w in all.iter().filter(|w| wanted(w.name)) {
        run(&http, &base, &url, w).await?;
    }
    if wanted("W4") {
        open_runs_memory(&http, &base, scaled(100_000)).await?;
    }
    if wanted("W5") {
        overload(&http, &base, handler, scaled(1_000)).await?;
    }
    if wanted("W6") {
        schedules(&http, &base, &url, scaled(10_000), args.schedule_minutes).await?;
    }
    if wanted("W7") {
        let params = visibility::Params {
            runs: scaled(args.visibility_runs),
            queries: args.visibility_queries,
            deleter_seconds: args.deleter_seconds,
        };
        visibility::run(&http, &base, &url, &params).await?;
    }
    if wanted("W8") {
        let plan = history::Plan {
            steps: &args.history_steps,
            modes: &args.history_modes,
            payload_bytes: args.step_payload_bytes,
        };
        history::run(&http, &base, &url, plan).await?;
    }
    node.stop().await;
    if let Some(admin) = admin {
        drop_database(&admin, &url).await;
    }
    Ok(())
}

async fn run(
    http: &reqwest::Client,
    base: &str,
    database_url: &str,
    w: &Workload,
) -> anyhow::Result<()> {
    // Warm up connections and caches.
    one_workflow(http, base, w.workflow_type, &format!("{}-warmup", w.name)).await?;
    let commits_before = xact_commits(database_url).await?;
    let sent_before = [&PUSHES, &PUSHED_BYTES, &CHECKPOINTS].map(|c| c.load(Relaxed));
    let cpu_before = cpu_seconds_self();
    let pg_before = cpu_seconds_postgres();
    let started = Instant::now();
    let limit = Arc::new(Semaphore::new(w.in_flight));
    let mut tasks = Vec::with_capacity(w.workflows);
    for i in 0..w.workflows {
        let permit = limit.clone().acquire_owned().await?;
        let (http, base, wf_type) = (http.clone(), base.to_owned(), w.workflow_type);
        let id = format!("{}-{}-{i}", w.name, uuid::Uuid::new_v4().simple());
        tasks.push(tokio::spawn(async move {
            let r = one_workflow(&http, &base, wf_type, &id).await;
            drop(permit);
            r
        }));
    }
    let mut latencies = Vec::with_capacity(w.workflows);
    for t in tasks {
        latencies.push(t.await??);
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds_self() - cpu_before;
    let pg_cpu = cpu_seconds_postgres() - pg_before;
    let commits = xact_commits(database_url).await? - commits_before;
    let [pushes, pushed_bytes, checkpoints] =
        [&PUSHES, &PUSHED_BYTES, &CHECKPOINTS].map(|c| c.load(Relaxed));
    let per = |now: usize, before: usize| {
        ((now - before) as f64 / w.workflows as f64 * 10.0).round() / 10.0
    };
    latencies.sort();
    let pct = |p: f64| {
        let idx = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        let d = latencies[idx].saturating_sub(w.baseline);
        (d.as_secs_f64() * 1e5).round() / 1e2
    };
    let n = w.workflows as f64;
    let line = json!({
        "workload": w.name,
        "workflows": w.workflows,
        "in_flight": w.in_flight,
        "seconds": (elapsed.as_secs_f64() * 1e3).round() / 1e3,
        "workflows_per_sec": (n / elapsed.as_secs_f64() * 10.0).round() / 10.0,
        "latency_ms": {"p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99)},
        "latency_is_overhead_beyond_ms": w.baseline.as_millis() as u64,
        "cpu_ms_per_workflow": {
            "baton_process": (cpu / n * 1e5).round() / 1e2,
            "postgres": (pg_cpu / n * 1e5).round() / 1e2,
        },
        "db_transactions_per_workflow": (commits as f64 / n * 10.0).round() / 10.0,
        "pushes_per_workflow": per(pushes, sent_before[0]),
        "pushed_bytes_per_workflow": per(pushed_bytes, sent_before[1]),
        "checkpoints_per_workflow": per(checkpoints, sent_before[2]),
        "inline": INLINE.load(Relaxed),
    });
    println!("{line}");
    Ok(())
}

/// Committed transactions of the bench database so far. PostgreSQL
/// publishes a backend's counts when it goes idle, at most once a second,
/// so this waits that out first.
async fn xact_commits(database_url: &str) -> anyhow::Result<i64> {
    use sqlx::Connection as _;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    let (n,): (i64,) = sqlx::query_as(
        "select xact_commit from pg_stat_database where datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await?;
    Ok(n)
}

/// Workflows `{prefix}-0` … `{prefix}-{n-1}` to start.
struct Start {
    prefix: &'static str,
    workflow_type: &'static str,
    task_queue: &'static str,
    /// Starts in flight at once.
    at_once: usize,
}

/// Starts `n` workflows, failing on the first start that fails.
async fn start_all(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    start: &Start,
) -> anyhow::Result<()> {
    let failed = futures::stream::iter(0..n)
        .map(|i| {
            let (http, base) = (http.clone(), base.to_owned());
            async move {
                let id = format!("{}-{i}", start.prefix);
                let res = call(
                    &http,
                    &format!("{base}/api/v1/namespaces/default/workflows/{id}"),
                    json!({"workflow_type": start.workflow_type, "task_queue": start.task_queue}),
                )
                .await;
                match res {
                    Ok((201, _)) => None,
                    Ok((status, body)) => Some(format!("start failed ({status}): {body}")),
                    Err(e) => Some(format!("start failed: {e}")),
                }
            }
        })
        .buffer_unordered(start.at_once)
        .filter_map(std::future::ready)
        .next()
        .await;
    match failed {
        Some(e) => anyhow::bail!(e),
        None => Ok(()),
    }
}

/// W4: starts `n` workflows that each wait on a 1-hour timer, waits until
/// every one has started its timer, and prints the resident memory.
async fn open_runs_memory(http: &reqwest::Client, base: &str, n: usize) -> anyhow::Result<()> {
    let rss_before = rss_bytes();
    let started = Instant::now();
    // Answers are checked as they come and dropped: the driver keeps
    // nothing per workflow, so the memory measured is the node's.
    let start = Start {
        prefix: "W4",
        workflow_type: "SleepOneHour",
        task_queue: "bench",
        at_once: 200,
    };
    start_all(http, base, n, &start).await?;
    while TIMERS_STARTED.load(std::sync::atomic::Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the last commits and pushes settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_bytes();
    let mib = |b: u64| (b as f64 / 1048576.0 * 10.0).round() / 10.0;
    let line = json!({
        "workload": "W4",
        "open_workflows": n,
        "seconds_to_open": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "rss_mib": mib(rss),
        "rss_mib_before": mib(rss_before),
        "rss_is_of": "this process: server, handler and load driver",
    });
    println!("{line}");
    Ok(())
}

/// W5's endpoint limit.
const W5_MAX_CONCURRENCY: usize = 100;

/// W5: `n` workflows of three 1 s activities started at once behind an
/// endpoint that takes [`W5_MAX_CONCURRENCY`] pushes at a time.
async fn overload(
    http: &reqwest::Client,
    base: &str,
    handler: SocketAddr,
    n: usize,
) -> anyhow::Result<()> {
    let (status, body) = call(
        http,
        &format!("{base}/api/v1/namespaces/default/endpoints"),
        json!({"task_queue": "bench-narrow", "url": format!("http://{handler}/"),
               "secrets": [SECRET], "max_concurrency": W5_MAX_CONCURRENCY}),
    )
    .await?;
    anyhow::ensure!(status == 201, "registering the endpoint failed: {body}");
    let started = Instant::now();
    let start = Start {
        prefix: "W5",
        workflow_type: "ThreeSlowActivities",
        task_queue: "bench-narrow",
        at_once: 50,
    };
    start_all(http, base, n, &start).await?;
    let all_started = started.elapsed();
    let outcomes = futures::stream::iter(0..n)
        .map(|i| {
            let (http, base) = (http.clone(), base.to_owned());
            async move { result(&http, &base, &format!("W5-{i}")).await }
        })
        .buffer_unordered(200)
        .collect::<Vec<_>>()
        .await;
    for outcome in outcomes {
        outcome?;
    }
    let drained = started.elapsed();
    let executions = SLOW.executions.load(Relaxed);
    let line = json!({
        "workload": "W5",
        "workflows": n,
        "max_concurrency": W5_MAX_CONCURRENCY,
        "seconds_to_start_all": (all_started.as_secs_f64() * 10.0).round() / 10.0,
        "seconds_to_drain": (drained.as_secs_f64() * 10.0).round() / 10.0,
        "ideal_seconds": n * 3 / W5_MAX_CONCURRENCY,
        "executions_per_scheduled_activity": (executions as f64 / (n * 3) as f64 * 1e3).round() / 1e3,
        "highest_attempt": SLOW.highest_attempt.load(Relaxed),
        "peak_concurrency": SLOW.peak.load(Relaxed),
    });
    println!("{line}");
    Ok(())
}

/// What W5's handler saw of its 1 s activities.
struct Slow {
    executions: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
    highest_attempt: AtomicUsize,
}

static SLOW: Slow = Slow {
    executions: AtomicUsize::new(0),
    running: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
    highest_attempt: AtomicUsize::new(0),
};

/// Waits for a workflow's result; an error unless it completed.
async fn result(http: &reqwest::Client, base: &str, id: &str) -> anyhow::Result<()> {
    loop {
        let resp = http
            .get(format!(
                "{base}/api/v1/namespaces/default/workflows/{id}/result?wait=60s"
            ))
            .send()
            .await?;
        let v: Value = resp.json().await?;
        match v["status"].as_str() {
            Some("RUNNING") => continue,
            Some("COMPLETED") => return Ok(()),
            _ => anyhow::bail!("workflow {id} did not complete: {v}"),
        }
    }
}

/// W6: creates `n` one-minute schedules, measures the actions of
/// `minutes` whole minutes, then deletes the schedules.
async fn schedules(
    http: &reqwest::Client,
    base: &str,
    database_url: &str,
    n: usize,
    minutes: i64,
) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let created = Instant::now();
    let failed = futures::stream::iter(0..n)
        .map(|i| {
            let (http, base) = (http.clone(), base.to_owned());
            async move {
                let body = json!({"schedule": {
                    "spec": {"intervals": [{"every": "1m"}]},
                    "action": {"start_workflow": {"workflow_id": format!("W6-{i}"),
                        "workflow_type": "Noop", "task_queue": "bench"}},
                    "policies": {"overlap_policy": "ALLOW_ALL"}
                }});
                let url = format!("{base}/api/v1/namespaces/default/schedules/W6-{i}");
                match call(&http, &url, body).await {
                    Ok((201, _)) => None,
                    Ok((status, body)) => Some(format!("create failed ({status}): {body}")),
                    Err(e) => Some(format!("create failed: {e}")),
                }
            }
        })
        .buffer_unordered(100)
        .filter_map(std::future::ready)
        .next()
        .await;
    if let Some(e) = failed {
        anyhow::bail!(e);
    }
    let seconds_to_create = created.elapsed().as_secs_f64();
    // Measure from the next whole minute that is at least 5 s away.
    let now_ms = baton::time::Clock::now(&baton::time::SystemClock).millis();
    let from = (now_ms / 60_000 + 1) * 60_000 + if now_ms % 60_000 > 55_000 { 60_000 } else { 0 };
    let to = from + minutes * 60_000;
    let wait = Duration::from_millis(u64::try_from(from - now_ms).unwrap_or(0));
    tokio::time::sleep(wait).await;
    let (cpu_before, pg_before) = (cpu_seconds_self(), cpu_seconds_postgres());
    tokio::time::sleep(Duration::from_millis(u64::try_from(to - from).unwrap_or(0))).await;
    let expected = n as i64 * minutes;
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    let rows = loop {
        // Runs whose nominal time (in the id) falls in [from, to).
        let rows: Vec<(String, i64)> =
            sqlx::query_as("select workflow_id, start_time from runs where workflow_type = 'Noop'")
                .fetch_all(&mut conn)
                .await?;
        let inside: Vec<(i64, i64)> = rows
            .into_iter()
            .filter_map(|(id, start)| {
                let (_, stamp) = id.rsplit_once("-20")?;
                let nominal = humantime::parse_rfc3339(&format!("20{stamp}")).ok()?;
                let nominal = nominal
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_millis();
                let nominal = i64::try_from(nominal).ok()?;
                (from..to).contains(&nominal).then_some((nominal, start))
            })
            .collect();
        if inside.len() as i64 >= expected || created.elapsed() > Duration::from_secs(3600) {
            break inside;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let (cpu, pg_cpu) = (
        cpu_seconds_self() - cpu_before,
        cpu_seconds_postgres() - pg_before,
    );
    let mut late: Vec<i64> = rows
        .iter()
        .map(|(nominal, start)| start - nominal)
        .collect();
    late.sort_unstable();
    let pct = |p: f64| late[((late.len() as f64 - 1.0) * p).round() as usize];
    let fired = rows.len() as f64;
    let line = json!({
        "workload": "W6",
        "schedules": n,
        "minutes_measured": minutes,
        "actions_expected": expected,
        "actions_fired": rows.len(),
        "seconds_to_create": (seconds_to_create * 10.0).round() / 10.0,
        "lateness_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
        "cpu_ms_per_action": {
            "baton_process": (cpu / fired * 1e5).round() / 1e2,
            "postgres": (pg_cpu / fired * 1e5).round() / 1e2,
        },
        "cpu_is_of": "server, handler and load driver; postgres: every server process",
    });
    println!("{line}");
    for i in 0..n {
        let url = format!("{base}/api/v1/namespaces/default/schedules/W6-{i}");
        http.delete(url).send().await?;
    }
    Ok(())
}

/// Workflow tasks of W4's runs answered with their timer, so far.
static TIMERS_STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// This process's resident set size (VmRSS of /proc/self/status).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Starts one workflow and waits for its result; returns the latency.
async fn one_workflow(
    http: &reqwest::Client,
    base: &str,
    wf_type: &str,
    id: &str,
) -> anyhow::Result<Duration> {
    let begun = Instant::now();
    let (status, body) = call(
        http,
        &format!("{base}/api/v1/namespaces/default/workflows/{id}"),
        json!({"workflow_type": wf_type, "task_queue": "bench", "input": {"n": 1}}),
    )
    .await?;
    anyhow::ensure!(status == 201, "start failed: {body}");
    result(http, base, id).await?;
    Ok(begun.elapsed())
}

async fn call(http: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<(u16, Value)> {
    let resp = http.post(url).json(&body).send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// The handler: workflows as raw-history interpreters, activities that
/// answer at once with a small JSON object.
async fn spawn_handler() -> anyhow::Result<SocketAddr> {
    let app = Router::new().route("/", post(handle)).with_state(());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// `--inline`: W1's and W2's activities run in the handler.
static INLINE: AtomicBool = AtomicBool::new(false);
/// Pushes the handler received, their bytes, and the checkpoints it sent.
static PUSHES: AtomicUsize = AtomicUsize::new(0);
static PUSHED_BYTES: AtomicUsize = AtomicUsize::new(0);
static CHECKPOINTS: AtomicUsize = AtomicUsize::new(0);

async fn handle(State(()): State<()>, body: Bytes) -> (StatusCode, axum::Json<Value>) {
    PUSHES.fetch_add(1, Relaxed);
    PUSHED_BYTES.fetch_add(body.len(), Relaxed);
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({})));
    };
    if req["type"] == "activity_task" && req["activity_type"] == "Slow" {
        let now = SLOW.running.fetch_add(1, Relaxed) + 1;
        SLOW.peak.fetch_max(now, Relaxed);
        SLOW.executions.fetch_add(1, Relaxed);
        let attempt = req["attempt"].as_u64().unwrap_or(0) as usize;
        SLOW.highest_attempt.fetch_max(attempt, Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
        SLOW.running.fetch_sub(1, Relaxed);
        return (StatusCode::OK, axum::Json(json!({"result": {"ok": true}})));
    }
    if req["type"] == "activity_task" {
        let reply = json!({"result": {"ok": true, "activity": req["activity_type"]}});
        return (StatusCode::OK, axum::Json(reply));
    }
    let history = req["history"].as_array().cloned().unwrap_or_default();
    let count = |t: &str| history.iter().filter(|e| e["event_type"] == t).count();
    let commands = match req["workflow_type"].as_str().unwrap_or_default() {
        "SleepOneHour" => {
            TIMERS_STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            json!([{"command_type": "StartTimer",
                "attributes": {"timer_id": "sleep", "start_to_fire_timeout": "1h"}}])
        }
        "Noop" => complete(),
        "SleepOneSecond" if count("TimerFired") == 1 => complete(),
        "SleepOneSecond" => json!([{"command_type": "StartTimer",
            "attributes": {"timer_id": "sleep", "start_to_fire_timeout": "1s"}}]),
        wf => {
            let done = count("ActivityTaskCompleted");
            let commands = steps(wf, done, count("ActivityTaskScheduled") > done);
            let inlines = matches!(wf, "OneActivity" | "ThreeActivities")
                && INLINE.load(Relaxed)
                && commands[0]["command_type"] == "ScheduleActivityTask";
            if let (true, Some(url)) = (inlines, req["checkpoint_url"].as_str()) {
                return match inline_session(url, &req, wf, done, commands).await {
                    Ok(answer) => (StatusCode::OK, axum::Json(answer)),
                    // The task times out and is pushed again.
                    Err(_) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({}))),
                };
            }
            commands
        }
    };
    (StatusCode::OK, axum::Json(json!({"commands": commands})))
}

/// The commands of a workflow of sequential activities after `done` of
/// them completed (`waiting`: one is in flight).
fn steps(wf: &str, done: usize, waiting: bool) -> Value {
    let total = if wf == "OneActivity" { 1 } else { 3 };
    let (activity_type, timeout) = match wf {
        "ThreeSlowActivities" => ("Slow", "5s"),
        _ => ("Step", "30s"),
    };
    if done == total {
        complete()
    } else if waiting {
        json!([])
    } else {
        json!([{"command_type": "ScheduleActivityTask", "attributes": {
            "activity_id": format!("a{done}"), "activity_type": activity_type,
            "input": {"step": done}, "start_to_close_timeout": timeout}}])
    }
}

/// Runs the workflow's remaining steps inline: one signed checkpoint per
/// step, each carrying the previous step's result and the next commands.
async fn inline_session(
    url: &str,
    push: &Value,
    wf: &str,
    mut done: usize,
    mut commands: Value,
) -> anyhow::Result<Value> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let http = CLIENT.get_or_init(reqwest::Client::new);
    let secret: baton::signing::Secret = SECRET.parse()?;
    let mut body = json!({"task_token": push["task_token"], "commands": commands,
        "inline": [format!("a{done}")]});
    loop {
        let bytes = serde_json::to_vec(&body)?;
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let ts = baton::time::SystemClock.now().millis() / 1000;
        let signature = baton::signing::sign(std::slice::from_ref(&secret), &id, ts, &bytes);
        let resp = http
            .post(url)
            .header("content-type", "application/json")
            .header(baton::signing::ID_HEADER, &id)
            .header(baton::signing::TIMESTAMP_HEADER, ts.to_string())
            .header(baton::signing::SIGNATURE_HEADER, signature)
            .body(bytes)
            .send()
            .await?;
        let arrived = Instant::now();
        CHECKPOINTS.fetch_add(1, Relaxed);
        anyhow::ensure!(
            resp.status() == 200,
            "checkpoint answered {}",
            resp.status()
        );
        let answer: Value = resp.json().await?;
        let task = &answer["activity_tasks"][0];
        if answer["continued"] != true || task.is_null() {
            return Ok(json!({"checkpointed": true}));
        }
        let result = json!({"ok": true, "activity": "Step"});
        done += 1;
        commands = steps(wf, done, false);
        let server_time: baton::time::Timestamp =
            serde_json::from_value(answer["server_time"].clone())?;
        let workflow_time =
            baton::time::Timestamp(server_time.millis() + arrived.elapsed().as_millis() as i64);
        let inline = if commands[0]["command_type"] == "ScheduleActivityTask" {
            json!([format!("a{done}")])
        } else {
            json!([])
        };
        body = json!({"task_token": answer["continuation_token"],
            "completions": [{"task_token": task["task_token"], "result": result}],
            "commands": commands, "inline": inline, "workflow_time": workflow_time});
    }
}

fn complete() -> Value {
    json!([{"command_type": "CompleteWorkflowExecution", "attributes": {"result": {"ok": true}}}])
}

async fn fresh_database(admin: &str) -> anyhow::Result<String> {
    use sqlx::Connection as _;
    let name = format!("baton_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .with_context(|| format!("connecting to {admin}"))?;
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await?;
    let mut url = reqwest::Url::parse(admin)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

async fn drop_database(admin: &str, url: &str) {
    use sqlx::Connection as _;
    let Some(name) = url.rsplit('/').next() else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&mut conn)
            .await;
    }
}

/// User + system CPU seconds of /proc/<pid>/stat (fields 14 and 15).
fn cpu_seconds(stat: &str) -> f64 {
    // The command name (field 2) may contain spaces; fields follow its ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|x| x.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

fn cpu_seconds_self() -> f64 {
    std::fs::read_to_string("/proc/self/stat").map_or(0.0, |s| cpu_seconds(&s))
}

fn cpu_seconds_postgres() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| s.contains("(postgres)"))
        .map(|s| cpu_seconds(&s))
        .sum()
}
