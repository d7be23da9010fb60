//! `baton batch …`: start, describe, list and stop batch jobs through the
//! REST API; and the job start behind `baton workflow terminate|cancel
//! --query …`, as the `temporal` CLI has it.

use std::io::BufRead as _;

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{enc, json_arg, Conn};
use super::output::{print, print_fields, print_sections};
use super::Output;

#[derive(Clone, Copy, ValueEnum)]
pub enum ResetType {
    /// The first completed workflow task.
    First,
    /// The last completed workflow task.
    Last,
}

/// What a job does and to which runs.
#[derive(Args)]
pub struct StartArgs {
    /// A list filter naming the runs, e.g. 'WorkflowType="Order" AND ExecutionStatus="Running"'.
    #[arg(long)]
    query: String,
    /// terminate, cancel, signal, reset or delete.
    #[arg(long)]
    operation: String,
    #[arg(long, default_value = "")]
    reason: String,
    /// Runs per second (default 50; the server caps it).
    #[arg(long)]
    rps: Option<f64>,
    /// The signal to send (signal only).
    #[arg(long)]
    signal_name: Option<String>,
    /// The signal's input as JSON (signal only).
    #[arg(long)]
    input: Option<String>,
    /// Where to reset to (reset only).
    #[arg(long, value_enum)]
    reset_type: Option<ResetType>,
    /// The job's id (default: a new one).
    #[arg(long)]
    batch_id: Option<String>,
    /// Start without asking for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
}

#[derive(Subcommand)]
pub enum BatchCmd {
    /// Start a batch job over the runs a query matches.
    Start {
        #[command(flatten)]
        start: StartArgs,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a job and its progress.
    Describe {
        batch_id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List jobs, newest first.
    List {
        /// Most jobs to show.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[command(flatten)]
        conn: Conn,
    },
    /// Stop a job before its next run.
    Stop {
        batch_id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

pub async fn batch(cmd: BatchCmd) -> anyhow::Result<()> {
    match cmd {
        BatchCmd::Start { start, conn } => {
            let body = json!({
                "batch_id": start.batch_id,
                "query": start.query,
                "operation": start.operation,
                "reason": start.reason,
                "rps": start.rps,
                "signal_name": start.signal_name,
                "input": start.input.as_deref().map(|i| json_arg(Some(i), "--input")).transpose()?,
                "reset_type": start.reset_type.map(|r| match r {
                    ResetType::First => "FIRST_WORKFLOW_TASK",
                    ResetType::Last => "LAST_WORKFLOW_TASK",
                }),
            });
            start_job(&conn, body, start.yes).await?;
        }
        BatchCmd::Describe { batch_id, conn } => {
            let v = conn
                .call(
                    Method::GET,
                    &conn.ns_path(&format!("/batches/{}", enc(&batch_id))),
                    None,
                )
                .await?;
            describe(conn.output, &v);
        }
        BatchCmd::List { limit, conn } => {
            if !(1..=1000).contains(&limit) {
                bail!("--limit {limit} is not within 1..=1000");
            }
            let path = conn.ns_path(&format!("/batches?page_size={limit}"));
            let v = conn.call(Method::GET, &path, None).await?;
            print(
                conn.output,
                &v,
                Some("/batches"),
                &[
                    ("BATCH ID", "/batch_id"),
                    ("OPERATION", "/operation"),
                    ("STATE", "/state"),
                    ("TOTAL", "/total"),
                    ("DONE", "/done"),
                    ("FAILED", "/failed"),
                    ("CREATED", "/created_at"),
                ],
            );
        }
        BatchCmd::Stop { batch_id, conn } => {
            let path = conn.ns_path(&format!("/batches/{}/stop", enc(&batch_id)));
            let v = conn.call(Method::POST, &path, None).await?;
            match conn.output {
                Output::Json => print(conn.output, &v, None, &[]),
                Output::Table => println!("stop requested for batch {batch_id}"),
            }
        }
    }
    Ok(())
}

/// Starts a job (`body` as the API takes it), after asking on stdin how
/// many runs it would touch unless `yes`, and prints its id.
pub(super) async fn start_job(conn: &Conn, mut body: Value, yes: bool) -> anyhow::Result<()> {
    if let Some(o) = body.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    if !yes {
        let query = body["query"].as_str().unwrap_or_default();
        let path = conn.ns_path(&format!("/workflow-count?query={}", enc(query)));
        let count = conn.call(Method::GET, &path, None).await?;
        eprint!(
            "Start a batch job to {} {} run(s) matching {query}? [y/N] ",
            body["operation"].as_str().unwrap_or_default(),
            count["count"]
        );
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("not started (confirm with y, or pass --yes)");
        }
    }
    let v = conn
        .call(Method::POST, &conn.ns_path("/batches"), Some(body))
        .await?;
    match conn.output {
        Output::Json => print(conn.output, &v, None, &[]),
        Output::Table => println!(
            "started batch {} ({} of {} run(s))",
            v["batch_id"].as_str().unwrap_or_default(),
            v["operation"].as_str().unwrap_or_default(),
            v["total"]
        ),
    }
    Ok(())
}

fn describe(output: Output, v: &Value) {
    print_fields(
        output,
        v,
        &[
            ("batch_id", "/batch_id"),
            ("state", "/state"),
            ("operation", "/operation"),
            ("query", "/query"),
            ("reason", "/reason"),
            ("signal_name", "/signal_name"),
            ("reset_type", "/reset_type"),
            ("rps", "/rps"),
            ("total", "/total"),
            ("done", "/done"),
            ("failed", "/failed"),
            ("stop_requested", "/stop_requested"),
            ("created_at", "/created_at"),
            ("closed_at", "/closed_at"),
        ],
    );
    if matches!(output, Output::Table) {
        print_sections(
            v,
            &[(
                "Failures",
                "/failures",
                &[
                    ("WORKFLOW ID", "/workflow_id"),
                    ("RUN ID", "/run_id"),
                    ("REASON", "/reason"),
                ],
            )],
        );
    }
}
