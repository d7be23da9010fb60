//! List filters compiled to SQL for both backends, pure: a typed
//! `visibility` query becomes predicates, an ORDER BY and a keyset
//! condition appended to a [`Sql`] statement. Every value is a bind
//! parameter; the text only ever holds column names and operators from
//! fixed tables, never anything a client wrote. The meaning is
//! `visibility::eval`'s, which tests/visibility.rs checks on random
//! queries and runs.
//!
//! Text that is compared by order (`<`, BETWEEN, ORDER BY) compares by
//! bytes: SQLite's default, and on PostgreSQL `collate "C"` (the
//! database's collation may order otherwise). Run ids are the exception:
//! their fixed shape (lowercase hex and hyphens in fixed places) orders
//! the same under every collation, so the listing indexes stay usable for
//! the default order's tie-break.

use crate::visibility::{Attribute, Cursor, Expr, ListQuery, Op, OrderTerm, Type, Value};

use super::rows::{slot_column, Arg, Sql};

/// How a backend asks a KeywordList slot (a JSON array of strings as
/// text) whether it holds a keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contains {
    /// PostgreSQL: `col::jsonb @> jsonb_build_array($n::text)`, which the
    /// slot's GIN index serves.
    Jsonb,
    /// SQLite: `exists (select 1 from json_each(col) where value = $n)`.
    JsonEach,
}

/// The column (or expression) that holds an attribute.
pub(super) fn column(attribute: Attribute) -> &'static str {
    match attribute {
        Attribute::WorkflowId => "workflow_id",
        Attribute::RunId => "run_id",
        Attribute::WorkflowType => "workflow_type",
        Attribute::TaskQueue => "task_queue",
        Attribute::ExecutionStatus => "status",
        Attribute::StartTime => "start_time",
        Attribute::CloseTime => "close_time",
        Attribute::ExecutionDuration => "(close_time - start_time)",
        Attribute::HistoryLength => "history_length",
        Attribute::ParentWorkflowId => "parent_workflow_id",
        Attribute::ParentRunId => "parent_run_id",
        Attribute::BatonPinnedVersion => "pinned_version",
        Attribute::TemporalScheduledById => "scheduled_by_id",
        Attribute::Custom(slot) => slot_column(slot),
    }
}

/// Compiles with one backend's way of comparing text by bytes.
pub(super) struct Compiler {
    /// Appended to a text column compared by order: `collate "C"` on
    /// PostgreSQL, nothing on SQLite.
    pub bytewise: &'static str,
    pub contains: Contains,
}

fn arg(value: &Value) -> Arg {
    match value {
        Value::Int(i) => Arg::Int(*i),
        Value::Double(d) => Arg::Double(d.0),
        Value::Text(s) => Arg::Text(s.clone()),
        // Lists are only ever bound word by word (see `push_expr`).
        Value::List(items) => Arg::Text(items.join(" ")),
    }
}

/// The least string greater than every string that starts with `prefix`
/// (its last character that can be incremented, incremented), or `None`
/// when there is none: then every string `>= prefix` starts with it.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value, past the surrogate gap.
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            n => char::from_u32(n + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl Compiler {
    /// The column, collated for an order comparison if it holds text.
    fn ordered(&self, attribute: Attribute) -> String {
        let needs_bytes = matches!(
            attribute.kind(),
            Type::Keyword | Type::Status | Type::CustomKeyword
        ) && attribute != Attribute::RunId;
        match needs_bytes {
            true => format!("{}{}", column(attribute), self.bytewise),
            false => column(attribute).to_owned(),
        }
    }

    /// Appends ` and (filter)`.
    pub fn push_filter(&self, sql: &mut Sql, expr: &Expr) {
        sql.push(" and ");
        self.push_expr(sql, expr);
    }

    fn push_expr(&self, sql: &mut Sql, expr: &Expr) {
        match expr {
            Expr::And(l, r) | Expr::Or(l, r) => {
                let joiner = match expr {
                    Expr::And(..) => " and ",
                    _ => " or ",
                };
                sql.push("(");
                self.push_expr(sql, l);
                sql.push(joiner);
                self.push_expr(sql, r);
                sql.push(")");
            }
            Expr::Compare {
                attribute,
                op,
                value: Value::List(words),
            } if attribute.kind() == Type::Text => {
                // Every word of the literal among the value's words, kept
                // as ` word word `; words hold no `%` or `_`.
                let col = column(*attribute);
                let not = if *op == Op::Ne { "not " } else { "" };
                sql.push(&format!("({col} is not null and {not}({col} is not null"));
                for word in words {
                    sql.push(&format!(" and {col} like "))
                        .bind(format!("% {word} %"));
                }
                sql.push("))");
            }
            Expr::Compare {
                attribute,
                value: Value::Text(keyword),
                ..
            } if attribute.kind() == Type::KeywordList => {
                self.push_contains(sql, *attribute, keyword);
            }
            Expr::In { attribute, values } if attribute.kind() == Type::KeywordList => {
                sql.push("(false");
                for value in values {
                    if let Value::Text(keyword) = value {
                        sql.push(" or ");
                        self.push_contains(sql, *attribute, keyword);
                    }
                }
                sql.push(")");
            }
            Expr::Compare {
                attribute,
                op,
                value,
            } => {
                let col = match op {
                    Op::Eq | Op::Ne => column(*attribute).to_owned(),
                    _ => self.ordered(*attribute),
                };
                sql.push(&format!("{col} {} ", op.as_str()))
                    .bind(arg(value));
            }
            Expr::In { attribute, values } => {
                sql.push(column(*attribute))
                    .push(" in (")
                    .list(values.iter().map(arg))
                    .push(")");
            }
            Expr::Between {
                attribute,
                low,
                high,
            } => {
                sql.push(&format!("{} between ", self.ordered(*attribute)))
                    .bind(arg(low))
                    .push(" and ")
                    .bind(arg(high));
            }
            Expr::StartsWith { attribute, prefix } if *attribute != Attribute::RunId => {
                // A range in byte (= code point) order, which an index on
                // the bytewise column serves: `prefix <= v < successor`.
                let col = self.ordered(*attribute);
                sql.push(&format!("({col} >= ")).bind(prefix.clone());
                if let Some(end) = successor(prefix) {
                    sql.push(&format!(" and {col} < ")).bind(end);
                }
                sql.push(")");
            }
            Expr::StartsWith { attribute, prefix } => {
                // Both backends count characters in substr and length.
                let col = column(*attribute);
                sql.push(&format!("substr({col}, 1, length("))
                    .bind(prefix.clone())
                    .push(")) = ")
                    .bind(prefix.clone());
            }
            Expr::IsNull { attribute, negated } => {
                let not = if *negated { " not" } else { "" };
                sql.push(&format!("{} is{not} null", column(*attribute)));
            }
        }
    }

    /// A KeywordList slot holds `keyword`.
    fn push_contains(&self, sql: &mut Sql, attribute: Attribute, keyword: &str) {
        let col = column(attribute);
        match self.contains {
            Contains::Jsonb => {
                sql.push(&format!(
                    "({col} is not null and {col}::jsonb @> jsonb_build_array("
                ))
                .bind(keyword.to_owned())
                .push("::text))");
            }
            Contains::JsonEach => {
                sql.push(&format!(
                    "exists (select 1 from json_each({col}) where value = "
                ))
                .bind(keyword.to_owned())
                .push(")");
            }
        }
    }

    /// Appends ` order by …` for `query`'s order: a missing value after
    /// every value, spelled out (SQLite's default is the opposite).
    pub fn push_order(&self, sql: &mut Sql, query: &ListQuery) {
        sql.push(" order by ");
        for (i, term) in query.order().iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let nulls = match (term.attribute.is_nullable(), term.descending) {
                (false, _) => "",
                (true, true) => " nulls first",
                (true, false) => " nulls last",
            };
            let direction = if term.descending { "desc" } else { "asc" };
            sql.push(&format!(
                "{} {direction}{nulls}",
                self.ordered(term.attribute)
            ));
        }
    }

    /// Appends ` and (rows strictly after cursor in query's order)`.
    pub fn push_after(&self, sql: &mut Sql, query: &ListQuery, cursor: &Cursor) {
        let order = query.order();
        let values = &cursor.0;
        sql.push(" and ");
        // One direction, no missing values and no collation: a row-value
        // comparison, which an index on the order's columns serves.
        let simple = |t: &OrderTerm| {
            !t.attribute.is_nullable()
                && self.ordered(t.attribute) == column(t.attribute)
                && t.descending == order[0].descending
        };
        if order.iter().all(simple) && values.iter().all(Option::is_some) {
            let columns: Vec<&str> = order.iter().map(|t| column(t.attribute)).collect();
            let op = if order[0].descending { "<" } else { ">" };
            sql.push(&format!("({}) {op} (", columns.join(", ")))
                .list(values.iter().flatten().map(arg))
                .push(")");
            return;
        }
        // Otherwise: beyond on the first term, or equal on it and beyond
        // on the rest, and so on.
        sql.push("(");
        for (i, (term, value)) in order.iter().zip(values).enumerate() {
            if i > 0 {
                sql.push(" or (");
                self.push_equal(sql, order[i - 1].attribute, &values[i - 1]);
                sql.push(" and (");
            }
            sql.push("(");
            self.push_beyond(sql, term, value);
            sql.push(")");
        }
        sql.push(&"))".repeat(order.len().saturating_sub(1)));
        sql.push(")");
    }

    fn push_equal(&self, sql: &mut Sql, attribute: Attribute, value: &Option<Value>) {
        match value {
            Some(v) => {
                sql.push(&format!("{} = ", column(attribute))).bind(arg(v));
            }
            None => {
                sql.push(&format!("{} is null", column(attribute)));
            }
        }
    }

    /// Rows strictly beyond `value` on one term (a missing value is the
    /// largest).
    fn push_beyond(&self, sql: &mut Sql, term: &OrderTerm, value: &Option<Value>) {
        let col = self.ordered(term.attribute);
        match (value, term.descending) {
            (None, false) => {
                sql.push("false");
            }
            (None, true) => {
                sql.push(&format!("{} is not null", column(term.attribute)));
            }
            (Some(v), false) => {
                sql.push(&format!("{col} > ")).bind(arg(v));
                if term.attribute.is_nullable() {
                    sql.push(&format!(" or {} is null", column(term.attribute)));
                }
            }
            (Some(v), true) => {
                sql.push(&format!("{col} < ")).bind(arg(v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visibility::parse_list;

    fn compile(text: &str, cursor: Option<Cursor>, bytewise: &'static str) -> Sql {
        let query = parse_list(text, &Default::default()).expect("a valid query");
        let compiler = Compiler {
            bytewise,
            contains: Contains::JsonEach,
        };
        let mut sql = Sql::new("select 1 from runs where namespace = ");
        sql.bind("ns".to_owned());
        if let Some(filter) = &query.filter {
            compiler.push_filter(&mut sql, filter);
        }
        if let Some(cursor) = &cursor {
            compiler.push_after(&mut sql, &query, cursor);
        }
        compiler.push_order(&mut sql, &query);
        sql
    }

    #[test]
    fn values_are_only_ever_bound() {
        let sql = compile(
            "WorkflowId = 'x'' or 1=1 --' OR WorkflowType IN ('a', 'b') AND \
             HistoryLength BETWEEN 1 AND 2 OR TaskQueue STARTS_WITH 'q' OR CloseTime IS NULL",
            None,
            "",
        );
        assert_eq!(
            sql.text,
            "select 1 from runs where namespace = $1 and (((workflow_id = $2 or \
             (workflow_type in ($3, $4) and history_length between $5 and $6)) or \
             (task_queue >= $7 and task_queue < $8)) or close_time is null) \
             order by start_time desc, run_id desc"
        );
        assert_eq!(sql.args[1], Arg::Text("x' or 1=1 --".to_owned()));
        assert_eq!(sql.args.len(), 8);
        assert_eq!(sql.args[7], Arg::Text("r".to_owned()));
    }

    #[test]
    fn a_prefix_ends_before_its_successor() {
        assert_eq!(successor("wf-a").as_deref(), Some("wf-b"));
        assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{10FFFF}"), None);
        assert_eq!(successor(""), None);
        let sql = compile("RunId STARTS_WITH 'ab'", None, " collate \"C\"");
        assert!(
            sql.text.contains("substr(run_id, 1, length($2)) = $3"),
            "{}",
            sql.text
        );
    }

    #[test]
    fn text_compared_by_order_is_collated_except_run_ids() {
        let sql = compile(
            "WorkflowId >= 'a' AND WorkflowId != 'b' AND RunId < 'c' ORDER BY WorkflowType",
            None,
            " collate \"C\"",
        );
        assert_eq!(
            sql.text,
            "select 1 from runs where namespace = $1 and ((workflow_id collate \"C\" >= $2 and \
             workflow_id != $3) and run_id < $4) order by workflow_type collate \"C\" asc, \
             run_id asc"
        );
    }

    #[test]
    fn keysets_use_a_row_comparison_when_they_can() {
        let cursor = Cursor(vec![Some(Value::Int(5)), Some(Value::Text("r".to_owned()))]);
        let sql = compile("", Some(cursor), "");
        assert_eq!(
            sql.text,
            "select 1 from runs where namespace = $1 and (start_time, run_id) < ($2, $3) \
             order by start_time desc, run_id desc"
        );
        // A nullable term spells the comparison out; a missing value is the
        // largest.
        let cursor = Cursor(vec![None, Some(Value::Text("r".to_owned()))]);
        let sql = compile("ORDER BY CloseTime DESC", Some(cursor), "");
        assert_eq!(
            sql.text,
            "select 1 from runs where namespace = $1 and ((close_time is not null) or \
             (close_time is null and ((run_id < $2)))) order by close_time desc nulls first, \
             run_id desc"
        );
        let cursor = Cursor(vec![Some(Value::Int(7)), Some(Value::Text("r".to_owned()))]);
        let sql = compile("ORDER BY ExecutionDuration", Some(cursor), "");
        assert_eq!(
            sql.text,
            "select 1 from runs where namespace = $1 and (((close_time - start_time) > $2 or \
             (close_time - start_time) is null) or ((close_time - start_time) = $3 and \
             ((run_id > $4)))) order by (close_time - start_time) asc nulls last, run_id asc"
        );
    }
}
