//! Namespace-scoped API keys with roles (`src/api/access.rs`), end to end
//! on real nodes over loopback HTTP.
//!
//! - The matrix: every `/api/v1` route of `openapi/openapi.yaml` (read from
//!   the spec, so a new route cannot be left out), called by a reader, a
//!   writer and an admin key of namespace `alpha` and by the bootstrap key,
//!   in `alpha` and in `beta`. The rule this test expects is written here,
//!   apart from the server's table. An allowed call gets exactly the answer
//!   the bootstrap admin gets (the handler ran); a denied one 403
//!   `forbidden` in the key's namespace and, in another namespace, the 404
//!   of a namespace that does not exist. On both databases.
//! - Allowed calls really succeed: a writer starts and signals a run that a
//!   reader then lists and reads; listing namespaces shows a scoped key its
//!   own only.
//! - Revocation on one node holds on another node sharing PostgreSQL
//!   within a second; an expired key is refused; bad input is a 400
//!   problem naming the field; denials are counted by reason in
//!   `baton_api_denied_total`.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{spawn_server_with, test_options, Api, Db, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_databases!(
    every_route_answers_each_role_and_namespace_as_the_rules_say,
    allowed_calls_succeed_and_scoped_keys_see_only_their_namespace,
    expired_keys_are_refused,
    bad_key_requests_are_400_problems_naming_the_field,
);

const BOOTSTRAP: &str = "bootstrap-admin-key-0123456789";

async fn server(db: Db) -> TestServer {
    server_on(common::database_url(db).await).await
}

async fn server_on(url: String) -> TestServer {
    let mut options = test_options(url);
    options.api_key = Some(BOOTSTRAP.to_owned());
    spawn_server_with(options).await
}

/// Creates a key and returns (id, key).
async fn create_key(admin: &Api, body: Value) -> (String, String) {
    let (status, created) = admin.post("/api/v1/apikeys", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let key = created["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with(&format!("{id}.")), "{key}");
    (id, key)
}

fn as_key(s: &TestServer, key: &str) -> Api {
    Api::new(s.api.base.clone(), Some(key.to_owned()))
}

async fn create_namespace(admin: &Api, name: &str) {
    let (status, body) = admin
        .post("/api/v1/namespaces", json!({ "name": name }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Reader,
    Writer,
    Admin,
}

/// What this test expects a route to need, from the documented rules (not
/// from the server's table): `None` for "any valid key".
fn expected_need(method: &str, path: &str) -> Option<Role> {
    const NS: &str = "/api/v1/namespaces/{namespace}";
    if method == "GET" && path == "/api/v1/namespaces" {
        return None;
    }
    if !path.starts_with(NS) {
        return Some(Role::Admin);
    }
    if path == NS && method != "GET" {
        return Some(Role::Admin);
    }
    if path.starts_with(&format!("{NS}/search-attributes")) && method != "GET" {
        return Some(Role::Admin);
    }
    if method == "GET" || path.ends_with("/query/{query_name}") {
        return Some(Role::Reader);
    }
    Some(Role::Writer)
}

/// The public routes: a webhook delivery, a handler's checkpoint and its
/// history page and payload requests, each authenticated by its signature
/// (tests/webhooks.rs, tests/inline.rs, tests/history_pages.rs,
/// tests/payloads.rs). All are POSTs.
const PUBLIC: [&str; 4] = [
    "/api/v1/namespaces/{namespace}/webhooks/{source_id}",
    "/api/v1/namespaces/{namespace}/workflow-tasks/checkpoint",
    "/api/v1/namespaces/{namespace}/workflow-tasks/history",
    "/api/v1/namespaces/{namespace}/payloads",
];

/// Every `/api/v1` (method, path) of the spec. The spec marks exactly the
/// [`PUBLIC`] routes as taking no key (`security: []`).
fn spec_routes() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("read the spec");
    let doc: Value = serde_norway::from_str(&text).expect("parse the spec");
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for m in ["get", "put", "post", "delete", "patch"] {
            let Some(op) = item.get(m) else { continue };
            let keyless = op["security"].as_array().is_some_and(Vec::is_empty);
            let public = m == "post" && PUBLIC.contains(&path.as_str());
            assert_eq!(keyless, public, "{m} {path}: security: [] iff public");
            routes.push((m.to_uppercase(), path.clone()));
        }
    }
    assert!(routes.len() > 40, "the spec lists the API: {routes:?}");
    routes
}

/// The route with its parameters filled: the namespace given, every other
/// id one that does not exist, so that no call of the matrix changes
/// anything (a body of `{}` is refused by every handler that takes one,
/// except a namespace update, which then changes nothing).
fn fill(path: &str, namespace: &str) -> String {
    let mut out = String::new();
    for segment in path.split('/').skip(1) {
        out.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some("namespace") => out.push_str(namespace),
            Some("key_id") => out.push_str("bk_0000000000000000"),
            Some(name) => out.push_str(&format!("absent-{name}")),
            None => out.push_str(segment),
        }
    }
    out
}

async fn call(api: &Api, method: &str, path: &str) -> (StatusCode, Value) {
    let method: Method = method.parse().expect("method");
    let body = matches!(method, Method::POST | Method::PATCH | Method::PUT).then(|| json!({}));
    api.call(method, path, body).await
}

async fn every_route_answers_each_role_and_namespace_as_the_rules_say(db: Db) {
    let s = server(db).await;
    let admin = &s.api;
    create_namespace(admin, "alpha").await;
    create_namespace(admin, "beta").await;
    let mut keys = Vec::new();
    for (role, name) in [
        (Role::Reader, "reader"),
        (Role::Writer, "writer"),
        (Role::Admin, "admin"),
    ] {
        let body = if role == Role::Admin {
            json!({ "role": name })
        } else {
            json!({ "role": name, "namespace": "alpha" })
        };
        let (_, key) = create_key(admin, body).await;
        keys.push((role, as_key(&s, &key)));
    }
    let mut checked = 0;
    for (method, template) in spec_routes() {
        let need = expected_need(&method, &template);
        let namespaced = template.contains("{namespace}");
        let public = method == "POST" && PUBLIC.contains(&template.as_str());
        for ns in ["alpha", "beta"] {
            if ns == "beta" && !namespaced {
                continue;
            }
            let path = fill(&template, ns);
            let baseline = call(admin, &method, &path).await;
            let what = format!("{method} {path}");
            // A public route refuses an unsigned call with 401
            // `signature_invalid`, whoever's key comes with it.
            let unsigned = public && baseline.1["code"] == "signature_invalid";
            assert!(
                unsigned || !matches!(baseline.0, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
                "the bootstrap admin is refused {what}: {baseline:?}"
            );
            let ns_missing = format!("namespace {ns} not found");
            assert_ne!(
                baseline.1["detail"], ns_missing,
                "{what}: the namespace exists"
            );
            for (role, api) in &keys {
                let got = call(api, &method, &path).await;
                let scoped = *role != Role::Admin;
                if public {
                    // A delivery carries no key: every caller gets what
                    // the sender would (here: no such source).
                    assert_eq!(got.0, baseline.0, "{role:?} {what}: {got:?}");
                    assert_eq!(got.1["code"], baseline.1["code"], "{role:?} {what}");
                } else if scoped && ns == "beta" {
                    assert_eq!(got.0, StatusCode::NOT_FOUND, "{role:?} {what}: {got:?}");
                    assert_eq!(got.1["code"], "not_found", "{role:?} {what}");
                    assert_eq!(got.1["detail"], ns_missing, "{role:?} {what}");
                } else if !scoped || need.is_none_or(|n| *role >= n) {
                    assert_eq!(
                        got.0, baseline.0,
                        "{role:?} {what}: {got:?} vs {baseline:?}"
                    );
                    assert_eq!(got.1["code"], baseline.1["code"], "{role:?} {what}");
                } else {
                    assert_eq!(got.0, StatusCode::FORBIDDEN, "{role:?} {what}: {got:?}");
                    assert_eq!(got.1["code"], "forbidden", "{role:?} {what}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "{checked} calls checked");
    // Without a key, or with a made-up one, every route is 401.
    let nobody = Api::new(s.api.base.clone(), None);
    let forged = as_key(&s, &format!("bk_{}.{}", "0".repeat(16), "0".repeat(64)));
    for api in [&nobody, &forged] {
        let (status, body) = api.get("/api/v1/namespaces/alpha/workflows").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    s.stop().await;
}

async fn allowed_calls_succeed_and_scoped_keys_see_only_their_namespace(db: Db) {
    let s = server(db).await;
    create_namespace(&s.api, "alpha").await;
    create_namespace(&s.api, "beta").await;
    let (_, w) = create_key(&s.api, json!({"role": "writer", "namespace": "alpha"})).await;
    let (_, r) = create_key(&s.api, json!({"role": "reader", "namespace": "alpha"})).await;
    let (writer, reader) = (as_key(&s, &w), as_key(&s, &r));
    let start = json!({"workflow_type": "T", "task_queue": "q", "input": {}});
    let wf = "/api/v1/namespaces/alpha/workflows/keyed";
    let (status, body) = writer.post(wf, start.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = writer
        .post(&format!("{wf}/signal/go"), json!({"input": 1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = reader.get(wf).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["execution"]["workflow_id"], "keyed");
    let (status, body) = reader.get(&format!("{wf}/history")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["events"].as_array().is_some_and(|e| e.len() >= 2),
        "{body}"
    );
    let (status, body) = reader.get("/api/v1/namespaces/alpha/workflows").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["executions"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
    // The reader may not write, in its namespace or elsewhere.
    let (status, body) = reader
        .post("/api/v1/namespaces/alpha/workflows/other", start.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = s.api.get("/api/v1/namespaces/alpha/workflows/other").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the refused start wrote nothing"
    );
    let (status, body) = writer
        .post("/api/v1/namespaces/beta/workflows/x", start)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = s.api.get("/api/v1/namespaces/beta/workflows/x").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was started in beta");
    // Listing namespaces (the web UI's login call) shows each key its own.
    for api in [&writer, &reader] {
        let (status, body) = api.get("/api/v1/namespaces").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["namespaces"], json!([s_namespace(&s, "alpha").await]));
    }
    let (_, all) = s.api.get("/api/v1/namespaces").await;
    assert_eq!(all["namespaces"].as_array().map(Vec::len), Some(3), "{all}");
    // Keys are admin business.
    let (status, _) = writer.get("/api/v1/apikeys").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, list) = s.api.get("/api/v1/apikeys").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let text = list.to_string();
    let secret = w.split_once('.').expect("id.secret").1;
    assert!(
        !text.contains(secret),
        "a listed key shows no secret: {text}"
    );
    assert!(list["api_keys"][0]["last_used_at"].is_string(), "{list}");
    // Denials are counted by reason.
    let metrics = reqwest::get(format!("{}/metrics", s.api.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for reason in ["role", "namespace"] {
        let line = format!("baton_api_denied_total{{reason=\"{reason}\"}}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    s.stop().await;
}

async fn s_namespace(s: &TestServer, name: &str) -> Value {
    let (_, list) = s.api.get("/api/v1/namespaces").await;
    list["namespaces"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name).cloned())
        .expect("namespace listed")
}

async fn expired_keys_are_refused(db: Db) {
    let s = server(db).await;
    let (_, key) = create_key(
        &s.api,
        json!({"role": "reader", "namespace": "default", "expires_in": "1s"}),
    )
    .await;
    let api = as_key(&s, &key);
    let (status, body) = api.get("/api/v1/namespaces/default/workflows").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = api.get("/api/v1/namespaces/default/workflows").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "unauthorized");
    s.stop().await;
}

async fn bad_key_requests_are_400_problems_naming_the_field(db: Db) {
    let s = server(db).await;
    for (body, field) in [
        (json!({"role": "boss", "namespace": "default"}), "role"),
        (json!({"role": "reader"}), "namespace"),
        (
            json!({"role": "admin", "namespace": "default"}),
            "namespace",
        ),
        (
            json!({"role": "writer", "namespace": "nowhere"}),
            "namespace",
        ),
        (
            json!({"role": "writer", "namespace": "bad name"}),
            "namespace",
        ),
        (
            json!({"role": "reader", "namespace": "default", "expires_in": "-5d"}),
            "expires_in",
        ),
        (
            json!({"role": "reader", "namespace": "default", "expires_in": "0s"}),
            "expires_in",
        ),
        (
            json!({"role": "reader", "namespace": "default", "expires_in": "soon"}),
            "expires_in",
        ),
    ] {
        let (status, problem) = s.api.post("/api/v1/apikeys", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(problem["code"], "invalid_argument", "{body}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.starts_with(&format!("{field}:")), "{body}: {detail}");
    }
    let (status, _) = s
        .api
        .call(Method::DELETE, "/api/v1/apikeys/bk_0123456789abcdef", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = s.api.get("/api/v1/apikeys").await;
    assert_eq!(list["api_keys"], json!([]), "nothing was created");
    s.stop().await;
    // A server without --api-key checks no key, so it makes none.
    let mut options = test_options("sqlite::memory:".to_owned());
    options.api_key = None;
    let open = spawn_server_with(options).await;
    let (status, problem) = open
        .api
        .post("/api/v1/apikeys", json!({"role": "admin"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    open.stop().await;
}

/// Two nodes on one PostgreSQL: a key revoked through one is refused by
/// that one at once and by the other within a second (a node trusts what
/// it read about a key for at most 0.5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_holds_on_every_node_within_a_second() {
    let url = common::fresh_postgres_database().await;
    let (a, b) = (server_on(url.clone()).await, server_on(url).await);
    let (id, key) = create_key(&a.api, json!({"role": "writer", "namespace": "default"})).await;
    let path = "/api/v1/namespaces/default/workflows";
    for node in [&a, &b] {
        let (status, body) = as_key(node, &key).get(path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _) = a
        .api
        .call(Method::DELETE, &format!("/api/v1/apikeys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let revoked = Instant::now();
    // The node that revoked it forgets it at once.
    let (status, _) = as_key(&a, &key).get(path).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for node in [&b, &a] {
        let api = as_key(node, &key);
        loop {
            let (status, _) = api.get(path).await;
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            assert_eq!(status, StatusCode::OK);
            assert!(
                revoked.elapsed() < Duration::from_secs(1),
                "still accepted {:?} after the revocation",
                revoked.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    let (_, list) = b.api.get("/api/v1/apikeys").await;
    assert!(list["api_keys"][0]["revoked_at"].is_string(), "{list}");
    a.stop().await;
    b.stop().await;
}
