//! Parser, checker and evaluator tests: every operator, precedence, the
//! errors (message, token and column) and the order.

use std::collections::HashMap;

use super::*;

fn list(text: &str) -> ListQuery {
    parse_list(text, &Default::default()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn filter(text: &str) -> Expr {
    list(text).filter.expect("a filter")
}

fn err(text: &str) -> (String, usize, String) {
    let e = parse_list(text, &Default::default()).expect_err(text);
    (e.message, e.column, e.token)
}

fn cmp(attribute: Attribute, op: Op, value: Value) -> Expr {
    Expr::Compare {
        attribute,
        op,
        value,
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn wf(s: &str) -> Expr {
    cmp(Attribute::WorkflowId, Op::Eq, text(s))
}

fn and(l: Expr, r: Expr) -> Expr {
    Expr::And(Box::new(l), Box::new(r))
}

fn or(l: Expr, r: Expr) -> Expr {
    Expr::Or(Box::new(l), Box::new(r))
}

#[test]
fn every_comparison_operator_parses() {
    for (written, op) in [
        ("=", Op::Eq),
        ("!=", Op::Ne),
        ("<>", Op::Ne),
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
    ] {
        assert_eq!(
            filter(&format!("HistoryLength {written} 10")),
            cmp(Attribute::HistoryLength, op, Value::Int(10)),
            "{written}"
        );
        // No spaces needed around operators.
        assert_eq!(
            filter(&format!("WorkflowType{written}'a'")),
            cmp(Attribute::WorkflowType, op, text("a"))
        );
    }
}

#[test]
fn in_between_starts_with_and_is_null() {
    assert_eq!(
        filter("WorkflowId IN ('a', \"b\")"),
        Expr::In {
            attribute: Attribute::WorkflowId,
            values: vec![text("a"), text("b")],
        }
    );
    assert_eq!(
        filter("HistoryLength between 3 and 9"),
        Expr::Between {
            attribute: Attribute::HistoryLength,
            low: Value::Int(3),
            high: Value::Int(9),
        }
    );
    assert_eq!(
        filter("WorkflowType STARTS_WITH 'order.'"),
        Expr::StartsWith {
            attribute: Attribute::WorkflowType,
            prefix: "order.".to_owned(),
        }
    );
    assert_eq!(
        filter("CloseTime IS NULL"),
        Expr::IsNull {
            attribute: Attribute::CloseTime,
            negated: false,
        }
    );
    assert_eq!(
        filter("ParentWorkflowId is not null"),
        Expr::IsNull {
            attribute: Attribute::ParentWorkflowId,
            negated: true,
        }
    );
}

#[test]
fn and_binds_tighter_than_or_and_parentheses_override() {
    assert_eq!(
        filter("WorkflowId = 'a' OR WorkflowId = 'b' AND WorkflowId = 'c'"),
        or(wf("a"), and(wf("b"), wf("c")))
    );
    assert_eq!(
        filter("WorkflowId = 'a' AND WorkflowId = 'b' OR WorkflowId = 'c'"),
        or(and(wf("a"), wf("b")), wf("c"))
    );
    assert_eq!(
        filter("(WorkflowId = 'a' OR WorkflowId = 'b') AND WorkflowId = 'c'"),
        and(or(wf("a"), wf("b")), wf("c"))
    );
    // Both are left-associative.
    assert_eq!(
        filter("WorkflowId = 'a' or WorkflowId = 'b' or WorkflowId = 'c'"),
        or(or(wf("a"), wf("b")), wf("c"))
    );
    assert_eq!(
        filter("((WorkflowId = 'a'))"),
        wf("a"),
        "nested parentheses"
    );
}

#[test]
fn literals_take_their_attributes_types() {
    assert_eq!(
        filter("StartTime > '2021-06-07T16:46:34.236-08:00'"),
        cmp(Attribute::StartTime, Op::Gt, Value::Int(1_623_113_194_236))
    );
    assert_eq!(
        filter("CloseTime <= \"1970-01-01T00:00:01Z\""),
        cmp(Attribute::CloseTime, Op::Le, Value::Int(1_000))
    );
    assert_eq!(
        filter("ExecutionDuration > '1h 30m'"),
        cmp(Attribute::ExecutionDuration, Op::Gt, Value::Int(5_400_000))
    );
    assert_eq!(
        filter("ExecutionDuration < '1.5s'"),
        cmp(Attribute::ExecutionDuration, Op::Lt, Value::Int(1_500))
    );
    // Temporal's status names and Baton's both work.
    for written in ["Running", "RUNNING", "running"] {
        assert_eq!(
            filter(&format!("ExecutionStatus = '{written}'")),
            cmp(Attribute::ExecutionStatus, Op::Eq, text("RUNNING"))
        );
    }
    assert_eq!(
        filter("ExecutionStatus != 'ContinuedAsNew'"),
        cmp(Attribute::ExecutionStatus, Op::Ne, text("CONTINUED_AS_NEW"))
    );
    // Escapes: a backslash, or a doubled quote.
    assert_eq!(filter(r"WorkflowId = 'it\'s'"), wf("it's"));
    assert_eq!(filter("WorkflowId = 'it''s'"), wf("it's"));
    assert_eq!(filter(r#"WorkflowId = "say \"hi\"""#), wf("say \"hi\""));
    // Backticks quote a name.
    assert_eq!(filter("`WorkflowId` = 'x'"), wf("x"));
}

#[test]
fn datetimes_parse_as_rfc3339() {
    use crate::time::rfc3339_millis as datetime;
    assert_eq!(datetime("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        datetime("2023-11-14T22:13:20.123Z"),
        Some(1_700_000_000_123)
    );
    assert_eq!(
        datetime("2023-11-14 22:13:20.1234567z"),
        Some(1_700_000_000_123)
    );
    assert_eq!(
        datetime("2023-11-15T00:13:20.5+02:00"),
        Some(1_700_000_000_500)
    );
    assert_eq!(datetime("1969-12-31T23:59:59Z"), Some(-1_000));
    assert_eq!(datetime("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
    for bad in [
        "2023-02-29T00:00:00Z",
        "2023-13-01T00:00:00Z",
        "2023-11-14T22:13:20",
        "2023-11-14T22:13:20.Z",
        "2023-11-14T24:00:00Z",
        "2023-11-14T22:13:20+0200",
        "yesterday",
        "",
    ] {
        assert_eq!(datetime(bad), None, "{bad}");
    }
}

#[test]
fn keywords_are_case_insensitive_and_names_are_not() {
    assert_eq!(
        filter("WorkflowId = 'a' aNd WorkflowId In ('b')"),
        and(
            wf("a"),
            Expr::In {
                attribute: Attribute::WorkflowId,
                values: vec![text("b")],
            }
        )
    );
    let (message, column, token) = err("workflowId = 'a'");
    assert_eq!(
        message,
        "unknown search attribute `workflowId` (names are case-sensitive: did you mean WorkflowId?)"
    );
    assert_eq!((column, token.as_str()), (1, "workflowId"));
}

#[test]
fn errors_name_the_token_and_its_column() {
    let cases = [
        (
            "WorkflowId = 'a' AND Foo = 1",
            "unknown search attribute `Foo`",
            22,
            "Foo",
        ),
        (
            "HistoryLength = 'ten'",
            "HistoryLength is a Int: expected a whole number, found `'ten'`",
            17,
            "'ten'",
        ),
        (
            "StartTime < 'soon'",
            "StartTime is a Datetime: expected an RFC 3339 time such as \"2026-11-01T00:00:00Z\", \
             found `'soon'`",
            13,
            "'soon'",
        ),
        (
            "WorkflowId = 5",
            "WorkflowId is a Keyword: expected a quoted string, found `5`",
            14,
            "5",
        ),
        (
            "ExecutionStatus = 'Sleeping'",
            "ExecutionStatus is a Keyword (a run status): expected one of Running, Completed, \
             Failed, Canceled, Terminated, ContinuedAsNew, TimedOut, found `'Sleeping'`",
            19,
            "'Sleeping'",
        ),
        (
            "ExecutionStatus > 'Running'",
            "`>` does not apply to ExecutionStatus (a Keyword (a run status))",
            17,
            ">",
        ),
        (
            "StartTime STARTS_WITH '2026'",
            "STARTS_WITH does not apply to StartTime (a Datetime)",
            23,
            "'2026'",
        ),
        (
            "WorkflowId = ",
            "expected a value, found the end of the query",
            14,
            "",
        ),
        (
            "WorkflowId 'a'",
            "expected an operator (=, !=, <, <=, >, >=, IN, BETWEEN, STARTS_WITH, IS), found `'a'`",
            12,
            "'a'",
        ),
        (
            "WorkflowId = 'a' AND",
            "expected an attribute name, found the end of the query",
            21,
            "",
        ),
        (
            "(WorkflowId = 'a'",
            "expected `)`, found the end of the query",
            18,
            "",
        ),
        (
            "WorkflowId = 'a' WorkflowType = 'b'",
            "expected AND, OR, ORDER BY, GROUP BY or the end of the query, found `WorkflowType`",
            18,
            "WorkflowType",
        ),
        ("WorkflowId IN ()", "expected a value, found `)`", 16, ")"),
        (
            "HistoryLength BETWEEN 1 OR 2",
            "expected AND, found `OR`",
            25,
            "OR",
        ),
        ("CloseTime IS 'x'", "expected NULL, found `'x'`", 14, "'x'"),
        (
            "WorkflowId = 'never closed",
            "a string that is never closed `'never`",
            14,
            "'never",
        ),
        (
            "WorkflowId = 'a' ; drop table runs",
            "a character that starts no token `;`",
            18,
            ";",
        ),
        (
            "ORDER BY Nope",
            "unknown search attribute `Nope`",
            10,
            "Nope",
        ),
        (
            "WorkflowId = 'a' ORDER WorkflowId",
            "expected BY, found `WorkflowId`",
            24,
            "WorkflowId",
        ),
        (
            "WorkflowId = 'a' GROUP BY ExecutionStatus",
            "GROUP BY is only for counting runs",
            18,
            "GROUP",
        ),
        (
            "HistoryLength = 99999999999999999999",
            "HistoryLength is a Int: expected a whole number, found `99999999999999999999`",
            17,
            "99999999999999999999",
        ),
        // Columns count characters, not bytes.
        (
            "WorkflowId = 'é' AND x = 1",
            "unknown search attribute `x`",
            22,
            "x",
        ),
    ];
    for (query, message, column, token) in cases {
        assert_eq!(
            err(query),
            (message.to_owned(), column, token.to_owned()),
            "{query}"
        );
        // The display form says where.
        let shown = parse_list(query, &Default::default())
            .expect_err(query)
            .to_string();
        assert!(shown.ends_with(&format!("(at column {column})")), "{shown}");
    }
}

#[test]
fn count_queries_group_by_execution_status_only() {
    let q = parse_count(
        "WorkflowType = 'a' GROUP BY ExecutionStatus",
        &Default::default(),
    )
    .expect("count");
    assert_eq!(q.group_by, Some(Attribute::ExecutionStatus));
    assert_eq!(
        q.filter,
        Some(cmp(Attribute::WorkflowType, Op::Eq, text("a")))
    );
    let all = parse_count("group by ExecutionStatus", &Default::default()).expect("count");
    assert_eq!(
        (all.filter, all.group_by),
        (None, Some(Attribute::ExecutionStatus))
    );
    assert_eq!(
        parse_count("", &Default::default())
            .expect("count")
            .group_by,
        None
    );
    let e = parse_count("GROUP BY WorkflowType", &Default::default()).expect_err("by type");
    assert_eq!(
        (e.message.as_str(), e.column),
        (
            "runs can be grouped by ExecutionStatus only, not by WorkflowType",
            10
        )
    );
    let e = parse_count("ORDER BY StartTime", &Default::default()).expect_err("ordered");
    assert_eq!(
        (e.message.as_str(), e.column),
        ("ORDER BY has no meaning when counting runs", 1)
    );
}

fn term(attribute: Attribute, descending: bool) -> OrderTerm {
    OrderTerm {
        attribute,
        descending,
    }
}

#[test]
fn the_order_ends_with_run_id() {
    assert_eq!(
        list("").order(),
        [
            term(Attribute::StartTime, true),
            term(Attribute::RunId, true)
        ]
    );
    assert_eq!(list("").filter, None);
    assert_eq!(
        list("ORDER BY CloseTime DESC, WorkflowId").order(),
        [
            term(Attribute::CloseTime, true),
            term(Attribute::WorkflowId, false),
            term(Attribute::RunId, false)
        ]
    );
    assert_eq!(
        list("WorkflowId = 'a' order by RunId desc, StartTime asc, RunId").order(),
        [
            term(Attribute::RunId, true),
            term(Attribute::StartTime, false)
        ]
    );
}

/// A run as a map of values.
#[derive(Clone, Debug, Default)]
struct Row(HashMap<Attribute, Value>);

impl Attributes for Row {
    fn value(&self, attribute: Attribute) -> Option<Value> {
        self.0.get(&attribute).cloned()
    }
}

fn row(run_id: &str, start: i64, close: Option<i64>) -> Row {
    let mut values = HashMap::from([
        (Attribute::RunId, text(run_id)),
        (Attribute::WorkflowId, text(&format!("wf-{run_id}"))),
        (Attribute::StartTime, Value::Int(start)),
    ]);
    if let Some(close) = close {
        values.insert(Attribute::CloseTime, Value::Int(close));
        values.insert(Attribute::ExecutionDuration, Value::Int(close - start));
    }
    Row(values)
}

#[test]
fn comparisons_with_a_missing_value_are_false() {
    let open = row("a", 10, None);
    let closed = row("b", 10, Some(20));
    for (query, open_matches, closed_matches) in [
        ("CloseTime = '1970-01-01T00:00:00.020Z'", false, true),
        ("CloseTime != '1970-01-01T00:00:00.020Z'", false, false),
        ("CloseTime != '1970-01-01T00:00:00.021Z'", false, true),
        ("CloseTime > '1970-01-01T00:00:00Z'", false, true),
        ("CloseTime IS NULL", true, false),
        ("CloseTime IS NOT NULL", false, true),
        ("ExecutionDuration BETWEEN '10ms' AND '10ms'", false, true),
        ("ExecutionDuration IN ('1ms', '10ms')", false, true),
        ("WorkflowId STARTS_WITH 'wf-'", true, true),
        ("WorkflowId STARTS_WITH ''", true, true),
        ("WorkflowId STARTS_WITH 'wf-b'", false, true),
        ("ParentWorkflowId STARTS_WITH ''", false, false),
        (
            "CloseTime IS NULL OR ExecutionDuration > '5ms' AND WorkflowId = 'wf-b'",
            true,
            true,
        ),
        (
            "(CloseTime IS NULL OR ExecutionDuration > '5ms') AND WorkflowId = 'wf-b'",
            false,
            true,
        ),
    ] {
        let q = list(query);
        assert_eq!(
            (q.matches(&open), q.matches(&closed)),
            (open_matches, closed_matches),
            "{query}"
        );
    }
}

#[test]
fn missing_values_sort_last_ascending_and_first_descending() {
    let rows = [
        row("1", 30, Some(40)),
        row("2", 20, None),
        row("3", 10, Some(50)),
        row("4", 10, Some(40)),
    ];
    let sorted = |query: &str| {
        let q = list(query);
        let mut sorted = rows.to_vec();
        sorted.sort_by(|a, b| q.compare(a, b));
        sorted
            .iter()
            .map(|r| match r.value(Attribute::RunId) {
                Some(Value::Text(id)) => id,
                _ => unreachable!("every row has a run id"),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(sorted(""), ["1", "2", "4", "3"]);
    assert_eq!(sorted("ORDER BY CloseTime DESC"), ["2", "3", "4", "1"]);
    assert_eq!(sorted("ORDER BY CloseTime"), ["1", "4", "3", "2"]);
    assert_eq!(
        sorted("ORDER BY StartTime, CloseTime DESC"),
        ["3", "4", "2", "1"]
    );

    let q = list("ORDER BY CloseTime DESC");
    let cursor = q.cursor_after(&rows[2]);
    assert!(q.fits(&cursor));
    let after: Vec<bool> = rows.iter().map(|r| q.is_after(r, &cursor)).collect();
    assert_eq!(after, [true, false, false, true]);
    // A cursor that another order could not have made does not fit.
    assert!(!list("").fits(&q.cursor_after(&rows[1])));
    assert!(!q.fits(&Cursor(vec![Some(text("x")), Some(text("y"))])));
}
