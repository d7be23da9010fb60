//! W7: list queries and the retention deleter at a million closed runs.
//!
//! Seeding: one real run of `Noop` (start, one workflow task, complete:
//! five events) goes through the node; its `runs` row and events are then
//! cloned in SQL into `runs` closed runs (50,000 per statement), with
//! starts spread over the last 20 days, twenty workflow types,, the closed
//! statuses in fixed proportions (half Completed) and one of 500 values of
//! the custom Keyword `CustomerId`, so the table has the shape
//! retention leaves behind: every row a real snapshot, every run its
//! events. Then `vacuum analyze`, as autovacuum would have.
//!
//! Measured through the REST API (one request at a time, page of 100):
//! the issue's query shapes (type + status, its second page, a StartTime
//! range ordered by StartTime, the custom Keyword, a CloseTime range,
//! WorkflowId prefixes that pick 11 runs and a ninth of them) and
//! `count … GROUP BY ExecutionStatus`, p50/p99 over
//! `queries` requests with varying literals. Then the namespace's
//! retention drops to 24 hours and the node's own deleter
//! (`src/retention/`) works off the runs closed before that for up to
//! `deleter_seconds`: runs and events deleted per second, and this
//! process's and PostgreSQL's CPU per thousand runs deleted.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{json, Value};
use sqlx::PgPool;

use super::{cpu_seconds_postgres, cpu_seconds_self, one_workflow};

/// Runs cloned per statement.
const CHUNK: i64 = 50_000;

/// How far back the seeded starts reach (inside `default`'s 30 days).
const SPAN_MS: i64 = 20 * 24 * 3_600_000;

/// Distinct workflow types and `CustomerId` values of the seeded runs.
const TYPES: i64 = 20;
const CUSTOMERS: i64 = 500;

pub struct Params {
    pub runs: usize,
    pub queries: usize,
    pub deleter_seconds: u64,
}

pub async fn run(
    http: &reqwest::Client,
    base: &str,
    database_url: &str,
    p: &Params,
) -> anyhow::Result<()> {
    let pool = PgPool::connect(database_url).await?;
    let ns_url = format!("{base}/api/v1/namespaces/default");
    register_customer_id(http, &ns_url).await?;
    one_workflow(http, base, "Noop", "W7-template").await?;
    let now_ms = now_ms();
    let seeding = Instant::now();
    seed(&pool, p.runs as i64, now_ms).await?;
    sqlx::query("vacuum analyze runs").execute(&pool).await?;
    sqlx::query("vacuum analyze events").execute(&pool).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();

    let list = format!("{ns_url}/workflows");
    let step = SPAN_MS / p.runs.max(1) as i64;
    let at = |i: usize| rfc3339(now_ms - SPAN_MS + (i as i64 * 7_919 % p.runs as i64) * step);
    let hour_after = |i: usize| {
        rfc3339(now_ms - SPAN_MS + (i as i64 * 7_919 % p.runs as i64) * step + 3_600_000)
    };
    let n = p.queries;
    let mut shapes = serde_json::Map::new();
    let type_status = |i: usize| {
        format!(
            r#"WorkflowType = "Type{}" AND ExecutionStatus = "Completed""#,
            i as i64 % TYPES
        )
    };
    shapes.insert(
        "type_and_status".into(),
        timed(n, |i| list_page(http, &list, type_status(i))).await?,
    );
    shapes.insert(
        "type_and_status_second_page".into(),
        timed(n, |i| {
            let (query, list) = (type_status(i), &list);
            async move {
                let (_, token) = page(http, list, query.clone(), None).await?;
                let Some(token) = token else {
                    anyhow::bail!("the first page of {query} had no next page")
                };
                Ok(page(http, list, query, Some(token)).await?.0)
            }
        })
        .await?,
    );
    shapes.insert(
        "start_time_range_order_by_start_time".into(),
        timed(n, |i| {
            list_page(
                http,
                &list,
                format!(
                    r#"StartTime >= "{}" AND StartTime < "{}" ORDER BY StartTime"#,
                    at(i),
                    hour_after(i)
                ),
            )
        })
        .await?,
    );
    shapes.insert(
        "custom_keyword".into(),
        timed(n, |i| {
            let query = format!(r#"CustomerId = "c{}""#, i as i64 % CUSTOMERS);
            list_page(http, &list, query)
        })
        .await?,
    );
    shapes.insert(
        "close_time_range".into(),
        timed(n, |i| {
            list_page(
                http,
                &list,
                format!(r#"CloseTime BETWEEN "{}" AND "{}""#, at(i), hour_after(i)),
            )
        })
        .await?,
    );
    // A prefix that picks 11 runs (a five-digit n: W7-n and W7-n0…n9),
    // read by `runs_by_workflow_id_bytes`.
    shapes.insert(
        "workflow_id_prefix_11_runs".into(),
        timed(n, |i| {
            list_page(
                http,
                &list,
                format!(
                    r#"WorkflowId STARTS_WITH "W7-{}""#,
                    10_000 + (i * 7_919) % 90_000
                ),
            )
        })
        .await?,
    );
    // A prefix that a ninth of the runs share (W7-1…, W7-2…): the newest
    // page of it sits anywhere in start-time order, so fewer requests.
    shapes.insert(
        "workflow_id_prefix_a_ninth".into(),
        timed(n.div_ceil(10), |i| {
            list_page(
                http,
                &list,
                format!(r#"WorkflowId STARTS_WITH "W7-{}""#, 1 + i % 9),
            )
        })
        .await?,
    );
    let count = format!("{ns_url}/workflow-count");
    shapes.insert(
        "count_group_by_status".into(),
        timed(n.div_ceil(10), |_| async {
            let started = Instant::now();
            let body = get(http, &count, &[("query", "GROUP BY ExecutionStatus")]).await?;
            let total = body["count"].as_u64().unwrap_or(0) as usize;
            Ok(Sample {
                rows: total,
                took: started.elapsed(),
            })
        })
        .await?,
    );

    let deleter = delete_expired(http, &ns_url, &pool, now_ms, p.deleter_seconds).await?;
    let line = json!({
        "workload": "W7",
        "closed_runs": p.runs,
        "events_per_run": 5,
        "seed_seconds": (seed_seconds * 10.0).round() / 10.0,
        "requests_per_shape": n,
        "page_size": 100,
        "latency_ms": shapes,
        "retention_deleter": deleter,
    });
    println!("{line}");
    pool.close().await;
    Ok(())
}

/// `CustomerId`, a custom Keyword search attribute of `default`.
async fn register_customer_id(http: &reqwest::Client, ns_url: &str) -> anyhow::Result<()> {
    let (status, body) = super::call(
        http,
        &format!("{ns_url}/search-attributes"),
        json!({"search_attributes": {"CustomerId": "Keyword"}}),
    )
    .await?;
    anyhow::ensure!(
        status == 201,
        "registering CustomerId failed ({status}): {body}"
    );
    Ok(())
}

/// Clones the template run `runs` times (see the module doc).
async fn seed(pool: &PgPool, runs: i64, now_ms: i64) -> anyhow::Result<()> {
    let template: String =
        sqlx::query_scalar("select run_id from runs where workflow_id = 'W7-template'")
            .fetch_one(pool)
            .await
            .context("the template run")?;
    let slot: i64 = sqlx::query_scalar(
        "select slot from search_attributes where namespace = 'default' and name = 'CustomerId'",
    )
    .fetch_one(pool)
    .await
    .context("CustomerId's slot")?;
    // The slot's column (`sa_keyword_<n>`, migration 0004): a number from
    // our own table, never client text.
    let clone = format!(
        "with new as (
            insert into runs (run_id, namespace, workflow_id, workflow_type, task_queue,
                status, start_time, close_time, history_length, request_id, pinned_version,
                version, state, created_at, updated_at, sa_keyword_{slot})
            select gen_random_uuid()::text, t.namespace, 'W7-' || g, 'Type' || (g % {TYPES}),
                t.task_queue,
                (array['COMPLETED','COMPLETED','COMPLETED','COMPLETED','FAILED','CANCELED',
                       'TERMINATED','TIMED_OUT'])[1 + g % 8],
                $1 + g * $2, $1 + g * $2 + (g % 997) * 1000, t.history_length, null,
                t.pinned_version, t.version, t.state, $1 + g * $2, $1 + g * $2,
                'c' || (g % {CUSTOMERS})
            from runs t, generate_series($3::bigint, $4::bigint) g
            where t.run_id = $5
            returning run_id)
        insert into events (run_id, event_id, event_type, event_time, data)
        select new.run_id, e.event_id, e.event_type, e.event_time, e.data
        from new, events e where e.run_id = $5"
    );
    let step = SPAN_MS / runs.max(1);
    let first_start = now_ms - SPAN_MS;
    let mut from = 0;
    while from < runs {
        let to = (from + CHUNK).min(runs) - 1;
        sqlx::query(&clone)
            .bind(first_start)
            .bind(step)
            .bind(from)
            .bind(to)
            .bind(&template)
            .execute(pool)
            .await
            .context("cloning runs")?;
        from = to + 1;
    }
    Ok(())
}

/// One list request, and the next page token.
async fn page(
    http: &reqwest::Client,
    list: &str,
    query: String,
    token: Option<String>,
) -> anyhow::Result<(Sample, Option<String>)> {
    let started = Instant::now();
    let mut params = vec![("query", query.as_str()), ("page_size", "100")];
    if let Some(t) = &token {
        params.push(("next_page_token", t));
    }
    let body = get(http, list, &params).await?;
    let rows = body["executions"].as_array().map_or(0, Vec::len);
    let next = body["next_page_token"].as_str().map(str::to_owned);
    let took = started.elapsed();
    Ok((Sample { rows, took }, next))
}

/// One list request, measured.
async fn list_page(http: &reqwest::Client, list: &str, query: String) -> anyhow::Result<Sample> {
    Ok(page(http, list, query, None).await?.0)
}

async fn get(http: &reqwest::Client, url: &str, params: &[(&str, &str)]) -> anyhow::Result<Value> {
    let resp = http.get(url).query(params).send().await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    anyhow::ensure!(status.is_success(), "GET {url} {params:?}: {status} {body}");
    Ok(body)
}

/// What one request returned and how long it took.
struct Sample {
    rows: usize,
    took: Duration,
}

/// Runs `n` requests one after another; p50/p99 in ms and mean rows.
async fn timed<F, Fut>(n: usize, mut request: F) -> anyhow::Result<Value>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Sample>>,
{
    // One unmeasured request warms the plan and the pages it reads.
    request(n).await?;
    let mut took = Vec::with_capacity(n);
    let mut rows = 0;
    for i in 0..n {
        let s = request(i).await?;
        rows += s.rows;
        took.push(s.took);
    }
    took.sort();
    let pct = |q: f64| {
        let d = took[((took.len() as f64 - 1.0) * q).round() as usize];
        (d.as_secs_f64() * 1e5).round() / 1e2
    };
    Ok(json!({"p50": pct(0.5), "p99": pct(0.99), "mean_rows": rows / n.max(1)}))
}

/// Lowers `default`'s retention to 24 hours and measures the node's
/// deleter working off the runs closed before that.
async fn delete_expired(
    http: &reqwest::Client,
    ns_url: &str,
    pool: &PgPool,
    now_ms: i64,
    seconds: u64,
) -> anyhow::Result<Value> {
    let cutoff = now_ms - 24 * 3_600_000;
    let expired = || async {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from runs where namespace = 'default' and close_time < $1",
        )
        .bind(cutoff)
        .fetch_one(pool)
        .await?;
        anyhow::Ok(n)
    };
    let events = || async {
        let n: i64 = sqlx::query_scalar("select count(*) from events")
            .fetch_one(pool)
            .await?;
        anyhow::Ok(n)
    };
    let (runs_before, events_before) = (expired().await?, events().await?);
    let cpu_before = (cpu_seconds_self(), cpu_seconds_postgres());
    let started = Instant::now();
    let resp = http
        .patch(ns_url)
        .json(&json!({"retention": "24h"}))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "lowering the retention failed");
    let deadline = started + Duration::from_secs(seconds);
    let mut left = runs_before;
    while left > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        left = expired().await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds_self() - cpu_before.0;
    let pg = cpu_seconds_postgres() - cpu_before.1;
    let runs = (runs_before - left) as f64;
    let events_deleted = (events_before - events().await?) as f64;
    let per_thousand = |s: f64| (s / runs.max(1.0) * 1e6).round() / 1e3;
    Ok(json!({
        "expired_runs": runs_before,
        "deleted_runs": runs,
        "seconds": (elapsed * 10.0).round() / 10.0,
        "runs_per_sec": (runs / elapsed).round(),
        "events_per_sec": (events_deleted / elapsed).round(),
        "cpu_s_per_1000_runs": {"baton_process": per_thousand(cpu), "postgres": per_thousand(pg)},
    }))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}
