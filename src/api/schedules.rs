//! Schedules over REST (`/api/v1/namespaces/{ns}/schedules…`, shapes
//! modelled on Temporal's HTTP API): create, describe, list, update with a
//! conflict token, delete, pause, unpause, trigger and backfill. Every
//! change is checked whole by the pure rules first (a bad field is a 400
//! naming it, and nothing is stored), written with the schedule's version
//! as guard, and made due at once so this node's schedule loop ticks it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::api::extract::{AppJson, AppPath, AppQuery, Body};
use crate::api::namespaces::existing_namespace;
use crate::api::AppState;
use crate::ids::{Namespace, RunId};
use crate::schedule::{self, ActionResult, Backfill, Overlap, Schedule, Spec};
use crate::scheduler;
use crate::store::{self, ScheduleFilter, ScheduleRecord};
use crate::time::Timestamp;

const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 1000;
/// Future action times shown by describe and list.
const FUTURE_ACTIONS: usize = 10;
/// How often a change retries after losing the version race to the
/// schedule loop (which writes the schedule on every tick).
const MAX_CONFLICT_RETRIES: usize = 16;

pub fn router() -> Router<AppState> {
    let base = "/api/v1/namespaces/{namespace}/schedules";
    Router::new()
        .route(base, get(list_schedules))
        .route(
            &format!("{base}/{{schedule_id}}"),
            get(describe_schedule)
                .post(create_schedule)
                .delete(delete_schedule),
        )
        .route(
            &format!("{base}/{{schedule_id}}/update"),
            post(update_schedule),
        )
        .route(
            &format!("{base}/{{schedule_id}}/pause"),
            post(pause_schedule),
        )
        .route(
            &format!("{base}/{{schedule_id}}/unpause"),
            post(unpause_schedule),
        )
        .route(
            &format!("{base}/{{schedule_id}}/trigger"),
            post(trigger_schedule),
        )
        .route(
            &format!("{base}/{{schedule_id}}/backfill"),
            post(backfill_schedule),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSchedule {
    schedule: Schedule,
}

impl Body for CreateSchedule {
    const PAYLOADS: &'static [&'static str] = &[
        "/schedule/action/start_workflow/input",
        "/schedule/action/start_workflow/memo",
    ];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateSchedule {
    schedule: Schedule,
    #[serde(default)]
    conflict_token: Option<String>,
}

impl Body for UpdateSchedule {
    const PAYLOADS: &'static [&'static str] = CreateSchedule::PAYLOADS;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteRequest {
    #[serde(default)]
    note: Option<String>,
}

impl Body for NoteRequest {
    const PAYLOADS: &'static [&'static str] = &[];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerRequest {
    #[serde(default)]
    overlap_policy: Option<Overlap>,
}

impl Body for TriggerRequest {
    const PAYLOADS: &'static [&'static str] = &[];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackfillRange {
    start_time: Timestamp,
    end_time: Timestamp,
    #[serde(default)]
    overlap_policy: Option<Overlap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackfillRequest {
    backfills: Vec<BackfillRange>,
}

impl Body for BackfillRequest {
    const PAYLOADS: &'static [&'static str] = &[];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    id_prefix: Option<String>,
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    page_size: Option<i64>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Serialize)]
struct Written {
    schedule_id: String,
    conflict_token: String,
}

#[derive(Serialize)]
struct RunningWorkflow {
    workflow_id: String,
    run_id: RunId,
}

#[derive(Serialize)]
struct InfoView {
    action_count: i64,
    missed_catchup_window: i64,
    overlap_skipped: i64,
    buffer_dropped: i64,
    buffer_size: i64,
    running_workflows: Vec<RunningWorkflow>,
    recent_actions: Vec<ActionResult>,
    future_action_times: Vec<Timestamp>,
    create_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    update_time: Option<Timestamp>,
}

#[derive(Serialize)]
struct Description {
    schedule_id: String,
    schedule: Schedule,
    info: InfoView,
    conflict_token: String,
}

#[derive(Serialize)]
struct ListEntry {
    schedule_id: String,
    workflow_type: String,
    paused: bool,
    note: String,
    spec: Spec,
    recent_actions: Vec<ActionResult>,
    future_action_times: Vec<Timestamp>,
}

#[derive(Serialize)]
struct ScheduleList {
    schedules: Vec<ListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

fn check_schedule_id(id: &str) -> Result<(), ApiError> {
    if id.len() > 200 {
        return Err(ApiError::BadRequest(
            "schedule_id must be at most 200 bytes".into(),
        ));
    }
    Ok(())
}

fn invalid(e: schedule::Invalid) -> ApiError {
    ApiError::BadRequest(format!("schedule.{e}"))
}

fn token(record: &ScheduleRecord) -> String {
    record.version.to_string()
}

/// The next action times a describe shows: none while paused.
fn future_times(record: &ScheduleRecord) -> Vec<Timestamp> {
    let Ok(compiled) = schedule::validate(&record.schedule) else {
        return Vec::new();
    };
    if record.schedule.state.paused {
        return Vec::new();
    }
    compiled.upcoming(
        &record.schedule_id,
        record.info.processed_until,
        FUTURE_ACTIONS,
    )
}

async fn load(state: &AppState, ns: &Namespace, id: &str) -> Result<ScheduleRecord, ApiError> {
    state
        .applier
        .store()
        .get_schedule(ns, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("schedule {id} not found")))
}

/// Applies `change` to the stored schedule and writes it, due now, with
/// the version it read; reloads and applies again when the schedule loop
/// (or anyone) wrote it meanwhile. `change` may refuse.
async fn change(
    state: &AppState,
    ns: &Namespace,
    id: &str,
    expected_version: Option<i64>,
    change: impl Fn(ScheduleRecord, Timestamp) -> Result<ScheduleRecord, ApiError>,
) -> Result<ScheduleRecord, ApiError> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let record = load(state, ns, id).await?;
        if expected_version.is_some_and(|v| v != record.version) {
            return Err(ApiError::Conflict(format!(
                "schedule {id} changed since conflict token {}",
                expected_version.unwrap_or_default()
            )));
        }
        let now = state.applier.clock().now();
        let mut next = change(record, now)?;
        next.due_at = Some(now);
        match state.applier.store().commit_schedule(&next, &[]).await {
            Ok(()) => {
                state.schedules.wake();
                next.version += 1;
                return Ok(next);
            }
            Err(store::Error::Conflict) if expected_version.is_none() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Unavailable(format!(
        "schedule {id} kept changing concurrently; try again"
    )))
}

async fn create_schedule(
    State(state): State<AppState>,
    AppPath((namespace, id)): AppPath<(String, String)>,
    AppJson(body): AppJson<CreateSchedule>,
) -> Result<(StatusCode, AppJson<Written>), ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    check_schedule_id(&id)?;
    schedule::validate(&body.schedule).map_err(invalid)?;
    let now = state.applier.clock().now();
    let record = ScheduleRecord {
        namespace: ns,
        schedule_id: id.clone(),
        schedule: body.schedule,
        info: schedule::create(now),
        version: 1,
        due_at: Some(now),
    };
    state.applier.store().create_schedule(&record).await?;
    state.schedules.wake();
    Ok((
        StatusCode::CREATED,
        AppJson(Written {
            schedule_id: id,
            conflict_token: token(&record),
        }),
    ))
}

async fn describe_schedule(
    State(state): State<AppState>,
    AppPath((namespace, id)): AppPath<(String, String)>,
) -> Result<AppJson<Description>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let record = load(&state, &ns, &id).await?;
    let running = scheduler::running(state.applier.store(), &record).await?;
    let info = &record.info;
    let view = InfoView {
        action_count: info.action_count,
        missed_catchup_window: info.missed_catchup_window,
        overlap_skipped: info.overlap_skipped,
        buffer_dropped: info.buffer_dropped,
        buffer_size: i64::try_from(info.buffer.len()).unwrap_or(i64::MAX),
        running_workflows: running
            .into_iter()
            .map(|(workflow_id, run_id)| RunningWorkflow {
                workflow_id,
                run_id,
            })
            .collect(),
        recent_actions: info.recent_actions.clone(),
        future_action_times: future_times(&record),
        create_time: info.create_time,
        update_time: info.update_time,
    };
    Ok(AppJson(Description {
        schedule_id: record.schedule_id.clone(),
        conflict_token: token(&record),
        schedule: record.schedule,
        info: view,
    }))
}

async fn list_schedules(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<AppJson<ScheduleList>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let limit = q.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "page_size {limit} is not within 1..={MAX_PAGE_SIZE}"
        )));
    }
    let after = match q.next_page_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(decode_token(t)?),
    };
    let filter = ScheduleFilter {
        id_prefix: q.id_prefix,
        paused: q.paused,
    };
    let records = state
        .applier
        .store()
        .list_schedules(&ns, &filter, after.as_deref(), limit)
        .await?;
    let next_page_token = (records.len() as i64 >= limit)
        .then(|| records.last().map(|r| encode_token(&r.schedule_id)))
        .flatten();
    let schedules = records
        .iter()
        .map(|r| ListEntry {
            schedule_id: r.schedule_id.clone(),
            workflow_type: r.schedule.action.start_workflow.workflow_type.clone(),
            paused: r.schedule.state.paused,
            note: r.schedule.state.note.clone(),
            spec: r.schedule.spec.clone(),
            recent_actions: r.info.recent_actions.clone(),
            future_action_times: future_times(r),
        })
        .collect();
    Ok(AppJson(ScheduleList {
        schedules,
        next_page_token,
    }))
}

fn encode_token(id: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn decode_token(token: &str) -> Result<String, ApiError> {
    use base64::Engine as _;
    let bad = || ApiError::BadRequest("invalid next_page_token".into());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

async fn update_schedule(
    State(state): State<AppState>,
    AppPath((namespace, id)): AppPath<(String, String)>,
    AppJson(body): AppJson<UpdateSchedule>,
) -> Result<AppJson<Written>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    schedule::validate(&body.schedule).map_err(invalid)?;
    let expected = match body.conflict_token.as_deref() {
        None => None,
        Some(t) => Some(t.parse::<i64>().map_err(|_| {
            ApiError::BadRequest(format!("conflict_token {t:?} is not a conflict token"))
        })?),
    };
    let written = change(&state, &ns, &id, expected, |record, now| {
        Ok(ScheduleRecord {
            info: schedule::update(&record.info, now),
            schedule: body.schedule.clone(),
            ..record
        })
    })
    .await?;
    Ok(AppJson(Written {
        schedule_id: id,
        conflict_token: token(&written),
    }))
}

async fn delete_schedule(
    State(state): State<AppState>,
    AppPath((namespace, id)): AppPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    if state.applier.store().delete_schedule(&ns, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("schedule {id} not found")))
    }
}

async fn pause_schedule(
    State(state): State<AppState>,
    AppPath((namespace, id)): AppPath<(String, String)>,
    AppJson(body): AppJson<NoteRequest>,
) -> Result<StatusCode, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let note = body.note.unwrap_or_else(|| "paused".to_owned());
    change(&state, &ns, &id, None, |record, _| {
        Ok(ScheduleRecord {
            schedule: schedule::pause(&record.schedule, &note),
            ..record
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unpause_schedule(
    State(state): State<AppState>,
    AppPath((namespace, id)): AppPath<(String, String)>,
    AppJson(body): AppJson<NoteRequest>,
) -> Result<StatusCode, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let note = body.note.unwrap_or_else(|| "unpaused".to_owned());
    change(&state, &ns, &id, None, |record, now| {
        let (schedule, info) = schedule::unpause(&record.schedule, &record.info, now, &note);
        Ok(ScheduleRecord {
            schedule,
            info,
            ..record
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn trigger_schedule(
    State(state): State<AppState>,
    AppPath((namespace, id)): AppPath<(String, String)>,
    AppJson(body): AppJson<TriggerRequest>,
) -> Result<StatusCode, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    change(&state, &ns, &id, None, |record, now| {
        Ok(ScheduleRecord {
            info: schedule::trigger(&record.info, now, body.overlap_policy),
            ..record
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn backfill_schedule(
    State(state): State<AppState>,
    AppPath((namespace, id)): AppPath<(String, String)>,
    AppJson(body): AppJson<BackfillRequest>,
) -> Result<StatusCode, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    if body.backfills.is_empty() {
        return Err(ApiError::BadRequest(
            "backfills must name at least one range".into(),
        ));
    }
    let mut ranges = Vec::new();
    for (i, b) in body.backfills.iter().enumerate() {
        if b.end_time < b.start_time {
            return Err(ApiError::BadRequest(format!(
                "backfills[{i}].end_time: {} is before start_time {}",
                b.end_time, b.start_time
            )));
        }
        ranges.push(Backfill {
            start: b.start_time,
            end: b.end_time,
            overlap: b.overlap_policy,
        });
    }
    change(&state, &ns, &id, None, |record, _| {
        let compiled = schedule::validate(&record.schedule).map_err(invalid)?;
        Ok(ScheduleRecord {
            info: schedule::backfill(&record.schedule_id, &compiled, &record.info, &ranges),
            ..record
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
