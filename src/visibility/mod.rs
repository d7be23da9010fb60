//! List filters (Temporal's visibility query language), pure: text in,
//! a typed query out, checked against the attributes' types; and the
//! reference meaning of a query over plain values ([`Attributes`]), which
//! the in-memory store runs and the SQL stores must agree with
//! (`store::query` compiles the same query to bind-parameterised SQL).
//!
//! `syntax` lexes and parses with winnow into an untyped tree; `check`
//! resolves attribute names and literal types (errors name the token and
//! its column); `eval` is the meaning. Semantics, shared by every backend:
//!
//! - AND binds tighter than OR; keywords are case-insensitive, attribute
//!   names are not.
//! - A comparison (`=`, `!=`, `<`, …, IN, BETWEEN, STARTS_WITH) with a
//!   missing value (an open run's CloseTime) is false, `!=` included, as in
//!   SQL; `IS NULL` / `IS NOT NULL` test for the missing value.
//! - Keywords compare by their bytes (UTF-8 code points); BETWEEN includes
//!   both ends.
//! - Order: the ORDER BY terms (default `StartTime DESC`), then RunId in
//!   the direction of the last term, so the order is total and keyset
//!   pagination neither skips nor repeats. A missing value sorts after
//!   every value (last ascending, first descending, as Temporal's
//!   `CloseTime DESC NULLS FIRST`).
//! - Custom search attributes resolve through the namespace's registry
//!   (system names win; a name registered nowhere is an error). A run
//!   without a value of one is like an open run's CloseTime: missing.
//!   Keyword: `=`, `!=`, IN, STARTS_WITH. Int, Double, Datetime: every
//!   comparison, IN and BETWEEN. Bool: `=`, `!=`. Text: `=` matches when
//!   every word of the literal is a word of the value (words: maximal runs
//!   of letters and digits, lowercased, so `Text = 'RED box'` matches
//!   "big red box"), `!=` when not. KeywordList: `=` matches a list that
//!   contains the literal, IN one that contains any of them. ORDER BY
//!   takes Keyword, Int, Double, Datetime and Bool (false before true).

mod attribute;
mod check;
mod eval;
mod syntax;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use attribute::{Attribute, Type};

use crate::engine::Registry;
pub use eval::Attributes;
pub use syntax::Op;

/// A query that is not valid: what is wrong, at which token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at column {column})")]
pub struct Error {
    pub message: String,
    /// 1-based, in characters.
    pub column: usize,
    /// The offending token as written (empty at the end of the query).
    pub token: String,
}

impl Error {
    fn at(text: &str, byte: usize, token: &str) -> Error {
        Error {
            message: String::new(),
            column: text[..byte.min(text.len())].chars().count() + 1,
            token: token.to_owned(),
        }
    }

    fn with_message(mut self, message: String) -> Error {
        self.message = message;
        self
    }
}

/// A typed value: keywords and statuses as text (statuses in their stored
/// form, `RUNNING`), times and durations as milliseconds, ints and bools
/// (1 / 0) as ints, a Text attribute's value as its words between spaces
/// (` big red box `), a KeywordList as its keywords.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    Double(Double),
    Text(String),
    List(Vec<String>),
}

/// A finite double, totally ordered (typing refuses NaN and infinities,
/// and turns `-0.0` into `0.0`, so the order is SQL's).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Double(pub f64);

impl PartialEq for Double {
    fn eq(&self, other: &Double) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Double {}

impl PartialOrd for Double {
    fn partial_cmp(&self, other: &Double) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Double {
    fn cmp(&self, other: &Double) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A filter, every literal checked against its attribute's type.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare {
        attribute: Attribute,
        op: Op,
        value: Value,
    },
    In {
        attribute: Attribute,
        values: Vec<Value>,
    },
    Between {
        attribute: Attribute,
        low: Value,
        high: Value,
    },
    StartsWith {
        attribute: Attribute,
        prefix: String,
    },
    IsNull {
        attribute: Attribute,
        negated: bool,
    },
}

impl Expr {
    /// `left AND right`, where a missing side matches everything.
    pub fn and(left: Option<Expr>, right: Expr) -> Expr {
        match left {
            Some(left) => Expr::And(Box::new(left), Box::new(right)),
            None => right,
        }
    }
}

/// One ORDER BY term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderTerm {
    pub attribute: Attribute,
    pub descending: bool,
}

/// A list query: a filter and a total order.
#[derive(Clone, Debug, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Expr>,
    /// The ORDER BY terms, RunId last (see the module doc).
    order: Vec<OrderTerm>,
}

/// Where a page ends: the order's values of its last run, one per term of
/// [`ListQuery::order`] (RunId included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor(pub Vec<Option<Value>>);

impl ListQuery {
    /// A query with `filter` in the default order (StartTime DESC).
    pub fn new(filter: Option<Expr>) -> ListQuery {
        ListQuery::ordered(filter, Vec::new())
    }

    /// A query with `filter` by RunId ascending: an order no change to a
    /// run moves it in (batch jobs page by it).
    pub fn by_run_id(filter: Option<Expr>) -> ListQuery {
        let order = vec![OrderTerm {
            attribute: Attribute::RunId,
            descending: false,
        }];
        ListQuery::ordered(filter, order)
    }

    fn ordered(filter: Option<Expr>, mut order: Vec<OrderTerm>) -> ListQuery {
        if order.is_empty() {
            order.push(OrderTerm {
                attribute: Attribute::StartTime,
                descending: true,
            });
        }
        // Terms after the first of an attribute change nothing.
        let mut seen = Vec::new();
        order.retain(|t| {
            let first = !seen.contains(&t.attribute);
            seen.push(t.attribute);
            first
        });
        if !seen.contains(&Attribute::RunId) {
            let descending = order.last().is_some_and(|t| t.descending);
            order.push(OrderTerm {
                attribute: Attribute::RunId,
                descending,
            });
        }
        ListQuery { filter, order }
    }

    /// The order, RunId last.
    pub fn order(&self) -> &[OrderTerm] {
        &self.order
    }

    /// Narrows the filter: `filter AND expr`.
    pub fn restrict(&mut self, expr: Expr) {
        self.filter = Some(Expr::and(self.filter.take(), expr));
    }

    /// The cursor that continues after `row`.
    pub fn cursor_after(&self, row: &impl Attributes) -> Cursor {
        Cursor(self.order.iter().map(|t| row.value(t.attribute)).collect())
    }

    /// True if `cursor` could have come from this query's order: one value
    /// per term, each of its attribute's kind (a token from another query
    /// would page wrongly, so it is refused).
    pub fn fits(&self, cursor: &Cursor) -> bool {
        cursor.0.len() == self.order.len()
            && self.order.iter().zip(&cursor.0).all(|(t, v)| match v {
                None => t.attribute.is_nullable(),
                Some(Value::Int(_)) => matches!(
                    t.attribute.kind(),
                    Type::Datetime | Type::Duration | Type::Int | Type::Bool
                ),
                Some(Value::Double(_)) => t.attribute.kind() == Type::Double,
                Some(Value::Text(_)) => matches!(
                    t.attribute.kind(),
                    Type::Keyword | Type::Status | Type::CustomKeyword
                ),
                Some(Value::List(_)) => false,
            })
    }
}

/// A count query: a filter, optionally grouped (only by ExecutionStatus,
/// as in Temporal).
#[derive(Clone, Debug, PartialEq)]
pub struct CountQuery {
    pub filter: Option<Expr>,
    pub group_by: Option<Attribute>,
}

/// Parses a list query (`GROUP BY` is refused), resolving custom names
/// through `registry`. Empty text lists every run.
pub fn parse_list(text: &str, registry: &Registry) -> Result<ListQuery, Error> {
    let tokens = syntax::lex(text)?;
    let parsed = syntax::parse(text, &tokens)?;
    if let Some((token, _)) = &parsed.group_by {
        return Err(Error::at(text, token.at, token.raw)
            .with_message("GROUP BY is only for counting runs".to_owned()));
    }
    let filter = check::filter(text, registry, parsed.filter.as_ref())?;
    let order = check::order(text, registry, parsed.order_by.as_ref())?;
    Ok(ListQuery::ordered(filter, order))
}

/// Parses a count query (`ORDER BY` is refused).
pub fn parse_count(text: &str, registry: &Registry) -> Result<CountQuery, Error> {
    let tokens = syntax::lex(text)?;
    let parsed = syntax::parse(text, &tokens)?;
    if let Some((token, _)) = &parsed.order_by {
        return Err(Error::at(text, token.at, token.raw)
            .with_message("ORDER BY has no meaning when counting runs".to_owned()));
    }
    Ok(CountQuery {
        filter: check::filter(text, registry, parsed.filter.as_ref())?,
        group_by: check::group_by(text, registry, parsed.group_by.as_ref())?,
    })
}
