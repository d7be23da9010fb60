//! Drift test between `openapi/openapi.yaml` and the code (STYLE.md §6(d)).
//!
//! The spec is hand-written and is the source of truth (spec-first, STYLE.md
//! §7). This file fails when the two disagree:
//!
//! - spec → router: every (method, path) in the spec is served by
//!   `api::router`, i.e. answered by a handler, not by the 404 fallback and
//!   not with 405;
//! - router → spec: every `.route(` registered in `src/api/**/*.rs` is in the
//!   spec. axum cannot list its routes, so a small, strict parser reads them
//!   from the source and fails on any call it does not understand;
//! - bodies: every answer in these tests has a status the spec documents for
//!   that operation and a body that validates against its schema; history
//!   events of every type (driven through the pure engine) and push bodies
//!   (built with `dispatch::wire`; queries and update validations also as
//!   really pushed to a loopback handler) validate against the components; the
//!   spec's example answers parse with the real wire types; and the JSON
//!   examples in docs/protocol.md marked `<!-- schema: Name -->` validate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use baton::api::{self, Access, AppState, Shared};
use baton::apply::Applier;
use baton::dispatch::wire;
use baton::engine::{
    self, ActivityToken, CancelTimer, CancelWorkflowExecution, ChildOutcome, Command,
    CompleteWorkflowExecution, CompleteWorkflowUpdate, ContinueAsNewWorkflowExecution, Ctx, Event,
    ExternalWorkflowExecutionFailedCause, FailWorkflowExecution, Failure, Limits, MoveToVersion,
    ParentClosePolicy, ParentInfo, RecordMarker, Registry, RequestCancelActivityTask,
    RequestCancelExternalWorkflowExecution, RetryPolicySpec, RetryState, RunState,
    ScheduleActivityTask, SearchAttributeType, Signal, SignalExternalWorkflowExecution, Slot,
    StartChildWorkflowExecution, StartChildWorkflowExecutionFailedCause, StartRun, StartTimer,
    Task, TimeoutType, Update, UpsertWorkflowSearchAttributes, WorkflowCommand,
    WorkflowTaskFailedCause,
};
use baton::ids::{ActivityId, Namespace, RunId, TaskQueue, TimerId, WorkflowId};
use baton::time::{Clock, Duration, SkippingClock, SystemClock, Timestamp};
use serde_json::{json, Value};
use tower::ServiceExt as _;

/// `(METHOD, path)`, with axum's `{param}` syntax, which OpenAPI shares.
type Route = (String, String);

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---- The spec -------------------------------------------------------------

struct Spec {
    doc: Value,
}

impl Spec {
    fn load() -> Spec {
        let path = root().join("openapi/openapi.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let doc: Value = serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
        assert_eq!(doc["openapi"], "3.1.0", "the spec is OpenAPI 3.1");
        Spec { doc }
    }

    fn routes(&self) -> BTreeSet<Route> {
        let paths = self.doc["paths"].as_object().expect("spec has paths");
        let mut routes = BTreeSet::new();
        for (path, item) in paths {
            for m in METHODS {
                if item.get(m).is_some() {
                    routes.insert((m.to_uppercase(), path.clone()));
                }
            }
        }
        routes
    }

    /// Follows a local `$ref` (`#/components/...`), if `v` is one.
    fn deref<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.strip_prefix('#').expect("only local $refs");
                self.doc
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {r}"))
            }
            None => v,
        }
    }

    /// Validates `instance` against `schema`, a schema object whose `$ref`s
    /// point into this document's components.
    fn validate(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        let mut root = schema.clone();
        let obj = root.as_object_mut().ok_or("schema is not an object")?;
        obj.insert("components".into(), self.doc["components"].clone());
        let validator =
            jsonschema::draft202012::new(&root).map_err(|e| format!("bad schema: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{e} (at {})", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    fn validate_named(&self, name: &str, instance: &Value) -> Result<(), String> {
        assert!(
            self.doc["components"]["schemas"].get(name).is_some(),
            "no schema {name}"
        );
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        self.validate(&schema, instance)
    }

    /// Checks an answer against what the spec documents for the operation.
    fn check_answer(&self, method: &str, template: &str, answer: &Answer) -> Result<(), String> {
        let op = self.doc["paths"][template]
            .get(method.to_lowercase())
            .ok_or_else(|| format!("{method} {template} is not in the spec"))?;
        let status = answer.status.as_u16().to_string();
        let response = op["responses"]
            .get(&status)
            .ok_or_else(|| format!("{method} {template} answered {status}, which the spec does not document for it: {}", answer.body))?;
        let response = self.deref(response);
        match response.get("content") {
            None if answer.raw.is_empty() => Ok(()),
            None => Err(format!(
                "{method} {template} answered {status} with a body the spec does not describe"
            )),
            Some(content) => {
                let ct = answer.content_type.as_deref().unwrap_or("(none)");
                let media = content.get(ct).ok_or_else(|| {
                    format!("{method} {template} answered {status} as {ct}, not documented")
                })?;
                // A text body is checked as the string it is.
                let body = match ct.starts_with("text/") {
                    true => Value::String(String::from_utf8_lossy(&answer.raw).into_owned()),
                    false => answer.body.clone(),
                };
                self.validate(&media["schema"], &body)
                    .map_err(|e| format!("{method} {template} {status}: {e}"))
            }
        }
    }
}

// ---- Routes in the source -------------------------------------------------

/// Every route registered in `src/api/**/*.rs`.
fn source_routes() -> BTreeSet<Route> {
    fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src/api and its folders exist") {
            let path = entry.expect("readable dir entry").path();
            if path.is_dir() {
                rust_files(&path, files);
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&root().join("src/api"), &mut files);
    files.sort();
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        let found = parse_routes(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for route in found {
            assert!(
                routes.insert(route.clone()),
                "{route:?} is registered twice"
            );
        }
    }
    routes
}

/// The `(method, path)` pairs of every `.route(path, method_router)` call.
/// Paths are string literals, `base`, or `format!("{base}…")` with a
/// `let base = "…";` earlier in the same function; method routers are chains
/// of `get(…)`, `post(…)`, …. Anything else is an error, never skipped.
fn parse_routes(source: &str) -> Result<Vec<Route>, String> {
    // Drop whole-line comments, so prose that mentions `.route(` is ignored.
    let code: String = source
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    for unsupported in [".nest(", ".nest_service(", ".route_service("] {
        if code.contains(unsupported) {
            return Err(format!(
                "`{unsupported}` is not understood by tests/openapi.rs; extend its parser"
            ));
        }
    }
    let mut routes = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find(".route(") {
        let start = from + i + ".route(".len();
        let args = until_close(&code[start..])?;
        let parts = split_args(args)?;
        let [path_expr, methods_expr] = parts.as_slice() else {
            return Err(format!("`.route({args})` does not have two arguments"));
        };
        let path = route_path(path_expr, &code[..start])?;
        if !path.starts_with('/') {
            return Err(format!("route path {path:?} does not start with '/'"));
        }
        for method in method_calls(methods_expr)? {
            routes.push((method, path.clone()));
        }
        from = start + args.len();
    }
    Ok(routes)
}

/// The text up to the `)` that closes an already opened `(`.
fn until_close(s: &str) -> Result<&str, String> {
    let mut depth = 1;
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(&s[..i]);
                }
            }
            _ => {}
        }
    }
    Err("unbalanced parentheses after `.route(`".into())
}

/// Splits call arguments at top-level commas; a trailing comma is allowed.
fn split_args(args: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut in_str, mut escaped, mut last) = (0, false, false, 0);
    for (i, c) in args.char_indices() {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(args[last..i].trim());
                last = i + 1;
            }
            _ => {}
        }
    }
    parts.push(args[last..].trim());
    if parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("empty argument in `.route({args})`"));
    }
    Ok(parts)
}

/// A route's path expression, resolved.
fn route_path(expr: &str, before: &str) -> Result<String, String> {
    let expr = expr.strip_prefix('&').unwrap_or(expr).trim();
    if expr == "base" {
        return base_of(before);
    }
    if let Some(lit) = string_literal(expr) {
        return Ok(lit.to_owned());
    }
    let inner = expr
        .strip_prefix("format!(")
        .and_then(|r| r.strip_suffix(')'))
        .and_then(|r| string_literal(r.trim()))
        .ok_or_else(|| format!("cannot understand the route path `{expr}`"))?;
    let mut out = String::new();
    let mut rest = inner;
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("{{") {
            out.push('{');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("}}") {
            out.push('}');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("{base}") {
            out.push_str(&base_of(before)?);
            rest = r;
        } else if c == '{' || c == '}' {
            return Err(format!(
                "cannot understand the placeholder in `{expr}`: only {{base}} is supported"
            ));
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(out)
}

/// The content of a plain string literal without escapes.
fn string_literal(expr: &str) -> Option<&str> {
    let lit = expr.strip_prefix('"')?.strip_suffix('"')?;
    (!lit.contains(['"', '\\'])).then_some(lit)
}

/// The value of `let base = "…";` in the function that encloses the end of
/// `before`.
fn base_of(before: &str) -> Result<String, String> {
    let body = &before[before.rfind("fn ").unwrap_or(0)..];
    let at = body
        .rfind("let base = ")
        .ok_or("a route uses `base` but no `let base = \"…\";` precedes it in the same function")?;
    let rest = &body[at + "let base = ".len()..];
    let end = rest.find(';').ok_or("`let base` without `;`")?;
    string_literal(rest[..end].trim())
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "`let base = {};` is not a plain string literal",
                &rest[..end]
            )
        })
}

/// The HTTP methods of a method-router chain such as `get(a).post(b)`.
fn method_calls(expr: &str) -> Result<Vec<String>, String> {
    let mut methods = Vec::new();
    let mut rest = expr.trim();
    loop {
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (name, after) = rest.split_at(name_len);
        let after = after
            .trim_start()
            .strip_prefix('(')
            .ok_or_else(|| format!("cannot understand the method router `{expr}`"))?;
        if !METHODS.contains(&name) {
            return Err(format!(
                "cannot understand the method router `{expr}`: `{name}(` is not one of {METHODS:?}"
            ));
        }
        methods.push(name.to_uppercase());
        let args = until_close(after)?;
        rest = after[args.len() + 1..].trim_start();
        if rest.is_empty() {
            return Ok(methods);
        }
        rest = rest
            .strip_prefix('.')
            .ok_or_else(|| format!("cannot understand the method router `{expr}`"))?
            .trim_start();
    }
}

#[test]
fn the_route_parser_reads_the_supported_forms() {
    let src = r#"
        // .route("/commented/out", get(nothing))
        pub fn router() -> Router<AppState> {
            let base = "/api/v1/things";
            Router::new()
                .route(base, get(list))
                .route(
                    &format!("{base}/{{thing_id}}"),
                    get(describe).post(create),
                )
                .route("/other", delete(remove))
        }
    "#;
    let routes = parse_routes(src).unwrap();
    let expect = [
        ("GET", "/api/v1/things"),
        ("GET", "/api/v1/things/{thing_id}"),
        ("POST", "/api/v1/things/{thing_id}"),
        ("DELETE", "/other"),
    ];
    let expect: Vec<Route> = expect
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(routes, expect);
}

#[test]
fn the_route_parser_refuses_what_it_does_not_understand() {
    let bad = [
        (
            r#"fn r() { Router::new().route(PATH, get(x)) }"#,
            "route path",
        ),
        (r#"fn r() { Router::new().route("/x", any(x)) }"#, "any("),
        (
            r#"fn r() { Router::new().route("/x", get(x).merge(y)) }"#,
            "merge(",
        ),
        (
            r#"fn r() { Router::new().route("/x", get(x) + 1) }"#,
            "method router",
        ),
        (
            r#"fn r() { Router::new().route(&format!("{root}/x"), get(x)) }"#,
            "placeholder",
        ),
        (
            r#"fn r() { Router::new().route(&format!("{base}/x"), get(x)) }"#,
            "let base",
        ),
        (r#"fn r() { Router::new().route("/x") }"#, "two arguments"),
        (
            r#"fn r() { Router::new().route("x", get(y)) }"#,
            "start with",
        ),
        (r#"fn r() { Router::new().nest("/x", other()) }"#, ".nest("),
    ];
    for (src, why) in bad {
        let err = parse_routes(src).expect_err(src);
        assert!(
            err.contains(why),
            "{src}: expected an error about {why:?}, got {err:?}"
        );
    }
    // `base` belongs to the function that uses it.
    let src = r#"
        fn a() { let base = "/a"; }
        fn b() { Router::new().route(base, get(x)) }
    "#;
    assert!(parse_routes(src).is_err());
}

#[test]
fn every_router_route_is_in_the_spec() {
    let source = source_routes();
    let spec = Spec::load().routes();
    let missing: Vec<_> = source.difference(&spec).collect();
    let extra: Vec<_> = spec.difference(&source).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes in src/api but not in openapi/openapi.yaml: {missing:?}\n\
         routes in openapi/openapi.yaml but not in src/api: {extra:?}"
    );
}

// ---- Live requests -------------------------------------------------------

/// One answer, read whole.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    raw: Vec<u8>,
    /// The body as JSON, `Null` when empty or not JSON.
    body: Value,
}

async fn app() -> Router {
    app_with(Access::default()).await
}

async fn app_with(access: Access) -> Router {
    let store = baton::server::open_store(
        "sqlite::memory:",
        &SystemClock,
        baton::store::DEFAULT_RETENTION,
    )
    .await
    .expect("in-memory store");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Nothing drains the pushes: no endpoint is called in these tests.
    let (applier, _pushes) = Applier::new(store, clock, Limits::default(), Default::default());
    let transport = Arc::new(baton::dispatch::HttpTransport::new(1 << 20, Vec::new()));
    let querier =
        baton::dispatch::Service::new(applier.clone(), Default::default(), transport).querier();
    api::router(AppState::new(Shared {
        querier,
        applier,
        schedules: Default::default(),
        batches: Default::default(),
        batch_max_rps: 1_000.0,
        access: Arc::new(access),
        time_skipping: Some(Arc::new(SkippingClock::default())),
    }))
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> Answer {
    call_as(app, None, method, uri, body).await
}

/// [`call`] with `Authorization: Bearer <key>`.
async fn call_as(
    app: &Router,
    key: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(serde_json::to_vec(&v).expect("serializable"))
        }
        None => Body::empty(),
    };
    send(app, req.body(body).expect("valid request")).await
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
    let raw = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("readable body")
        .to_vec();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        raw,
        body,
    }
}

/// The router's own "no such route" answer.
fn is_fallback(a: &Answer) -> bool {
    a.status == StatusCode::NOT_FOUND
        && a.body["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("no route for"))
}

#[tokio::test]
async fn every_spec_route_is_served() {
    let spec = Spec::load();
    let app = app().await;
    let placeholders: BTreeMap<&str, &str> = [
        ("namespace", "default"),
        ("workflow_id", "wf-drift"),
        ("task_queue", "queue-drift"),
        ("version", "v-drift"),
        ("signal_name", "signal-drift"),
        ("query_name", "query-drift"),
        ("update_name", "update-drift"),
        ("update_id", "update-id-drift"),
        ("schedule_id", "schedule-drift"),
        ("name", "attribute-drift"),
        ("batch_id", "batch-drift"),
        ("key_id", "bk_0000000000000000"),
        ("source_id", "source-drift"),
        ("delivery", "delivery-drift"),
        ("run_id", "0194a0f0-8c00-7000-8000-00000000a017"),
        (
            "sha256",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
    ]
    .into();
    let mut failures = Vec::new();
    for (method, template) in spec.routes() {
        let mut uri = template.clone();
        for (name, value) in &placeholders {
            uri = uri.replace(&format!("{{{name}}}"), value);
        }
        assert!(
            !uri.contains('{'),
            "no placeholder for a parameter of {template}"
        );
        let body = matches!(method.as_str(), "POST" | "PUT" | "PATCH").then(|| json!({}));
        let answer = call(&app, &method, &uri, body).await;
        if answer.status == StatusCode::METHOD_NOT_ALLOWED || is_fallback(&answer) {
            failures.push(format!(
                "{method} {template}: the router does not serve it ({} {})",
                answer.status, answer.body
            ));
        } else if let Err(e) = spec.check_answer(&method, &template, &answer) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The two answers the previous test looks for are real: an unknown path
/// reaches the fallback and a wrong method is a 405.
#[tokio::test]
async fn unknown_routes_and_methods_are_told_apart() {
    let spec = Spec::load();
    let app = app().await;
    let a = call(&app, "GET", "/api/v1/no-such-thing", None).await;
    assert!(is_fallback(&a), "{a:?}");
    spec.validate_named("Problem", &a.body).unwrap();
    let a = call(&app, "PUT", "/api/v1/namespaces", Some(json!({}))).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{a:?}");
    if a.content_type.as_deref() == Some("application/problem+json") {
        spec.validate_named("Problem", &a.body).unwrap();
    }
}

#[tokio::test]
async fn live_responses_match_the_spec() {
    let spec = Spec::load();
    let app = app().await;
    let mut n_checked = 0;
    let mut check = async |method: &str, template: &str, uri: &str, body: Option<Value>| {
        let answer = call(&app, method, uri, body).await;
        spec.check_answer(method, template, &answer)
            .unwrap_or_else(|e| panic!("{e}"));
        n_checked += 1;
        answer
    };
    let ns = "/api/v1/namespaces";
    let ns_one = "/api/v1/namespaces/{namespace}";
    let a = check("GET", ns, ns, None).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = check("POST", ns, ns, Some(json!({"name": "drift"}))).await;
    assert_eq!(a.status, StatusCode::CREATED);
    let a = check("POST", ns, ns, Some(json!({"name": "drift"}))).await;
    assert_eq!(a.body["code"], "already_exists");
    let a = check("POST", ns, ns, Some(json!({"name": "bad name!"}))).await;
    assert_eq!(a.body["code"], "invalid_argument");
    let a = check("GET", ns_one, "/api/v1/namespaces/drift", None).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = check("GET", ns_one, "/api/v1/namespaces/nope", None).await;
    assert_eq!(a.body["code"], "not_found");

    let eps = "/api/v1/namespaces/{namespace}/endpoints";
    let body = json!({"task_queue": "orders", "url": "http://127.0.0.1:9/baton"});
    let a = check(
        "POST",
        eps,
        "/api/v1/namespaces/drift/endpoints",
        Some(body),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(a.body["generated_secret"].is_string());
    let a = check("GET", eps, "/api/v1/namespaces/drift/endpoints", None).await;
    assert_eq!(a.body["endpoints"].as_array().map(Vec::len), Some(1));

    let wf = "/api/v1/namespaces/{namespace}/workflows/{workflow_id}";
    let uri = "/api/v1/namespaces/drift/workflows/order-17";
    let start = json!({
        "workflow_type": "process_order",
        "task_queue": "orders",
        "input": {"order_id": "A-17"},
        "workflow_run_timeout": "1h",
        "request_id": "req-1",
    });
    let a = check("POST", wf, uri, Some(start.clone())).await;
    assert_eq!(a.status, StatusCode::CREATED);
    let a = check("POST", wf, uri, Some(start)).await;
    assert_eq!(
        (a.status, &a.body["started"]),
        (StatusCode::OK, &json!(false))
    );
    let a = check(
        "POST",
        wf,
        uri,
        Some(json!({"workflow_type": "x", "task_queue": "orders"})),
    )
    .await;
    assert_eq!(a.body["code"], "already_exists");
    let a = check("GET", wf, uri, None).await;
    assert!(a.body["pending_workflow_task"].is_object(), "{}", a.body);
    let a = check("GET", wf, &format!("{uri}?run_id=not-a-uuid"), None).await;
    assert_eq!(a.body["code"], "invalid_argument");

    let list = "/api/v1/namespaces/{namespace}/workflows";
    let uri_list = "/api/v1/namespaces/drift/workflows?status=running&page_size=10";
    let a = check("GET", list, uri_list, None).await;
    assert_eq!(a.body["executions"].as_array().map(Vec::len), Some(1));

    let hist = "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/history";
    let a = check("GET", hist, &format!("{uri}/history"), None).await;
    assert_eq!(a.body["events"].as_array().map(Vec::len), Some(2));
    let a = check("GET", hist, &format!("{uri}/history?page_size=1"), None).await;
    assert!(a.body["next_page_token"].is_string());

    let result = "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/result";
    let a = check("GET", result, &format!("{uri}/result?wait=0s"), None).await;
    assert_eq!(a.body["status"], "RUNNING");

    // Nothing answers on the endpoint, so nothing validates an update.
    let update = "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/update/{update_name}";
    let body = json!({"args": [{"sku": "A-17"}], "update_id": "u1", "wait_for_stage": "ACCEPTED"});
    let a = check(
        "POST",
        update,
        &format!("{uri}/update/add_item"),
        Some(body),
    )
    .await;
    assert_eq!(a.body["code"], "unavailable", "{}", a.body);
    // Worded for what was sent: an update's validation, not a query.
    let detail = a.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("did not answer the update's validation"),
        "{detail}"
    );
    let a = check(
        "POST",
        update,
        &format!("{uri}/update/add_item"),
        Some(json!({"wait_for_stage": "LATER"})),
    )
    .await;
    assert_eq!(a.body["code"], "invalid_argument");
    let poll = "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/updates/{update_id}";
    let a = check("GET", poll, &format!("{uri}/updates/u1"), None).await;
    assert_eq!(a.body["code"], "not_found");

    // Versions: order-17 is pinned to `default`, the version it started on.
    let versions = "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/versions";
    let uri_versions = "/api/v1/namespaces/drift/endpoints/orders/versions";
    let a = check("GET", versions, uri_versions, None).await;
    assert_eq!(a.body["versions"][0]["open_runs"], 1, "{}", a.body);
    let ep = "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/{version}";
    let uri_default = "/api/v1/namespaces/drift/endpoints/orders/default";
    let a = check("DELETE", ep, uri_default, None).await;
    assert_eq!(a.body["code"], "version_in_use");
    let body = json!({"task_queue": "orders", "url": "http://127.0.0.1:9/v2", "version": "v2"});
    let a = check(
        "POST",
        eps,
        "/api/v1/namespaces/drift/endpoints",
        Some(body),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let moves =
        "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/versions/{version}/move-runs";
    let uri_moves = "/api/v1/namespaces/drift/endpoints/orders/versions/v2/move-runs";
    let body = json!({"from_version": "default", "reason": "drift test", "identity": "ci"});
    let a = check("POST", moves, uri_moves, Some(body)).await;
    assert_eq!(a.body["moved"], 1, "{}", a.body);
    let a = check(
        "POST",
        moves,
        uri_moves,
        Some(json!({"from_version": "default"})),
    )
    .await;
    assert_eq!(a.body["code"], "invalid_argument");
    let promote =
        "/api/v1/namespaces/{namespace}/endpoints/{task_queue}/versions/{version}/promote";
    let uri_promote = "/api/v1/namespaces/drift/endpoints/orders/versions/default/promote";
    let a = check("POST", promote, uri_promote, None).await;
    assert_eq!(a.body["is_current"], true, "{}", a.body);
    let a = check("POST", promote, &uri_promote.replace("default", "v9"), None).await;
    assert_eq!(a.body["code"], "not_found");
    let a = check("GET", wf, uri, None).await;
    assert_eq!(a.body["pinned_version"], "v2", "{}", a.body);

    let term = "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/terminate";
    let body = json!({"reason": "drift test", "details": {"by": "tests/openapi.rs"}});
    let a = check("POST", term, &format!("{uri}/terminate"), Some(body)).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = check("POST", term, &format!("{uri}/terminate"), Some(json!({}))).await;
    assert_eq!(a.body["code"], "conflict");
    let a = check("GET", result, &format!("{uri}/result"), None).await;
    assert_eq!(a.body["status"], "TERMINATED");
    let a = check("GET", hist, &format!("{uri}/history"), None).await;
    let last = a.body["events"].as_array().and_then(|e| e.last()).cloned();
    assert_eq!(
        last.unwrap_or_default()["event_type"],
        "WorkflowExecutionTerminated"
    );

    // No workflow task of that run completed: nothing to reset to.
    let reset = "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/reset";
    let body = json!({"reset_type": "LAST_WORKFLOW_TASK", "reason": "drift test"});
    let a = check("POST", reset, &format!("{uri}/reset"), Some(body)).await;
    assert_eq!(a.body["code"], "invalid_argument");
    let a = check(
        "GET",
        result,
        &format!("{uri}/result?follow_runs=false"),
        None,
    )
    .await;
    assert_eq!(a.body["status"], "TERMINATED");

    let hb = "/api/v1/namespaces/{namespace}/activities/heartbeat";
    let body = json!({"task_token": "garbage"});
    let a = check(
        "POST",
        hb,
        "/api/v1/namespaces/drift/activities/heartbeat",
        Some(body),
    )
    .await;
    assert_eq!(a.body["code"], "invalid_argument");

    let a = check("DELETE", ep, uri_default, None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);

    let time = check("GET", "/api/v1/dev/time", "/api/v1/dev/time", None).await;
    assert_eq!(time.status, StatusCode::OK);
    let skip = json!({"duration": "1.5s"});
    let a = check(
        "POST",
        "/api/v1/dev/time/skip",
        "/api/v1/dev/time/skip",
        Some(skip),
    )
    .await;
    assert_eq!(a.body["skipped"], "1.5s");

    let schedules = "/api/v1/namespaces/{namespace}/schedules";
    let one = "/api/v1/namespaces/{namespace}/schedules/{schedule_id}";
    let uri = "/api/v1/namespaces/drift/schedules/daily";
    let schedule = json!({"schedule": {
        "spec": {"cron_expressions": ["0 9 * * 1-5"], "jitter": "5m",
            "intervals": [{"every": "6h", "offset": "15m"}],
            "calendars": [{"hour": [{"start": 12}], "day_of_week": [{"start": 1, "end": 5}]}]},
        "action": {"start_workflow": {"workflow_id": "report", "workflow_type": "Report",
            "task_queue": "orders", "input": ["daily"], "memo": {"team": "growth"}}},
        "policies": {"overlap_policy": "BUFFER_ONE", "catchup_window": "10m"},
        "state": {"note": "weekdays 9am UTC", "limited_actions": true, "remaining_actions": 3}
    }});
    let a = check("POST", one, uri, Some(schedule.clone())).await;
    assert_eq!(a.status, StatusCode::CREATED);
    let a = check("POST", one, uri, Some(schedule.clone())).await;
    assert_eq!(a.body["code"], "already_exists");
    let mut bad = schedule.clone();
    bad["schedule"]["spec"]["time_zone"] = json!("Mars/Olympus");
    let a = check(
        "POST",
        one,
        "/api/v1/namespaces/drift/schedules/bad",
        Some(bad),
    )
    .await;
    assert_eq!(a.body["code"], "invalid_argument");
    let a = check("GET", one, uri, None).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = check(
        "GET",
        schedules,
        "/api/v1/namespaces/drift/schedules?paused=false",
        None,
    )
    .await;
    assert_eq!(a.body["schedules"].as_array().map(Vec::len), Some(1));
    let mut update = schedule.clone();
    update["conflict_token"] = json!("999");
    let a = check(
        "POST",
        &format!("{one}/update"),
        &format!("{uri}/update"),
        Some(update),
    )
    .await;
    assert_eq!(a.body["code"], "conflict");
    for (verb, body) in [
        ("pause", json!({"note": "Q2 close"})),
        ("unpause", json!({})),
        ("trigger", json!({"overlap_policy": "ALLOW_ALL"})),
        (
            "backfill",
            json!({"backfills": [{"start_time": "2025-01-06T00:00:00Z",
            "end_time": "2025-01-07T00:00:00Z"}]}),
        ),
    ] {
        let a = check(
            "POST",
            &format!("{one}/{verb}"),
            &format!("{uri}/{verb}"),
            Some(body),
        )
        .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{verb}: {:?}", a.body);
    }
    let a = check("GET", one, uri, None).await;
    assert!(
        a.body["info"]["buffer_size"].as_i64() > Some(0),
        "{:?}",
        a.body
    );
    let a = check("DELETE", one, uri, None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = check("GET", one, uri, None).await;
    assert_eq!(a.body["code"], "not_found");

    let batches = "/api/v1/namespaces/{namespace}/batches";
    let batch = "/api/v1/namespaces/{namespace}/batches/{batch_id}";
    let uri = "/api/v1/namespaces/drift/batches";
    let body = json!({"batch_id": "poke", "request_id": "r1", "query": "WorkflowType = \"Report\"",
        "operation": "signal", "signal_name": "poke", "input": {"n": 1}, "rps": 5, "identity": "ops"});
    let a = check("POST", batches, uri, Some(body.clone())).await;
    assert_eq!(a.status, StatusCode::CREATED);
    let a = check("POST", batches, uri, Some(body)).await;
    assert_eq!(a.status, StatusCode::OK);
    let reset = json!({"batch_id": "undo", "query": "WorkflowType = \"Report\"",
        "operation": "reset", "reset_type": "LAST_WORKFLOW_TASK", "reason": "bad deploy"});
    let a = check("POST", batches, uri, Some(reset.clone())).await;
    assert_eq!(a.status, StatusCode::CREATED);
    let a = check("POST", batches, uri, Some(reset)).await;
    assert_eq!(a.body["code"], "already_exists");
    let bad = json!({"query": "WorkflowType = ", "operation": "terminate"});
    let a = check("POST", batches, uri, Some(bad)).await;
    assert_eq!(a.body["code"], "invalid_query");
    let bad = json!({"query": "WorkflowType = \"Report\"", "operation": "signal"});
    let a = check("POST", batches, uri, Some(bad)).await;
    assert_eq!(a.body["code"], "invalid_argument");
    let a = check("GET", batches, &format!("{uri}?page_size=1"), None).await;
    assert!(a.body["next_page_token"].is_string(), "{:?}", a.body);
    let a = check("GET", batch, &format!("{uri}/poke"), None).await;
    assert_eq!(a.body["state"], "RUNNING");
    let a = check(
        "POST",
        &format!("{batch}/stop"),
        &format!("{uri}/poke/stop"),
        None,
    )
    .await;
    assert_eq!(a.body["stop_requested"], true);
    let a = check("GET", batch, &format!("{uri}/nope"), None).await;
    assert_eq!(a.body["code"], "not_found");

    let hooks = "/api/v1/namespaces/{namespace}/webhooks";
    let hook = "/api/v1/namespaces/{namespace}/webhooks/{source_id}";
    let uri = "/api/v1/namespaces/drift/webhooks";
    let body = json!({"source_id": "gh", "scheme": {"type": "github"}, "secrets": ["s3cr3t"],
        "description": "pull requests", "rules": [{"name": "merged", "events": ["pull_request"],
        "when": [{"pointer": "/merged", "equals": true}],
        "action": {"type": "signal", "workflow_id": "wf-{/n}", "signal": "merged"}}]});
    let a = check("POST", hooks, uri, Some(body.clone())).await;
    assert_eq!(a.status, StatusCode::CREATED);
    let a = check("POST", hooks, uri, Some(body)).await;
    assert_eq!(a.body["code"], "already_exists");
    let bad = json!({"source_id": "x", "scheme": {"type": "github"}, "secrets": []});
    let a = check("POST", hooks, uri, Some(bad)).await;
    assert_eq!(a.body["code"], "invalid_argument");
    let a = check("GET", hooks, uri, None).await;
    assert_eq!(a.body["sources"].as_array().map(Vec::len), Some(1));
    let a = check("GET", hook, &format!("{uri}/gh"), None).await;
    assert_eq!(a.body["secret_count"], 1);
    // Deliveries: one ignored (signed), one refused, one failing its action.
    let mut delivered = 0;
    for (body, signed, status) in [
        (r#"{"merged":false}"#, true, StatusCode::OK),
        (r#"{"merged":true}"#, false, StatusCode::UNAUTHORIZED),
        (
            r#"{"merged":true,"n":1}"#,
            true,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    ] {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cr3t").expect("key");
        mac.update(body.as_bytes());
        let tag: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let sig = if signed { tag } else { "00".repeat(32) };
        let req = Request::builder()
            .method("POST")
            .uri(format!("{uri}/gh"))
            .header("x-github-event", "pull_request")
            .header("x-hub-signature-256", format!("sha256={sig}"))
            .body(Body::from(body))
            .expect("valid request");
        let a = send(&app, req).await;
        spec.check_answer("POST", hook, &a)
            .unwrap_or_else(|e| panic!("{e}"));
        delivered += 1;
        assert_eq!(a.status, status, "{:?}", a.body);
    }
    let a = check(
        "GET",
        &format!("{hook}/deliveries"),
        &format!("{uri}/gh/deliveries?page_size=2"),
        None,
    )
    .await;
    assert!(a.body["next_before"].is_string(), "{:?}", a.body);
    let refused = a.body["deliveries"][1]["delivery"]
        .as_str()
        .expect("seq")
        .to_owned();
    let before = a.body["next_before"].as_str().expect("more").to_owned();
    let replay = format!("{hook}/deliveries/{{delivery}}/replay");
    let a = check(
        "POST",
        &replay,
        &format!("{uri}/gh/deliveries/{refused}/replay"),
        None,
    )
    .await;
    assert_eq!(a.body["code"], "conflict");
    let a = check(
        "GET",
        &format!("{hook}/deliveries"),
        &format!("{uri}/gh/deliveries?before={before}"),
        None,
    )
    .await;
    let ignored = a.body["deliveries"][0]["delivery"]
        .as_str()
        .expect("seq")
        .to_owned();
    let a = check(
        "POST",
        &replay,
        &format!("{uri}/gh/deliveries/{ignored}/replay"),
        None,
    )
    .await;
    assert_eq!(a.body["outcome"], "ignored");
    let a = check("DELETE", hook, &format!("{uri}/gh"), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);

    check("GET", "/healthz", "/healthz", None).await;
    check("GET", "/readyz", "/readyz", None).await;
    let n_checked = n_checked + delivered;
    assert!(n_checked >= 58, "{n_checked} answers checked");
}

#[tokio::test]
async fn live_api_key_answers_match_the_spec() {
    const ADMIN: &str = "drift-bootstrap-key";
    let spec = Spec::load();
    let app = app_with(Access::new(Some(ADMIN.to_owned()))).await;
    let keys = "/api/v1/apikeys";
    let one = "/api/v1/apikeys/{key_id}";
    let check = async |key: &str, method: &str, template: &str, uri: &str, body: Option<Value>| {
        let answer = call_as(&app, Some(key), method, uri, body).await;
        spec.check_answer(method, template, &answer)
            .unwrap_or_else(|e| panic!("{e}"));
        answer
    };
    let body =
        json!({"role": "reader", "namespace": "default", "expires_in": "90d", "description": "ci"});
    let a = check(ADMIN, "POST", keys, keys, Some(body)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let (id, reader) = (
        a.body["id"].as_str().expect("id").to_owned(),
        a.body["key"].as_str().expect("key").to_owned(),
    );
    let a = check(ADMIN, "POST", keys, keys, Some(json!({"role": "admin"}))).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a = check(ADMIN, "POST", keys, keys, Some(json!({"role": "root"}))).await;
    assert_eq!(a.body["code"], "invalid_argument");
    let a = check(&reader, "GET", keys, keys, None).await;
    assert_eq!(a.body["code"], "forbidden");
    let a = check("wrong", "GET", keys, keys, None).await;
    assert_eq!(a.body["code"], "unauthorized");
    let a = check(ADMIN, "GET", keys, keys, None).await;
    assert_eq!(a.body["api_keys"].as_array().map(Vec::len), Some(2));
    let a = check(ADMIN, "DELETE", one, &format!("{keys}/{id}"), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = check(
        ADMIN,
        "DELETE",
        one,
        &format!("{keys}/bk_0000000000000000"),
        None,
    )
    .await;
    assert_eq!(a.body["code"], "not_found");
    let a = check(ADMIN, "GET", keys, keys, None).await;
    assert!(
        a.body["api_keys"][0]["revoked_at"].is_string(),
        "{}",
        a.body
    );
}

/// A handler on loopback that records every push and answers queries with
/// a result (a failure for the query `broken`) and update validations with
/// a rejection, so nothing is written and nothing waits on a workflow task.
async fn recording_handler() -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    let pushes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = pushes.clone();
    let app = Router::new().route(
        "/baton",
        axum::routing::post(move |axum::Json(push): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                let answer = match (push["type"].as_str(), push["query_name"].as_str()) {
                    (Some("query"), Some("broken")) => {
                        json!({"failure": {"message": "no such query", "type": "NotFoundError"}})
                    }
                    (Some("query"), _) => json!({"result": {"status": "pending"}}),
                    _ => json!({"failure": {"message": "qty must be positive", "type": "ValueError"}}),
                };
                seen.lock().expect("not poisoned").push(push);
                axum::Json(answer)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/baton"), pushes)
}

/// Queries and update validations really pushed to a handler: the bodies
/// validate against the push schemas, the REST answers against the paths.
#[tokio::test]
async fn live_query_and_update_validation_pushes_match_the_spec() {
    let spec = Spec::load();
    let app = app().await;
    let (url, pushes) = recording_handler().await;
    let check = async |method: &str, template: &str, uri: &str, body: Value| {
        let answer = call(&app, method, uri, Some(body)).await;
        spec.check_answer(method, template, &answer)
            .unwrap_or_else(|e| panic!("{e}"));
        answer
    };
    let ns = "/api/v1/namespaces";
    check("POST", ns, ns, json!({"name": "live"})).await;
    let eps = "/api/v1/namespaces/{namespace}/endpoints";
    let body = json!({"task_queue": "carts", "url": url});
    let a = check("POST", eps, "/api/v1/namespaces/live/endpoints", body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let wf = "/api/v1/namespaces/{namespace}/workflows/{workflow_id}";
    let uri = "/api/v1/namespaces/live/workflows/cart-1";
    let start = json!({"workflow_type": "Cart", "task_queue": "carts", "input": []});
    let a = check("POST", wf, uri, start).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);

    let query = "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/query/{query_name}";
    let a = check(
        "POST",
        query,
        &format!("{uri}/query/status"),
        json!({"args": ["verbose"]}),
    )
    .await;
    assert_eq!(a.body["result"], json!({"status": "pending"}), "{}", a.body);
    let a = check("POST", query, &format!("{uri}/query/broken"), json!({})).await;
    assert_eq!(a.body["code"], "query_failed", "{}", a.body);
    let update = "/api/v1/namespaces/{namespace}/workflows/{workflow_id}/update/{update_name}";
    let body = json!({"args": [{"sku": "A-17", "qty": 0}], "update_id": "u1"});
    let a = check("POST", update, &format!("{uri}/update/add_item"), body).await;
    assert_eq!(a.body["code"], "update_rejected", "{}", a.body);

    let pushes = pushes.lock().expect("not poisoned").clone();
    let types: Vec<_> = pushes.iter().map(|p| p["type"].as_str()).collect();
    assert_eq!(
        types,
        [Some("query"), Some("query"), Some("update_validation")]
    );
    for (push, name) in
        pushes
            .iter()
            .zip(["QueryRequest", "QueryRequest", "UpdateValidationRequest"])
    {
        spec.validate_named(name, push)
            .unwrap_or_else(|e| panic!("{push}: {e}"));
        spec.validate_named("PushRequest", push)
            .unwrap_or_else(|e| panic!("{push}: {e}"));
    }
    assert_eq!(pushes[2]["update_args"], json!([{"sku": "A-17", "qty": 0}]));
}

// ---- History events and push bodies ---------------------------------------

/// A run driven through the pure engine, keeping its persisted history.
struct Sim {
    state: RunState,
    history: Vec<Event>,
    now: Timestamp,
    /// The next run of the chain a command asked for.
    next_run: Option<StartRun>,
}

impl Sim {
    const START: Timestamp = Timestamp(1_735_689_600_000); // 2025-01-01T00:00:00Z

    fn start(workflow_id: &str, run_timeout: Option<Duration>) -> Sim {
        Sim::start_with(workflow_id, run_timeout, None)
    }

    fn start_with(
        workflow_id: &str,
        run_timeout: Option<Duration>,
        parent: Option<ParentInfo>,
    ) -> Sim {
        let cmd = StartRun {
            trace_context: None,
            namespace: Namespace("default".into()),
            workflow_id: WorkflowId(workflow_id.into()),
            run_id: "0194a0f0-8c00-7000-8000-00000000a017"
                .parse::<RunId>()
                .expect("uuid"),
            workflow_type: "process_order".into(),
            task_queue: TaskQueue("orders".into()),
            input: json!({"order_id": "A-17", "amount_cents": 4200}),
            execution_timeout: None,
            run_timeout,
            task_timeout: None,
            request_id: Some("req-1".into()),
            identity: Some("cli@laptop".into()),
            pinned_version: None,
            parent,
            memo: None,
            search_attributes: Default::default(),
            retry_policy: None,
            chain: None,
        };
        Sim::started(cmd, Sim::START)
    }

    fn started(cmd: StartRun, now: Timestamp) -> Sim {
        let ctx = Ctx {
            now,
            limits: Limits::default(),
            next_run_id: Sim::NEXT_RUN,
        };
        let t = engine::start(cmd, &ctx).expect("valid start");
        Sim {
            state: t.state,
            history: t.events,
            now,
            next_run: None,
        }
    }

    /// The run id every next run of a chain gets.
    const NEXT_RUN: RunId = RunId(uuid::Uuid::from_u128(
        0x0194a0f0_8c00_7000_8000_00000000a018,
    ));

    fn ctx(&self) -> Ctx {
        Ctx {
            now: self.now,
            limits: Limits::default(),
            next_run_id: Sim::NEXT_RUN,
        }
    }

    /// The next run of the chain, started as the edge does.
    fn next(&self) -> Sim {
        let cmd = self.next_run.clone().expect("a next run was asked for");
        Sim::started(cmd, self.now)
    }

    fn advance(&mut self, millis: i64) {
        self.now = Timestamp(self.now.0 + millis);
    }

    fn apply(&mut self, cmd: Command) {
        let t = engine::decide(&self.state, cmd.clone(), &self.ctx())
            .unwrap_or_else(|r| panic!("{cmd:?} refused: {r}"));
        self.history.extend(t.events);
        self.state = t.state;
        self.next_run = t.next_run.map(|n| *n);
    }

    fn workflow_task(&self) -> engine::WorkflowTaskView {
        engine::workflow_task_view(&self.state, &self.ctx()).expect("a workflow task in flight")
    }

    fn complete(&mut self, commands: Vec<WorkflowCommand>) {
        let token = self.workflow_task().token;
        self.advance(40);
        self.apply(Command::CompleteWorkflowTask {
            token,
            commands,
            identity: Some("worker-1".into()),
            force_create_new_workflow_task: false,
            search_attributes: Registry::new(
                [
                    ("CustomerId", SearchAttributeType::Keyword),
                    ("Priority", SearchAttributeType::Int),
                ]
                .map(|(name, kind)| (name.to_owned(), Slot { kind, index: 1 })),
            ),
        });
        self.advance(10);
    }

    fn activity(&self, id: &str) -> &engine::Activity {
        self.state
            .activity_by_id(&ActivityId(id.into()))
            .expect("open activity")
    }

    fn activity_token(&self, id: &str) -> ActivityToken {
        let a = self.activity(id);
        ActivityToken {
            scheduled_event_id: a.scheduled_event_id,
            attempt: a.attempt,
        }
    }

    fn token_string(&self, kind: engine::TokenKind) -> String {
        engine::TaskToken {
            namespace: self.state.namespace.clone(),
            run_id: self.state.run_id,
            task: kind,
        }
        .to_string()
    }

    /// The persisted history as a push carries it.
    fn encoded_history(&self) -> Vec<u8> {
        let mut out = Vec::new();
        wire::encode_events(&self.history, &mut out).expect("serializable");
        out
    }

    /// The workflow task push as the dispatcher would send it now.
    fn workflow_task_request(&self) -> Value {
        let view = self.workflow_task();
        let persisted = self.encoded_history();
        let s = &self.state;
        let request = wire::PushRequest::WorkflowTask(wire::WorkflowTaskRequest {
            namespace: &s.namespace,
            task_token: self.token_string(engine::TokenKind::Workflow(view.token)),
            workflow_id: &s.workflow_id,
            run_id: s.run_id,
            workflow_type: &s.workflow_type,
            task_queue: &s.task_queue,
            attempt: view.token.attempt,
            history: wire::History {
                persisted: &persisted,
                transient: &view.transient_events,
            },
            history_length: (self.history.len() + view.transient_events.len()) as i64,
            pages: wire::Pages {
                history_url: Some(format!(
                    "http://127.0.0.1:7233/api/v1/namespaces/{}/workflow-tasks/history",
                    s.namespace
                )),
                ..wire::Pages::default()
            },
            history_size_bytes: view.history_size_bytes,
            suggest_continue_as_new: view.suggest_continue_as_new,
            deadline: view
                .token
                .started_at
                .saturating_add(s.workflow_task_timeout),
            checkpoint_url: Some(format!(
                "http://127.0.0.1:7233/api/v1/namespaces/{}/workflow-tasks/checkpoint",
                s.namespace
            )),
            payloads: None,
        });
        pushed(&request)
    }

    /// The run's persisted history, as a query or an update validation
    /// carries it.
    fn run_history<'a>(&'a self, persisted: &'a [u8]) -> wire::RunHistory<'a> {
        let s = &self.state;
        wire::RunHistory {
            namespace: &s.namespace,
            workflow_id: &s.workflow_id,
            run_id: s.run_id,
            workflow_type: &s.workflow_type,
            task_queue: &s.task_queue,
            history: wire::History {
                persisted,
                transient: &[],
            },
            history_length: self.history.len() as i64,
            pages: wire::Pages::default(),
            payloads: None,
        }
    }

    /// The query push as the dispatcher would send it now.
    fn query_request(&self, args: &Value) -> Value {
        let persisted = self.encoded_history();
        let request = wire::PushRequest::Query(wire::QueryRequest {
            run: self.run_history(&persisted),
            query_name: "status",
            query_args: args,
        });
        pushed(&request)
    }

    /// The update validation push as the dispatcher would send it now.
    fn update_validation_request(&self, args: &Value) -> Value {
        let persisted = self.encoded_history();
        let request = wire::PushRequest::UpdateValidation(wire::UpdateValidationRequest {
            run: self.run_history(&persisted),
            update_id: "add-2",
            update_name: "add_item",
            update_args: args,
        });
        pushed(&request)
    }

    /// The activity task push as the dispatcher would send it now.
    fn activity_task_request(&self, id: &str) -> Value {
        let s = &self.state;
        let a = self.activity(id);
        let engine::ActivityPhase::Started { since } = a.phase else {
            panic!("activity {id} is not started");
        };
        let mut deadline = since.saturating_add(a.start_to_close_timeout);
        if let Some(s2c) = a.schedule_to_close_timeout {
            deadline = deadline.min(a.scheduled_time.saturating_add(s2c));
        }
        let request = wire::PushRequest::ActivityTask(wire::ActivityTaskRequest {
            namespace: &s.namespace,
            task_token: self.token_string(engine::TokenKind::Activity(self.activity_token(id))),
            workflow_id: &s.workflow_id,
            run_id: s.run_id,
            workflow_type: &s.workflow_type,
            activity_id: &a.activity_id,
            activity_type: &a.activity_type,
            task_queue: &a.task_queue,
            input: &a.input,
            attempt: a.attempt,
            idempotency_key: format!("{}/{}", s.run_id, a.activity_id),
            scheduled_time: a.scheduled_time,
            started_time: since,
            deadline,
            heartbeat_timeout: a.heartbeat_timeout,
            heartbeat_details: a.heartbeat_details.as_ref(),
            payloads: None,
            payloads_url: Some(format!(
                "http://127.0.0.1:7233/api/v1/namespaces/{}/payloads",
                s.namespace
            )),
        });
        pushed(&request)
    }
}

fn schedule(
    id: &str,
    activity_type: &str,
    f: impl FnOnce(&mut ScheduleActivityTask),
) -> WorkflowCommand {
    let mut a = ScheduleActivityTask {
        activity_id: ActivityId(id.into()),
        activity_type: activity_type.into(),
        task_queue: None,
        input: json!({"order_id": "A-17"}),
        schedule_to_close_timeout: None,
        schedule_to_start_timeout: None,
        start_to_close_timeout: Some(Duration::from_secs(30)),
        heartbeat_timeout: None,
        retry_policy: None,
    };
    f(&mut a);
    WorkflowCommand::ScheduleActivityTask(a)
}

fn timer(id: &str, secs: i64) -> WorkflowCommand {
    WorkflowCommand::StartTimer(StartTimer {
        timer_id: TimerId(id.into()),
        start_to_fire_timeout: Duration::from_secs(secs),
    })
}

/// Runs that between them produce every event type, and the pushes sent
/// along the way.
fn scenario() -> (Vec<Sim>, Vec<Value>, Vec<Value>) {
    let (mut workflow_pushes, mut activity_pushes) = (Vec::new(), Vec::new());
    let mut s = Sim::start("order-17", Some(Duration::from_secs(3600)));
    workflow_pushes.push(s.workflow_task_request());
    // The first task fails in the SDK; its retry is transient.
    let token = s.workflow_task().token;
    s.apply(Command::FailWorkflowTask {
        token,
        cause: WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure,
        failure: Failure::new("KeyError: 'amount'", "KeyError"),
    });
    s.advance(200);
    workflow_pushes.push(s.workflow_task_request());
    s.complete(vec![
        schedule("1", "charge_card", |a| {
            a.retry_policy = Some(RetryPolicySpec {
                maximum_attempts: Some(5),
                non_retryable_error_types: vec!["CardDeclined".into()],
                ..RetryPolicySpec::default()
            });
        }),
        schedule("2", "reserve_stock", |_| {}),
        timer("reminder", 3600),
        timer("grace", 10),
        WorkflowCommand::RecordMarker(RecordMarker {
            marker_name: "version".into(),
            details: json!({"change_id": "v2", "version": 1}),
            failure: None,
        }),
    ]);
    activity_pushes.push(s.activity_task_request("1"));
    s.advance(800);
    let token = s.activity_token("1");
    s.apply(Command::CompleteActivity {
        token,
        result: json!({"charge_id": "ch_123"}),
    });
    workflow_pushes.push(s.workflow_task_request());
    // The task for that result times out; a retry is pushed after back-off.
    let token = s.workflow_task().token;
    s.advance(10_000);
    s.apply(Command::WorkflowTaskUndelivered {
        token,
        timed_out: true,
        error: "no answer within 10s".into(),
    });
    s.advance(200);
    // Meanwhile activity 2 fails for good (buffered behind the task).
    let token = s.activity_token("2");
    let mut failure = Failure::new("out of stock", "OutOfStock");
    failure.non_retryable = true;
    s.apply(Command::FailActivity { token, failure });
    s.complete(vec![
        WorkflowCommand::CancelTimer(CancelTimer {
            timer_id: TimerId("reminder".into()),
        }),
        schedule("3", "wait_for_courier", |a| {
            a.heartbeat_timeout = Some(Duration::from_secs(10));
            a.schedule_to_close_timeout = Some(Duration::from_secs(600));
            a.start_to_close_timeout = None;
        }),
    ]);
    s.advance(1_000);
    let token = s.activity_token("3");
    s.apply(Command::RecordActivityHeartbeat {
        token,
        details: Some(json!({"polled": 3})),
    });
    activity_pushes.push(s.activity_task_request("3"));
    s.complete(vec![WorkflowCommand::RequestCancelActivityTask(
        RequestCancelActivityTask {
            activity_id: ActivityId("3".into()),
        },
    )]);
    let token = s.activity_token("3");
    s.apply(Command::ReportActivityCanceled {
        token,
        details: Some(json!({"polled": 4})),
    });
    s.complete(vec![schedule("4", "notify", |a| {
        a.schedule_to_close_timeout = Some(Duration::from_secs(5));
        a.start_to_close_timeout = None;
    })]);
    s.advance(10_000);
    let started_event_id = s.state.timers[&TimerId("grace".into())].started_event_id;
    s.apply(Command::FireTimer(Task::UserTimer {
        timer_id: TimerId("grace".into()),
        started_event_id,
    }));
    let scheduled_event_id = s.activity("4").scheduled_event_id;
    s.apply(Command::FireTimer(Task::ActivityTimeout {
        scheduled_event_id,
        attempt: 0,
        timeout_type: TimeoutType::ScheduleToClose,
    }));
    // Closing while an activity result waits is refused (UNHANDLED_COMMAND)
    // and the workflow gets a new task with the result.
    let close = WorkflowCommand::CompleteWorkflowExecution(CompleteWorkflowExecution {
        result: json!({"status": "shipped"}),
    });
    s.complete(vec![close.clone()]);
    workflow_pushes.push(s.workflow_task_request());
    s.complete(vec![close]);
    let mut runs = vec![s];

    let mut s = Sim::start("order-18", None);
    s.complete(vec![WorkflowCommand::FailWorkflowExecution(
        FailWorkflowExecution {
            failure: Failure::new("order rejected", "OrderRejected"),
        },
    )]);
    runs.push(s);
    // A signal and a cancellation request arrive during the first task
    // (buffered); the workflow sees both, then cancels itself.
    let mut s = Sim::start("order-19", None);
    s.apply(Command::SignalWorkflow(Signal {
        signal_name: "approve".into(),
        input: json!({"approver": "ann"}),
        request_id: Some("8d5c2a31".into()),
        identity: Some("ops@example.com".into()),
    }));
    s.apply(Command::RequestCancelWorkflow {
        reason: "customer withdrew the order".into(),
        request_id: None,
        identity: Some("ops@example.com".into()),
    });
    s.complete(vec![]);
    s.complete(vec![WorkflowCommand::CancelWorkflowExecution(
        CancelWorkflowExecution { details: None },
    )]);
    runs.push(s);
    // An update admitted during the first task is delivered, accepted and
    // completed by the next.
    let mut s = Sim::start("order-22", None);
    s.apply(Command::AdmitUpdate(Update {
        update_id: "add-1".into(),
        update_name: "add_item".into(),
        input: json!([{"sku": "A-17", "qty": 2}]),
        identity: Some("shop@example.com".into()),
    }));
    s.complete(vec![]);
    s.complete(vec![WorkflowCommand::CompleteWorkflowUpdate(
        CompleteWorkflowUpdate {
            update_id: "add-1".into(),
            result: json!({"items": 1}),
            failure: None,
        },
    )]);
    runs.push(s);
    let mut s = Sim::start("order-20", Some(Duration::from_secs(60)));
    s.advance(60_000);
    s.apply(Command::FireTimer(Task::RunTimeout));
    runs.push(s);
    // Pinned by its first push, moved to another version by an operator
    // (audited), then terminated.
    let mut s = Sim::start("order-21", None);
    s.apply(Command::PinVersion {
        version: "v1".into(),
    });
    s.apply(Command::UpdateWorkflowExecutionOptions(MoveToVersion {
        from_version: "v1".into(),
        to_version: "v2".into(),
        reason: "v1 cannot reach the payment provider".into(),
        identity: Some("ops@example.com".into()),
    }));
    s.apply(Command::TerminateWorkflow {
        reason: "duplicate order".into(),
        details: None,
        identity: Some("ops@example.com".into()),
    });
    runs.push(s);
    // A child run (it names its parent) starts children that end every
    // way, and signals and cancels other workflows; the outcomes arrive
    // while its next task is in flight and are appended after it.
    let parent = ParentInfo {
        workflow_id: WorkflowId("order-17".into()),
        run_id: "0194a0f0-8c00-7000-8000-00000000a017"
            .parse()
            .expect("uuid"),
        initiated_event_id: 5,
        parent_close_policy: ParentClosePolicy::Terminate,
    };
    let mut s = Sim::start_with("order-23", None, Some(parent));
    let child = |id: &str| {
        WorkflowCommand::StartChildWorkflowExecution(StartChildWorkflowExecution {
            workflow_id: WorkflowId(id.into()),
            workflow_type: "ship_line".into(),
            task_queue: Some(TaskQueue("shipping".into())),
            input: json!({"line": id}),
            workflow_execution_timeout: None,
            workflow_run_timeout: Some(Duration::from_secs(600)),
            workflow_task_timeout: None,
            retry_policy: None,
            workflow_id_reuse_policy: Default::default(),
            parent_close_policy: ParentClosePolicy::RequestCancel,
            memo: None,
            search_attributes: Some(
                json!({"CustomerId": id})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
        })
    };
    let mut commands: Vec<WorkflowCommand> =
        ["line-1", "line-2", "line-3", "line-4", "line-5", "line-6"]
            .into_iter()
            .map(child)
            .collect();
    commands.push(WorkflowCommand::SignalExternalWorkflowExecution(
        SignalExternalWorkflowExecution {
            workflow_id: WorkflowId("po-1".into()),
            run_id: None,
            signal_name: "approve".into(),
            input: json!({"approver": "order-22"}),
            child_workflow_only: false,
        },
    ));
    commands.push(WorkflowCommand::RequestCancelExternalWorkflowExecution(
        RequestCancelExternalWorkflowExecution {
            workflow_id: WorkflowId("po-2".into()),
            run_id: None,
            child_workflow_only: false,
            reason: "superseded".into(),
        },
    ));
    commands.push(WorkflowCommand::SignalExternalWorkflowExecution(
        SignalExternalWorkflowExecution {
            workflow_id: WorkflowId("ghost".into()),
            run_id: None,
            signal_name: "approve".into(),
            input: Value::Null,
            child_workflow_only: false,
        },
    ));
    commands.push(WorkflowCommand::RequestCancelExternalWorkflowExecution(
        RequestCancelExternalWorkflowExecution {
            workflow_id: WorkflowId("ghost".into()),
            run_id: None,
            child_workflow_only: true,
            reason: String::new(),
        },
    ));
    s.complete(commands);
    let first = s.history.len() as i64 - 9;
    let outcomes = [
        ChildOutcome::Completed(json!({"tracking": "T-1"})),
        ChildOutcome::Failed(
            Failure::new("address unknown", "AddressUnknown"),
            RetryState::RetryPolicyNotSet,
        ),
        ChildOutcome::Canceled(None),
        ChildOutcome::TimedOut(RetryState::Timeout),
        ChildOutcome::Terminated,
    ];
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let initiated_event_id = first + i as i64;
        let run_id = RunId(uuid::Uuid::from_u128(0xc0 + i as u128));
        s.apply(Command::ChildStarted {
            initiated_event_id,
            run_id,
        });
        s.apply(Command::ChildClosed {
            initiated_event_id,
            first_run_id: run_id,
            run_id,
            outcome,
        });
    }
    s.apply(Command::ChildStartFailed {
        initiated_event_id: first + 5,
        cause: StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists,
    });
    for (offset, delivered) in [(6, true), (7, true), (8, false), (9, false)] {
        let initiated_event_id = first + offset;
        s.apply(match delivered {
            true => Command::ExternalRequestDelivered { initiated_event_id },
            false => Command::ExternalRequestFailed {
                initiated_event_id,
                cause: ExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound,
            },
        });
    }
    workflow_pushes.push(s.workflow_task_request());
    s.complete(vec![]);
    runs.push(s);
    // A run upserts search attributes (one removed) and continues as new
    // with a memo and new attributes; the next run records its chain.
    let mut s = Sim::start("order-22", None);
    let upsert = json!({"Priority": 2, "CustomerId": null});
    s.complete(vec![
        WorkflowCommand::UpsertWorkflowSearchAttributes(UpsertWorkflowSearchAttributes {
            search_attributes: upsert.as_object().cloned().unwrap_or_default(),
        }),
        WorkflowCommand::ContinueAsNewWorkflowExecution(ContinueAsNewWorkflowExecution {
            workflow_type: None,
            task_queue: None,
            input: json!({"order_id": "A-17", "page": 2}),
            workflow_run_timeout: None,
            workflow_task_timeout: None,
            memo: Some(json!({"customer": "ann"})),
            search_attributes: json!({"CustomerId": "ann", "Priority": 3})
                .as_object()
                .cloned(),
            retry_policy: Some(RetryPolicySpec {
                maximum_attempts: Some(3),
                ..RetryPolicySpec::default()
            }),
            backoff_start_interval: None,
        }),
    ]);
    let mut next = s.next();
    runs.push(s);
    // It fails, and its retry policy starts attempt 2 after a back-off.
    next.complete(vec![WorkflowCommand::FailWorkflowExecution(
        FailWorkflowExecution {
            failure: Failure::new("carrier down", "CarrierDown"),
        },
    )]);
    let retry = next.next();
    runs.push(next);
    runs.push(retry);
    (runs, workflow_pushes, activity_pushes)
}

/// The variant names of `pub enum <name>` in a source file.
fn enum_variants(file: &str, name: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(file)).expect("readable source");
    let start = text
        .find(&format!("pub enum {name} {{"))
        .unwrap_or_else(|| panic!("no `pub enum {name}` in {file}"));
    let body =
        until_close(&text[start + format!("pub enum {name} {{").len()..]).expect("balanced enum");
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
        .map(|l| {
            l.split(|c: char| !c.is_ascii_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        // A variant rustfmt wrapped leaves a line of its closing `),`.
        .filter(|name| !name.is_empty())
        .collect()
}

fn string_set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

#[test]
fn the_spec_names_every_event_and_command_type() {
    let spec = Spec::load();
    let schemas = &spec.doc["components"]["schemas"];
    let events = enum_variants("src/engine/event.rs", "EventAttributes");
    assert_eq!(string_set(&schemas["EventType"]["enum"]), events);
    let mapped: BTreeSet<String> = schemas["Event"]["discriminator"]["mapping"]
        .as_object()
        .expect("Event mapping")
        .keys()
        .cloned()
        .collect();
    assert_eq!(mapped, events);
    let commands = enum_variants("src/engine/command.rs", "WorkflowCommand");
    let mapped: BTreeSet<String> = schemas["WorkflowCommand"]["discriminator"]["mapping"]
        .as_object()
        .expect("WorkflowCommand mapping")
        .keys()
        .cloned()
        .collect();
    assert_eq!(mapped, commands);
}

#[test]
fn history_events_and_pushes_match_the_spec() {
    let spec = Spec::load();
    let (runs, workflow_pushes, activity_pushes) = scenario();
    let mut seen = BTreeSet::new();
    for run in &runs {
        for event in &run.history {
            let v = serde_json::to_value(event).expect("serializable");
            spec.validate_named("Event", &v)
                .unwrap_or_else(|e| panic!("{v}: {e}"));
            seen.insert(event.attributes.event_type().to_owned());
        }
    }
    let all = string_set(&spec.doc["components"]["schemas"]["EventType"]["enum"]);
    let missed: Vec<_> = all.difference(&seen).collect();
    assert!(
        missed.is_empty(),
        "the scenario produced no {missed:?} event"
    );
    for push in workflow_pushes.iter().chain(&activity_pushes) {
        spec.validate_named("PushRequest", push)
            .unwrap_or_else(|e| panic!("{push}: {e}"));
    }
    // Queries and update validations, on open and closed runs alike.
    let args = [json!(null), json!([]), json!([{"sku": "A-17", "qty": 2}])];
    for (run, args) in runs.iter().zip(args.iter().cycle()) {
        for (push, name) in [
            (run.query_request(args), "QueryRequest"),
            (
                run.update_validation_request(args),
                "UpdateValidationRequest",
            ),
        ] {
            spec.validate_named(name, &push)
                .unwrap_or_else(|e| panic!("{push}: {e}"));
            spec.validate_named("PushRequest", &push)
                .unwrap_or_else(|e| panic!("{push}: {e}"));
        }
    }
    // A retried task carries its transient Scheduled event before Started.
    let retry = &workflow_pushes[1];
    assert_eq!(retry["attempt"], 2);
    let types: Vec<&str> = retry["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        types[types.len() - 2..],
        ["WorkflowTaskScheduled", "WorkflowTaskStarted"]
    );
    if let Ok(dir) = std::env::var("BATON_OPENAPI_DUMP") {
        // For refreshing the examples in docs/protocol.md by hand.
        let dump = json!({"workflow_tasks": workflow_pushes, "activity_tasks": activity_pushes});
        let text = serde_json::to_string_pretty(&dump).expect("serializable");
        std::fs::write(Path::new(&dir).join("pushes.json"), text).expect("writable dump");
    }
}

/// The push answers: schemas the dispatcher parses with a wire type.
const ANSWERS: [&str; 4] = [
    "WorkflowTaskResponse",
    "ActivityTaskResponse",
    "QueryResponse",
    "UpdateValidationResponse",
];

/// Parses `value` with the wire type of the answer schema `name`.
fn parse_answer(name: &str, value: &Value) -> Result<(), serde_json::Error> {
    let v = value.clone();
    match name {
        "WorkflowTaskResponse" => serde_json::from_value::<wire::WorkflowTaskResponse>(v).map(drop),
        "ActivityTaskResponse" => serde_json::from_value::<wire::ActivityTaskResponse>(v).map(drop),
        "QueryResponse" => serde_json::from_value::<wire::QueryResponse>(v).map(drop),
        "UpdateValidationResponse" => {
            serde_json::from_value::<wire::UpdateValidationResponse>(v).map(drop)
        }
        _ => unreachable!("{name} is not an answer schema"),
    }
}

#[test]
fn the_spec_examples_are_accepted_by_the_wire_types() {
    let spec = Spec::load();
    let schemas = &spec.doc["components"]["schemas"];
    for name in ANSWERS {
        for example in schemas[name]["examples"].as_array().expect("examples") {
            spec.validate_named(name, example).unwrap();
            parse_answer(name, example).unwrap_or_else(|e| panic!("{example}: {e}"));
        }
    }
    // A rejection may also say `"accepted": false`.
    spec.validate_named(
        "UpdateValidationResponse",
        &json!({"accepted": false, "failure": {"message": "x"}}),
    )
    .unwrap();
    // The schemas refuse what the dispatcher refuses.
    let refused = [
        ("WorkflowTaskResponse", json!({})),
        (
            "WorkflowTaskResponse",
            json!({"commands": [], "failure": {"failure": {"message": "x"}}}),
        ),
        ("WorkflowTaskResponse", json!({"commands": [], "extra": 1})),
        (
            "WorkflowTaskResponse",
            json!({"commands": [{"command_type": "StartTimer", "attributes": {"timer_id": "t"}}]}),
        ),
        ("ActivityTaskResponse", json!({})),
        (
            "ActivityTaskResponse",
            json!({"result": 1, "failure": {"message": "x"}}),
        ),
        ("QueryResponse", json!({})),
        (
            "QueryResponse",
            json!({"result": 1, "failure": {"message": "x"}}),
        ),
        ("QueryResponse", json!({"commands": []})),
        ("UpdateValidationResponse", json!({})),
        ("UpdateValidationResponse", json!({"accepted": false})),
        (
            "UpdateValidationResponse",
            json!({"accepted": true, "failure": {"message": "x"}}),
        ),
        (
            "UpdateValidationResponse",
            json!({"accepted": true, "extra": 1}),
        ),
    ];
    for (name, body) in refused {
        assert!(
            spec.validate_named(name, &body).is_err(),
            "{name} accepts {body}"
        );
    }
}

/// JSON blocks in docs/protocol.md preceded by a line `<!-- schema: Name -->`.
#[test]
fn the_protocol_doc_examples_match_the_spec() {
    let spec = Spec::load();
    let path = root().join("docs/protocol.md");
    let Ok(doc) = std::fs::read_to_string(&path) else {
        panic!("{} is missing", path.display());
    };
    let mut n_checked = 0;
    let mut rest = doc.as_str();
    while let Some(at) = rest.find("\n<!-- schema: ") {
        rest = &rest[at + "\n<!-- schema: ".len()..];
        let name = &rest[..rest.find(" -->").expect("closed marker")];
        let block = rest
            .find("```json\n")
            .expect("a json block after the marker");
        let body = &rest[block + "```json\n".len()..];
        let body = &body[..body.find("\n```").expect("closed block")];
        let value: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("docs/protocol.md example for {name}: {e}"));
        spec.validate_named(name, &value)
            .unwrap_or_else(|e| panic!("docs/protocol.md example for {name}: {e}"));
        if ANSWERS.contains(&name) {
            parse_answer(name, &value)
                .unwrap_or_else(|e| panic!("docs/protocol.md example for {name}: {e}"));
        }
        n_checked += 1;
    }
    assert!(
        n_checked >= 4,
        "only {n_checked} marked examples in docs/protocol.md"
    );
}

/// Empty strings and nulls: what the spec allows is what the server
/// accepts (tests/api.rs checks the server side on both backends).
#[test]
fn the_spec_is_exact_about_empty_values_and_nulls() {
    let spec = Spec::load();
    for ok in ["30s", "1.5s", "500ms", "10m", "1h 30m", "7 days", " 2s "] {
        spec.validate_named("Duration", &json!(ok))
            .unwrap_or_else(|e| panic!("Duration {ok:?}: {e}"));
    }
    for bad in ["", " ", "s", "-1s", "1.5"] {
        assert!(
            spec.validate_named("Duration", &json!(bad)).is_err(),
            "Duration {bad:?} should be refused"
        );
    }
    assert!(spec.validate_named("TaskToken", &json!("")).is_err());
    for ok in [
        json!(null),
        json!({}),
        json!({"team": "growth", "n": [1, {"x": null}]}),
    ] {
        spec.validate_named("Memo", &ok)
            .unwrap_or_else(|e| panic!("Memo {ok}: {e}"));
    }
    for bad in [json!(5), json!("x"), json!([1])] {
        assert!(spec.validate_named("Memo", &bad).is_err(), "Memo {bad}");
    }
    // Nested objects: a retry policy's members take `null` for absent, a
    // failure's never (but `details`, a payload).
    for ok in [
        json!({"initial_interval": null, "backoff_coefficient": null, "maximum_interval": null,
               "maximum_attempts": null, "non_retryable_error_types": null}),
        json!({"initial_interval": "1s", "non_retryable_error_types": ["A"]}),
    ] {
        spec.validate_named("RetryPolicySpec", &ok)
            .unwrap_or_else(|e| panic!("RetryPolicySpec {ok}: {e}"));
    }
    for bad in [
        json!({"non_retryable_error_types": [null]}),
        json!({"initial_interval": ""}),
    ] {
        assert!(
            spec.validate_named("RetryPolicySpec", &bad).is_err(),
            "RetryPolicySpec {bad}"
        );
    }
    spec.validate_named("Failure", &json!({"message": "m", "details": null}))
        .expect("a failure's details may be null");
    for member in [
        "type",
        "non_retryable",
        "stack_trace",
        "timeout_type",
        "cause",
        "kind",
        "activity_failure_info",
        "child_workflow_execution_failure_info",
    ] {
        let failure = json!({"message": "m", member: null});
        assert!(
            spec.validate_named("Failure", &failure).is_err(),
            "Failure {failure}"
        );
    }
    let list = &spec.doc["paths"]["/api/v1/namespaces/{namespace}/workflows"]["get"];
    let status = list["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "status"))
        .expect("list has a status parameter");
    for ok in ["RUNNING", "running", "Continued_As_New", "timed_out"] {
        spec.validate(&status["schema"], &json!(ok))
            .unwrap_or_else(|e| panic!("status {ok:?}: {e}"));
    }
    for bad in ["", "RUN", "runningx", "OPEN"] {
        assert!(
            spec.validate(&status["schema"], &json!(bad)).is_err(),
            "status {bad:?} should be refused"
        );
    }
}

/// Nulls in command attributes: an optional attribute without a default
/// takes `null` for absent on both sides (the spec and the server's parse
/// of an answer); one with a default refuses it on both.
#[test]
fn the_spec_and_the_server_agree_on_nulls_in_command_attributes() {
    let spec = Spec::load();
    let command = |command_type: &str, attributes: Value| json!({"commands": [{"command_type": command_type, "attributes": attributes}]});
    let accepted = [
        command(
            "ScheduleActivityTask",
            json!({"activity_id": "1", "activity_type": "a", "task_queue": null,
                   "input": null, "schedule_to_close_timeout": null,
                   "schedule_to_start_timeout": null, "start_to_close_timeout": null,
                   "heartbeat_timeout": null, "retry_policy": null}),
        ),
        command(
            "RecordMarker",
            json!({"marker_name": "m", "details": null, "failure": null}),
        ),
        command(
            "CompleteWorkflowUpdate",
            json!({"update_id": "u", "result": null, "failure": null}),
        ),
        command("CancelWorkflowExecution", json!({"details": null})),
        command("CompleteWorkflowExecution", json!({"result": null})),
        command(
            "StartChildWorkflowExecution",
            json!({"workflow_id": "c", "workflow_type": "C", "task_queue": null,
                   "input": null, "workflow_execution_timeout": null,
                   "workflow_run_timeout": null, "workflow_task_timeout": null,
                   "retry_policy": null, "memo": null}),
        ),
        command(
            "SignalExternalWorkflowExecution",
            json!({"workflow_id": "w", "signal_name": "s", "run_id": null, "input": null}),
        ),
        command(
            "RequestCancelExternalWorkflowExecution",
            json!({"workflow_id": "w", "run_id": null}),
        ),
        command(
            "ContinueAsNewWorkflowExecution",
            json!({"workflow_type": null, "task_queue": null, "input": null,
                   "workflow_run_timeout": null, "workflow_task_timeout": null,
                   "memo": null, "retry_policy": null, "backoff_start_interval": null}),
        ),
    ];
    for answer in accepted {
        spec.validate_named("WorkflowTaskResponse", &answer)
            .unwrap_or_else(|e| panic!("spec refuses {answer}: {e}"));
        parse_answer("WorkflowTaskResponse", &answer)
            .unwrap_or_else(|e| panic!("server refuses {answer}: {e}"));
    }
    let refused = [
        command(
            "SignalExternalWorkflowExecution",
            json!({"workflow_id": "w", "signal_name": "s", "child_workflow_only": null}),
        ),
        command(
            "RequestCancelExternalWorkflowExecution",
            json!({"workflow_id": "w", "reason": null}),
        ),
        command(
            "StartChildWorkflowExecution",
            json!({"workflow_id": "c", "workflow_type": "C", "parent_close_policy": null}),
        ),
        command(
            "StartChildWorkflowExecution",
            json!({"workflow_id": "c", "workflow_type": "C", "workflow_id_reuse_policy": null}),
        ),
        command(
            "StartTimer",
            json!({"timer_id": "t", "start_to_fire_timeout": null}),
        ),
        command("FailWorkflowExecution", json!({"failure": null})),
        command(
            "ScheduleActivityTask",
            json!({"activity_id": "1", "activity_type": "a", "start_to_close_timeout": "1s",
                   "retry_policy": {"non_retryable_error_types": [null]}}),
        ),
    ];
    for answer in refused {
        assert!(
            spec.validate_named("WorkflowTaskResponse", &answer)
                .is_err(),
            "spec accepts {answer}"
        );
        assert!(
            parse_answer("WorkflowTaskResponse", &answer).is_err(),
            "server accepts {answer}"
        );
    }
}

/// A push body as the dispatcher writes it, parsed back.
fn pushed(request: &wire::PushRequest<'_>) -> Value {
    serde_json::from_slice(&wire::encode(request).expect("serializable")).expect("JSON")
}
