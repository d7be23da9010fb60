//! `/api/v1/namespaces/{ns}/search-attributes`: the registry of custom
//! search attributes, in the shapes of Temporal's operator service: add
//! (AddSearchAttributes: several names at once, all or nothing), list
//! (ListSearchAttributes: system and custom attributes with their types)
//! and remove (RemoveSearchAttributes, one name per request).
//!
//! Removal keeps the values runs hold and the attribute's slot: they are
//! no longer queryable (as in Temporal), describe still shows them, and
//! registering the same name with the same type again makes them
//! queryable again. The slot is never given to another name.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::engine::{assign_search_attributes, AssignError, SearchAttributeType};
use crate::visibility::{Attribute, Type};

use super::error::ApiError;
use super::extract::{AppJson, AppPath, Body};
use super::namespaces::existing_namespace;
use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/namespaces/{namespace}/search-attributes",
            get(list_search_attributes).post(add_search_attributes),
        )
        .route(
            "/api/v1/namespaces/{namespace}/search-attributes/{name}",
            delete(remove_search_attribute),
        )
}

/// Name → type, as Temporal's `search_attributes` map.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddSearchAttributes {
    search_attributes: BTreeMap<String, String>,
}

impl Body for AddSearchAttributes {
    const PAYLOADS: &'static [&'static str] = &[];
}

#[derive(Serialize)]
struct SearchAttributeList {
    /// Registered custom attributes: name → type.
    custom_attributes: BTreeMap<String, &'static str>,
    /// The system attributes every run has: name → type.
    system_attributes: BTreeMap<&'static str, &'static str>,
}

async fn list_search_attributes(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
) -> Result<AppJson<SearchAttributeList>, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let rows = state.applier.store().search_attributes(&ns).await?;
    let custom_attributes = rows
        .into_iter()
        .filter(|r| !r.removed)
        .map(|r| (r.name, r.slot.kind.as_str()))
        .collect();
    let system_attributes = Attribute::ALL
        .into_iter()
        .map(|a| {
            let kind = match a.kind() {
                Type::Status => "Keyword",
                other => other.as_str(),
            };
            (a.name(), kind)
        })
        .collect();
    Ok(AppJson(SearchAttributeList {
        custom_attributes,
        system_attributes,
    }))
}

async fn add_search_attributes(
    State(state): State<AppState>,
    AppPath(namespace): AppPath<String>,
    AppJson(body): AppJson<AddSearchAttributes>,
) -> Result<(StatusCode, AppJson<SearchAttributeList>), ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    if body.search_attributes.is_empty() {
        return Err(ApiError::BadRequest(
            "search_attributes must name at least one attribute".into(),
        ));
    }
    let mut wanted = Vec::new();
    for (name, kind) in &body.search_attributes {
        check_name(name)?;
        let kind = SearchAttributeType::parse(kind).ok_or_else(|| {
            let known: Vec<&str> = SearchAttributeType::ALL
                .iter()
                .map(|t| t.as_str())
                .collect();
            ApiError::BadRequest(format!(
                "search_attributes.{name}: unknown type {kind:?} (one of {})",
                known.join(", ")
            ))
        })?;
        wanted.push((name.clone(), kind));
    }
    let store = state.applier.store();
    let existing = store.search_attributes(&ns).await?;
    let rows = assign_search_attributes(&existing, &wanted).map_err(|e| match e {
        AssignError::AlreadyRegistered(_) => ApiError::Conflict(e.to_string()),
        AssignError::NamedTwice(_) | AssignError::NoSlotLeft { .. } => {
            ApiError::BadRequest(e.to_string())
        }
    })?;
    let added = store.add_search_attributes(&ns, &rows).await;
    state.applier.search_attributes().forget(&ns);
    added?;
    let AppJson(list) = list_search_attributes(State(state), AppPath(namespace)).await?;
    Ok((StatusCode::CREATED, AppJson(list)))
}

async fn remove_search_attribute(
    State(state): State<AppState>,
    AppPath((namespace, name)): AppPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let ns = existing_namespace(&state, &namespace).await?.name;
    let removed = state
        .applier
        .store()
        .remove_search_attribute(&ns, &name)
        .await?;
    state.applier.search_attributes().forget(&ns);
    if !removed {
        return Err(ApiError::NotFound(format!(
            "search attribute `{name}` is not registered in namespace {namespace}"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Names are 1–64 characters of `[A-Za-z0-9_]` starting with a letter (a
/// bare name in a query), and neither a system attribute's nor under the
/// reserved `Temporal` and `Baton` prefixes.
fn check_name(name: &str) -> Result<(), ApiError> {
    let bad = |why: &str| {
        Err(ApiError::BadRequest(format!(
            "search_attributes.{name}: {why}"
        )))
    };
    let shaped = name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !shaped {
        return bad("a name is 1-64 letters, digits and '_', starting with a letter");
    }
    if Attribute::from_name(name).is_some() {
        return bad("the name of a system search attribute");
    }
    if name.starts_with("Temporal") || name.starts_with("Baton") {
        return bad("names starting with Temporal or Baton are reserved");
    }
    Ok(())
}
