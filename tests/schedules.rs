//! Schedules end to end on both databases, on a time-skipping node: a
//! weekday-9am schedule over a skipped week, every overlap policy against
//! workflows that stay open, pause and unpause without a burst, trigger,
//! backfill, update, delete, and bad input refused with nothing stored.

// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Datelike, Duration as Days, Timelike, Utc};
use common::{spawn_handler, Api, Db, TestHandler, TestServer};
use serde_json::{json, Value};

on_both_databases!(
    weekday_nine_am_runs_monday_to_friday_only,
    skip_skips_and_buffer_one_runs_afterwards,
    cancel_other_and_terminate_other_act_on_the_running_workflow,
    allow_all_overlaps,
    pause_and_unpause_without_a_burst,
    trigger_starts_at_once_and_backfill_names_nominal_times,
    update_changes_next_times_and_delete_stops_it,
    bad_input_names_the_field_and_stores_nothing,
    skipping_to_the_next_timer_reaches_the_next_action,
);

const BASE: &str = "/api/v1/namespaces/default/schedules";

async fn server(db: Db) -> (TestServer, TestHandler) {
    let url = match db {
        Db::Sqlite => "sqlite::memory:".to_owned(),
        Db::Postgres => common::fresh_postgres_database().await,
    };
    let mut options = common::test_options(url);
    options.time_skipping = true;
    let server = common::spawn_server_with(options).await;
    // `Quick` workflows complete at once; others stay open until a
    // cancellation request arrives, which they honour.
    let handler = spawn_handler(|req: Value| async move {
        let history = req["history"].as_array().cloned().unwrap_or_default();
        let cancel = history
            .iter()
            .any(|e| e["event_type"] == "WorkflowExecutionCancelRequested");
        let commands = if cancel {
            json!([{"command_type": "CancelWorkflowExecution", "attributes": {}}])
        } else if req["workflow_type"] == "Quick" {
            json!([{"command_type": "CompleteWorkflowExecution", "attributes": {"result": "done"}}])
        } else {
            json!([])
        };
        (StatusCode::OK, json!({"commands": commands}))
    })
    .await;
    server.api.register("q", &handler.url).await;
    (server, handler)
}

fn schedule(spec: Value, workflow_type: &str, overlap: &str) -> Value {
    json!({"schedule": {
        "spec": spec,
        "action": {"start_workflow": {
            "workflow_id": "report", "workflow_type": workflow_type, "task_queue": "q",
            "input": ["daily"]
        }},
        "policies": {"overlap_policy": overlap},
        "state": {"note": "created by a test"}
    }})
}

async fn create(api: &Api, id: &str, body: Value) {
    let (status, answer) = api.post(&format!("{BASE}/{id}"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

async fn describe(api: &Api, id: &str) -> Value {
    let (status, body) = api.get(&format!("{BASE}/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn now(api: &Api) -> DateTime<Utc> {
    let (_, body) = api.get("/api/v1/dev/time").await;
    body["now"].as_str().unwrap().parse().unwrap()
}

async fn skip(api: &Api, duration: &str) {
    let (status, body) = api
        .post("/api/v1/dev/time/skip", json!({"duration": duration}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn skip_to(api: &Api, at: DateTime<Utc>) {
    let by = (at - now(api).await).num_milliseconds().max(0);
    skip(api, &format!("{by}ms")).await;
}

/// Waits until the schedule's info satisfies `check`; returns it.
async fn wait_info(api: &Api, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let d = describe(api, id).await;
        if check(&d["info"]) {
            return d["info"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("schedule {id}: {what}: {}", describe(api, id).await);
}

async fn wait_actions(api: &Api, id: &str, n: i64) -> Value {
    wait_info(api, id, &format!("{n} actions"), |i| i["action_count"] == n).await
}

fn started_ids(info: &Value) -> Vec<String> {
    info["recent_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["workflow_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn status_of(api: &Api, workflow_id: &str) -> String {
    api.describe(workflow_id).await["execution"]["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn wait_status(api: &Api, workflow_id: &str, status: &str) {
    for _ in 0..200 {
        if status_of(api, workflow_id).await == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{workflow_id} is {}, not {status}",
        status_of(api, workflow_id).await
    );
}

/// The first whole hour after `t`.
fn next_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = t
        .with_minute(0)
        .unwrap()
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    floor + Days::hours(1)
}

async fn weekday_nine_am_runs_monday_to_friday_only(db: Db) {
    let (server, _handler) = server(db).await;
    let api = &server.api;
    // The next Monday 00:00 UTC, and the spec starts there.
    let t = now(api).await;
    let days = (7 - t.weekday().num_days_from_monday()) % 7;
    let midnight = t.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let monday = midnight + Days::days(i64::from(if days == 0 { 7 } else { days }));
    let spec = json!({"cron_expressions": ["0 9 * * 1-5"], "start_time": monday.to_rfc3339()});
    create(api, "weekdays", schedule(spec, "Quick", "SKIP")).await;
    skip_to(api, monday).await;
    for day in 0..7 {
        skip(api, "24h").await;
        let expected = [1, 2, 3, 4, 5, 5, 5][day];
        wait_actions(api, "weekdays", expected).await;
    }
    let info = describe(api, "weekdays").await["info"].clone();
    let expected: Vec<String> = (0..5)
        .map(|d| {
            let at = monday + Days::days(d) + Days::hours(9);
            format!("report-{}", at.format("%Y-%m-%dT%H:%M:%SZ"))
        })
        .collect();
    assert_eq!(started_ids(&info), expected);
    assert_eq!(info["missed_catchup_window"], 0);
    for id in &expected {
        wait_status(api, id, "COMPLETED").await;
        // The run records which schedule started it and its nominal time.
        let memo = &api.describe(id).await["memo"];
        assert_eq!(memo["TemporalScheduledById"], "weekdays", "{memo}");
        assert!(memo["TemporalScheduledStartTime"]
            .as_str()
            .unwrap()
            .contains("T09:00:00"));
    }
    // And the system search attribute TemporalScheduledById finds them.
    let (status, listed) = api
        .get("/api/v1/namespaces/default/workflow-count?query=TemporalScheduledById%20%3D%20'weekdays'")
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["count"], 5, "{listed}");
    // The next one is the following Monday.
    let next = info["future_action_times"][0].as_str().unwrap();
    let next: DateTime<Utc> = next.parse().unwrap();
    assert_eq!(next, monday + Days::days(7) + Days::hours(9));
    server.stop().await;
}

async fn skip_skips_and_buffer_one_runs_afterwards(db: Db) {
    let (server, _handler) = server(db).await;
    let api = &server.api;
    let hourly = json!({"intervals": [{"every": "1h"}]});
    create(api, "skip", schedule(hourly.clone(), "Slow", "SKIP")).await;
    create(api, "buffer", schedule(hourly, "Slow", "BUFFER_ONE")).await;
    let first = next_hour(now(api).await);
    for _ in 0..3 {
        skip_to(api, next_hour(now(api).await)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let info = wait_info(api, "skip", "two skipped", |i| i["overlap_skipped"] == 2).await;
    assert_eq!(info["action_count"], 1);
    let info = wait_info(api, "buffer", "one waiting", |i| {
        i["buffer_size"] == 1 && i["overlap_skipped"] == 1
    })
    .await;
    assert_eq!(info["action_count"], 1);
    // The open run closes: the waiting one starts (its nominal time, the
    // second hour, in its id).
    let first_id = format!("report-{}", first.format("%Y-%m-%dT%H:%M:%SZ"));
    let (status, body) = api
        .post(
            &format!("/api/v1/namespaces/default/workflows/{first_id}/terminate"),
            json!({"reason": "done"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let info = wait_actions(api, "buffer", 2).await;
    let second = first + Days::hours(1);
    assert_eq!(
        started_ids(&info)[1],
        format!("report-{}", second.format("%Y-%m-%dT%H:%M:%SZ"))
    );
    assert_eq!(info["buffer_size"], 0);
    server.stop().await;
}

async fn cancel_other_and_terminate_other_act_on_the_running_workflow(db: Db) {
    let (server, _handler) = server(db).await;
    let api = &server.api;
    let hourly = json!({"intervals": [{"every": "1h"}]});
    let mut cancel = schedule(hourly.clone(), "Slow", "CANCEL_OTHER");
    cancel["schedule"]["action"]["start_workflow"]["workflow_id"] = json!("c");
    let mut terminate = schedule(hourly, "Slow", "TERMINATE_OTHER");
    terminate["schedule"]["action"]["start_workflow"]["workflow_id"] = json!("t");
    create(api, "cancel", cancel).await;
    create(api, "terminate", terminate).await;
    let first = next_hour(now(api).await);
    skip_to(api, first).await;
    wait_actions(api, "cancel", 1).await;
    wait_actions(api, "terminate", 1).await;
    skip_to(api, first + Days::hours(1)).await;
    let cancel_info = wait_actions(api, "cancel", 2).await;
    let terminate_info = wait_actions(api, "terminate", 2).await;
    let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!(
        status_of(api, &format!("c-{}", stamp(first))).await,
        "CANCELED"
    );
    assert_eq!(
        status_of(api, &format!("t-{}", stamp(first))).await,
        "TERMINATED"
    );
    for (info, prefix) in [(cancel_info, "c"), (terminate_info, "t")] {
        let running = info["running_workflows"].as_array().unwrap();
        assert_eq!(running.len(), 1, "{info}");
        assert_eq!(
            running[0]["workflow_id"],
            format!("{prefix}-{}", stamp(first + Days::hours(1)))
        );
    }
    server.stop().await;
}

async fn allow_all_overlaps(db: Db) {
    let (server, _handler) = server(db).await;
    let api = &server.api;
    create(
        api,
        "all",
        schedule(json!({"intervals": [{"every": "1h"}]}), "Slow", "ALLOW_ALL"),
    )
    .await;
    for n in 1..=3 {
        skip_to(api, next_hour(now(api).await)).await;
        wait_actions(api, "all", n).await;
    }
    let info = describe(api, "all").await["info"].clone();
    assert_eq!(info["running_workflows"].as_array().unwrap().len(), 3);
    assert_eq!(info["overlap_skipped"], 0);
    server.stop().await;
}

async fn pause_and_unpause_without_a_burst(db: Db) {
    let (server, _handler) = server(db).await;
    let api = &server.api;
    create(
        api,
        "p",
        schedule(
            json!({"intervals": [{"every": "1h"}]}),
            "Quick",
            "ALLOW_ALL",
        ),
    )
    .await;
    skip_to(api, next_hour(now(api).await)).await;
    wait_actions(api, "p", 1).await;
    let (status, body) = api
        .post(&format!("{BASE}/p/pause"), json!({"note": "Q2 close"}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let d = describe(api, "p").await;
    assert_eq!(d["schedule"]["state"]["paused"], true);
    assert_eq!(d["schedule"]["state"]["note"], "Q2 close");
    assert_eq!(d["info"]["future_action_times"], json!([]));
    // Five hours pass while paused: no actions, and none made up later.
    skip(api, "5h").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(describe(api, "p").await["info"]["action_count"], 1);
    let (status, body) = api
        .post(&format!("{BASE}/p/unpause"), json!({"note": "done"}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = describe(api, "p").await;
    assert_eq!(d["info"]["action_count"], 1, "no burst: {d}");
    assert_eq!(d["schedule"]["state"]["note"], "done");
    let next: DateTime<Utc> = d["info"]["future_action_times"][0]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(next > now(api).await);
    skip_to(api, next).await;
    wait_actions(api, "p", 2).await;
    server.stop().await;
}

async fn trigger_starts_at_once_and_backfill_names_nominal_times(db: Db) {
    let (server, _handler) = server(db).await;
    let api = &server.api;
    create(
        api,
        "daily",
        schedule(
            json!({"cron_expressions": ["0 9 * * 1-5"]}),
            "Quick",
            "SKIP",
        ),
    )
    .await;
    let (status, body) = api
        .post(
            &format!("{BASE}/daily/trigger"),
            json!({"overlap_policy": "ALLOW_ALL"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let info = wait_actions(api, "daily", 1).await;
    let triggered = &started_ids(&info)[0];
    wait_status(api, triggered, "COMPLETED").await;

    // A week of 2025: Monday 6 January to Sunday 12 January.
    let (status, body) = api
        .post(
            &format!("{BASE}/daily/backfill"),
            json!({"backfills": [{"start_time": "2025-01-05T23:59:59Z",
                "end_time": "2025-01-12T23:59:59Z", "overlap_policy": "ALLOW_ALL"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let info = wait_actions(api, "daily", 6).await;
    let backfilled: Vec<String> = started_ids(&info)[1..].to_vec();
    assert_eq!(
        backfilled,
        [
            "report-2025-01-06T09:00:00Z",
            "report-2025-01-07T09:00:00Z",
            "report-2025-01-08T09:00:00Z",
            "report-2025-01-09T09:00:00Z",
            "report-2025-01-10T09:00:00Z",
        ]
    );
    for id in &backfilled {
        wait_status(api, id, "COMPLETED").await;
    }
    server.stop().await;
}

async fn update_changes_next_times_and_delete_stops_it(db: Db) {
    let (server, _handler) = server(db).await;
    let api = &server.api;
    create(
        api,
        "u",
        schedule(json!({"cron_expressions": ["0 9 * * *"]}), "Quick", "SKIP"),
    )
    .await;
    let d = describe(api, "u").await;
    let times = d["info"]["future_action_times"].as_array().unwrap().clone();
    assert_eq!(times.len(), 10);
    assert!(times
        .iter()
        .all(|t| t.as_str().unwrap().contains("T09:00:00")));
    // A stale conflict token is refused and changes nothing.
    let mut update = schedule(
        json!({"cron_expressions": ["30 17 * * *"]}),
        "Quick",
        "SKIP",
    );
    update["conflict_token"] = json!("999");
    let (status, body) = api.post(&format!("{BASE}/u/update"), update.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    update["conflict_token"] = d["conflict_token"].clone();
    let mut answer = (StatusCode::CONFLICT, Value::Null);
    // The schedule loop may have written it since the describe.
    for _ in 0..20 {
        answer = api.post(&format!("{BASE}/u/update"), update.clone()).await;
        if answer.0 == StatusCode::OK {
            break;
        }
        update["conflict_token"] = describe(api, "u").await["conflict_token"].clone();
    }
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    let d = describe(api, "u").await;
    let times = d["info"]["future_action_times"].as_array().unwrap();
    assert!(
        times
            .iter()
            .all(|t| t.as_str().unwrap().contains("T17:30:00")),
        "{times:?}"
    );
    assert_eq!(
        d["schedule"]["spec"]["cron_expressions"],
        json!(["30 17 * * *"])
    );

    let (status, _) = api
        .call(reqwest::Method::DELETE, &format!("{BASE}/u"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.get(&format!("{BASE}/u")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    skip(api, "48h").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, list) = api
        .get("/api/v1/namespaces/default/workflows?workflow_type=Quick")
        .await;
    assert_eq!(
        list["executions"],
        json!([]),
        "nothing started after delete"
    );
    server.stop().await;
}

async fn bad_input_names_the_field_and_stores_nothing(db: Db) {
    let (server, _handler) = server(db).await;
    let api = &server.api;
    for (spec, field) in [
        (
            json!({"cron_expressions": ["0 9 * *"]}),
            "spec.cron_expressions[0]",
        ),
        (
            json!({"cron_expressions": ["61 9 * * *"]}),
            "spec.cron_expressions[0]",
        ),
        (
            json!({"cron_expressions": ["0 9 * * *"], "time_zone": "Mars/Olympus"}),
            "spec.time_zone",
        ),
        (
            json!({"intervals": [{"every": "1m"}], "jitter": "2m"}),
            "spec.jitter",
        ),
    ] {
        let (status, body) = api
            .post(&format!("{BASE}/bad"), schedule(spec, "Quick", "SKIP"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], "invalid_argument");
        assert!(
            body["detail"].as_str().unwrap().contains(field),
            "{field}: {body}"
        );
    }
    let (status, list) = api.get(BASE).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["schedules"], json!([]), "nothing stored");

    let ok = schedule(json!({"intervals": [{"every": "1h"}]}), "Quick", "SKIP");
    create(api, "dup", ok.clone()).await;
    let (status, body) = api.post(&format!("{BASE}/dup"), ok).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "already_exists");

    let before = describe(api, "dup").await;
    let (status, body) = api
        .post(
            &format!("{BASE}/dup/backfill"),
            json!({"backfills": [{"start_time": "2025-01-07T00:00:00Z", "end_time": "2025-01-06T00:00:00Z"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("backfills[0].end_time"),
        "{body}"
    );
    let after = describe(api, "dup").await;
    assert_eq!(before["info"]["buffer_size"], after["info"]["buffer_size"]);
    assert_eq!(after["info"]["action_count"], 0);
    let (_, list) = api.get(BASE).await;
    assert_eq!(list["schedules"].as_array().unwrap().len(), 1);
    server.stop().await;
}

async fn skipping_to_the_next_timer_reaches_the_next_action(db: Db) {
    let (server, _handler) = server(db).await;
    let api = &server.api;
    create(
        api,
        "weekly",
        schedule(json!({"cron_expressions": ["@weekly"]}), "Quick", "SKIP"),
    )
    .await;
    // The schedule's first tick computes its next action.
    let next = wait_info(api, "weekly", "a next action", |i| {
        i["future_action_times"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    })
    .await["future_action_times"][0]
        .as_str()
        .unwrap()
        .parse::<DateTime<Utc>>()
        .unwrap();
    for _ in 0..50 {
        if describe(api, "weekly").await["conflict_token"] != "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = api
        .post("/api/v1/dev/time/skip", json!({"to_next_timer": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let skipped_to: DateTime<Utc> = body["now"].as_str().unwrap().parse().unwrap();
    assert!(skipped_to >= next, "{skipped_to} < {next}");
    let info = wait_actions(api, "weekly", 1).await;
    assert_eq!(
        started_ids(&info),
        [format!("report-{}", next.format("%Y-%m-%dT%H:%M:%SZ"))]
    );
    server.stop().await;
}
