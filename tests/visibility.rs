//! List filters end to end.
//!
//! A property test: random well-formed queries, written as text, over
//! random runs committed to SQLite, PostgreSQL and the in-memory store,
//! return exactly the runs, in exactly the order, that a reference
//! evaluator written here (not `visibility::eval`) says; paging with
//! the tokens' cursors gives the same list. And the REST API on both
//! databases: the list and count routes with queries, ORDER BY with
//! stable pages, and bad queries refused with the token and column.
// Tests and their shared fixtures unwrap freely.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use baton::engine::{
    self, Ctx, Limits, ParentClosePolicy, ParentInfo, Registry, RunStatus, SearchAttributeType,
    SearchAttributes, Slot, StartRun,
};
use baton::ids::{Namespace, RunId, TaskQueue, WorkflowId};
use baton::store::{MemoryStore, PostgresStore, RunChange, SqliteStore, Store};
use baton::time::Timestamp;
use baton::visibility;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::{json, Value};

use common::{fresh_postgres_database, spawn_server, Db};

on_both_databases!(
    lists_and_counts_by_query,
    bad_queries_are_refused_naming_the_token
);

const T0: i64 = 1_700_000_000_000;

// ---- The reference ---------------------------------------------------------

/// A run as the reference sees it.
#[derive(Clone, Debug)]
struct Run {
    run_id: RunId,
    workflow_id: String,
    workflow_type: String,
    task_queue: String,
    status: RunStatus,
    start: i64,
    close: Option<i64>,
    history_length: i64,
    parent: Option<(String, RunId)>,
    pinned: Option<String>,
    /// The memo's `TemporalScheduledById`.
    scheduled_by: Option<String>,
    /// Custom attributes (see [`registry`]): a Keyword, an Int, a Double
    /// (in halves: `score` 3 is 1.5), a Bool, a KeywordList and a Text.
    customer: Option<String>,
    priority: Option<i64>,
    score: Option<i64>,
    urgent: Option<bool>,
    tags: Option<Vec<String>>,
    note: Option<String>,
}

/// The custom attributes the generated runs carry, in slots other than
/// the first of each type, so slot mapping is exercised.
fn registry() -> Registry {
    let slot = |kind, index| Slot { kind, index };
    Registry::new([
        (
            "CustomerId".to_owned(),
            slot(SearchAttributeType::Keyword, 3),
        ),
        ("Priority".to_owned(), slot(SearchAttributeType::Int, 2)),
        ("Score".to_owned(), slot(SearchAttributeType::Double, 1)),
        ("Urgent".to_owned(), slot(SearchAttributeType::Bool, 3)),
        ("Tags".to_owned(), slot(SearchAttributeType::KeywordList, 2)),
        ("Note".to_owned(), slot(SearchAttributeType::Text, 1)),
    ])
}

/// A run's custom attributes as a start gives them, typed.
fn search_attributes(run: &Run) -> SearchAttributes {
    let mut given = serde_json::Map::new();
    let mut put = |name: &str, v: Option<Value>| {
        if let Some(v) = v {
            given.insert(name.to_owned(), v);
        }
    };
    put("CustomerId", run.customer.clone().map(Value::from));
    put("Priority", run.priority.map(Value::from));
    put("Score", run.score.map(|s| Value::from(s as f64 / 2.0)));
    put("Urgent", run.urgent.map(Value::from));
    put("Tags", run.tags.clone().map(Value::from));
    put("Note", run.note.clone().map(Value::from));
    engine::typed_search_attributes(&registry(), &given).expect("valid attributes")
}

/// The words Text matching compares, as `visibility` defines them.
fn words(s: &str) -> Vec<String> {
    engine::text_tokens(s)
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum V {
    Int(i64),
    Text(String),
}

/// The attributes the generator uses, with how to read each from a run.
#[derive(Clone, Copy, Debug)]
enum Attr {
    WorkflowId,
    RunId,
    WorkflowType,
    TaskQueue,
    Status,
    StartTime,
    CloseTime,
    Duration,
    HistoryLength,
    ParentWorkflowId,
    ParentRunId,
    Pinned,
    ScheduledBy,
    Customer,
    Priority,
    Score,
    Urgent,
}

impl Attr {
    fn name(self) -> &'static str {
        match self {
            Attr::WorkflowId => "WorkflowId",
            Attr::RunId => "RunId",
            Attr::WorkflowType => "WorkflowType",
            Attr::TaskQueue => "TaskQueue",
            Attr::Status => "ExecutionStatus",
            Attr::StartTime => "StartTime",
            Attr::CloseTime => "CloseTime",
            Attr::Duration => "ExecutionDuration",
            Attr::HistoryLength => "HistoryLength",
            Attr::ParentWorkflowId => "ParentWorkflowId",
            Attr::ParentRunId => "ParentRunId",
            Attr::Pinned => "BatonPinnedVersion",
            Attr::ScheduledBy => "TemporalScheduledById",
            Attr::Customer => "CustomerId",
            Attr::Priority => "Priority",
            Attr::Score => "Score",
            Attr::Urgent => "Urgent",
        }
    }

    fn of(self, run: &Run) -> Option<V> {
        let text = |s: &str| Some(V::Text(s.to_owned()));
        match self {
            Attr::WorkflowId => text(&run.workflow_id),
            Attr::RunId => text(&run.run_id.to_string()),
            Attr::WorkflowType => text(&run.workflow_type),
            Attr::TaskQueue => text(&run.task_queue),
            Attr::Status => text(run.status.as_str()),
            Attr::StartTime => Some(V::Int(run.start)),
            Attr::CloseTime => run.close.map(V::Int),
            Attr::Duration => run.close.map(|c| V::Int(c - run.start)),
            Attr::HistoryLength => Some(V::Int(run.history_length)),
            Attr::ParentWorkflowId => run.parent.as_ref().and_then(|p| text(&p.0)),
            Attr::ParentRunId => run.parent.as_ref().and_then(|p| text(&p.1.to_string())),
            Attr::Pinned => run.pinned.as_deref().and_then(text),
            Attr::ScheduledBy => run.scheduled_by.as_deref().and_then(text),
            Attr::Customer => run.customer.as_deref().and_then(text),
            Attr::Priority => run.priority.map(V::Int),
            Attr::Score => run.score.map(V::Int),
            Attr::Urgent => run.urgent.map(|b| V::Int(i64::from(b))),
        }
    }
}

/// A generated list query: a filter (or none) and ORDER BY terms.
type Generated = (Option<Pred>, Vec<(Attr, bool)>);

/// A generated filter: its text and its meaning.
#[derive(Clone, Debug)]
enum Pred {
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
    Cmp(Attr, &'static str, V, String),
    In(Attr, Vec<(V, String)>),
    Between(Attr, (V, String), (V, String)),
    StartsWith(Attr, String),
    IsNull(Attr, bool),
    /// `Tags = 'x'`: the list contains it.
    Contains(String),
    /// `Tags IN (…)`: the list contains one of them.
    ContainsAny(Vec<String>),
    /// `Note = '…'` (or `!=` when true): every word of the literal.
    Words(String, bool),
}

impl Pred {
    fn holds(&self, run: &Run) -> bool {
        match self {
            Pred::And(l, r) => l.holds(run) && r.holds(run),
            Pred::Or(l, r) => l.holds(run) || r.holds(run),
            Pred::Cmp(a, op, v, _) => a.of(run).is_some_and(|x| match *op {
                "=" => x == *v,
                "!=" => x != *v,
                "<" => x < *v,
                "<=" => x <= *v,
                ">" => x > *v,
                ">=" => x >= *v,
                _ => unreachable!("the generator's operators"),
            }),
            Pred::In(a, vs) => a.of(run).is_some_and(|x| vs.iter().any(|(v, _)| x == *v)),
            Pred::Between(a, (lo, _), (hi, _)) => a.of(run).is_some_and(|x| *lo <= x && x <= *hi),
            Pred::StartsWith(a, p) => {
                matches!(a.of(run), Some(V::Text(x)) if x.starts_with(p.as_str()))
            }
            Pred::IsNull(a, negated) => a.of(run).is_none() != *negated,
            Pred::Contains(t) => run.tags.as_ref().is_some_and(|tags| tags.contains(t)),
            Pred::ContainsAny(ts) => run
                .tags
                .as_ref()
                .is_some_and(|tags| ts.iter().any(|t| tags.contains(t))),
            Pred::Words(lit, negated) => run.note.as_ref().is_some_and(|note| {
                let have = words(note);
                words(lit).iter().all(|w| have.contains(w)) != *negated
            }),
        }
    }

    fn text(&self) -> String {
        match self {
            Pred::And(l, r) => format!("({}) AND ({})", l.text(), r.text()),
            Pred::Or(l, r) => format!("({}) or ({})", l.text(), r.text()),
            Pred::Cmp(a, op, _, lit) => format!("{} {op} {lit}", a.name()),
            Pred::In(a, vs) => {
                let lits: Vec<&str> = vs.iter().map(|(_, l)| l.as_str()).collect();
                format!("{} IN ({})", a.name(), lits.join(", "))
            }
            Pred::Between(a, (_, lo), (_, hi)) => {
                format!("{} BETWEEN {lo} and {hi}", a.name())
            }
            Pred::StartsWith(a, p) => format!("{} STARTS_WITH {}", a.name(), quote(p)),
            Pred::IsNull(a, false) => format!("{} IS NULL", a.name()),
            Pred::IsNull(a, true) => format!("{} is not null", a.name()),
            Pred::Contains(t) => format!("Tags = {}", quote(t)),
            Pred::ContainsAny(ts) => {
                let lits: Vec<String> = ts.iter().map(|t| quote(t)).collect();
                format!("Tags IN ({})", lits.join(", "))
            }
            Pred::Words(lit, false) => format!("Note = {}", quote(lit)),
            Pred::Words(lit, true) => format!("Note != {}", quote(lit)),
        }
    }
}

/// A string literal, its quotes escaped SQL's way.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn datetime(ms: i64) -> String {
    format!("\"{}\"", Timestamp(ms))
}

/// The reference order: the terms (a missing value after every value),
/// then run id in the last term's direction.
fn reference_order(terms: &[(Attr, bool)], a: &Run, b: &Run) -> Ordering {
    let mut all = terms.to_vec();
    let last = all.last().is_none_or(|t| t.1);
    if all.is_empty() {
        all.push((Attr::StartTime, true));
    }
    all.push((Attr::RunId, last));
    for (attr, descending) in all {
        let ord = match (attr.of(a), attr.of(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => x.cmp(&y),
        };
        let ord = if descending { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

// ---- Generators ------------------------------------------------------------

const TYPES: [&str; 5] = ["A", "B", "order", "order.v2", "Ölung"];
const PREFIXES: [&str; 5] = ["order-", "pay-", "o", "Order-", "é-"];
const STATUSES: [(RunStatus, &str); 7] = [
    (RunStatus::Running, "Running"),
    (RunStatus::Completed, "Completed"),
    (RunStatus::Failed, "Failed"),
    (RunStatus::Canceled, "Canceled"),
    (RunStatus::Terminated, "TERMINATED"),
    (RunStatus::ContinuedAsNew, "ContinuedAsNew"),
    (RunStatus::TimedOut, "timed_out"),
];

const CUSTOMERS: [&str; 4] = ["c1", "c2", "c10", "Ç"];
const TAGS: [&str; 4] = ["red", "blue", "Red", "x y"];
const NOTES: [&str; 4] = ["big red box", "Red, green", "", "small BOX 42"];

fn runs() -> impl Strategy<Value = Vec<Run>> {
    let run = (
        0..PREFIXES.len(),
        0..TYPES.len(),
        any::<bool>(),
        0..STATUSES.len(),
        0_i64..12,
        proptest::option::of(0_i64..6),
        1_i64..20,
        proptest::option::of(0..2_usize),
        proptest::option::of(prop_oneof![Just("v1"), Just("v2")]),
    );
    let custom = (
        proptest::option::of(proptest::sample::select(CUSTOMERS.to_vec())),
        proptest::option::of(-2_i64..4),
        proptest::option::of(-3_i64..4),
        proptest::option::of(any::<bool>()),
        proptest::option::of(proptest::sample::subsequence(TAGS.to_vec(), 0..3)),
        proptest::option::of(proptest::sample::select(NOTES.to_vec())),
        proptest::option::of(prop_oneof![Just("daily"), Just("hourly")]),
    );
    proptest::collection::vec((run, custom), 1..40).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(
                |(
                    i,
                    (
                        (prefix, ty, other_queue, status, start, close, len, parent, pinned),
                        (customer, priority, score, urgent, tags, note, scheduled_by),
                    ),
                )| {
                    let (status, _) = STATUSES[status];
                    let start = T0 + start * 1000;
                    Run {
                        run_id: RunId::generate(),
                        workflow_id: format!("{}{i}", PREFIXES[prefix]),
                        workflow_type: TYPES[ty].to_owned(),
                        task_queue: if other_queue { "other" } else { "main" }.to_owned(),
                        status,
                        start,
                        // Open runs have no close time; closed ones do.
                        close: status.is_closed().then(|| start + close.unwrap_or(0) * 500),
                        history_length: len,
                        parent: parent.map(|p| (format!("parent-{p}"), RunId::generate())),
                        pinned: pinned.map(str::to_owned),
                        customer: customer.map(str::to_owned),
                        priority,
                        score,
                        urgent,
                        // An empty list is no value, as a start treats it.
                        tags: tags
                            .filter(|t| !t.is_empty())
                            .map(|t| t.into_iter().map(str::to_owned).collect()),
                        note: note.map(str::to_owned),
                        scheduled_by: scheduled_by.map(str::to_owned),
                    }
                },
            )
            .collect()
    })
}

/// A literal for `attr` with its value: near the generated runs' values,
/// so comparisons split them.
fn literal(attr: Attr) -> BoxedStrategy<(V, String)> {
    let text = |pool: Vec<String>| {
        proptest::sample::select(pool)
            .prop_map(|s| (V::Text(s.clone()), quote(&s)))
            .boxed()
    };
    match attr {
        Attr::WorkflowId => text(
            [
                "order-1", "order-", "pay-3", "o2", "Order-9", "é-4", "p", "order-10", "z",
            ]
            .map(str::to_owned)
            .to_vec(),
        ),
        Attr::WorkflowType => text(
            ["A", "B", "order", "order.v2", "Ölung", "C", "a"]
                .map(str::to_owned)
                .to_vec(),
        ),
        Attr::TaskQueue => text(["main", "other", "m"].map(str::to_owned).to_vec()),
        Attr::ParentWorkflowId => text(
            ["parent-0", "parent-1", "parent-"]
                .map(str::to_owned)
                .to_vec(),
        ),
        Attr::Pinned => text(["v1", "v2", "v0"].map(str::to_owned).to_vec()),
        Attr::ScheduledBy => text(["daily", "hourly", "d"].map(str::to_owned).to_vec()),
        Attr::RunId | Attr::ParentRunId => text(["0", "8", "f", "019"].map(str::to_owned).to_vec()),
        Attr::Status => proptest::sample::select(STATUSES.to_vec())
            .prop_map(|(st, name)| (V::Text(st.as_str().to_owned()), quote(name)))
            .boxed(),
        Attr::StartTime | Attr::CloseTime => (-1_i64..28)
            .prop_map(|k| {
                let ms = T0 + k * 500;
                (V::Int(ms), datetime(ms))
            })
            .boxed(),
        Attr::Duration => (-1_i64..8)
            .prop_map(|k| (V::Int(k * 500), format!("'{}ms'", k * 500)))
            .prop_filter("durations are not negative", |(v, _)| *v >= V::Int(0))
            .boxed(),
        Attr::HistoryLength => (0_i64..21).prop_map(|n| (V::Int(n), n.to_string())).boxed(),
        Attr::Customer => text(["c1", "c2", "c", "Ç", "d"].map(str::to_owned).to_vec()),
        Attr::Priority => (-3_i64..5).prop_map(|n| (V::Int(n), n.to_string())).boxed(),
        Attr::Score => (-4_i64..5)
            .prop_map(|k| (V::Int(k), format!("{:?}", k as f64 / 2.0)))
            .boxed(),
        Attr::Urgent => any::<bool>()
            .prop_map(|b| (V::Int(i64::from(b)), b.to_string().to_uppercase()))
            .boxed(),
    }
}

const ATTRS: [Attr; 17] = [
    Attr::WorkflowId,
    Attr::RunId,
    Attr::WorkflowType,
    Attr::TaskQueue,
    Attr::Status,
    Attr::StartTime,
    Attr::CloseTime,
    Attr::Duration,
    Attr::HistoryLength,
    Attr::ParentWorkflowId,
    Attr::ParentRunId,
    Attr::Pinned,
    Attr::ScheduledBy,
    Attr::Customer,
    Attr::Priority,
    Attr::Score,
    Attr::Urgent,
];

fn atom() -> BoxedStrategy<Pred> {
    proptest::sample::select(ATTRS.to_vec())
        .prop_flat_map(|attr| {
            // Equality only: statuses, custom Keywords and Bools.
            let is_status = matches!(attr, Attr::Status | Attr::Customer | Attr::Urgent);
            let is_text = matches!(
                attr,
                Attr::WorkflowId
                    | Attr::RunId
                    | Attr::WorkflowType
                    | Attr::TaskQueue
                    | Attr::ParentWorkflowId
                    | Attr::ParentRunId
                    | Attr::Pinned
                    | Attr::ScheduledBy
                    | Attr::Customer
            );
            let ops: Vec<&'static str> = if is_status {
                vec!["=", "!="]
            } else {
                vec!["=", "!=", "<", "<=", ">", ">="]
            };
            let cmp = (proptest::sample::select(ops), literal(attr))
                .prop_map(move |(op, (v, lit))| Pred::Cmp(attr, op, v, lit));
            let within = proptest::collection::vec(literal(attr), 1..4)
                .prop_map(move |vs| Pred::In(attr, vs));
            let null = any::<bool>().prop_map(move |n| Pred::IsNull(attr, n));
            let mut choices = vec![cmp.boxed(), null.boxed()];
            if !matches!(attr, Attr::Urgent) {
                choices.push(within.boxed());
            }
            if !is_status {
                choices.push(
                    (literal(attr), literal(attr))
                        .prop_map(move |(lo, hi)| Pred::Between(attr, lo, hi))
                        .boxed(),
                );
            }
            if is_text {
                let prefixes = [
                    "", "o", "order", "order-1", "pay", "é", "O", "A", "p", "v", "0",
                ];
                choices.push(
                    proptest::sample::select(prefixes.to_vec())
                        .prop_map(move |p| Pred::StartsWith(attr, p.to_owned()))
                        .boxed(),
                );
            }
            proptest::strategy::Union::new(choices)
        })
        .boxed()
        .prop_union(custom_atom())
        .boxed()
}

/// Predicates only KeywordList and Text attributes have.
fn custom_atom() -> BoxedStrategy<Pred> {
    let tag = proptest::sample::select(["red", "blue", "Red", "x y", "green"].to_vec());
    prop_oneof![
        tag.clone().prop_map(|t| Pred::Contains(t.to_owned())),
        proptest::collection::vec(tag, 1..3)
            .prop_map(|ts| Pred::ContainsAny(ts.into_iter().map(str::to_owned).collect())),
        (
            proptest::sample::select(["red", "RED box", "green", "", "box 42", "b"].to_vec()),
            any::<bool>()
        )
            .prop_map(|(w, n)| Pred::Words(w.to_owned(), n)),
    ]
    .boxed()
}

fn pred() -> impl Strategy<Value = Pred> {
    atom().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Pred::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner).prop_map(|(l, r)| Pred::Or(Box::new(l), Box::new(r))),
        ]
    })
}

/// ORDER BY terms over sortable attributes (every one here).
fn order() -> impl Strategy<Value = Vec<(Attr, bool)>> {
    proptest::collection::vec(
        (proptest::sample::select(ATTRS.to_vec()), any::<bool>()),
        0..3,
    )
    .prop_map(|mut terms| {
        // A repeated attribute adds nothing; keep the reference simple.
        let mut seen = HashSet::new();
        terms.retain(|(a, _)| seen.insert(a.name()));
        terms
    })
}

// ---- The property ------------------------------------------------------------

fn ctx(now: i64) -> Ctx {
    Ctx {
        now: Timestamp(now),
        limits: Limits::default(),
        next_run_id: RunId::generate(),
    }
}

async fn commit_runs(store: &dyn Store, ns: &Namespace, runs: &[Run]) {
    let changes: Vec<RunChange> = runs
        .iter()
        .map(|run| {
            let cmd = StartRun {
                namespace: ns.clone(),
                workflow_id: WorkflowId::from(run.workflow_id.as_str()),
                run_id: run.run_id,
                workflow_type: run.workflow_type.clone(),
                task_queue: TaskQueue::from(run.task_queue.as_str()),
                input: json!(null),
                execution_timeout: None,
                run_timeout: None,
                task_timeout: None,
                request_id: None,
                identity: None,
                pinned_version: run.pinned.clone(),
                parent: run.parent.as_ref().map(|(wf, run_id)| ParentInfo {
                    workflow_id: WorkflowId::from(wf.as_str()),
                    run_id: *run_id,
                    initiated_event_id: 5,
                    parent_close_policy: ParentClosePolicy::default(),
                }),
                memo: run
                    .scheduled_by
                    .as_ref()
                    .map(|s| json!({ "TemporalScheduledById": s })),
                search_attributes: search_attributes(run),
                retry_policy: None,
                chain: None,
            };
            let mut transition = engine::start(cmd, &ctx(run.start)).expect("a valid start");
            // The listing columns come from the snapshot: shape it as the
            // generated run (no events are needed for listing).
            let state = &mut transition.state;
            state.status = run.status;
            state.close_time = run.close.map(Timestamp);
            state.next_event_id = run.history_length + 1;
            transition.events.clear();
            transition.effects.clear();
            RunChange {
                expected_version: None,
                transition,
                request_id: None,
            }
        })
        .collect();
    store.commit(&changes).await.expect("commit the runs");
}

/// Checks every query against the reference over `runs`, committed to
/// `store` under a namespace of their own.
async fn agree(store: &dyn Store, ns: &Namespace, runs: &[Run], queries: &[Generated]) {
    commit_runs(store, ns, runs).await;
    for (pred, terms) in queries {
        let mut text = pred.as_ref().map(Pred::text).unwrap_or_default();
        if !terms.is_empty() {
            let terms: Vec<String> = terms
                .iter()
                .map(|(a, d)| format!("{} {}", a.name(), if *d { "DESC" } else { "asc" }))
                .collect();
            text = format!("{text} ORDER BY {}", terms.join(", "));
        }
        let query =
            visibility::parse_list(&text, &registry()).unwrap_or_else(|e| panic!("{text}: {e}"));
        let mut expected: Vec<&Run> = runs
            .iter()
            .filter(|r| pred.as_ref().is_none_or(|p| p.holds(r)))
            .collect();
        expected.sort_by(|a, b| reference_order(terms, a, b));
        let expected: Vec<RunId> = expected.iter().map(|r| r.run_id).collect();

        let listed = store.list_runs(ns, &query, None, 1000).await.expect("list");
        let listed: Vec<RunId> = listed.iter().map(|r| r.run_id).collect();
        assert_eq!(listed, expected, "{text}");

        // Pages of 3, each after the previous page's last run.
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .list_runs(ns, &query, cursor.as_ref(), 3)
                .await
                .expect("page");
            cursor = page.last().map(|r| query.cursor_after(r));
            paged.extend(page.iter().map(|r| r.run_id));
            if page.len() < 3 {
                break;
            }
        }
        assert_eq!(paged, expected, "{text}: paged");

        let count = visibility::parse_count(
            &pred.as_ref().map(Pred::text).unwrap_or_default(),
            &registry(),
        )
        .expect("the filter counts too");
        let counted = store.count_runs(ns, &count).await.expect("count");
        assert_eq!(counted, [(None, expected.len() as i64)], "{text}: count");
    }
}

fn property(store: Arc<dyn Store>, rt: &tokio::runtime::Runtime, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let queries =
        proptest::collection::vec((proptest::option::weighted(0.9, pred()), order()), 1..16);
    let case = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&(runs(), queries), |(runs, queries)| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // A namespace per case: the cases share the database.
            let ns = Namespace::from(format!("case-{n}").as_str());
            rt.block_on(agree(&*store, &ns, &runs, &queries));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn random_queries_agree_with_the_reference_on_sqlite() {
    let rt = runtime();
    let store = rt.block_on(async {
        let store = SqliteStore::connect("sqlite::memory:").await.expect("open");
        store.migrate().await.expect("migrate");
        Arc::new(store)
    });
    property(store, &rt, 64);
}

#[test]
fn random_queries_agree_with_the_reference_on_postgres() {
    let rt = runtime();
    let store = rt.block_on(async {
        let url = fresh_postgres_database().await;
        let store = PostgresStore::connect(&url).await.expect("open");
        store.migrate().await.expect("migrate");
        Arc::new(store)
    });
    property(store, &rt, 64);
}

#[test]
fn random_queries_agree_with_the_reference_in_memory() {
    property(Arc::new(MemoryStore::new()), &runtime(), 64);
}

// ---- The REST API ------------------------------------------------------------

const WF: &str = "/api/v1/namespaces/default/workflows";

fn ids(page: &Value) -> Vec<String> {
    page["executions"]
        .as_array()
        .unwrap_or_else(|| panic!("no executions in {page}"))
        .iter()
        .map(|e| e["workflow_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn enc(s: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", &[("q", s)])
        .expect("a URL")
        .query()
        .unwrap_or_default()
        .trim_start_matches("q=")
        .to_owned()
}

async fn lists_and_counts_by_query(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    // No endpoint is registered: the runs stay open, their pushes pending.
    for (id, ty) in [
        ("order-1", "OrderWorkflow"),
        ("order-2", "OrderWorkflow"),
        ("order-3", "OrderWorkflow"),
        ("pay-1", "PaymentWorkflow"),
        ("pay-2", "PaymentWorkflow"),
    ] {
        let (status, body) = api.start(id, ty, "main", json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for id in ["order-2", "pay-1"] {
        let (status, body) = api
            .post(&format!("{WF}/{id}/terminate"), json!({"reason": "stuck"}))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let list = |q: &str| {
        let path = format!("{WF}?query={}", enc(q));
        async move {
            let (status, body) = api.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };

    let running_orders =
        list("WorkflowType=\"OrderWorkflow\" AND ExecutionStatus=\"Running\"").await;
    assert_eq!(ids(&running_orders), ["order-3", "order-1"]);
    let future = "2999-01-01T00:00:00Z";
    let stuck = list(&format!(
        "WorkflowType=\"OrderWorkflow\" AND ExecutionStatus=\"Running\" AND StartTime < \"{future}\""
    ))
    .await;
    assert_eq!(ids(&stuck), ["order-3", "order-1"]);
    let closed = list("CloseTime IS NOT NULL ORDER BY WorkflowId").await;
    assert_eq!(ids(&closed), ["order-2", "pay-1"]);
    assert_eq!(closed["executions"][0]["status"], "TERMINATED");
    let by_prefix = list("WorkflowId STARTS_WITH 'pay-' OR WorkflowId IN ('order-1')").await;
    assert_eq!(ids(&by_prefix), ["pay-2", "pay-1", "order-1"]);
    // The plain filters are ANDed with the query.
    let (status, both) = api
        .get(&format!(
            "{WF}?status=running&query={}",
            enc("WorkflowId STARTS_WITH 'pay'")
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{both}");
    assert_eq!(ids(&both), ["pay-2"]);

    // ORDER BY pages are stable: pages of 2 give the full list, once each.
    let q = enc("ORDER BY WorkflowType DESC, WorkflowId");
    let (_, all) = api.get(&format!("{WF}?query={q}")).await;
    assert_eq!(
        ids(&all),
        ["pay-1", "pay-2", "order-1", "order-2", "order-3"]
    );
    let mut paged = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("{WF}?query={q}&page_size=2");
        if let Some(t) = &token {
            path.push_str(&format!("&next_page_token={t}"));
        }
        let (status, page) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        paged.extend(ids(&page));
        token = page["next_page_token"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(paged, ids(&all));
    // A token of one query does not page another whose order differs.
    let (_, first) = api.get(&format!("{WF}?query={q}&page_size=2")).await;
    let token = first["next_page_token"].as_str().expect("more pages");
    let (status, body) = api
        .get(&format!(
            "{WF}?query={}&next_page_token={token}",
            enc("ORDER BY CloseTime")
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Counting, grouped as Temporal groups.
    let count = |q: &str| {
        let path = format!("/api/v1/namespaces/default/workflow-count?query={}", enc(q));
        async move {
            let (status, body) = api.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    assert_eq!(count("").await, json!({"count": 5}));
    assert_eq!(
        count("WorkflowType = 'OrderWorkflow'").await,
        json!({"count": 3})
    );
    assert_eq!(
        count("GROUP BY ExecutionStatus").await,
        json!({"count": 5, "groups": [
            {"group_values": ["RUNNING"], "count": 3},
            {"group_values": ["TERMINATED"], "count": 2},
        ]})
    );
    assert_eq!(
        count("WorkflowType = 'PaymentWorkflow' group by ExecutionStatus").await,
        json!({"count": 2, "groups": [
            {"group_values": ["RUNNING"], "count": 1},
            {"group_values": ["TERMINATED"], "count": 1},
        ]})
    );
    let (status, body) = api.get("/api/v1/namespaces/nope/workflow-count").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    server.stop().await;
}

async fn bad_queries_are_refused_naming_the_token(db: Db) {
    let server = spawn_server(db).await;
    let api = &server.api;
    let (status, body) = api
        .start("order-1", "OrderWorkflow", "main", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (route, q, column, token, detail) in [
        (
            "workflows",
            "WorkflowType = 'a' AND",
            23,
            "",
            "expected an attribute name, found the end of the query",
        ),
        (
            "workflows",
            "Nope = 'x'",
            1,
            "Nope",
            "unknown search attribute `Nope`",
        ),
        (
            "workflows",
            "StartTime > 12",
            13,
            "12",
            "StartTime is a Datetime: expected a quoted RFC 3339 time, found `12`",
        ),
        (
            "workflows",
            "ExecutionStatus = 'Sleeping'",
            19,
            "'Sleeping'",
            "ExecutionStatus is a Keyword (a run status)",
        ),
        (
            "workflows",
            "WorkflowId = 'x' GROUP BY ExecutionStatus",
            18,
            "GROUP",
            "GROUP BY is only for counting runs",
        ),
        (
            "workflow-count",
            "ORDER BY StartTime",
            1,
            "ORDER",
            "ORDER BY has no meaning when counting runs",
        ),
        (
            "workflow-count",
            "GROUP BY WorkflowType",
            10,
            "WorkflowType",
            "grouped by ExecutionStatus only",
        ),
    ] {
        let (status, body) = api
            .get(&format!(
                "/api/v1/namespaces/default/{route}?query={}",
                enc(q)
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_eq!(body["code"], "invalid_query", "{body}");
        assert_eq!(body["column"], column, "{q}: {body}");
        assert_eq!(body["token"], token, "{q}: {body}");
        let shown = body["detail"].as_str().unwrap_or_default();
        assert!(shown.contains(detail), "{q}: {shown}");
        assert!(shown.contains(&format!("column {column}")), "{shown}");
    }
    // A refused query changed nothing: the run is still there, still open.
    let (_, all) = api.get(WF).await;
    assert_eq!(ids(&all), ["order-1"]);
    assert_eq!(all["executions"][0]["status"], "RUNNING");
    server.stop().await;
}
