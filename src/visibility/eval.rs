//! The meaning of a query over plain values: which runs a filter matches
//! and in which order a list returns them. The in-memory store runs this;
//! the SQL that `store::query` compiles must agree with it (property-tested
//! on both databases).

use std::cmp::Ordering;

use super::{Attribute, Cursor, Expr, ListQuery, Op, Type, Value};

/// A run's values of the attributes (`None`: the run has none).
pub trait Attributes {
    fn value(&self, attribute: Attribute) -> Option<Value>;
}

impl Expr {
    /// True if `row` matches (see the module doc of `visibility` for how
    /// missing values compare).
    pub fn matches(&self, row: &impl Attributes) -> bool {
        match self {
            Expr::And(l, r) => l.matches(row) && r.matches(row),
            Expr::Or(l, r) => l.matches(row) || r.matches(row),
            Expr::Compare {
                attribute,
                op,
                value,
            } => row.value(*attribute).is_some_and(|v| {
                match (attribute.kind(), &v, value) {
                    // Every word of the literal is a word of the value.
                    (Type::Text, Value::Text(words), Value::List(wanted)) => {
                        let has = wanted
                            .iter()
                            .all(|w| words.split(' ').any(|have| have == w));
                        return has == (*op == Op::Eq);
                    }
                    (Type::KeywordList, Value::List(items), Value::Text(wanted)) => {
                        return items.contains(wanted);
                    }
                    _ => {}
                }
                let ord = v.cmp(value);
                match op {
                    Op::Eq => ord == Ordering::Equal,
                    Op::Ne => ord != Ordering::Equal,
                    Op::Lt => ord == Ordering::Less,
                    Op::Le => ord != Ordering::Greater,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Ge => ord != Ordering::Less,
                }
            }),
            Expr::In { attribute, values } => match row.value(*attribute) {
                Some(Value::List(items)) => values
                    .iter()
                    .any(|v| matches!(v, Value::Text(t) if items.contains(t))),
                Some(v) => values.contains(&v),
                None => false,
            },
            Expr::Between {
                attribute,
                low,
                high,
            } => row
                .value(*attribute)
                .is_some_and(|v| *low <= v && v <= *high),
            Expr::StartsWith { attribute, prefix } => {
                matches!(row.value(*attribute), Some(Value::Text(v)) if v.starts_with(prefix.as_str()))
            }
            Expr::IsNull { attribute, negated } => row.value(*attribute).is_none() != *negated,
        }
    }
}

impl ListQuery {
    /// True if the filter matches `row` (no filter matches every run).
    pub fn matches(&self, row: &impl Attributes) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(row))
    }

    /// How two runs are ordered in a list.
    pub fn compare(&self, a: &impl Attributes, b: &impl Attributes) -> Ordering {
        self.compare_keys(&self.cursor_after(a), &self.cursor_after(b))
    }

    /// True if `row` comes after `cursor` in this query's order.
    pub fn is_after(&self, row: &impl Attributes, cursor: &Cursor) -> bool {
        self.compare_keys(&self.cursor_after(row), cursor) == Ordering::Greater
    }

    fn compare_keys(&self, a: &Cursor, b: &Cursor) -> Ordering {
        for ((term, x), y) in self.order.iter().zip(&a.0).zip(&b.0) {
            // A missing value sorts after every value.
            let ord = match (x, y) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(x), Some(y)) => x.cmp(y),
            };
            let ord = if term.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }
}
