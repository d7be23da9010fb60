//! The real `baton` binary: client verbs against an in-process node (table
//! and `--output json`), their error paths (non-zero exit, one `error: …`
//! line on stderr), `baton apikey` and what a node logs of denied requests
//! (the key's id, never a key), `baton dev` as a child process, `baton
//! migrate` and `baton health`.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use common::{sequential_workflow, spawn_handler, spawn_server, Db, TestServer, SECRET};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const BATON: &str = env!("CARGO_BIN_EXE_baton");

/// What one run of the binary left behind.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `baton` with a clean environment: no inherited address, key, namespace,
/// database or log filter.
fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BATON);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("BATON_ADDRESS")
        .env_remove("BATON_API_KEY")
        .env_remove("BATON_NAMESPACE")
        .env_remove("BATON_DATABASE_URL")
        .env_remove("BATON_LISTEN")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn run(mut cmd: Command) -> Run {
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("baton finishes within 30 s")
        .expect("baton runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A client verb against `server`.
async fn client(server: &TestServer, args: &[&str]) -> Run {
    let address = format!("http://{}", server.addr);
    let mut all = args.to_vec();
    all.extend(["--address", &address]);
    run(command(&all)).await
}

/// Asserts success and returns stdout.
fn ok(run: Run) -> String {
    assert_eq!(run.code, Some(0), "{run:#?}");
    run.stdout
}

/// Asserts success and parses stdout as JSON.
fn ok_json(run: Run) -> Value {
    let stdout = ok(run);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Asserts failure with exactly one `error: …` line on stderr that mentions
/// `fragment`, and nothing on stdout.
fn failed(run: Run, fragment: &str) {
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert_eq!(run.stdout, "", "{run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {run:#?}");
    assert!(lines[0].starts_with("error: "), "{run:#?}");
    assert!(
        lines[0].contains(fragment),
        "stderr should mention {fragment:?}: {run:#?}"
    );
}

/// `name  value` lines as printed for one object.
fn fields(stdout: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// A table's cells, split on the two-space column gap.
fn table(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// The table's rows whose first cell is `key`.
fn rows<'a>(table: &'a [Vec<String>], key: &str) -> Vec<&'a Vec<String>> {
    table.iter().filter(|r| r[0] == key).collect()
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|n| n[field].as_str().unwrap().to_owned())
        .collect()
}

/// A loopback port nobody listens on (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------
// Client verbs.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_verbs_create_list_and_describe() {
    let server = spawn_server(Db::Sqlite).await;
    let created = ok(client(
        &server,
        &[
            "namespace",
            "create",
            "payments",
            "--description",
            "Money moves",
            "--retention",
            "7d",
        ],
    )
    .await);
    let created = fields(&created);
    assert_eq!(created["name"], "payments");
    assert_eq!(created["description"], "Money moves");
    assert_eq!(created["retention"], "604800s");
    assert!(created.contains_key("created_at"), "{created:?}");
    let created = ok_json(client(&server, &["namespace", "create", "ops", "-o", "json"]).await);
    assert_eq!(created["name"], "ops");
    assert_eq!(created["description"], "");

    let listed = table(&ok(client(&server, &["namespace", "list"]).await));
    assert_eq!(listed[0], ["NAME", "RETENTION", "DESCRIPTION", "CREATED"]);
    assert_eq!(rows(&listed, "payments")[0][1], "604800s");
    assert_eq!(rows(&listed, "payments")[0][2], "Money moves");
    assert_eq!(rows(&listed, "ops").len(), 1);
    assert_eq!(rows(&listed, "default").len(), 1);
    let listed = ok_json(client(&server, &["namespace", "list", "--output", "json"]).await);
    assert_eq!(
        names(&listed["namespaces"], "name"),
        ["default", "ops", "payments"]
    );

    let described = fields(&ok(
        client(&server, &["namespace", "describe", "payments"]).await
    ));
    assert_eq!(described["name"], "payments");
    assert_eq!(described["description"], "Money moves");
    assert_eq!(described["open_runs"], "0");
    assert_eq!(described["closed_runs"], "0");
    let described = ok_json(client(&server, &["namespace", "describe", "ops", "-o", "json"]).await);
    assert_eq!(described["name"], "ops");
    assert_eq!(described["retention"], "2592000s");

    let updated = fields(&ok(client(
        &server,
        &["namespace", "update", "payments", "--retention", "72h"],
    )
    .await));
    assert_eq!(updated["retention"], "259200s");
    assert_eq!(updated["description"], "Money moves");
    failed(
        client(
            &server,
            &["namespace", "update", "payments", "--retention", "0s"],
        )
        .await,
        "retention must be positive",
    );

    failed(
        client(&server, &["namespace", "create", "payments"]).await,
        "already exists (409)",
    );
    failed(
        client(&server, &["namespace", "create", "bad name"]).await,
        "invalid namespace name \"bad name\"",
    );
    failed(
        client(&server, &["namespace", "describe", "ghost"]).await,
        "namespace ghost not found (404)",
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_attribute_verbs_add_list_remove_and_refuse() {
    let server = spawn_server(Db::Sqlite).await;
    fn sa<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["namespace", "search-attribute"];
        all.extend_from_slice(args);
        all
    }
    let added = table(&ok(client(
        &server,
        &sa(&["add", "--name", "CustomerId", "--type", "Keyword"]),
    )
    .await));
    assert_eq!(rows(&added, "CustomerId")[0][1..], ["Keyword", "custom"]);
    ok(client(
        &server,
        &sa(&["add", "--name", "Priority", "--type", "int"]),
    )
    .await);
    let listed = table(&ok(client(&server, &sa(&["list"])).await));
    assert_eq!(rows(&listed, "Priority")[0][1..], ["Int", "custom"]);
    assert_eq!(rows(&listed, "WorkflowType")[0][1..], ["Keyword", "system"]);
    let json = ok_json(client(&server, &sa(&["list", "-o", "json"])).await);
    assert_eq!(
        json["custom_attributes"],
        json!({"CustomerId": "Keyword", "Priority": "Int"})
    );

    failed(
        client(
            &server,
            &sa(&["add", "--name", "CustomerId", "--type", "Keyword"]),
        )
        .await,
        "search attribute `CustomerId` is already registered (409)",
    );
    failed(
        client(
            &server,
            &sa(&["add", "--name", "Amount", "--type", "Money"]),
        )
        .await,
        "search_attributes.Amount: unknown type \"Money\"",
    );
    failed(
        client(&server, &sa(&["remove", "--name", "Ghost"])).await,
        "search attribute `Ghost` is not registered",
    );
    let json = ok_json(client(&server, &sa(&["list", "-o", "json"])).await);
    assert_eq!(
        json["custom_attributes"].as_object().map(|m| m.len()),
        Some(2)
    );

    // Set at start, shown by describe, found by a list query.
    ok(client(
        &server,
        &[
            "workflow",
            "start",
            "--type",
            "T",
            "--task-queue",
            "q",
            "--id",
            "vip-1",
            "--search-attributes",
            r#"{"CustomerId": "c-17", "Priority": 2}"#,
        ],
    )
    .await);
    let described = ok(client(&server, &["workflow", "describe", "vip-1"]).await);
    assert!(described.contains("Search attributes:"), "{described}");
    let described: Vec<Vec<String>> = table(&described)
        .into_iter()
        .filter(|r| !r.is_empty())
        .collect();
    assert_eq!(rows(&described, "Priority")[0][1..], ["Int", "2"]);
    let listed = ok(client(
        &server,
        &[
            "workflow",
            "list",
            "--query",
            "CustomerId = 'c-17' AND Priority = 2",
        ],
    )
    .await);
    assert!(listed.contains("vip-1"), "{listed}");

    let removed = ok(client(&server, &sa(&["remove", "--name", "Priority"])).await);
    assert!(
        removed.contains("removed search attribute Priority"),
        "{removed}"
    );
    failed(
        client(&server, &["workflow", "list", "--query", "Priority = 2"]).await,
        "unknown search attribute `Priority`",
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_verbs_register_list_and_delete() {
    let server = spawn_server(Db::Sqlite).await;
    let url = "http://127.0.0.1:9/hook";
    let registered = ok(client(
        &server,
        &[
            "endpoint",
            "register",
            "--task-queue",
            "orders",
            "--url",
            url,
            "--secret",
            SECRET,
            "--max-concurrency",
            "7",
        ],
    )
    .await);
    let registered = fields(&registered);
    assert_eq!(registered["task_queue"], "orders");
    assert_eq!(registered["version"], "default");
    assert_eq!(registered["url"], url);
    assert_eq!(registered["max_concurrency"], "7");
    assert!(
        !registered.contains_key("generated_secret"),
        "{registered:?}"
    );

    // Without --secret the server makes one and shows it exactly once.
    let generated = ok_json(
        client(
            &server,
            &[
                "endpoint",
                "register",
                "--task-queue",
                "mail",
                "--url",
                url,
                "-o",
                "json",
            ],
        )
        .await,
    );
    let secret = generated["generated_secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{generated}");
    assert!(secret.parse::<baton::signing::Secret>().is_ok(), "{secret}");
    assert_eq!(generated["secret_count"], 1);
    let run = client(
        &server,
        &[
            "endpoint",
            "register",
            "--task-queue",
            "mail",
            "--url",
            url,
            "--version",
            "v2",
        ],
    )
    .await;
    assert!(run.stderr.contains("not shown again"), "{run:#?}");
    let shown = fields(&ok(run));
    assert!(shown["generated_secret"].starts_with("whsec_"), "{shown:?}");
    assert_ne!(shown["generated_secret"], secret);
    assert_eq!(shown["version"], "v2");

    let listed = table(&ok(client(&server, &["endpoint", "list"]).await));
    assert_eq!(
        listed[0],
        ["TASK QUEUE", "VERSION", "CURRENT", "URL", "MAX CONCURRENCY"]
    );
    assert_eq!(rows(&listed, "orders").len(), 1);
    assert_eq!(rows(&listed, "mail").len(), 2);
    let listed = ok_json(client(&server, &["endpoint", "list", "-o", "json"]).await);
    let mut versions: Vec<(String, String, bool)> = listed["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["task_queue"].as_str().unwrap().to_owned(),
                e["version"].as_str().unwrap().to_owned(),
                e["is_current"].as_bool().unwrap(),
            )
        })
        .collect();
    versions.sort();
    assert_eq!(
        versions,
        [
            ("mail".to_owned(), "default".to_owned(), false),
            ("mail".to_owned(), "v2".to_owned(), true),
            ("orders".to_owned(), "default".to_owned(), true),
        ]
    );
    assert!(
        !listed.to_string().contains("whsec_"),
        "secrets are never listed: {listed}"
    );

    let deleted = ok(client(&server, &["endpoint", "delete", "mail", "default"]).await);
    assert_eq!(deleted.trim(), "deleted endpoint mail version default");
    let listed = ok_json(client(&server, &["endpoint", "list", "-o", "json"]).await);
    assert_eq!(listed["endpoints"].as_array().unwrap().len(), 2);
    failed(
        client(&server, &["endpoint", "delete", "mail", "default"]).await,
        "no endpoint version default for task queue mail (404)",
    );
    failed(
        client(
            &server,
            &[
                "endpoint",
                "register",
                "--task-queue",
                "q",
                "--url",
                "ftp://x/",
            ],
        )
        .await,
        "url must be http or https (400)",
    );
    failed(
        client(
            &server,
            &[
                "endpoint",
                "register",
                "--task-queue",
                "q",
                "--url",
                url,
                "-n",
                "ghost",
            ],
        )
        .await,
        "namespace ghost not found (404)",
    );
    server.stop().await;
}

/// A handler URL that only answers GET with a description publishing
/// `schemas`.
async fn describing(schemas: Value) -> String {
    let description = json!({"sdk": {"name": "test", "version": "0"},
        "workflows": [{"name": "Order"}], "activities": [], "schemas": schemas});
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::Json(description) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_register_takes_the_schemas_of_the_description() {
    let server = spawn_server(Db::Sqlite).await;
    let schemas = json!({"workflows": {"Order": {"input": {"type": "array",
        "prefixItems": [{"type": "object", "properties": {"amount": {"type": "integer"}}}]}}}});
    let url = describing(schemas.clone()).await;
    let register = |version: &'static str, extra: &'static [&'static str]| {
        let mut args = vec![
            "endpoint",
            "register",
            "--task-queue",
            "orders",
            "--url",
            &url,
            "--secret",
            SECRET,
            "--version",
            version,
        ];
        args.extend_from_slice(extra);
        let server = &server;
        async move { client(server, &args).await }
    };
    let out = ok(register("v1", &[]).await);
    assert!(out.contains("serves workflows: Order"), "{out}");
    assert!(out.contains("input schemas: registered"), "{out}");
    let shown = ok_json(client(&server, &["endpoint", "schemas", "orders", "v1"]).await);
    assert_eq!(shown, schemas);

    // A start the schema refuses fails with the pointer; nothing starts.
    let start = [
        "workflow",
        "start",
        "--type",
        "Order",
        "--task-queue",
        "orders",
        "--id",
        "o-1",
        "--input",
        r#"[{"amount": "ten"}]"#,
    ];
    failed(client(&server, &start).await, "/0/amount");
    failed(
        client(&server, &["workflow", "describe", "o-1"]).await,
        "not found",
    );

    // --no-schemas registers none; --set replaces them from a file.
    ok(register("v2", &["--no-schemas"]).await);
    let shown = ok_json(client(&server, &["endpoint", "schemas", "orders", "v2"]).await);
    assert_eq!(shown, json!({}));
    let file = std::env::temp_dir().join(format!("baton-schemas-{}.json", std::process::id()));
    std::fs::write(&file, schemas.to_string()).unwrap();
    let set = [
        "endpoint",
        "schemas",
        "orders",
        "v2",
        "--set",
        file.to_str().unwrap(),
    ];
    assert_eq!(ok_json(client(&server, &set).await), schemas);
    std::fs::remove_file(&file).unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_verbs_follow_a_workflow_to_completion() {
    let server = spawn_server(Db::Sqlite).await;
    let handler = spawn_handler(|req: Value| async move {
        match (req["type"].as_str(), req["workflow_type"].as_str()) {
            (Some("workflow_task"), Some("Sleeper")) => (
                StatusCode::OK,
                json!({"commands": [{"command_type": "StartTimer", "attributes": {
                    "timer_id": "nap", "start_to_fire_timeout": "1h"
                }}]}),
            ),
            (Some("workflow_task"), _) => (
                StatusCode::OK,
                sequential_workflow(&req, &[("greet", json!({}))]),
            ),
            _ => (
                StatusCode::OK,
                json!({"result": {"hello": req["input"]["step"]}}),
            ),
        }
    })
    .await;
    ok(client(
        &server,
        &[
            "endpoint",
            "register",
            "--task-queue",
            "q",
            "--url",
            &handler.url,
            "--secret",
            SECRET,
        ],
    )
    .await);

    // start (table), then result, describe, show and list (table and JSON).
    let started = fields(&ok(client(
        &server,
        &[
            "workflow",
            "start",
            "--type",
            "Greeter",
            "--task-queue",
            "q",
            "--id",
            "greet-1",
            "--input",
            r#"{"name": "world"}"#,
        ],
    )
    .await));
    assert_eq!(started["workflow_id"], "greet-1");
    assert_eq!(started["started"], "true");
    let run_id = started["run_id"].clone();
    assert!(run_id.parse::<uuid::Uuid>().is_ok(), "{started:?}");

    let result = ok(client(&server, &["workflow", "result", "greet-1", "--wait", "10s"]).await);
    assert_eq!(
        serde_json::from_str::<Value>(result.trim()).unwrap(),
        json!([{"hello": 1}])
    );
    let result = ok_json(client(&server, &["workflow", "result", "greet-1", "-o", "json"]).await);
    assert_eq!(result["status"], "COMPLETED");
    assert_eq!(result["run_id"], run_id.as_str());
    assert_eq!(result["result"], json!([{"hello": 1}]));

    let described = fields(&ok(
        client(&server, &["workflow", "describe", "greet-1"]).await
    ));
    assert_eq!(described["workflow_id"], "greet-1");
    assert_eq!(described["run_id"], run_id);
    assert_eq!(described["type"], "Greeter");
    assert_eq!(described["pinned_version"], "default");
    assert_eq!(described["status"], "COMPLETED");
    assert_eq!(described["history_length"], "11");
    let described = ok_json(
        client(
            &server,
            &[
                "workflow", "describe", "greet-1", "--run-id", &run_id, "-o", "json",
            ],
        )
        .await,
    );
    assert_eq!(described["execution"]["status"], "COMPLETED");
    assert_eq!(described["execution"]["task_queue"], "q");

    let expected = [
        "WorkflowExecutionStarted",
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowTaskCompleted",
        "ActivityTaskScheduled",
        "ActivityTaskStarted",
        "ActivityTaskCompleted",
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowTaskCompleted",
        "WorkflowExecutionCompleted",
    ];
    let shown = table(&ok(client(&server, &["workflow", "show", "greet-1"]).await));
    assert_eq!(shown[0], ["ID", "TIME", "TYPE", "ATTRIBUTES"]);
    let shown_types: Vec<&str> = shown[1..].iter().map(|r| r[2].as_str()).collect();
    assert_eq!(shown_types, expected);
    let ids: Vec<&str> = shown[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        ids,
        ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]
    );
    let shown = ok_json(client(&server, &["workflow", "show", "greet-1", "-o", "json"]).await);
    assert_eq!(names(&shown["events"], "event_type"), expected);
    assert_eq!(
        shown["events"][0]["attributes"]["input"],
        json!({"name": "world"})
    );

    // A second workflow, started with JSON output, then terminated.
    let started = ok_json(
        client(
            &server,
            &[
                "workflow",
                "start",
                "--type",
                "Sleeper",
                "--task-queue",
                "q",
                "--id",
                "nap-1",
                "-o",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(started["workflow_id"], "nap-1");
    assert_eq!(started["started"], true);
    let nap_run = started["run_id"].as_str().unwrap().to_owned();
    failed(
        client(
            &server,
            &[
                "workflow",
                "start",
                "--type",
                "Sleeper",
                "--task-queue",
                "q",
                "--id",
                "nap-1",
            ],
        )
        .await,
        "(409)",
    );
    let asleep = common::eventually(Duration::from_secs(5), || async {
        let d = server.api.describe("nap-1").await;
        d["pending_timers"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    })
    .await;
    assert!(asleep, "nap-1 never started its timer");
    let described = fields(&ok(
        client(&server, &["workflow", "describe", "nap-1"]).await
    ));
    assert_eq!(described["status"], "RUNNING");

    let listed = table(&ok(client(&server, &["workflow", "list"]).await));
    assert_eq!(
        listed[0],
        [
            "WORKFLOW ID",
            "TYPE",
            "STATUS",
            "STARTED",
            "CLOSED",
            "RUN ID"
        ]
    );
    assert_eq!(rows(&listed, "greet-1")[0][2], "COMPLETED");
    assert_eq!(rows(&listed, "nap-1")[0][2], "RUNNING");
    let listed = ok_json(client(&server, &["workflow", "list", "-o", "json"]).await);
    assert_eq!(
        names(&listed["executions"], "workflow_id"),
        ["nap-1", "greet-1"],
        "newest first"
    );
    let listed = ok_json(
        client(
            &server,
            &["workflow", "list", "--status", "running", "-o", "json"],
        )
        .await,
    );
    assert_eq!(names(&listed["executions"], "workflow_id"), ["nap-1"]);
    let listed = ok_json(
        client(
            &server,
            &["workflow", "list", "--type", "Greeter", "-o", "json"],
        )
        .await,
    );
    assert_eq!(names(&listed["executions"], "workflow_id"), ["greet-1"]);

    // List filters, --limit and the page token.
    let query = "WorkflowType = 'Greeter' OR ExecutionStatus = 'Running'";
    let listed = ok_json(
        client(
            &server,
            &["workflow", "list", "--query", query, "-o", "json"],
        )
        .await,
    );
    assert_eq!(
        names(&listed["executions"], "workflow_id"),
        ["nap-1", "greet-1"]
    );
    let first = client(
        &server,
        &[
            "workflow",
            "list",
            "-q",
            "ORDER BY WorkflowId",
            "--limit",
            "1",
        ],
    )
    .await;
    assert_eq!(table(&first.stdout)[1][0], "greet-1", "{first:#?}");
    let token = first
        .stderr
        .trim()
        .strip_prefix("more runs: add --page-token ")
        .unwrap_or_else(|| panic!("a page token: {first:#?}"))
        .to_owned();
    let rest = ok_json(
        client(
            &server,
            &[
                "workflow",
                "list",
                "-q",
                "ORDER BY WorkflowId",
                "--page-token",
                &token,
                "-o",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(names(&rest["executions"], "workflow_id"), ["nap-1"]);
    assert!(rest["next_page_token"].is_null(), "{rest}");
    let counted = ok(client(
        &server,
        &["workflow", "count", "-q", "WorkflowType = 'Greeter'"],
    )
    .await);
    assert_eq!(counted.trim(), "1");
    let grouped = table(&ok(client(
        &server,
        &["workflow", "count", "--query", "GROUP BY ExecutionStatus"],
    )
    .await));
    assert_eq!(
        grouped,
        [
            vec!["STATUS", "COUNT"],
            vec!["COMPLETED", "1"],
            vec!["RUNNING", "1"],
            vec!["total 2"],
        ]
    );
    failed(
        client(&server, &["workflow", "list", "--query", "WorkflowId = "]).await,
        "expected a value, found the end of the query (at column 14)",
    );

    let terminated = ok(client(
        &server,
        &["workflow", "terminate", "nap-1", "--reason", "test over"],
    )
    .await);
    assert_eq!(terminated.trim(), "terminated nap-1");
    let described =
        ok_json(client(&server, &["workflow", "describe", "nap-1", "-o", "json"]).await);
    assert_eq!(described["execution"]["status"], "TERMINATED");
    let shown = ok_json(client(&server, &["workflow", "show", "nap-1", "-o", "json"]).await);
    let last = shown["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event_type"], "WorkflowExecutionTerminated");
    assert_eq!(last["attributes"]["reason"], "test over");
    // In table form a run that did not complete is an error; JSON reports it.
    failed(
        client(&server, &["workflow", "result", "nap-1"]).await,
        "workflow nap-1 closed as TERMINATED",
    );
    let result = ok_json(client(&server, &["workflow", "result", "nap-1", "-o", "json"]).await);
    assert_eq!(result["status"], "TERMINATED");
    assert_eq!(result["run_id"], nap_run.as_str());
    failed(
        client(&server, &["workflow", "terminate", "nap-1"]).await,
        "(409)",
    );
    // A closed run can be deleted at once; then it is gone.
    let deleted = ok(client(&server, &["workflow", "delete", "nap-1"]).await);
    assert_eq!(deleted.trim(), "deleted nap-1");
    failed(
        client(&server, &["workflow", "describe", "nap-1"]).await,
        "workflow nap-1 not found (404)",
    );

    // Without --id the workflow gets a generated one, named after its type.
    let started = fields(&ok(client(
        &server,
        &[
            "workflow",
            "start",
            "--type",
            "Sleeper",
            "--task-queue",
            "q",
        ],
    )
    .await));
    assert!(
        started["workflow_id"].starts_with("Sleeper-"),
        "{started:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_exit_non_zero_with_one_line() {
    let server = spawn_server(Db::Sqlite).await;
    // Nobody listens there.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    for args in [
        &["namespace", "list"][..],
        &["workflow", "describe", "w"][..],
        &["endpoint", "list"][..],
    ] {
        let mut all = args.to_vec();
        all.extend(["--address", &nowhere]);
        failed(
            run(command(&all)).await,
            &format!("cannot reach the Baton server at {nowhere}"),
        );
    }
    for verb in ["describe", "show", "result", "terminate"] {
        failed(
            client(&server, &["workflow", verb, "ghost"]).await,
            "workflow ghost not found (404)",
        );
    }
    failed(
        client(&server, &["workflow", "list", "-n", "ghost"]).await,
        "namespace ghost not found (404)",
    );
    for input in [r#"{"name": "#, "not json", "{'a': 1}"] {
        failed(
            client(
                &server,
                &[
                    "workflow",
                    "start",
                    "--type",
                    "T",
                    "--task-queue",
                    "q",
                    "--id",
                    "bad-input",
                    "--input",
                    input,
                ],
            )
            .await,
            "--input is not valid JSON",
        );
    }
    failed(
        client(
            &server,
            &[
                "workflow",
                "start",
                "--type",
                "T",
                "--task-queue",
                "q",
                "--id-reuse-policy",
                "SOMETIMES",
            ],
        )
        .await,
        "unknown variant `SOMETIMES`",
    );
    failed(
        client(
            &server,
            &[
                "workflow",
                "start",
                "--type",
                "T",
                "--task-queue",
                "q",
                "--run-timeout",
                "soon",
            ],
        )
        .await,
        "invalid duration \"soon\"",
    );
    failed(
        client(&server, &["workflow", "result", "w", "--wait", "soon"]).await,
        "--wait",
    );
    // None of that started anything.
    let listed = ok_json(client(&server, &["workflow", "list", "-o", "json"]).await);
    assert_eq!(listed["executions"], json!([]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sends_the_api_key() {
    let mut options = common::test_options("sqlite::memory:".to_owned());
    options.api_key = Some("k3y".to_owned());
    let server = common::spawn_server_with(options).await;
    failed(
        client(&server, &["namespace", "list"]).await,
        "missing or invalid API key (401)",
    );
    failed(
        client(&server, &["namespace", "list", "--api-key", "wrong"]).await,
        "missing or invalid API key (401)",
    );
    let listed = ok_json(
        client(
            &server,
            &["namespace", "list", "--api-key", "k3y", "-o", "json"],
        )
        .await,
    );
    assert_eq!(names(&listed["namespaces"], "name"), ["default"]);
    let address = format!("http://{}", server.addr);
    let mut cmd = command(&["namespace", "create", "from-env"]);
    cmd.env("BATON_API_KEY", "k3y")
        .env("BATON_ADDRESS", &address);
    ok(run(cmd).await);
    server.stop().await;
}

/// `baton apikey create|list|revoke` with the bootstrap key: the key is
/// printed once and works as `--api-key` for its namespace and role only;
/// after `revoke` it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apikey_verbs_create_list_and_revoke() {
    let mut options = common::test_options("sqlite::memory:".to_owned());
    options.api_key = Some("b00tstrap".to_owned());
    let server = common::spawn_server_with(options).await;
    let admin = ["--api-key", "b00tstrap"];
    let created = ok(client(
        &server,
        &[
            &["apikey", "create", "--role", "reader", "--expires", "90d"][..],
            &admin[..],
        ]
        .concat(),
    )
    .await);
    let f = fields(&created);
    let (id, key) = (f["id"].clone(), f["key"].clone());
    assert_eq!(f["namespace"], "default", "{created}");
    assert_eq!(f["role"], "reader");
    assert!(key.starts_with(&format!("{id}.")), "{created}");
    assert!(created.contains("shown only this once"), "{created}");
    let listed = ok(client(&server, &[&["apikey", "list"][..], &admin[..]].concat()).await);
    let t = table(&listed);
    assert_eq!(t[0][..3], ["ID", "NAMESPACE", "ROLE"]);
    assert_eq!(rows(&t, &id).len(), 1, "{listed}");
    assert!(!listed.contains(&key), "the list never shows a key");
    // The new key reads its namespace and may not write or manage keys.
    ok(client(&server, &["workflow", "list", "--api-key", &key]).await);
    failed(
        client(&server, &["namespace", "create", "nope", "--api-key", &key]).await,
        "(403)",
    );
    failed(
        client(&server, &["apikey", "list", "--api-key", &key]).await,
        "(403)",
    );
    failed(
        client(
            &server,
            &[&["apikey", "create", "--role", "boss"][..], &admin[..]].concat(),
        )
        .await,
        "role: unknown role",
    );
    let revoked = ok(client(
        &server,
        &[&["apikey", "revoke", &id][..], &admin[..]].concat(),
    )
    .await);
    assert!(revoked.contains(&id), "{revoked}");
    failed(
        client(&server, &["workflow", "list", "--api-key", &key]).await,
        "(401)",
    );
    server.stop().await;
}

/// `baton health`, the image's HEALTHCHECK: 200 from `/healthz` or
/// `/readyz` exits 0 (open even with an API key), anything else or nobody
/// listening exits 1 with one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probes_healthz_and_readyz() {
    let mut options = common::test_options("sqlite::memory:".to_owned());
    options.api_key = Some("k3y".to_owned());
    let server = common::spawn_server_with(options).await;
    let address = format!("http://{}", server.addr);
    let out = ok(run(command(&["health", "--address", &address])).await);
    assert_eq!(out, format!("{address}/healthz answered 200\n"));
    let out = ok(run(command(&["health", "--ready", "--address", &address])).await);
    assert_eq!(out, format!("{address}/readyz answered 200\n"));
    let mut cmd = command(&["health", "--ready"]);
    cmd.env("BATON_ADDRESS", &address);
    ok(run(cmd).await);
    // A path under the API is not a probe: the router answers 404.
    let wrong = format!("{address}/api/v1");
    failed(
        run(command(&["health", "--address", &wrong])).await,
        &format!("{wrong}/healthz answered 404"),
    );
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    failed(
        run(command(&[
            "health",
            "--timeout",
            "1s",
            "--address",
            &nowhere,
        ]))
        .await,
        &format!("cannot reach the Baton server at {nowhere}"),
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Running a node.

/// Reads `child`'s stdout until a line contains `needle` (at most 20 s);
/// returns everything read. Call it once per child: what its reader
/// buffered past `needle` is dropped with it.
async fn read_until(child: &mut Child, needle: &str) -> String {
    let stdout = child.stdout.as_mut().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no {needle:?} in stdout: {seen}");
    seen
}

/// Sends SIGTERM and waits (at most 10 s) for a clean exit.
async fn terminate(mut child: Child) -> String {
    let pid = child.id().expect("child still running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("baton stops within 10 s of SIGTERM")
        .unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr).await;
    }
    assert!(status.success(), "{status}: {stderr}");
    stderr
}

/// A node's log names the key of each denied request by its id and never
/// shows a key: not the scoped key's secret, not the bootstrap key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_requests_are_logged_with_the_key_id_only() {
    const BOOTSTRAP: &str = "b00tstrap-key-for-the-log-test";
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "dev",
        "--db",
        ":memory:",
        "--listen",
        &listen,
        "--api-key",
        BOOTSTRAP,
    ];
    let mut child = dev_with(&args, dir.path());
    read_until(&mut child, "baton workflow result").await;
    let address = format!("http://{listen}");
    let admin = common::Api::new(address.clone(), Some(BOOTSTRAP.to_owned()));
    let (_, created) = admin
        .post(
            "/api/v1/apikeys",
            json!({"role": "reader", "namespace": "default"}),
        )
        .await;
    let (id, key) = (
        created["id"].as_str().unwrap(),
        created["key"].as_str().unwrap(),
    );
    let secret = key.split_once('.').unwrap().1;
    let reader = common::Api::new(address.clone(), Some(key.to_owned()));
    let (status, _) = reader
        .post("/api/v1/namespaces", json!({"name": "nope"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let forged = common::Api::new(address, Some(format!("{id}.{}", "0".repeat(64))));
    let (status, _) = forged.get("/api/v1/namespaces").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let log = strip_ansi(&terminate(child).await);
    let denials: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("API request denied"))
        .collect();
    assert_eq!(denials.len(), 2, "{log}");
    assert!(denials.iter().all(|l| l.contains(id)), "{log}");
    assert!(denials[0].contains("reason=\"role\""), "{log}");
    assert!(denials[1].contains("reason=\"unknown_key\""), "{log}");
    assert!(!log.contains(secret), "the log shows a secret: {log}");
    assert!(
        !log.contains(BOOTSTRAP),
        "the log shows the bootstrap key: {log}"
    );
}

/// `text` without its terminal colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

fn dev(db: &str, port: u16, dir: &std::path::Path) -> Child {
    dev_with(
        &["dev", "--db", db, "--listen", &format!("127.0.0.1:{port}")],
        dir,
    )
}

fn dev_with_retention(db: &str, port: u16, dir: &std::path::Path, retention: &str) -> Child {
    let listen = format!("127.0.0.1:{port}");
    let args = ["dev", "--db", db, "--listen", &listen];
    dev_with(
        &[&args[..], &["--default-namespace-retention", retention]].concat(),
        dir,
    )
}

fn dev_with(args: &[&str], dir: &std::path::Path) -> Child {
    let mut cmd = command(args);
    cmd.current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("baton dev starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_server_prints_its_banner_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = dev(":memory:", port, dir.path());
    let address = format!("http://127.0.0.1:{port}");
    // The banner's last line; one reader, so nothing buffered is lost.
    let banner = read_until(&mut child, "baton workflow result").await;
    assert!(
        banner.contains(&format!("listening on {address}")),
        "{banner}"
    );
    assert!(banner.contains("baton endpoint register"), "{banner}");
    assert!(banner.contains("baton workflow start"), "{banner}");

    let resp = reqwest::get(format!("{address}/readyz")).await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "ready");
    let mut cmd = command(&["namespace", "list", "-o", "json"]);
    cmd.env("BATON_ADDRESS", &address);
    let listed = ok_json(run(cmd).await);
    assert_eq!(names(&listed["namespaces"], "name"), ["default"]);
    // The dev server keeps closed runs a day, as Temporal's does.
    assert_eq!(listed["namespaces"][0]["retention"], "86400s", "{listed}");

    terminate(child).await;
    assert!(
        reqwest::get(format!("{address}/healthz")).await.is_err(),
        "the port is closed after shutdown"
    );
    // `:memory:` wrote nothing to the working directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_server_keeps_a_file_database_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let address = |port: u16| format!("http://127.0.0.1:{port}");
    let port = free_port();
    let mut child = dev_with_retention("dev.db", port, dir.path(), "7d");
    read_until(&mut child, "listening on").await;
    let mut cmd = command(&["namespace", "create", "kept", "--address", &address(port)]);
    cmd.current_dir(dir.path());
    ok(run(cmd).await);
    terminate(child).await;
    assert!(dir.path().join("dev.db").exists());

    let port = free_port();
    let mut child = dev("dev.db", port, dir.path());
    read_until(&mut child, "listening on").await;
    let cmd = command(&[
        "namespace",
        "list",
        "-o",
        "json",
        "--address",
        &address(port),
    ]);
    let listed = ok_json(run(cmd).await);
    assert_eq!(names(&listed["namespaces"], "name"), ["default", "kept"]);
    // The retention given when `default` was created stays: the flag
    // only applies to the server that creates it.
    assert_eq!(listed["namespaces"][0]["retention"], "604800s", "{listed}");
    terminate(child).await;
}

/// One integer `sql` selects from the database at `url`.
async fn scalar(url: &str, sql: &str) -> i64 {
    use sqlx::Connection as _;
    let (n,): (i64,) = if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap()
    };
    n
}

async fn applied_migrations(url: &str) -> i64 {
    scalar(url, "select count(*) from _sqlx_migrations where success").await
}

async fn default_retention_ms(url: &str) -> i64 {
    scalar(
        url,
        "select retention_ms from namespaces where name = 'default'",
    )
    .await
}

async fn migrate_twice(url: &str) {
    let first = ok(run(command(&["migrate", "--database-url", url])).await);
    assert!(first.starts_with("migrations applied to "), "{first}");
    // A production database's `default` keeps closed runs 30 days.
    assert_eq!(default_retention_ms(url).await, 30 * 86_400_000);
    let applied = applied_migrations(url).await;
    assert!(applied > 0);
    // Idempotent: a second run succeeds and applies nothing new.
    let mut cmd = command(&["migrate"]);
    cmd.env("BATON_DATABASE_URL", url);
    ok(run(cmd).await);
    assert_eq!(applied_migrations(url).await, applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("baton.db").display());
    migrate_twice(&url).await;
    failed(
        run(command(&[
            "migrate",
            "--database-url",
            "sqlite:/nonexistent-dir/baton.db",
        ]))
        .await,
        "opening database sqlite:/nonexistent-dir/baton.db",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent_on_postgres() {
    let url = common::fresh_postgres_database().await;
    migrate_twice(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_register_lists_what_an_sdk_handler_serves() {
    let server = spawn_server(Db::Sqlite).await;
    // An SDK answers a GET on its URL with the types it serves.
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            axum::Json(json!({
                "sdk": {"name": "baton-sdk", "version": "0"},
                "workflows": [{"name": "Onboarding"}, {"name": "Billing"}],
                "activities": [{"name": "send_email"}],
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let out = ok(client(
        &server,
        &[
            "endpoint",
            "register",
            "--task-queue",
            "q",
            "--url",
            &url,
            "--secret",
            SECRET,
        ],
    )
    .await);
    assert!(
        out.contains("serves workflows: Onboarding, Billing"),
        "{out}"
    );
    assert!(out.contains("serves activities: send_email"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_and_cancel_verbs() {
    let server = spawn_server(Db::Sqlite).await;
    // No endpoint: the run stays open and what it is sent is buffered.
    let started = ok_json(
        client(
            &server,
            &[
                "workflow",
                "signal-with-start",
                "--type",
                "PurchaseOrder",
                "--task-queue",
                "q",
                "--id",
                "po-1",
                "--signal-name",
                "approve",
                "--signal-input",
                r#"{"approver":"ann"}"#,
                "-o",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(started["workflow_id"], "po-1");
    assert_eq!(started["started"], true);
    let signalled = ok(client(
        &server,
        &[
            "workflow",
            "signal",
            "po-1",
            "nudge",
            "--input",
            "3",
            "--request-id",
            "r-1",
        ],
    )
    .await);
    assert!(signalled.starts_with("signalled po-1"), "{signalled}");
    failed(
        client(
            &server,
            &["workflow", "signal", "po-1", "nudge", "--input", "{"],
        )
        .await,
        "--input is not valid JSON",
    );
    failed(
        client(&server, &["workflow", "signal", "ghost", "nudge"]).await,
        "(404)",
    );
    let canceled = ok(client(
        &server,
        &["workflow", "cancel", "po-1", "--reason", "withdrawn"],
    )
    .await);
    assert_eq!(canceled.trim(), "cancellation requested for po-1");
    let described = server.api.describe("po-1").await;
    assert_eq!(described["cancel_requested"], true, "{described}");
    server
        .api
        .post(
            "/api/v1/namespaces/default/workflows/po-1/terminate",
            json!({}),
        )
        .await;
    let history = server.api.history("po-1").await;
    let types = common::event_types(&history);
    assert_eq!(types[1], "WorkflowExecutionSignaled");
    assert_eq!(
        history[1]["attributes"]["input"],
        json!({"approver": "ann"})
    );
    let nudge = history
        .iter()
        .find(|e| e["attributes"]["signal_name"] == "nudge")
        .unwrap();
    assert_eq!(nudge["attributes"]["input"], 3);
    assert_eq!(nudge["attributes"]["request_id"], "r-1");
    assert!(types
        .iter()
        .any(|t| t == "WorkflowExecutionCancelRequested"));
    failed(
        client(&server, &["workflow", "cancel", "po-1"]).await,
        "(409)",
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_query_prints_the_handlers_answer() {
    let server = spawn_server(Db::Sqlite).await;
    let handler = spawn_handler(|req: Value| async move {
        if req["type"] == "query" {
            return (
                StatusCode::OK,
                json!({"result": {"asked": req["query_name"], "args": req["query_args"]}}),
            );
        }
        (StatusCode::OK, json!({"commands": []}))
    })
    .await;
    server.api.register("q", &handler.url).await;
    server.api.start("asked", "Asked", "q", json!({})).await;
    let out = ok(client(
        &server,
        &["workflow", "query", "asked", "status", "--args", "[1]"],
    )
    .await);
    assert_eq!(out.trim(), r#"{"args":[1],"asked":"status"}"#);
    let v = ok_json(
        client(
            &server,
            &["workflow", "query", "asked", "status", "-o", "json"],
        )
        .await,
    );
    assert_eq!(v["result"]["asked"], "status");
    failed(
        client(
            &server,
            &["workflow", "query", "asked", "status", "--args", "{oops"],
        )
        .await,
        "--args",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_versions_promote_and_move_runs() {
    let server = spawn_server(Db::Sqlite).await;
    // A workflow that waits forever: its runs stay open on their version.
    let handler =
        spawn_handler(|_req: Value| async move { (StatusCode::OK, json!({"commands": []})) }).await;
    let register = |version: &'static str| {
        let url = handler.url.clone();
        let server = &server;
        async move {
            let args = [
                "endpoint",
                "register",
                "--task-queue",
                "q",
                "--url",
                &url,
                "--version",
                version,
                "--secret",
                SECRET,
            ];
            ok(client(server, &args).await);
        }
    };
    register("v1").await;
    server.api.start("a", "Waiter", "q", json!({})).await;
    server.api.start("b", "Waiter", "q", json!({})).await;
    register("v2").await;

    let shown = table(&ok(client(&server, &["endpoint", "versions", "q"]).await));
    assert_eq!(
        shown[0],
        [
            "VERSION",
            "CURRENT",
            "OPEN RUNS",
            "REGISTERED",
            "URL",
            "CREATED"
        ]
    );
    assert_eq!(rows(&shown, "v1")[0][1..4], ["false", "2", "true"]);
    assert_eq!(rows(&shown, "v2")[0][1..4], ["true", "0", "true"]);
    failed(
        client(&server, &["endpoint", "delete", "q", "v1"]).await,
        "2 open run(s) are pinned to version v1 of task queue q",
    );
    failed(
        client(
            &server,
            &[
                "endpoint",
                "move-runs",
                "q",
                "--from",
                "v1",
                "--to",
                "v9",
                "--reason",
                "x",
            ],
        )
        .await,
        "no endpoint version v9 for task queue q (404)",
    );

    let move_runs = |extra: &[&'static str]| {
        let mut args = vec!["endpoint", "move-runs", "q", "--from", "v1", "--to", "v2"];
        args.extend_from_slice(extra);
        let server = &server;
        async move { client(server, &args).await }
    };
    let moved = ok(move_runs(&["--reason", "v1 leaks connections", "--workflow-id", "a"]).await);
    assert_eq!(moved.trim(), "moved 1 run(s) of q from version v1 to v2");
    let history = server.api.history("a").await;
    let updated = common::closing_event(&history, "WorkflowExecutionOptionsUpdated");
    assert_eq!(updated["attributes"]["reason"], "v1 leaks connections");
    let moved = ok_json(move_runs(&["--reason", "drain", "-o", "json"]).await);
    assert_eq!(moved["moved"], 1);
    let listed = ok_json(client(&server, &["endpoint", "versions", "q", "-o", "json"]).await);
    let counts: Vec<(&str, i64)> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap(),
                v["open_runs"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("v1", 0), ("v2", 2)]);

    let promoted = fields(&ok(
        client(&server, &["endpoint", "promote", "q", "v1"]).await
    ));
    assert_eq!(promoted["version"], "v1");
    assert_eq!(promoted["current"], "true");
    let deleted = ok(client(&server, &["endpoint", "delete", "q", "v2", "--force"]).await);
    assert_eq!(deleted.trim(), "deleted endpoint q version v2");
    // The forced delete leaves v2's runs listed, as not registered.
    let shown = table(&ok(client(&server, &["endpoint", "versions", "q"]).await));
    assert_eq!(rows(&shown, "v2")[0][1..4], ["false", "2", "false"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_update_prints_the_handlers_result_and_fails_on_rejection() {
    let server = spawn_server(Db::Sqlite).await;
    // Validates `double` (its argument must be a number); the handler
    // answers twice the argument.
    let handler = spawn_handler(|req: Value| async move {
        if req["type"] == "update_validation" {
            return match req["update_args"][0].as_i64() {
                Some(_) => (StatusCode::OK, json!({"accepted": true})),
                None => (
                    StatusCode::OK,
                    json!({"failure": {"message": "not a number", "type": "ApplicationError"}}),
                ),
            };
        }
        let history = req["history"].as_array().cloned().unwrap_or_default();
        let done: Vec<Value> = history
            .iter()
            .filter(|e| e["event_type"] == "WorkflowExecutionUpdateCompleted")
            .map(|e| e["attributes"]["update_id"].clone())
            .collect();
        let commands: Vec<Value> = history
            .iter()
            .filter(|e| e["event_type"] == "WorkflowExecutionUpdateAdmitted")
            .filter(|e| !done.contains(&e["attributes"]["update_id"]))
            .map(|e| {
                let n = e["attributes"]["input"][0].as_i64().unwrap_or(0);
                json!({"command_type": "CompleteWorkflowUpdate", "attributes": {
                    "update_id": e["attributes"]["update_id"], "result": n * 2}})
            })
            .collect();
        (StatusCode::OK, json!({"commands": commands}))
    })
    .await;
    server.api.register("q", &handler.url).await;
    server.api.start("calc", "Calc", "q", json!({})).await;
    let out = ok(client(
        &server,
        &[
            "workflow",
            "update",
            "calc",
            "double",
            "--args",
            "[21]",
            "--update-id",
            "u1",
        ],
    )
    .await);
    assert_eq!(out.trim(), "42");
    // The same update id answers the first outcome.
    let v = ok_json(
        client(
            &server,
            &[
                "workflow",
                "update",
                "calc",
                "double",
                "--args",
                "[1]",
                "--update-id",
                "u1",
                "-o",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(
        (v["update_id"].clone(), v["result"].clone()),
        (json!("u1"), json!(42))
    );
    failed(
        client(
            &server,
            &["workflow", "update", "calc", "double", "--args", "[\"x\"]"],
        )
        .await,
        "not a number",
    );
    failed(
        client(&server, &["workflow", "update", "ghost", "double"]).await,
        "(404)",
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_reset_starts_a_new_run_from_a_completed_task() {
    let server = spawn_server(Db::Sqlite).await;
    let handler = spawn_handler(|req: Value| async move {
        match req["type"].as_str() {
            Some("workflow_task") => (
                StatusCode::OK,
                sequential_workflow(&req, &[("greet", json!({}))]),
            ),
            _ => (StatusCode::OK, json!({"result": "hello"})),
        }
    })
    .await;
    server.api.register("q", &handler.url).await;
    let start = [
        "workflow",
        "start",
        "--type",
        "Greeter",
        "--task-queue",
        "q",
        "--id",
        "greet-r",
        "--memo",
        r#"{"team": "a"}"#,
    ];
    let started = fields(&ok(client(&server, &start).await));
    ok(client(&server, &["workflow", "result", "greet-r"]).await);
    let described =
        ok_json(client(&server, &["workflow", "describe", "greet-r", "-o", "json"]).await);
    assert_eq!(described["memo"], json!({"team": "a"}));
    let described = fields(&ok(
        client(&server, &["workflow", "describe", "greet-r"]).await
    ));
    assert_eq!(described["memo"], r#"{"team":"a"}"#);
    assert_eq!(described["attempt"], "1");
    for (flag, value) in [
        ("--memo", "[1"),
        ("--retry-policy", "{maximum_attempts: 3}"),
    ] {
        failed(
            client(
                &server,
                &[
                    "workflow",
                    "start",
                    "--type",
                    "Greeter",
                    "--task-queue",
                    "q",
                    flag,
                    value,
                ],
            )
            .await,
            &format!("{flag} is not valid JSON"),
        );
    }

    let reset = fields(&ok(client(
        &server,
        &[
            "workflow", "reset", "greet-r", "--type", "last", "--reason", "redo",
        ],
    )
    .await));
    assert_eq!(reset["workflow_id"], "greet-r");
    assert_ne!(reset["run_id"], started["run_id"]);
    let result = ok_json(client(&server, &["workflow", "result", "greet-r", "-o", "json"]).await);
    assert_eq!(result["status"], "COMPLETED");
    assert_eq!(result["run_id"], reset["run_id"].as_str());
    let shown = ok_json(client(&server, &["workflow", "show", "greet-r", "-o", "json"]).await);
    let failed_task = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "WorkflowTaskFailed")
        .cloned()
        .unwrap();
    assert_eq!(failed_task["attributes"]["cause"], "RESET_WORKFLOW");
    assert_eq!(failed_task["attributes"]["failure"]["message"], "redo");

    // Event 3 is a WorkflowTaskStarted: refused by the server.
    failed(
        client(
            &server,
            &[
                "workflow",
                "reset",
                "greet-r",
                "--event-id",
                "3",
                "--reason",
                "x",
                "--no-reapply-signals",
            ],
        )
        .await,
        "is not a WorkflowTaskCompleted event (400)",
    );
    // Neither a point nor a reason: refused by the argument parser.
    let bare = client(&server, &["workflow", "reset", "greet-r"]).await;
    assert_eq!(bare.code, Some(2), "{bare:#?}");
    assert!(bare.stderr.contains("--reason"), "{bare:#?}");
    server.stop().await;
}

/// An empty or blank key must not leave the API open while the operator
/// believes it is protected: the server refuses to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_refuse_an_empty_api_key() {
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let postgres = common::postgres_url();
    let dev = ["dev", "--db", ":memory:", "--listen", &listen];
    let serve = ["serve", "--database-url", &postgres, "--listen", &listen];
    for args in [&dev[..], &serve[..]] {
        for key in ["", "   "] {
            let mut all = args.to_vec();
            all.extend(["--api-key", key]);
            failed(run(command(&all)).await, "is set but empty");
            let mut cmd = command(args);
            cmd.env("BATON_API_KEY", key);
            failed(run(cmd).await, "is set but empty");
        }
        let mut all = args.to_vec();
        all.extend(["--api-key", "two words"]);
        failed(run(command(&all)).await, "printable ASCII without spaces");
    }
    assert!(
        reqwest::get(format!("http://{listen}/healthz"))
            .await
            .is_err(),
        "no server was left listening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_verbs_create_describe_list_trigger_pause_update_and_delete() {
    let server = spawn_server(Db::Sqlite).await;
    let spec = [
        "--workflow-id",
        "report",
        "--type",
        "Report",
        "--task-queue",
        "analytics",
    ];
    let mut create = vec![
        "schedule",
        "create",
        "daily",
        "--cron",
        "0 9 * * 1-5",
        "--jitter",
        "5m",
        "--note",
        "weekdays 9am UTC",
    ];
    create.extend(spec);
    let created = fields(&ok(client(&server, &create).await));
    assert_eq!(created["schedule_id"], "daily");
    assert_eq!(created["conflict_token"], "1");

    let described =
        ok_json(client(&server, &["schedule", "describe", "daily", "-o", "json"]).await);
    assert_eq!(
        described["schedule"]["spec"]["cron_expressions"],
        json!(["0 9 * * 1-5"])
    );
    assert_eq!(described["schedule"]["spec"]["jitter"], "300s");
    assert_eq!(described["schedule"]["state"]["note"], "weekdays 9am UTC");
    let next = described["info"]["future_action_times"].as_array().unwrap();
    assert_eq!(next.len(), 10);
    let table_view = ok(client(&server, &["schedule", "describe", "daily"]).await);
    assert!(table_view.contains("Next actions:"), "{table_view}");

    ok(client(
        &server,
        &["schedule", "trigger", "daily", "--overlap", "allow_all"],
    )
    .await);
    let listed = table(&ok(client(
        &server,
        &["schedule", "list", "--id-prefix", "da"],
    )
    .await));
    assert_eq!(listed[0][..3], ["SCHEDULE ID", "WORKFLOW TYPE", "PAUSED"]);
    assert_eq!(rows(&listed, "daily").len(), 1);
    let mut triggered = false;
    for _ in 0..100 {
        let d = ok_json(client(&server, &["schedule", "describe", "daily", "-o", "json"]).await);
        if d["info"]["action_count"] == 1 {
            let id = d["info"]["recent_actions"][0]["workflow_id"]
                .as_str()
                .unwrap();
            assert!(id.starts_with("report-20"), "{id}");
            triggered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(triggered, "the trigger started a workflow");

    ok(client(
        &server,
        &["schedule", "pause", "daily", "--note", "Q2 close"],
    )
    .await);
    let paused = ok_json(
        client(
            &server,
            &["schedule", "list", "--paused", "true", "-o", "json"],
        )
        .await,
    );
    assert_eq!(names(&paused["schedules"], "schedule_id"), ["daily"]);
    assert_eq!(paused["schedules"][0]["note"], "Q2 close");
    ok(client(&server, &["schedule", "unpause", "daily"]).await);

    let mut update = vec!["schedule", "update", "daily", "--interval", "6h/15m"];
    update.extend(spec);
    ok(client(&server, &update).await);
    let updated = ok_json(client(&server, &["schedule", "describe", "daily", "-o", "json"]).await);
    assert_eq!(
        updated["schedule"]["spec"]["intervals"],
        json!([{"every": "21600s", "offset": "900s"}])
    );

    let mut bad = vec!["schedule", "create", "bad", "--cron", "0 9 * *"];
    bad.extend(spec);
    failed(
        client(&server, &bad).await,
        "schedule.spec.cron_expressions[0]",
    );
    failed(
        client(
            &server,
            &["schedule", "trigger", "daily", "--overlap", "sometimes"],
        )
        .await,
        "--overlap \"sometimes\"",
    );
    failed(
        client(
            &server,
            &[
                "schedule",
                "backfill",
                "daily",
                "--start-time",
                "2025-01-07T00:00:00Z",
                "--end-time",
                "2025-01-06T00:00:00Z",
            ],
        )
        .await,
        "backfills[0].end_time",
    );
    ok(client(&server, &["schedule", "delete", "daily"]).await);
    failed(
        client(&server, &["schedule", "describe", "daily"]).await,
        "schedule daily not found (404)",
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_verbs_and_the_workflow_shortcuts_start_and_follow_jobs() {
    let server = spawn_server(Db::Sqlite).await;
    let handler = common::parking_handler().await;
    server.api.register("q", &handler.url).await;
    common::start_parked(&server.api, "Doomed", "doomed", 4).await;
    let kept = common::start_parked(&server.api, "Kept", "kept", 2).await;
    let closed = async |id: &str| {
        let path = format!("/api/v1/namespaces/default/batches/{id}");
        let done = common::eventually(Duration::from_secs(30), || async {
            server.api.get(&path).await.1["state"] != "RUNNING"
        })
        .await;
        assert!(done, "batch {id} did not close");
    };

    // The temporal-style shortcut starts a job and prints its id.
    let out = ok(client(
        &server,
        &[
            "workflow",
            "terminate",
            "--query",
            "WorkflowType=\"Doomed\"",
            "--reason",
            "stuck",
            "--yes",
        ],
    )
    .await);
    let id = out
        .strip_prefix("started batch ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no batch id in {out:?}"))
        .to_owned();
    assert!(out.contains("(terminate of 4 run(s))"), "{out}");
    closed(&id).await;
    let described = fields(&ok(client(&server, &["batch", "describe", &id]).await));
    assert_eq!(described["state"], "COMPLETED");
    assert_eq!(
        (described["total"].as_str(), described["done"].as_str()),
        ("4", "4")
    );
    assert_eq!(described["reason"], "stuck");

    let started = ok_json(
        client(
            &server,
            &[
                "batch",
                "start",
                "--query",
                "WorkflowType=\"Kept\"",
                "--operation",
                "signal",
                "--signal-name",
                "poke",
                "--input",
                "{\"a\":1}",
                "--batch-id",
                "sig",
                "--rps",
                "5",
                "--yes",
                "-o",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(
        (
            started["batch_id"].clone(),
            started["total"].clone(),
            started["rps"].clone()
        ),
        (json!("sig"), json!(2), json!(5.0))
    );
    closed("sig").await;
    for id in &kept {
        let history = server.api.history(id).await;
        let signals: Vec<&Value> = history
            .iter()
            .filter(|e| e["event_type"] == "WorkflowExecutionSignaled")
            .collect();
        assert_eq!(signals.len(), 1, "{id}");
        assert_eq!(signals[0]["attributes"]["input"], json!({"a": 1}));
    }
    let out = ok(client(
        &server,
        &[
            "workflow",
            "cancel",
            "--query",
            "WorkflowType=\"Kept\"",
            "--yes",
        ],
    )
    .await);
    assert!(out.contains("(cancel of 2 run(s))"), "{out}");

    let list = table(&ok(client(&server, &["batch", "list"]).await));
    assert_eq!(list[0][..3], ["BATCH ID", "OPERATION", "STATE"]);
    assert_eq!(list.len(), 4, "{list:?}");
    assert_eq!(list[2][..3], ["sig", "signal", "COMPLETED"]);
    let out = ok(client(&server, &["batch", "stop", "sig"]).await);
    assert_eq!(out.trim(), "stop requested for batch sig");

    // Bad input: one error line naming the field, nothing started.
    let q = "WorkflowType=\"Kept\"";
    for (args, fragment) in [
        (
            vec!["--query", "WorkflowType = ", "--operation", "terminate"],
            "query",
        ),
        (vec!["--query", q, "--operation", "explode"], "operation"),
        (vec!["--query", q, "--operation", "signal"], "signal_name"),
        (
            vec!["--query", q, "--operation", "terminate", "--rps", "0"],
            "rps",
        ),
        (
            vec![
                "--query",
                q,
                "--operation",
                "signal",
                "--signal-name",
                "s",
                "--input",
                "{",
            ],
            "--input",
        ),
    ] {
        let mut all = vec!["batch", "start", "--yes"];
        all.extend(args);
        failed(client(&server, &all).await, fragment);
    }
    failed(
        client(&server, &["batch", "describe", "nope"]).await,
        "not found",
    );
    // Without --yes it asks; no answer (stdin closed) starts nothing.
    let asked = client(&server, &["workflow", "terminate", "--query", q]).await;
    assert_eq!(asked.code, Some(1), "{asked:#?}");
    assert!(
        asked.stderr.contains("terminate 2 run(s)") && asked.stderr.contains("not started"),
        "{asked:#?}"
    );
    let (_, jobs) = server.api.get("/api/v1/namespaces/default/batches").await;
    assert_eq!(jobs["batches"].as_array().map(Vec::len), Some(3), "{jobs}");
    // Neither a workflow id nor a query: a usage error.
    let usage = client(&server, &["workflow", "terminate"]).await;
    assert_eq!(usage.code, Some(2), "{usage:#?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_verbs_create_list_describe_deliveries_replay_and_delete() {
    use hmac::Mac as _;
    let server = spawn_server(Db::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"[{"name": "merged", "events": ["pull_request"],
            "when": [{"pointer": "/pull_request/merged", "equals": true}],
            "action": {"type": "signal", "workflow_id": "pr-{/number}", "signal": "merged"}}]"#,
    )
    .unwrap();
    let rules_arg = format!("@{}", rules.display());
    let created = fields(&ok(client(
        &server,
        &[
            "webhook", "create", "gh", "--scheme", "github", "--secret", "old", "--secret",
            "s3cr3t", "--rules", &rules_arg,
        ],
    )
    .await));
    assert_eq!(created["SourceId"], "gh");
    assert_eq!(created["Secrets"], "2");
    assert_eq!(created["Url"], "/api/v1/namespaces/default/webhooks/gh");
    let listed = table(&ok(client(&server, &["webhook", "list"]).await));
    assert_eq!(rows(&listed, "gh")[0][1], "github");
    let described = ok(client(&server, &["webhook", "describe", "gh"]).await);
    assert!(
        described.contains("rule merged: signal pr-{/number}"),
        "{described}"
    );
    failed(
        client(
            &server,
            &[
                "webhook", "create", "bad", "--scheme", "github", "--secret", "s", "--rules",
                "[{}]",
            ],
        )
        .await,
        "rules",
    );
    assert!(
        ok(client(&server, &["webhook", "describe", "gh", "-o", "json"]).await)
            .contains("\"secret_count\": 2")
    );

    // An unmerged pull request, signed with the second secret: ignored.
    let body = br#"{"action":"closed","number":3,"pull_request":{"merged":false}}"#;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cr3t").unwrap();
    mac.update(body);
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let resp = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/namespaces/default/webhooks/gh",
            server.addr
        ))
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", "d-1")
        .header("x-hub-signature-256", format!("sha256={sig}"))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let log = ok_json(client(&server, &["webhook", "deliveries", "gh", "-o", "json"]).await);
    let first = log["deliveries"][0]["delivery"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = table(&ok(client(&server, &["webhook", "deliveries", "gh"]).await));
    assert_eq!(rows(&shown, &first)[0][2], "ignored");
    let replayed = fields(&ok(
        client(&server, &["webhook", "replay", "gh", &first]).await
    ));
    assert_eq!(replayed["ReplayOf"], first);
    assert_eq!(replayed["Outcome"], "ignored");
    assert_eq!(replayed["DeliveryId"], "github:d-1");
    ok(client(&server, &["webhook", "delete", "gh"]).await);
    failed(
        client(&server, &["webhook", "describe", "gh"]).await,
        "not found",
    );
    server.stop().await;
}
