//! `baton schedule …`: create, describe, list, update, delete, pause,
//! unpause, trigger and backfill schedules through the REST API.

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{enc, json_arg, Conn};
use super::output::{print, print_fields, print_sections};
use super::Output;

/// What a schedule does and when: the whole schedule, for create and
/// update.
#[derive(Args)]
pub struct ScheduleArgs {
    /// Cron expression (5-7 fields, `@daily`, `CRON_TZ=…` prefix); repeat for more.
    #[arg(long = "cron")]
    cron: Vec<String>,
    /// Interval, optionally with an offset: `6h` or `6h/15m`; repeat for more.
    #[arg(long = "interval")]
    intervals: Vec<String>,
    /// A structured calendar as JSON, e.g. '{"hour":[{"start":9}]}'; repeat for more.
    #[arg(long = "calendar")]
    calendars: Vec<String>,
    /// IANA time zone of the cron expressions and calendars (default UTC).
    #[arg(long)]
    time_zone: Option<String>,
    /// Delay each action by up to this much (the same on every node).
    #[arg(long)]
    jitter: Option<String>,
    #[arg(long)]
    start_time: Option<String>,
    #[arg(long)]
    end_time: Option<String>,
    /// SKIP (default), BUFFER_ONE, BUFFER_ALL, CANCEL_OTHER, TERMINATE_OTHER or ALLOW_ALL.
    #[arg(long)]
    overlap: Option<String>,
    /// After downtime, take missed actions at most this late (default 1 year).
    #[arg(long)]
    catchup_window: Option<String>,
    #[arg(long)]
    pause_on_failure: bool,
    /// Create paused.
    #[arg(long)]
    paused: bool,
    #[arg(long)]
    note: Option<String>,
    /// Take only this many scheduled actions.
    #[arg(long)]
    remaining_actions: Option<i64>,
    /// Workflow id of the started runs (the nominal time is appended).
    #[arg(long)]
    workflow_id: String,
    /// Workflow type name.
    #[arg(long = "type")]
    workflow_type: String,
    #[arg(long)]
    task_queue: String,
    /// Input as JSON.
    #[arg(long)]
    input: Option<String>,
    #[arg(long)]
    execution_timeout: Option<String>,
    #[arg(long)]
    run_timeout: Option<String>,
    #[arg(long)]
    task_timeout: Option<String>,
    /// Memo of the started runs, a JSON object.
    #[arg(long)]
    memo: Option<String>,
}

#[derive(Subcommand)]
pub enum ScheduleCmd {
    /// Create a schedule.
    Create {
        schedule_id: String,
        #[command(flatten)]
        schedule: Box<ScheduleArgs>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a schedule: spec, counters, running workflows, recent and next actions.
    Describe {
        schedule_id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List schedules.
    List {
        /// Only ids starting with this.
        #[arg(long)]
        id_prefix: Option<String>,
        /// Only paused (true) or active (false) schedules.
        #[arg(long)]
        paused: Option<bool>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Replace a schedule's spec, action, policies and state.
    Update {
        schedule_id: String,
        #[command(flatten)]
        schedule: Box<ScheduleArgs>,
        /// Apply only if unchanged since the describe that printed this token.
        #[arg(long)]
        conflict_token: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a schedule (workflows it started keep running).
    Delete {
        schedule_id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Pause a schedule.
    Pause {
        schedule_id: String,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Unpause a schedule (times missed while paused are not made up).
    Unpause {
        schedule_id: String,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Take an action now.
    Trigger {
        schedule_id: String,
        /// Overlap policy for this action (default: the schedule's).
        #[arg(long)]
        overlap: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Take the actions of a past time range now.
    Backfill {
        schedule_id: String,
        #[arg(long)]
        start_time: String,
        #[arg(long)]
        end_time: String,
        #[arg(long)]
        overlap: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
}

/// `6h` or `6h/15m` → `{"every": "6h", "offset": "15m"}`.
fn interval(arg: &str) -> Value {
    match arg.split_once('/') {
        Some((every, offset)) => json!({"every": every.trim(), "offset": offset.trim()}),
        None => json!({"every": arg.trim()}),
    }
}

fn schedule_body(a: &ScheduleArgs) -> anyhow::Result<Value> {
    let mut calendars = Vec::new();
    for c in &a.calendars {
        calendars.push(json_arg(Some(c), "--calendar")?);
    }
    let mut spec = json!({
        "cron_expressions": a.cron,
        "intervals": a.intervals.iter().map(|i| interval(i)).collect::<Vec<_>>(),
        "calendars": calendars,
    });
    for (key, val) in [
        ("time_zone", &a.time_zone),
        ("jitter", &a.jitter),
        ("start_time", &a.start_time),
        ("end_time", &a.end_time),
    ] {
        if let Some(v) = val {
            spec[key] = Value::String(v.clone());
        }
    }
    let mut action = json!({
        "workflow_id": a.workflow_id,
        "workflow_type": a.workflow_type,
        "task_queue": a.task_queue,
        "input": json_arg(a.input.as_deref(), "--input")?,
    });
    for (key, val) in [
        ("workflow_execution_timeout", &a.execution_timeout),
        ("workflow_run_timeout", &a.run_timeout),
        ("workflow_task_timeout", &a.task_timeout),
    ] {
        if let Some(v) = val {
            action[key] = Value::String(v.clone());
        }
    }
    if a.memo.is_some() {
        action["memo"] = json_arg(a.memo.as_deref(), "--memo")?;
    }
    let mut policies = json!({ "pause_on_failure": a.pause_on_failure });
    if let Some(o) = &a.overlap {
        policies["overlap_policy"] = Value::String(overlap(o)?);
    }
    if let Some(w) = &a.catchup_window {
        policies["catchup_window"] = Value::String(w.clone());
    }
    let mut state = json!({
        "paused": a.paused,
        "note": a.note.clone().unwrap_or_default(),
    });
    if let Some(n) = a.remaining_actions {
        state["limited_actions"] = Value::Bool(true);
        state["remaining_actions"] = json!(n);
    }
    Ok(json!({
        "spec": spec,
        "action": {"start_workflow": action},
        "policies": policies,
        "state": state,
    }))
}

/// An overlap policy in any case, with or without Temporal's prefix.
fn overlap(arg: &str) -> anyhow::Result<String> {
    crate::schedule::Overlap::parse(arg)
        .map(|o| o.as_str().to_owned())
        .with_context(|| {
            format!(
                "--overlap {arg:?}: expected SKIP, BUFFER_ONE, BUFFER_ALL, CANCEL_OTHER, \
                 TERMINATE_OTHER or ALLOW_ALL"
            )
        })
}

fn path(conn: &Conn, id: &str, rest: &str) -> String {
    conn.ns_path(&format!("/schedules/{}{rest}", enc(id)))
}

pub async fn schedule(cmd: ScheduleCmd) -> anyhow::Result<()> {
    let written = [
        ("schedule_id", "/schedule_id"),
        ("conflict_token", "/conflict_token"),
    ];
    match cmd {
        ScheduleCmd::Create {
            schedule_id,
            schedule,
            conn,
        } => {
            let body = json!({ "schedule": schedule_body(&schedule)? });
            let v = conn
                .call(Method::POST, &path(&conn, &schedule_id, ""), Some(body))
                .await?;
            print_fields(conn.output, &v, &written);
        }
        ScheduleCmd::Update {
            schedule_id,
            schedule,
            conflict_token,
            conn,
        } => {
            let mut body = json!({ "schedule": schedule_body(&schedule)? });
            if let Some(t) = conflict_token {
                body["conflict_token"] = Value::String(t);
            }
            let v = conn
                .call(
                    Method::POST,
                    &path(&conn, &schedule_id, "/update"),
                    Some(body),
                )
                .await?;
            print_fields(conn.output, &v, &written);
        }
        ScheduleCmd::Describe { schedule_id, conn } => {
            let v = conn
                .call(Method::GET, &path(&conn, &schedule_id, ""), None)
                .await?;
            describe(conn.output, &v);
        }
        ScheduleCmd::List {
            id_prefix,
            paused,
            conn,
        } => {
            let mut query = Vec::new();
            if let Some(p) = id_prefix {
                query.push(format!("id_prefix={}", enc(&p)));
            }
            if let Some(p) = paused {
                query.push(format!("paused={p}"));
            }
            let q = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", query.join("&"))
            };
            let v = conn
                .call(Method::GET, &conn.ns_path(&format!("/schedules{q}")), None)
                .await?;
            print(
                conn.output,
                &v,
                Some("/schedules"),
                &[
                    ("SCHEDULE ID", "/schedule_id"),
                    ("WORKFLOW TYPE", "/workflow_type"),
                    ("PAUSED", "/paused"),
                    ("NEXT ACTION", "/future_action_times/0"),
                    ("NOTE", "/note"),
                ],
            );
        }
        ScheduleCmd::Delete { schedule_id, conn } => {
            conn.call(Method::DELETE, &path(&conn, &schedule_id, ""), None)
                .await?;
            done(conn.output, &schedule_id, "deleted");
        }
        ScheduleCmd::Pause {
            schedule_id,
            note,
            conn,
        } => {
            let body = json!({ "note": note });
            conn.call(
                Method::POST,
                &path(&conn, &schedule_id, "/pause"),
                Some(body),
            )
            .await?;
            done(conn.output, &schedule_id, "paused");
        }
        ScheduleCmd::Unpause {
            schedule_id,
            note,
            conn,
        } => {
            let body = json!({ "note": note });
            conn.call(
                Method::POST,
                &path(&conn, &schedule_id, "/unpause"),
                Some(body),
            )
            .await?;
            done(conn.output, &schedule_id, "unpaused");
        }
        ScheduleCmd::Trigger {
            schedule_id,
            overlap: o,
            conn,
        } => {
            let mut body = json!({});
            if let Some(o) = o {
                body["overlap_policy"] = Value::String(overlap(&o)?);
            }
            conn.call(
                Method::POST,
                &path(&conn, &schedule_id, "/trigger"),
                Some(body),
            )
            .await?;
            done(conn.output, &schedule_id, "triggered");
        }
        ScheduleCmd::Backfill {
            schedule_id,
            start_time,
            end_time,
            overlap: o,
            conn,
        } => {
            let mut range = json!({ "start_time": start_time, "end_time": end_time });
            if let Some(o) = o {
                range["overlap_policy"] = Value::String(overlap(&o)?);
            }
            let body = json!({ "backfills": [range] });
            conn.call(
                Method::POST,
                &path(&conn, &schedule_id, "/backfill"),
                Some(body),
            )
            .await?;
            done(conn.output, &schedule_id, "backfilled");
        }
    }
    Ok(())
}

fn done(output: Output, id: &str, what: &str) {
    let v = json!({ "schedule_id": id, "result": what });
    print_fields(
        output,
        &v,
        &[("schedule_id", "/schedule_id"), ("result", "/result")],
    );
}

fn describe(output: Output, v: &Value) {
    print_fields(
        output,
        v,
        &[
            ("schedule_id", "/schedule_id"),
            (
                "workflow_type",
                "/schedule/action/start_workflow/workflow_type",
            ),
            ("workflow_id", "/schedule/action/start_workflow/workflow_id"),
            ("task_queue", "/schedule/action/start_workflow/task_queue"),
            ("cron", "/schedule/spec/cron_expressions"),
            ("intervals", "/schedule/spec/intervals"),
            ("time_zone", "/schedule/spec/time_zone"),
            ("jitter", "/schedule/spec/jitter"),
            ("overlap", "/schedule/policies/overlap_policy"),
            ("catchup_window", "/schedule/policies/catchup_window"),
            ("paused", "/schedule/state/paused"),
            ("note", "/schedule/state/note"),
            ("actions", "/info/action_count"),
            ("missed_catchup", "/info/missed_catchup_window"),
            ("overlap_skipped", "/info/overlap_skipped"),
            ("buffered", "/info/buffer_size"),
            ("created", "/info/create_time"),
            ("updated", "/info/update_time"),
            ("conflict_token", "/conflict_token"),
        ],
    );
    if !matches!(output, Output::Table) {
        return;
    }
    print_sections(
        v,
        &[
            (
                "Running workflows",
                "/info/running_workflows",
                &[("WORKFLOW ID", "/workflow_id"), ("RUN ID", "/run_id")][..],
            ),
            (
                "Recent actions",
                "/info/recent_actions",
                &[
                    ("SCHEDULED", "/schedule_time"),
                    ("STARTED", "/actual_time"),
                    ("WORKFLOW ID", "/workflow_id"),
                    ("RUN ID", "/run_id"),
                ][..],
            ),
        ],
    );
    if let Some(times) = v
        .pointer("/info/future_action_times")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        println!("\nNext actions:");
        for t in times {
            println!("  {}", t.as_str().unwrap_or_default());
        }
    }
}

/// Refuses a flag combination the server would refuse less clearly.
pub fn check(cmd: &ScheduleCmd) -> anyhow::Result<()> {
    if let ScheduleCmd::Create { schedule, .. } | ScheduleCmd::Update { schedule, .. } = cmd {
        if schedule.cron.is_empty()
            && schedule.intervals.is_empty()
            && schedule.calendars.is_empty()
        {
            bail!("give at least one of --cron, --interval or --calendar");
        }
    }
    Ok(())
}
