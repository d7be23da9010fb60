//! Reading workflows without changing them: describe, list (with a list
//! filter), count, history and result (which may wait for the run, or its chain, to close), with their
//! paging.

use axum::extract::State;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::api::error::ApiError;
use crate::api::extract::{AppJson, AppPath, AppQuery};
use crate::api::namespaces::existing_namespace;
use crate::api::payloads;
use crate::api::workflows::find_run;
use crate::api::workflows::model::{
    children, typed_values, CountGroup, CountParams, Description, ExecutionCount, ExecutionList,
    HistoryPage, HistoryQuery, ListQuery, PendingActivity, PendingTimer, PendingWorkflowTask,
    ResultQuery, RunQuery, RunResult,
};
use crate::api::AppState;
use crate::engine::{ActivityPhase, RunStatus};
use crate::time::Duration;
use crate::visibility::{self, Attribute, Cursor, Expr, Op, Value};

/// Longest a result request may wait.
const MAX_RESULT_WAIT: Duration = Duration(60_000);

const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1_000;
const DEFAULT_HISTORY_PAGE: i64 = 1_000;
const MAX_HISTORY_PAGE: i64 = 10_000;

pub(super) async fn describe_workflow(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id)): AppPath<(String, String)>,
    AppQuery(q): AppQuery<RunQuery>,
) -> Result<AppJson<Description>, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, q.run_id.as_deref()).await?;
    let s = &record.state;
    let history = state.applier.history(s).await?;
    let mut pending_activities: Vec<PendingActivity> = s
        .activities
        .values()
        .filter(|a| a.phase != ActivityPhase::Closed)
        .map(|a| {
            let (state, started, next) = match a.phase {
                ActivityPhase::Started { since } => ("STARTED", Some(since), None),
                ActivityPhase::Scheduled { due, .. } => ("SCHEDULED", None, Some(due)),
                ActivityPhase::Closed => ("CLOSED", None, None),
            };
            PendingActivity {
                activity_id: a.activity_id.0.clone(),
                activity_type: a.activity_type.clone(),
                task_queue: a.task_queue.clone(),
                state: if a.cancel_requested {
                    "CANCEL_REQUESTED"
                } else {
                    state
                },
                attempt: a.attempt,
                maximum_attempts: a.retry_policy.maximum_attempts,
                scheduled_time: a.scheduled_time,
                last_started_time: started,
                next_attempt_schedule_time: next,
                last_heartbeat_time: a.last_heartbeat_time,
                heartbeat_details: a.heartbeat_details.clone(),
                last_failure: a.last_failure.clone(),
            }
        })
        .collect();
    for details in pending_activities
        .iter_mut()
        .filter_map(|a| a.heartbeat_details.as_mut())
    {
        payloads::in_place(&state, &s.namespace, s.run_id, details).await?;
    }
    let pending_timers = s
        .timers
        .iter()
        .filter(|(_, t)| !t.fired)
        .map(|(id, t)| PendingTimer {
            timer_id: id.0.clone(),
            started_event_id: t.started_event_id,
            fire_time: t.fire_at,
        })
        .collect();
    let pending_workflow_task = s.workflow_task.as_ref().map(|t| PendingWorkflowTask {
        attempt: t.attempt,
        scheduled_time: t.scheduled_time,
        last_failure: s.last_workflow_task_failure.clone(),
    });
    Ok(AppJson(Description {
        execution: s.into(),
        history_size_bytes: s.history_size_bytes,
        pending_workflow_task,
        pending_activities,
        pending_timers,
        cancel_requested: s.cancel_requested,
        pinned_version: s.pinned_version.clone(),
        attempt: s.chain.attempt.max(1),
        first_execution_run_id: s.first_execution_run_id(),
        new_execution_run_id: s.new_execution_run_id,
        memo: s.chain.memo.clone(),
        search_attributes: typed_values(&s.search_attributes),
        retry_policy: s.chain.retry_policy.clone(),
        parent: s.parent.clone(),
        children: children(&history),
        buffered_events: s.buffered.iter().map(Into::into).collect(),
        waiting_reason: state.querier.waiting_reason(s.run_id),
    }))
}

pub(super) async fn list_workflows(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<AppJson<ExecutionList>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let registry = state.applier.search_attributes().registry(&ns).await?;
    let mut query = visibility::parse_list(q.query.as_deref().unwrap_or_default(), &registry)?;
    // The plain filters are list filters too, ANDed with `query`.
    let compare = |attribute, op, value| Expr::Compare {
        attribute,
        op,
        value,
    };
    if let Some(t) = q.workflow_type {
        query.restrict(compare(Attribute::WorkflowType, Op::Eq, Value::Text(t)));
    }
    if let Some(w) = q.workflow_id {
        query.restrict(compare(Attribute::WorkflowId, Op::Eq, Value::Text(w)));
    }
    if let Some(s) = q.status.as_deref() {
        let status = RunStatus::parse(s)
            .ok_or_else(|| ApiError::BadRequest(format!("unknown status {s:?}")))?;
        let value = Value::Text(status.as_str().to_owned());
        query.restrict(compare(Attribute::ExecutionStatus, Op::Eq, value));
    }
    if let Some(t) = q.started_after {
        let value = Value::Int(t.millis());
        query.restrict(compare(Attribute::StartTime, Op::Ge, value));
    }
    if let Some(t) = q.started_before {
        let value = Value::Int(t.millis());
        query.restrict(compare(Attribute::StartTime, Op::Lt, value));
    }
    let limit = page_size(q.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let cursor = q
        .next_page_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(|t| decode_cursor(t, &query))
        .transpose()?;
    let runs = state
        .applier
        .store()
        .list_runs(&ns, &query, cursor.as_ref(), limit)
        .await?;
    let next_page_token = runs
        .last()
        .filter(|_| runs.len() as i64 == limit)
        .map(|r| encode_cursor(&query.cursor_after(r)));
    Ok(AppJson(ExecutionList {
        executions: runs.into_iter().map(Into::into).collect(),
        next_page_token,
    }))
}

pub(super) async fn count_workflows(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppQuery(q): AppQuery<CountParams>,
) -> Result<AppJson<ExecutionCount>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let registry = state.applier.search_attributes().registry(&ns).await?;
    let query = visibility::parse_count(q.query.as_deref().unwrap_or_default(), &registry)?;
    let counts = state.applier.store().count_runs(&ns, &query).await?;
    let count = counts.iter().map(|(_, n)| n).sum();
    let groups = counts
        .into_iter()
        .filter_map(|(value, count)| {
            value.map(|v| CountGroup {
                group_values: vec![v],
                count,
            })
        })
        .collect();
    Ok(AppJson(ExecutionCount { count, groups }))
}

pub(super) async fn get_history(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id)): AppPath<(String, String)>,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> Result<AppJson<HistoryPage>, ApiError> {
    let record = find_run(&state, &namespace, &workflow_id, q.run_id.as_deref()).await?;
    let limit = page_size(q.page_size, DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE)?;
    let after = match q.next_page_token.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => t
            .parse::<i64>()
            .map_err(|_| ApiError::BadRequest("invalid next_page_token".into()))?,
        None => 0,
    };
    let s = &record.state;
    let events = state
        .applier
        .store()
        .read_history(&s.namespace, s.run_id, after, limit)
        .await?;
    let next_page_token = events
        .last()
        .filter(|e| events.len() as i64 == limit && e.event_id < s.history_length())
        .map(|e| e.event_id.to_string());
    Ok(AppJson(HistoryPage {
        run_id: s.run_id,
        events,
        next_page_token,
    }))
}

pub(super) async fn get_result(
    State(state): State<AppState>,
    AppPath((namespace, workflow_id)): AppPath<(String, String)>,
    AppQuery(q): AppQuery<ResultQuery>,
) -> Result<AppJson<RunResult>, ApiError> {
    let mut s = find_run(&state, &namespace, &workflow_id, q.run_id.as_deref())
        .await?
        .state;
    let wait = q.wait.unwrap_or(Duration::ZERO).min(MAX_RESULT_WAIT);
    let deadline = state.applier.clock().now().saturating_add(wait);
    loop {
        let left = deadline.since(state.applier.clock().now());
        if !s.status.is_closed() && !left.is_zero() {
            s = state.applier.wait_for(s, left, |_| false).await?;
        }
        // The next run is committed with the close, so it exists.
        let next = match s.new_execution_run_id {
            Some(next) if q.follow_runs => {
                state.applier.store().load_run(&s.namespace, next).await?
            }
            _ => None,
        };
        match next {
            Some(next) => s = next.state,
            None => break,
        }
    }
    if let Some(result) = &mut s.result {
        payloads::in_place(&state, &s.namespace, s.run_id, result).await?;
    }
    Ok(AppJson(RunResult {
        run_id: s.run_id,
        status: s.status,
        result: s.result,
        failure: s.failure,
        close_time: s.close_time,
        new_execution_run_id: s.new_execution_run_id,
    }))
}

fn page_size(requested: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match requested {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "page_size {n} is not within 1..={max}"
        ))),
    }
}

/// A page token: the cursor as JSON, base64url so it is opaque and safe
/// in a URL.
fn encode_cursor(cursor: &Cursor) -> String {
    // A cursor is a list of ints, strings and nulls: it always encodes.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

/// The cursor of a token, refused unless `query`'s order could have made
/// it (a token from a query with another ORDER BY would page wrongly).
fn decode_cursor(token: &str, query: &visibility::ListQuery) -> Result<Cursor, ApiError> {
    let bad = || {
        ApiError::BadRequest(
            "invalid next_page_token: pass the token of the previous page of the same query".into(),
        )
    };
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let cursor: Cursor = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if query.fits(&cursor) {
        Ok(cursor)
    } else {
        Err(bad())
    }
}
