//! `/api/v1/namespaces/{ns}/workflows…`: start, list, count
//! (`…/workflow-count`), describe, delete, history,
//! result (following the chain of runs), signal, signal-with-start, cancel,
//! terminate, query, update, reset. Paths follow Temporal's HTTP API where
//! they fit.
//!
//! This file owns the routes and the lookup of the run a request names;
//! the handlers live by concern in `start`, `read`, `messages` and
//! `control`, and every wire shape they read or write lives in `model`.

mod control;
pub(super) mod messages;
mod model;
mod read;
pub(super) mod start;

use axum::routing::{get, post};
use axum::Router;

use crate::api::error::ApiError;
use crate::api::namespaces::existing_namespace;
use crate::api::AppState;
use crate::ids::{RunId, WorkflowId};
use crate::store::RunRecord;

use self::control::{cancel_workflow, delete_workflow, reset_workflow, terminate_workflow};
use self::messages::{poll_update, query_workflow, signal_workflow, update_workflow};
use self::read::{count_workflows, describe_workflow, get_history, get_result, list_workflows};
use self::start::{signal_with_start, start_workflow};

pub fn router() -> Router<AppState> {
    let base = "/api/v1/namespaces/{namespace}/workflows";
    Router::new()
        .route(base, get(list_workflows))
        .route(
            "/api/v1/namespaces/{namespace}/workflow-count",
            get(count_workflows),
        )
        .route(
            &format!("{base}/{{workflow_id}}"),
            get(describe_workflow)
                .post(start_workflow)
                .delete(delete_workflow),
        )
        .route(&format!("{base}/{{workflow_id}}/history"), get(get_history))
        .route(&format!("{base}/{{workflow_id}}/result"), get(get_result))
        .route(
            &format!("{base}/{{workflow_id}}/terminate"),
            post(terminate_workflow),
        )
        .route(
            &format!("{base}/{{workflow_id}}/signal/{{signal_name}}"),
            post(signal_workflow),
        )
        .route(
            &format!("{base}/{{workflow_id}}/signal-with-start/{{signal_name}}"),
            post(signal_with_start),
        )
        .route(
            &format!("{base}/{{workflow_id}}/cancel"),
            post(cancel_workflow),
        )
        .route(
            &format!("{base}/{{workflow_id}}/query/{{query_name}}"),
            post(query_workflow),
        )
        .route(
            &format!("{base}/{{workflow_id}}/update/{{update_name}}"),
            post(update_workflow),
        )
        .route(
            &format!("{base}/{{workflow_id}}/updates/{{update_id}}"),
            get(poll_update),
        )
        .route(
            &format!("{base}/{{workflow_id}}/reset"),
            post(reset_workflow),
        )
}

/// The run a request names: `run_id` if given, else the workflow's latest.
pub(super) async fn find_run(
    state: &AppState,
    namespace: &str,
    workflow_id: &str,
    run_id: Option<&str>,
) -> Result<RunRecord, ApiError> {
    let ns = existing_namespace(state, namespace).await?.name;
    let store = state.applier.store();
    let record = match run_id {
        // An empty run_id is no UUID (the spec's `format: uuid`): refused,
        // never read as "the latest run", which is what omitting it means.
        Some(r) => {
            let run_id: RunId = r.parse().map_err(|_| {
                ApiError::BadRequest(format!(
                    "invalid run_id {r:?}: a run id is a UUID; omit run_id for the latest run"
                ))
            })?;
            store
                .load_run(&ns, run_id)
                .await?
                .filter(|rec| rec.state.workflow_id.as_str() == workflow_id)
        }
        None => {
            store
                .latest_run(&ns, &WorkflowId(workflow_id.to_owned()))
                .await?
        }
    };
    record.ok_or_else(|| ApiError::NotFound(format!("workflow {workflow_id} not found")))
}
