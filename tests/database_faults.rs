//! The database goes away under load (DESIGN.md invariants 1 and 7): a
//! PostgreSQL server this test starts itself is restarted in immediate
//! mode twice and paused (SIGSTOP) for 10 s while 1,000 workflows run on a
//! `baton serve` node. Nothing may be lost (every workflow completes),
//! stuck (none waits on the node's memory after recovery) or duplicated
//! (each activity result recorded once); API calls during the outage get
//! `503` with `Retry-After`, never `500`; `/readyz` turns unready within
//! 2 s and ready again after recovery. Times are printed.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::node::{free_port, Node};
use common::{counting_handler, Api};
use futures::StreamExt;
use serde_json::{json, Value};

const WORKFLOWS: usize = 1_000;

/// A throwaway PostgreSQL cluster in a temporary directory, run as the
/// `postgres` user when the test runs as root (PostgreSQL refuses root).
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Postgres {
    fn start() -> Postgres {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            // The postgres user must reach its data directory.
            run("chmod", &["755", dir.path().to_str().unwrap()]);
            std::fs::create_dir(&data).unwrap();
            run("chown", &["postgres", data.to_str().unwrap()]);
        }
        let port = free_port();
        let pg = Postgres {
            bin,
            data,
            port,
            _dir: dir,
        };
        pg.ctl(&[
            "initdb",
            "-s",
            "-o",
            "--auth=trust --username=postgres --no-sync",
        ]);
        pg.ctl_start();
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn ctl(&self, args: &[&str]) {
        pg_ctl(&self.bin, &self.data, args);
    }

    fn options(&self) -> String {
        server_options(self.port, &self.data)
    }

    fn ctl_start(&self) {
        let log = self.data.join("log");
        let opts = self.options();
        self.ctl(&[
            "-w",
            "-s",
            "-l",
            log.to_str().unwrap(),
            "-o",
            &opts,
            "start",
        ]);
    }

    /// The postmaster and all its backends.
    fn processes(&self) -> Vec<i32> {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        let postmaster: i32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the parenthesised command name: state, ppid.
            let after = stat.rsplit(')').next().unwrap_or_default();
            let ppid = after.split_whitespace().nth(1).and_then(|p| p.parse().ok());
            if ppid == Some(postmaster) {
                pids.push(pid);
            }
        }
        pids
    }

    fn signal(&self, pids: &[i32], signal: &str) {
        for pid in pids {
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let pids = self.processes();
        self.signal(&pids, "-CONT");
        self.ctl(&["-w", "-s", "-m", "immediate", "stop"]);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(program: &str, args: &[&str]) {
    assert!(Command::new(program).args(args).status().unwrap().success());
}

/// PostgreSQL's server binaries (scripts/ensure-postgres.sh installs them).
fn postgres_bin() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("pg_ctl").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("PostgreSQL server binaries (pg_ctl) are needed: run scripts/ensure-postgres.sh")
}

/// Polls `/readyz` every 50 ms until it answers `ready` (true) or not
/// (false) as asked; returns how long that took.
async fn readyz_becomes(api: &Api, ready: bool, limit: Duration) -> Option<Duration> {
    let begun = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    while begun.elapsed() < limit {
        let ok = client
            .get(format!("{}/readyz", api.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok == ready {
            return Some(begun.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// An API call during the outage: must be 503 with Retry-After (or, if the
/// store came back already, a success), never 500.
async fn start_during_outage(api: &Api, id: &str) -> StatusCode {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/namespaces/default/workflows/{id}",
            api.base
        ))
        .json(&json!({"workflow_type": "Three", "task_queue": "q"}))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(
            resp.headers().contains_key("retry-after"),
            "503 without Retry-After"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "unavailable", "{body}");
    } else {
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            resp.text().await.unwrap()
        );
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_and_a_pause_of_postgres_lose_nothing_and_strand_no_run() {
    let pg = Postgres::start();
    let (handler, executions) = counting_handler(Duration::from_millis(300), "10s").await;
    let node = Node::start(&pg.url(), free_port()).await;
    let api = node.api.clone();
    api.register("q", &handler.url).await;
    let ids: Vec<String> = (0..WORKFLOWS).map(|i| format!("pg-{i}")).collect();
    futures::stream::iter(ids.iter().cloned())
        .for_each_concurrent(50, |id| {
            let api = api.clone();
            async move {
                let (status, body) = api
                    .start(&id, "Three", "q", json!({"workflow_task_timeout": "5s"}))
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
            }
        })
        .await;
    let begun = Instant::now();

    let mut outage_statuses = Vec::new();
    for round in 0..2 {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let restarted = Instant::now();
        let restart = tokio::task::spawn_blocking({
            let (bin, data, port) = (pg.bin.clone(), pg.data.clone(), pg.port);
            move || restart_cluster(&bin, &data, port)
        });
        outage_statuses.push(start_during_outage(&api, &format!("outage-{round}")).await);
        restart.await.unwrap();
        let back = readyz_becomes(&api, true, Duration::from_secs(30)).await;
        eprintln!(
            "restart {round}: PostgreSQL back after {:.1?}, node ready {back:?} after it",
            restarted.elapsed()
        );
        assert!(
            back.is_some(),
            "the node did not become ready after restart {round}"
        );
    }

    // Pause every PostgreSQL process for 10 s: connections hang instead of
    // failing.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let pids = pg.processes();
    pg.signal(&pids, "-STOP");
    let paused = Instant::now();
    let unready = readyz_becomes(&api, false, Duration::from_secs(5)).await;
    eprintln!("pause: /readyz unready after {unready:?}");
    let during = tokio::spawn({
        let api = api.clone();
        async move { start_during_outage(&api, "outage-pause").await }
    });
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(paused.elapsed())).await;
    pg.signal(&pids, "-CONT");
    let ready_again = readyz_becomes(&api, true, Duration::from_secs(30)).await;
    eprintln!("pause: /readyz ready {ready_again:?} after resuming");
    outage_statuses.push(during.await.unwrap());
    assert!(
        unready.is_some_and(|d| d <= Duration::from_secs(2)),
        "/readyz must turn unready within 2 s of the database hanging: {unready:?}"
    );
    assert!(ready_again.is_some(), "/readyz did not turn ready again");

    // Nothing lost, nothing stuck: every workflow completes, each activity
    // result recorded once.
    for id in &ids {
        let result = api.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
        assert_eq!(result["result"], json!(["1", "2", "3"]), "{id}");
        let history = api.history(id).await;
        let completed = history
            .iter()
            .filter(|e| e["event_type"] == "ActivityTaskCompleted")
            .count();
        assert_eq!(completed, 3, "{id}: {history:#?}");
        for (i, e) in history.iter().enumerate() {
            assert_eq!(e["event_id"], json!(i + 1), "{id}: dense event ids");
        }
    }
    let executions = executions.lock().unwrap().clone();
    let repeated = executions.values().filter(|n| **n > 1).count();
    eprintln!(
        "database faults: {WORKFLOWS} workflows completed {:.1?} after the first fault; \
         {} activities executed, {repeated} more than once (at least once); \
         API calls during outages: {outage_statuses:?}",
        begun.elapsed(),
        executions.len()
    );
    // The outage calls that were accepted started workflows of their own.
    let accepted = outage_statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(
        executions.len(),
        (WORKFLOWS + accepted) * 3,
        "every activity ran"
    );
    drop(node);
}

/// `pg_ctl restart -m immediate`: every connection is cut, nothing is
/// flushed, crash recovery on start.
fn restart_cluster(bin: &Path, data: &Path, port: u16) {
    let opts = server_options(port, data);
    pg_ctl(
        bin,
        data,
        &["-w", "-s", "-m", "immediate", "-o", &opts, "restart"],
    );
}

fn server_options(port: u16, data: &Path) -> String {
    format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off \
         -c max_connections=200",
        data.display()
    )
}

/// Runs pg_ctl on the cluster in `data`, as the postgres user when root.
fn pg_ctl(bin: &Path, data: &Path, args: &[&str]) {
    let pg_ctl = bin.join("pg_ctl");
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
        c
    } else {
        Command::new(&pg_ctl)
    };
    let status = cmd.arg("-D").arg(data).args(args).status();
    assert!(status.unwrap().success(), "pg_ctl {args:?} failed");
}
