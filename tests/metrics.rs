//! `/metrics` on a node running real workflows, on both databases: a
//! workflow that completes, one whose activity fails once and is retried,
//! one that sleeps on a durable timer and one whose handler answers 500 to
//! its first workflow task. The exposition must pass `promtool check
//! metrics`, and the values must have moved as those runs imply. Then a
//! real Prometheus scrapes a node whose handler is gone, and a PromQL query
//! over the queue-depth gauge returns the backlog.
//!
//! The metrics recorder is process-wide, so each test labels its work
//! with its own workflow types, activity types and task queues.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use common::{sequential_workflow, spawn_handler, spawn_server, Db, SECRET};
use serde_json::{json, Value};

on_both_databases!(metrics_follow_real_workflows);

/// The directory holding `promtool` and `prometheus`
/// (scripts/ensure-prometheus.sh prints it; scripts/test.sh exports it).
fn prometheus_dir() -> std::path::PathBuf {
    let dir = std::env::var("BATON_PROMETHEUS_DIR").expect(
        "BATON_PROMETHEUS_DIR is not set: export BATON_PROMETHEUS_DIR=\"$(bash scripts/ensure-prometheus.sh)\"",
    );
    std::path::PathBuf::from(dir)
}

/// One sample: a metric name and its labels.
type Series = (String, BTreeMap<String, String>);

/// Parses the exposition text into samples (comments skipped).
fn parse(text: &str) -> Vec<(Series, f64)> {
    let mut samples = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        samples.push(((name.to_owned(), labels), value.parse().unwrap()));
    }
    samples
}

/// The sum of the samples named `name` whose labels include `want`.
fn sum(samples: &[(Series, f64)], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|((n, labels), _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

async fn scrape(base: &str) -> String {
    let resp = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    resp.text().await.unwrap()
}

fn promtool_check(text: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(prometheus_dir().join("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn metrics_follow_real_workflows(db: Db) {
    let tag = match db {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgres",
    };
    let server = spawn_server(db).await;
    let flaky = format!("flaky-{tag}");
    let handler = {
        let flaky = flaky.clone();
        spawn_handler(move |req: Value| {
            let flaky = flaky.clone();
            async move {
                let wf = req["workflow_type"].as_str().unwrap_or_default().to_owned();
                if req["type"] == "activity_task" {
                    if req["activity_type"] == flaky.as_str() && req["attempt"] == 1 {
                        return (StatusCode::OK, json!({"failure": {"message": "boom"}}));
                    }
                    return (StatusCode::OK, json!({"result": 1}));
                }
                let history = req["history"].as_array().cloned().unwrap_or_default();
                let first_task = !history
                    .iter()
                    .any(|e| e["event_type"] == "WorkflowTaskCompleted");
                if wf.starts_with("Broken") && first_task && req["attempt"] == 1 {
                    return (StatusCode::INTERNAL_SERVER_ERROR, json!({}));
                }
                if wf.starts_with("Sleep") {
                    let fired = history.iter().any(|e| e["event_type"] == "TimerFired");
                    let commands = if fired {
                        json!([{"command_type": "CompleteWorkflowExecution", "attributes": {"result": 1}}])
                    } else {
                        json!([{"command_type": "StartTimer", "attributes": {"timer_id": "t", "start_to_fire_timeout": "200ms"}}])
                    };
                    return (StatusCode::OK, json!({"commands": commands}));
                }
                let activity = if wf.starts_with("Retry") { flaky.as_str() } else { "work" };
                let options = json!({"retry_policy": {"initial_interval": "100ms"}});
                (
                    StatusCode::OK,
                    sequential_workflow(&req, &[(activity, options)]),
                )
            }
        })
        .await
    };
    let queue = format!("metrics-{tag}");
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/endpoints",
            json!({"task_queue": queue, "url": handler.url, "secrets": [SECRET]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let kinds = ["Ok", "Retry", "Sleep", "Broken"];
    for kind in kinds {
        let (status, body) = server
            .api
            .start(
                &format!("{kind}-{tag}"),
                &format!("{kind}-{tag}"),
                &queue,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for kind in kinds {
        let result = server.api.result(&format!("{kind}-{tag}")).await;
        assert_eq!(result["status"], "COMPLETED", "{kind}: {result}");
    }

    // A schedule's action, taken at once by a trigger (on a queue of its
    // own, so the push counts below stay those of the runs above).
    let scheduled_queue = format!("metrics-scheduled-{tag}");
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/endpoints",
            json!({"task_queue": scheduled_queue, "url": handler.url, "secrets": [SECRET]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let schedule = json!({"schedule": {
        "spec": {"intervals": [{"every": "1h"}]},
        "action": {"start_workflow": {"workflow_id": format!("sched-{tag}"),
            "workflow_type": format!("Scheduled-{tag}"), "task_queue": scheduled_queue}}
    }});
    let path = format!("/api/v1/namespaces/default/schedules/metrics-{tag}");
    let (status, body) = server.api.post(&path, schedule).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server.api.post(&format!("{path}/trigger"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let base = server.api.base.clone();
    let acted = common::eventually(Duration::from_secs(20), || {
        let base = base.clone();
        async move {
            let samples = parse(&scrape(&base).await);
            let scheduled = format!("Scheduled-{tag}");
            let of = [("workflow_type", scheduled.as_str())];
            sum(&samples, "baton_workflows_started_total", &of) >= 1.0
                && sum(
                    &samples,
                    "baton_schedule_actions_total",
                    &[("namespace", "default")],
                ) >= 1.0
        }
    })
    .await;
    assert!(acted, "the triggered schedule's action is not counted");

    // A batch job's runs, by operation and outcome: a signal to a closed run
    // fails.
    let job = json!({"query": format!("WorkflowId = \"Ok-{tag}\""), "operation": "signal",
        "signal_name": "late"});
    let (status, body) = server
        .api
        .post("/api/v1/namespaces/default/batches", job)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let base = server.api.base.clone();
    let counted = common::eventually(Duration::from_secs(20), || {
        let base = base.clone();
        async move {
            let samples = parse(&scrape(&base).await);
            let of = [
                ("namespace", "default"),
                ("operation", "signal"),
                ("outcome", "failed"),
            ];
            sum(&samples, "baton_batch_runs_total", &of) >= 1.0
        }
    })
    .await;
    assert!(counted, "the batch job's run is not counted");

    let text = scrape(&server.api.base).await;
    promtool_check(&text);
    let samples = parse(&text);
    for kind in kinds {
        let wf = format!("{kind}-{tag}");
        let of = [("namespace", "default"), ("workflow_type", wf.as_str())];
        assert_eq!(
            sum(&samples, "baton_workflows_started_total", &of),
            1.0,
            "{wf}"
        );
        let completed = [of[0], of[1], ("status", "completed")];
        assert_eq!(
            sum(&samples, "baton_workflows_closed_total", &completed),
            1.0,
            "{wf}"
        );
        assert_eq!(
            sum(&samples, "baton_workflow_duration_seconds_count", &of),
            1.0
        );
    }
    let sleep_type = format!("Sleep-{tag}");
    let slept = [("workflow_type", sleep_type.as_str())];
    assert!(sum(&samples, "baton_workflow_duration_seconds_sum", &slept) >= 0.2);
    let retried = [("activity_type", flaky.as_str())];
    assert_eq!(sum(&samples, "baton_activity_retries_total", &retried), 1.0);
    let failed = [retried[0], ("outcome", "failed")];
    assert_eq!(sum(&samples, "baton_activity_attempts_total", &failed), 1.0);
    let completed = [retried[0], ("outcome", "completed")];
    assert_eq!(
        sum(&samples, "baton_activity_attempts_total", &completed),
        1.0
    );
    let on_queue = |kind: &'static str, outcome: &'static str| {
        [
            ("task_queue", queue.as_str()),
            ("kind", kind),
            ("outcome", outcome),
        ]
    };
    // Broken's first workflow task got a 500.
    let errors = on_queue("workflow", "server_error");
    assert_eq!(sum(&samples, "baton_pushes_total", &errors), 1.0);
    // Each run: a workflow task per step (Ok and Retry 2, Sleep 2, Broken
    // 2 answered after the 500).
    let answered = on_queue("workflow", "answered");
    assert_eq!(sum(&samples, "baton_pushes_total", &answered), 8.0);
    let answered = on_queue("activity", "answered");
    assert_eq!(sum(&samples, "baton_pushes_total", &answered), 4.0);
    let sent = [("task_queue", queue.as_str()), ("kind", "activity")];
    assert_eq!(
        sum(
            &samples,
            "baton_task_schedule_to_start_seconds_count",
            &sent
        ),
        4.0
    );
    assert!(sum(&samples, "baton_timer_lateness_seconds_count", &[]) >= 1.0);
    let starts = [
        ("method", "POST"),
        (
            "route",
            "/api/v1/namespaces/{namespace}/workflows/{workflow_id}",
        ),
        ("status_class", "2xx"),
    ];
    assert!(sum(&samples, "baton_api_requests_total", &starts) >= 4.0);
    assert!(
        sum(
            &samples,
            "baton_store_commit_duration_seconds_count",
            &[("outcome", "ok")]
        ) > 0.0
    );
    server.stop().await;
}

/// A real Prometheus scrapes a node whose handler is gone; the queue-depth
/// gauge, queried with PromQL, shows the workflow tasks waiting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_the_backlog_of_a_stopped_handler() {
    let server = spawn_server(Db::Sqlite).await;
    // A port nobody listens on: every push is refused.
    let gone = common::node::free_port();
    let (status, body) = server
        .api
        .post(
            "/api/v1/namespaces/default/endpoints",
            json!({"task_queue": "stopped", "url": format!("http://127.0.0.1:{gone}/"), "secrets": [SECRET]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    const BACKLOG: usize = 12;
    for i in 0..BACKLOG {
        let (status, body) = server
            .api
            .start(&format!("stuck-{i}"), "Stuck", "stopped", json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: baton\n    static_configs:\n      - targets: ['{}']\n",
            server.addr
        ),
    )
    .unwrap();
    let port = common::node::free_port();
    let mut prometheus = tokio::process::Command::new(prometheus_dir().join("prometheus"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let query = "max(baton_tasks{namespace=\"default\",queue=\"push\"})";
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let http = reqwest::Client::new();
    let mut seen = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(resp) = http.get(&url).query(&[("query", query)]).send().await else {
            continue;
        };
        let Ok(body) = resp.json::<Value>().await else {
            continue;
        };
        let value = body["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = value {
            seen = Some(v);
            if v >= BACKLOG as f64 {
                break;
            }
        }
    }
    let _ = prometheus.kill().await;
    assert_eq!(
        seen,
        Some(BACKLOG as f64),
        "PromQL `{query}` over a node whose {BACKLOG} runs wait for a stopped handler"
    );
    server.stop().await;
}
