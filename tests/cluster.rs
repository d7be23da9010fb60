//! `baton serve` as real child processes on one PostgreSQL database:
//! SIGKILL of a node in the middle of 200 workflows, SIGKILL in the middle
//! of 40 parents with two child workflows each (the transfer queue's start
//! child / notify parent steps, protocol.md §5.7, across each child's
//! continue-as-new), two nodes sharing
//! 1,000 workflows (DESIGN.md invariants 1, 4 and 5), a 1-second
//! schedule on two nodes across a SIGKILL, SIGKILL of a node while its
//! retention deleter works through 5,000 expired runs, and SIGKILL of the
//! node running a batch job (terminate 2,000 of 2,400 runs; signal 400).
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use common::node::{free_port, Node};
use common::{counting_handler, sequential_workflow, spawn_handler, Api};
use serde_json::{json, Value};

async fn start_all(apis: &[&Api], ids: &[String]) {
    for (i, id) in ids.iter().enumerate() {
        let api = apis[i % apis.len()];
        let (status, body) = api
            .start(id, "Three", "q", json!({"workflow_task_timeout": "2s"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// Every workflow completed, with each activity's result recorded once.
async fn assert_all_completed_once(api: &Api, ids: &[String]) {
    for id in ids {
        let result = api.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
        assert_eq!(result["result"], json!(["1", "2", "3"]), "{id}");
        let history = api.history(id).await;
        let completed: Vec<&Value> = history
            .iter()
            .filter(|e| e["event_type"] == "ActivityTaskCompleted")
            .collect();
        assert_eq!(completed.len(), 3, "{id}: {history:#?}");
        for (i, e) in history.iter().enumerate() {
            assert_eq!(e["event_id"], json!(i + 1), "{id}: dense event ids");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_loses_nothing_and_records_each_result_once() {
    let url = common::fresh_postgres_database().await;
    let (handler, executions) = counting_handler(Duration::from_millis(30), "3s").await;
    let port = free_port();
    let node = Node::start(&url, port).await;
    node.api.register("q", &handler.url).await;
    let ids: Vec<String> = (0..200).map(|i| format!("crash-{i}")).collect();
    start_all(&[&node.api], &ids).await;
    // Let some work happen, then kill -9 while most runs are mid-flight.
    let seen = executions.clone();
    assert!(
        common::eventually(Duration::from_secs(30), || async {
            seen.lock().unwrap().len() >= 150
        })
        .await
    );
    let api = node.api.clone();
    node.kill();
    let in_flight = executions.lock().unwrap().len();
    assert!(in_flight < 600, "the kill came after everything finished");
    let _restarted = Node::start(&url, port).await;
    assert_all_completed_once(&api, &ids).await;
    // Every activity ran at least once (at-least-once execution).
    assert_eq!(executions.lock().unwrap().len(), 600);
}

/// Workflow logic for the family test, against raw history: a `Parent` on
/// queue `parents` starts children `<id>-c0` and `<id>-c1` (type `Kid`, queue
/// `kids`) and completes with their results in id order, failing on any
/// other child outcome; a `Kid` continues as new once, then runs one `work`
/// activity and completes with its result.
fn family_workflow(request: &Value) -> Value {
    let history = request["history"].as_array().cloned().unwrap_or_default();
    if request["workflow_type"] == "Kid" {
        let input = &history[0]["attributes"]["input"];
        if input.get("hop").is_none() {
            return json!({"commands": [{"command_type": "ContinueAsNewWorkflowExecution",
                "attributes": {"input": {"child": input["child"], "hop": 1}}}]});
        }
        let options =
            json!({"start_to_close_timeout": "3s", "retry_policy": {"initial_interval": "200ms"}});
        return sequential_workflow(request, &[("work", options)]);
    }
    let id = request["workflow_id"].as_str().unwrap_or_default();
    if !history
        .iter()
        .any(|e| e["event_type"] == "StartChildWorkflowExecutionInitiated")
    {
        let starts: Vec<Value> = (0..2)
            .map(|k| {
                json!({"command_type": "StartChildWorkflowExecution", "attributes": {
                    "workflow_id": format!("{id}-c{k}"), "workflow_type": "Kid",
                    "task_queue": "kids", "input": {"child": k},
                }})
            })
            .collect();
        return json!({"commands": starts});
    }
    let mut results = Vec::new();
    for e in &history {
        let t = e["event_type"].as_str().unwrap_or_default();
        if t == "ChildWorkflowExecutionCompleted" {
            results.push((
                e["attributes"]["workflow_execution"]["workflow_id"].clone(),
                e["attributes"]["result"].clone(),
            ));
        } else if t == "StartChildWorkflowExecutionFailed"
            || (t.starts_with("ChildWorkflowExecution") && t != "ChildWorkflowExecutionStarted")
        {
            return json!({"commands": [{"command_type": "FailWorkflowExecution", "attributes": {
                "failure": {"message": format!("unexpected {t}"), "type": "ChildError"}
            }}]});
        }
    }
    if results.len() < 2 {
        return json!({"commands": []});
    }
    results.sort_by_key(|(id, _)| id.as_str().unwrap_or_default().to_owned());
    let results: Vec<Value> = results.into_iter().map(|(_, r)| r).collect();
    json!({"commands": [{"command_type": "CompleteWorkflowExecution", "attributes": {"result": results}}]})
}

/// The runs a list query returns (one page of up to 1,000).
async fn list(api: &Api, query: &str) -> Vec<Value> {
    let (status, body) = api
        .get(&format!(
            "/api/v1/namespaces/default/workflows?page_size=1000&{query}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("next_page_token").is_none(), "{body}");
    body["executions"].as_array().unwrap().clone()
}

/// The events of `event_type` in a history.
fn events_of<'a>(history: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    history
        .iter()
        .filter(|e| e["event_type"] == event_type)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_child_workflows_starts_each_child_once_and_reports_it_once() {
    const PARENTS: usize = 40;
    let url = common::fresh_postgres_database().await;
    // Parent `fam-<i>` by i mod 4: 0 runs freely and is caught wherever the
    // kill lands (running a child, notifying its parent, completing); 2 has
    // its first workflow task held until just before the kill, so the kill
    // lands among its child starts; 1 and 3 have their children's
    // activities held until the node is dead, so the kill always finds work
    // in flight and no such parent completed before it.
    let released = Arc::new(AtomicBool::new(false));
    let kill_soon = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let executions: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let flags = (released.clone(), kill_soon.clone(), answered.clone());
    let seen = executions.clone();
    let handler = spawn_handler(move |req: Value| {
        let ((released, kill_soon, answered), seen) = (flags.clone(), seen.clone());
        async move {
            let id = req["workflow_id"].as_str().unwrap_or_default().to_owned();
            let parent: usize = id
                .trim_start_matches("fam-")
                .split('-')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_default();
            if req["type"] == "workflow_task" {
                if parent % 4 == 2 && req["workflow_type"] == "Parent" {
                    while !kill_soon.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                return (StatusCode::OK, family_workflow(&req));
            }
            while parent % 2 == 1 && !released.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            *seen.lock().unwrap().entry(id.clone()).or_default() += 1;
            (StatusCode::OK, json!({"result": {"worked": id}}))
        }
    })
    .await;
    let port = free_port();
    let node = Node::start(&url, port).await;
    node.api.register("parents", &handler.url).await;
    node.api.register("kids", &handler.url).await;
    let ids: Vec<String> = (0..PARENTS).map(|i| format!("fam-{i}")).collect();
    for id in &ids {
        let (status, body) = node
            .api
            .start(
                id,
                "Parent",
                "parents",
                json!({"workflow_task_timeout": "2s"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let api = node.api.clone();
    assert!(
        common::eventually(Duration::from_secs(60), || async {
            list(&api, "workflow_type=Parent&status=COMPLETED")
                .await
                .len()
                >= PARENTS / 10
        })
        .await,
        "the free parents never completed"
    );
    // Let the parents whose first task is held start their children, and
    // kill the node while it commits those answers and starts the children.
    let held = answered.load(Ordering::SeqCst);
    kill_soon.store(true, Ordering::SeqCst);
    assert!(
        common::eventually(Duration::from_secs(10), || async {
            answered.load(Ordering::SeqCst) > held
        })
        .await,
        "no held workflow task was answered"
    );
    node.kill();
    released.store(true, Ordering::SeqCst);
    let _restarted = Node::start(&url, port).await;
    for id in &ids {
        let result = api.result(id).await;
        assert_eq!(result["status"], "COMPLETED", "{id}: {result}");
        let expected: Vec<Value> = (0..2)
            .map(|k| json!([{"worked": format!("{id}-c{k}")}]))
            .collect();
        assert_eq!(result["result"], json!(expected), "{id}");
        let history = api.history(id).await;
        assert!(
            events_of(&history, "StartChildWorkflowExecutionFailed").is_empty(),
            "{id}: {history:#?}"
        );
        let initiated = events_of(&history, "StartChildWorkflowExecutionInitiated");
        assert_eq!(initiated.len(), 2, "{id}: {history:#?}");
        // Each child's start and result recorded once, against its initiation.
        for kind in [
            "ChildWorkflowExecutionStarted",
            "ChildWorkflowExecutionCompleted",
        ] {
            let mut answered: Vec<&Value> = events_of(&history, kind)
                .iter()
                .map(|e| &e["attributes"]["initiated_event_id"])
                .collect();
            answered.sort_by_key(|v| v.as_i64());
            let mut expected: Vec<&Value> = initiated.iter().map(|e| &e["event_id"]).collect();
            expected.sort_by_key(|v| v.as_i64());
            assert_eq!(answered, expected, "{id} {kind}: {history:#?}");
        }
        for k in 0..2 {
            let child = format!("{id}-c{k}");
            // One chain of two runs: a redelivered start found the child it
            // made, and only the chain's last run reported.
            let mut runs = list(&api, &format!("workflow_id={child}")).await;
            runs.sort_by_key(|r| r["status"].as_str().unwrap().to_owned());
            let statuses: Vec<&Value> = runs.iter().map(|r| &r["status"]).collect();
            assert_eq!(statuses, ["COMPLETED", "CONTINUED_AS_NEW"], "{child}");
            let reported = |kind: &str| {
                events_of(&history, kind)
                    .into_iter()
                    .map(|e| e["attributes"]["workflow_execution"].clone())
                    .find(|e| e["workflow_id"] == json!(child))
                    .unwrap_or_else(|| panic!("{id}: no {kind} of {child}"))
            };
            assert_eq!(
                reported("ChildWorkflowExecutionStarted")["run_id"],
                runs[1]["run_id"]
            );
            assert_eq!(
                reported("ChildWorkflowExecutionCompleted")["run_id"],
                runs[0]["run_id"]
            );
            let history = api.history(&child).await;
            assert_eq!(
                events_of(&history, "ActivityTaskCompleted").len(),
                1,
                "{child}: {history:#?}"
            );
            assert_eq!(
                history[0]["attributes"]["parent"]["workflow_id"],
                json!(id),
                "{child}"
            );
            for (i, e) in history.iter().enumerate() {
                assert_eq!(e["event_id"], json!(i + 1), "{child}: dense event ids");
            }
        }
    }
    // Every activity ran at least once (at-least-once execution).
    assert_eq!(executions.lock().unwrap().len(), 2 * PARENTS);
    let runs = list(&api, "workflow_type=Kid").await;
    assert_eq!(runs.len(), 4 * PARENTS, "one chain of two runs per child");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_database_and_complete_each_task_once() {
    let url = common::fresh_postgres_database().await;
    let (handler, executions) = counting_handler(Duration::ZERO, "3s").await;
    let a = Node::start(&url, free_port()).await;
    let b = Node::start(&url, free_port()).await;
    a.api.register("q", &handler.url).await;
    let ids: Vec<String> = (0..1_000).map(|i| format!("pair-{i}")).collect();
    start_all(&[&a.api, &b.api], &ids).await;
    assert_all_completed_once(&b.api, &ids).await;
    let executions = executions.lock().unwrap();
    assert_eq!(executions.len(), 3_000);
    // With both nodes healthy nothing is redelivered.
    let repeated = executions.values().filter(|n| **n > 1).count();
    assert_eq!(
        repeated, 0,
        "activities executed more than once without any failure"
    );
}

/// A workflow on two nodes fanning out to 1,000 parallel activities, half of
/// them completed over the OTHER node's REST API after a `202`: both nodes
/// write the same run at once, so every cross-node race goes through the
/// version check and a re-fold (DESIGN.md invariants 4, 5 and 7). Every
/// result is recorded once and every activity executed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_written_by_two_nodes_records_each_result_once() {
    const N: usize = 1_000;
    let url = common::fresh_postgres_database().await;
    let a = Node::start(&url, free_port()).await;
    let b = Node::start(&url, free_port()).await;
    let executions: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let (seen, b_api) = (executions.clone(), b.api.clone());
    let handler = spawn_handler(move |req: Value| {
        let (seen, b_api) = (seen.clone(), b_api.clone());
        async move {
            if req["type"] == "workflow_task" {
                let history = req["history"].as_array().cloned().unwrap_or_default();
                let count = |t: &str| history.iter().filter(|e| e["event_type"] == t).count();
                if count("ActivityTaskScheduled") == 0 {
                    let commands: Vec<Value> = (0..N)
                        .map(|i| {
                            json!({"command_type": "ScheduleActivityTask", "attributes": {
                            "activity_id": format!("a{i}"), "activity_type": "work",
                            "input": {"i": i}, "start_to_close_timeout": "60s"}})
                        })
                        .collect();
                    return (StatusCode::OK, json!({ "commands": commands }));
                }
                if count("ActivityTaskCompleted") == N {
                    return (
                        StatusCode::OK,
                        json!({"commands": [{"command_type": "CompleteWorkflowExecution",
                        "attributes": {"result": N}}]}),
                    );
                }
                return (StatusCode::OK, json!({"commands": []}));
            }
            let id = req["activity_id"].as_str().unwrap().to_owned();
            *seen.lock().unwrap().entry(id.clone()).or_default() += 1;
            let i = req["input"]["i"].as_u64().unwrap();
            if i.is_multiple_of(2) {
                return (StatusCode::OK, json!({"result": i}));
            }
            // Odd ones: accepted now, completed through node B.
            let token = req["task_token"].clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    let (status, _) = b_api
                        .post(
                            "/api/v1/namespaces/default/activities/complete",
                            json!({"task_token": token, "result": i}),
                        )
                        .await;
                    if status.is_success() || status == StatusCode::CONFLICT {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                panic!("node B never took the completion of a{i}");
            });
            (StatusCode::ACCEPTED, json!({}))
        }
    })
    .await;
    a.api.register("fan", &handler.url).await;
    let begun = std::time::Instant::now();
    let (status, body) = a.api.start("fan-2n", "FanOut", "fan", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let result = a.api.result("fan-2n").await;
    eprintln!(
        "two nodes: fan-out to {N} activities (half completed through the other node) in {:.2?}",
        begun.elapsed()
    );
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let history = a.api.history("fan-2n").await;
    let mut completed = std::collections::HashSet::new();
    for e in history
        .iter()
        .filter(|e| e["event_type"] == "ActivityTaskCompleted")
    {
        let sched = e["attributes"]["scheduled_event_id"].as_i64().unwrap();
        assert!(completed.insert(sched), "activity {sched} completed twice");
    }
    assert_eq!(completed.len(), N, "every result recorded once");
    let executions = executions.lock().unwrap().clone();
    assert_eq!(executions.len(), N);
    let repeated: Vec<_> = executions.iter().filter(|(_, n)| **n != 1).collect();
    assert!(repeated.is_empty(), "executed more than once: {repeated:?}");
}

/// A parent on two nodes starting 200 children at once: both nodes claim
/// the transfer rows (start child, notify parent), so the parent is written
/// by both. Each child starts once and reports once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_to_children_on_two_nodes_records_each_child_once() {
    const N: usize = 200;
    let url = common::fresh_postgres_database().await;
    let a = Node::start(&url, free_port()).await;
    let b = Node::start(&url, free_port()).await;
    let handler = spawn_handler(|req: Value| async move {
        let history = req["history"].as_array().cloned().unwrap_or_default();
        let count = |t: &str| history.iter().filter(|e| e["event_type"] == t).count();
        let done = |result: Value| {
            json!({"commands": [{"command_type": "CompleteWorkflowExecution",
                "attributes": {"result": result}}]})
        };
        if req["workflow_type"] == "Kid" {
            return (
                StatusCode::OK,
                done(history[0]["attributes"]["input"].clone()),
            );
        }
        if count("StartChildWorkflowExecutionInitiated") == 0 {
            let commands: Vec<Value> = (0..N)
                .map(|i| {
                    json!({"command_type": "StartChildWorkflowExecution", "attributes": {
                    "workflow_id": format!("kid-{i}"), "workflow_type": "Kid", "input": i}})
                })
                .collect();
            return (StatusCode::OK, json!({ "commands": commands }));
        }
        match count("ChildWorkflowExecutionCompleted") {
            n if n == N => (StatusCode::OK, done(json!(N))),
            _ => (StatusCode::OK, json!({"commands": []})),
        }
    })
    .await;
    a.api.register("fam", &handler.url).await;
    let begun = std::time::Instant::now();
    let (status, body) = b.api.start("mother", "Mother", "fam", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let result = a.api.result("mother").await;
    eprintln!(
        "two nodes: fan-out to {N} children in {:.2?}",
        begun.elapsed()
    );
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let history = a.api.history("mother").await;
    for kind in [
        "ChildWorkflowExecutionStarted",
        "ChildWorkflowExecutionCompleted",
    ] {
        let mut seen = std::collections::HashSet::new();
        for e in history.iter().filter(|e| e["event_type"] == kind) {
            let initiated = e["attributes"]["initiated_event_id"].as_i64().unwrap();
            assert!(seen.insert(initiated), "{kind} twice for {initiated}");
        }
        assert_eq!(seen.len(), N, "one {kind} per child");
    }
    let kids = list(&a.api, "workflow_type=Kid").await;
    assert_eq!(kids.len(), N, "one run per child");
}

/// Row counts of the retention test's namespace: (runs, open runs, events,
/// events whose run is gone).
async fn gc_counts(db: &sqlx::PgPool) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "select (select count(*) from runs where namespace = 'gc'), \
            (select count(*) from runs where namespace = 'gc' and status = 'RUNNING'), \
            (select count(*) from events where run_id like 'gc-%'), \
            (select count(*) from events e where e.run_id like 'gc-%' \
                and not exists (select 1 from runs r where r.run_id = e.run_id))",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_retention_leaves_no_orphan_rows_and_resumes() {
    const CLOSED: i64 = 5_000;
    const OPEN: i64 = 10;
    let url = common::fresh_postgres_database().await;
    // Migrate, then write the rows directly: 5,000 runs closed in 2023
    // (long past a one-day retention) and 10 open ones, three events each.
    Node::start(&url, free_port()).await.kill();
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(
        "insert into namespaces (name, description, retention_ms, created_at, updated_at) \
         values ('gc', '', 86400000, 0, 0)",
    )
    .execute(&db)
    .await
    .unwrap();
    sqlx::query(
        "insert into runs (run_id, namespace, workflow_id, workflow_type, task_queue, status, \
            start_time, close_time, history_length, version, state, created_at, updated_at) \
         select 'gc-' || i, 'gc', 'wf-' || i, 'T', 'q', \
            case when i <= $1 then 'COMPLETED' else 'RUNNING' end, \
            1700000000000 + i, case when i <= $1 then 1700000000000 + i end, 3, 1, '{}', 0, 0 \
         from generate_series(1, $1 + $2) as i",
    )
    .bind(CLOSED)
    .bind(OPEN)
    .execute(&db)
    .await
    .unwrap();
    sqlx::query(
        "insert into events (run_id, event_id, event_type, event_time, data) \
         select r.run_id, e, 'X', 0, '{}' from runs r, generate_series(1, 3) as e \
         where r.namespace = 'gc'",
    )
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(
        gc_counts(&db).await,
        (CLOSED + OPEN, OPEN, 3 * (CLOSED + OPEN), 0)
    );

    // Kill -9 as soon as the deleter has made progress.
    let node = Node::start(&url, free_port()).await;
    let mut at_kill = gc_counts(&db).await;
    while at_kill.0 == CLOSED + OPEN {
        tokio::time::sleep(Duration::from_millis(2)).await;
        at_kill = gc_counts(&db).await;
    }
    node.kill();
    let after_kill = gc_counts(&db).await;
    eprintln!(
        "killed with {} of {} runs left",
        after_kill.0,
        CLOSED + OPEN
    );
    assert!(
        after_kill.0 > OPEN,
        "the kill came after the deleter finished: {after_kill:?}"
    );
    // Whole batches only: every remaining run has its three events, and no
    // event outlived its run.
    assert_eq!(after_kill.2, 3 * after_kill.0, "{after_kill:?}");
    assert_eq!(after_kill.3, 0, "orphan events: {after_kill:?}");
    assert_eq!(after_kill.1, OPEN);

    // A new node picks up where the dead one stopped.
    let node = Node::start(&url, free_port()).await;
    let mut done = gc_counts(&db).await;
    for _ in 0..600 {
        if done.0 == OPEN {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        done = gc_counts(&db).await;
    }
    node.kill();
    assert_eq!(
        done,
        (OPEN, OPEN, 3 * OPEN, 0),
        "open runs stay, nothing else"
    );
}

/// A 1-second interval schedule on two `baton serve` nodes sharing one
/// PostgreSQL, one node killed with SIGKILL in the middle: every nominal
/// time from the first action to the last has exactly one started
/// workflow, none missing (issue 11's cluster check, over 60 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_on_two_nodes_starts_each_nominal_time_once_across_a_sigkill() {
    let url = common::fresh_postgres_database().await;
    let handler = spawn_handler(|_req: Value| async move {
        let done =
            json!([{"command_type": "CompleteWorkflowExecution", "attributes": {"result": "ok"}}]);
        (StatusCode::OK, json!({"commands": done}))
    })
    .await;
    let a = Node::start(&url, free_port()).await;
    let b = Node::start(&url, free_port()).await;
    a.api.register("q", &handler.url).await;
    let body = json!({"schedule": {
        "spec": {"intervals": [{"every": "1s"}]},
        "action": {"start_workflow": {"workflow_id": "tick", "workflow_type": "Tick", "task_queue": "q"}},
        "policies": {"overlap_policy": "ALLOW_ALL"}
    }});
    let (status, answer) = a
        .api
        .post("/api/v1/namespaces/default/schedules/every-second", body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    tokio::time::sleep(Duration::from_secs(27)).await;
    a.kill();
    let killed_at = std::time::SystemTime::now();
    tokio::time::sleep(Duration::from_secs(33)).await;
    // A tick cut short by the kill holds its lease for 30 s; its times
    // are caught up after that, so wait until the schedule has passed the
    // kill by 10 s.
    let passed = killed_at + Duration::from_secs(10);
    let passed = humantime::format_rfc3339_seconds(passed).to_string();
    let mut ids: Vec<String> = Vec::new();
    for _ in 0..120 {
        ids = list(&b.api, "workflow_type=Tick")
            .await
            .iter()
            .map(|e| e["workflow_id"].as_str().unwrap().to_owned())
            .collect();
        if ids
            .iter()
            .any(|id| id.as_str() >= format!("tick-{passed}").as_str())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        *seen.entry(id.clone()).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "started more than once: {twice:?}");
    let mut secs: Vec<i64> = seen
        .keys()
        .map(|id| {
            let at = humantime::parse_rfc3339(id.trim_start_matches("tick-")).unwrap();
            at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
        })
        .collect();
    secs.sort_unstable();
    let (first, last) = (secs[0], secs[secs.len() - 1]);
    let missing: Vec<i64> = (first..=last)
        .filter(|s| secs.binary_search(s).is_err())
        .collect();
    assert!(missing.is_empty(), "missing nominal times: {missing:?}");
    assert!(secs.len() >= 55, "only {} actions in 60 s", secs.len());
    eprintln!(
        "{} nominal times, each started once, none missing",
        secs.len()
    );
    let (status, answer) = b
        .api
        .post(
            "/api/v1/namespaces/default/schedules/every-second/pause",
            json!({"note": "done"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
}

/// Starts `n` runs of `workflow_type` on `api`, 16 at a time.
async fn start_many(api: &Api, workflow_type: &str, prefix: &str, n: usize) -> Vec<String> {
    use futures::StreamExt as _;
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    futures::stream::iter(ids.clone())
        .for_each_concurrent(16, |id| async move {
            let (status, body) = api.start(&id, workflow_type, "q", json!({})).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        })
        .await;
    ids
}

/// How many runs the list filter `query` matches.
async fn count(api: &Api, query: &str) -> i64 {
    let url = reqwest::Url::parse_with_params("http://x/", &[("query", query)]).unwrap();
    let path = format!(
        "/api/v1/namespaces/default/workflow-count?{}",
        url.query().unwrap_or_default()
    );
    let (status, body) = api.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["count"].as_i64().unwrap()
}

async fn batch_progress(api: &Api, id: &str) -> Value {
    let (status, job) = api
        .get(&format!("/api/v1/namespaces/default/batches/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    job
}

/// Runs `job` (a batch start body with id `job_id`) over `matching` of
/// `n_matching + n_other` parked runs on two nodes, SIGKILLs the node
/// running it once `kill_at` runs are done, restarts it, and waits for the
/// job to complete. Returns the API of the surviving node and the ids.
async fn batch_across_sigkill(
    job_id: &str,
    job: Value,
    n_matching: usize,
    n_other: usize,
    kill_at: i64,
    applied: Option<&str>,
) -> (Node, Node, Vec<String>, Vec<String>) {
    let url = common::fresh_postgres_database().await;
    let handler = common::parking_handler().await;
    let port_a = free_port();
    let a = Node::start(&url, port_a).await;
    a.api.register("q", &handler.url).await;
    let matching = start_many(&a.api, "Doomed", "doomed", n_matching).await;
    let others = start_many(&a.api, "Kept", "kept", n_other).await;
    // Parked: every run's first workflow task answered.
    let parked = common::eventually(Duration::from_secs(120), || async {
        handler.received.lock().unwrap().len() >= n_matching + n_other
    })
    .await;
    assert!(parked, "the runs did not all park");
    // Only A runs when the job starts, so A holds it; B joins after.
    let (status, started) = a.api.post("/api/v1/namespaces/default/batches", job).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(started["total"], n_matching, "{started}");
    let b = Node::start(&url, free_port()).await;
    // With `applied` (a count query of the runs operated on), kill only
    // while A holds work it has done and not yet counted, so B must
    // recognise it.
    let uncounted = async || -> i64 {
        let done = batch_progress(&b.api, job_id).await["done"]
            .as_i64()
            .unwrap_or(0);
        let Some(query) = applied else {
            return i64::from(done >= kill_at);
        };
        let applied = count(&b.api, query).await;
        if done >= kill_at {
            applied - done
        } else {
            0
        }
    };
    let reached = common::eventually(Duration::from_secs(120), || async {
        uncounted().await >= 1
    })
    .await;
    assert!(reached, "the job made no progress on node A");
    a.kill();
    let at_kill = batch_progress(&b.api, job_id).await;
    let total = i64::try_from(n_matching).unwrap();
    let done_at_kill = at_kill["done"].as_i64().unwrap();
    assert!(
        done_at_kill < total,
        "the kill came after the job finished: {at_kill}"
    );
    if let Some(query) = applied {
        let applied = count(&b.api, query).await;
        assert!(
            applied > done_at_kill,
            "A died with no uncounted work: {applied} applied, {done_at_kill} counted"
        );
    }
    // B takes the job over once A's lease runs out; A comes back meanwhile.
    let a = Node::start(&url, port_a).await;
    let finished = common::eventually(Duration::from_secs(180), || async {
        batch_progress(&b.api, job_id).await["state"] != "RUNNING"
    })
    .await;
    let job = batch_progress(&b.api, job_id).await;
    assert!(finished, "the job did not finish: {job}");
    assert_eq!(job["state"], "COMPLETED", "{job}");
    assert_eq!(
        (
            job["total"].clone(),
            job["done"].clone(),
            job["failed"].clone()
        ),
        (json!(total), json!(total), json!(0)),
        "{job}"
    );
    (a, b, matching, others)
}

/// The batch test: 2,000 of 2,400 runs terminated by query while
/// the node running the job is SIGKILLed and restarted midway. Each
/// matching run has exactly one WorkflowExecutionTerminated event, with
/// the job's reason; none outside the query is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminate_batch_across_a_sigkill_terminates_each_matching_run_once() {
    let job = json!({
        "batch_id": "stuck",
        "query": "WorkflowType = \"Doomed\" AND ExecutionStatus = \"Running\"",
        "operation": "terminate",
        "reason": "stuck",
        "rps": 100,
    });
    let (_a, b, matching, others) = batch_across_sigkill(
        "stuck",
        job,
        2_000,
        400,
        500,
        Some("WorkflowType = \"Doomed\" AND ExecutionStatus = \"Terminated\""),
    )
    .await;
    for id in &matching {
        let history = b.api.history(id).await;
        let terminated = events_of(&history, "WorkflowExecutionTerminated");
        assert_eq!(terminated.len(), 1, "{id}: {history:#?}");
        assert_eq!(terminated[0]["attributes"]["reason"], "stuck", "{id}");
    }
    let running = count(&b.api, "ExecutionStatus = \"Running\"").await;
    assert_eq!(running, i64::try_from(others.len()).unwrap());
    for id in others.iter().step_by(10) {
        let history = b.api.history(id).await;
        assert!(events_of(&history, "WorkflowExecutionTerminated").is_empty());
    }
}

/// A signal batch across a SIGKILL: every matching run gets the signal
/// exactly once (its request id derived from job and run dedupes the
/// re-application of the page the killed node had not counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_batch_across_a_sigkill_signals_each_matching_run_once() {
    let job = json!({
        "batch_id": "poke",
        "query": "WorkflowType = \"Doomed\"",
        "operation": "signal",
        "signal_name": "poke",
        "input": {"n": 1},
        "rps": 100,
    });
    let (_a, b, matching, others) = batch_across_sigkill("poke", job, 400, 50, 100, None).await;
    for id in &matching {
        let history = b.api.history(id).await;
        let signalled = events_of(&history, "WorkflowExecutionSignaled");
        assert_eq!(signalled.len(), 1, "{id}: {history:#?}");
    }
    for id in &others {
        let history = b.api.history(id).await;
        assert!(events_of(&history, "WorkflowExecutionSignaled").is_empty());
    }
}
