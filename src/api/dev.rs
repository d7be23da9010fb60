//! `/api/v1/dev/time…`: time skipping for tests, served only by nodes
//! started with `baton dev --time-skipping`. Time only moves forward; every
//! timer and timeout due by the new time fires at once.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::engine::Queue;
use crate::time::{Clock, Duration, SkippingClock, Timestamp};

use super::error::ApiError;
use super::extract::{AppJson, Body};
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/dev/time", get(get_time))
        .route("/api/v1/dev/time/skip", post(skip_time))
}

#[derive(Serialize)]
struct ServerTime {
    now: Timestamp,
    /// Total time skipped since the server started.
    skipped: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Skip {
    /// Skip by this much.
    #[serde(default)]
    duration: Option<Duration>,
    /// Skip to the earliest pending timer, timeout or schedule action, if
    /// it is in the future.
    #[serde(default)]
    to_next_timer: bool,
}

impl Body for Skip {
    const PAYLOADS: &'static [&'static str] = &[];
}

fn clock(state: &AppState) -> Result<&Arc<SkippingClock>, ApiError> {
    state.time_skipping.as_ref().ok_or_else(|| {
        ApiError::NotFound(
            "time skipping is off; start the server with `baton dev --time-skipping`".into(),
        )
    })
}

fn now(clock: &SkippingClock) -> ServerTime {
    ServerTime {
        now: clock.now(),
        skipped: clock.offset(),
    }
}

async fn get_time(State(state): State<AppState>) -> Result<AppJson<ServerTime>, ApiError> {
    Ok(AppJson(now(clock(&state)?)))
}

async fn skip_time(
    State(state): State<AppState>,
    AppJson(body): AppJson<Skip>,
) -> Result<AppJson<ServerTime>, ApiError> {
    let clock = clock(&state)?;
    let by = match (body.duration, body.to_next_timer) {
        (Some(d), false) => d,
        (None, true) => {
            let now = clock.now();
            let store = state.applier.store();
            let timer = store.next_visible_at(Queue::Timer, now).await?;
            // A schedule's next action is a timer too.
            let schedule = store.next_schedule_due(now).await?;
            let next = timer.into_iter().chain(schedule).min();
            next.map_or(Duration::ZERO, |at| at.since(now))
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of `duration` and `to_next_timer`".into(),
            ))
        }
    };
    clock.skip(by);
    Ok(AppJson(now(clock)))
}
