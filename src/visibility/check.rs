//! From the untyped tree to the typed query: attribute names resolved,
//! every literal converted to its attribute's type, every operator checked
//! against it. Each error names the offending token and its column.

use crate::engine::RunStatus;
use crate::time::Duration;

use super::syntax::{Ast, Literal, LiteralValue, Name, Predicate, Token};
use super::{Attribute, Error, Expr, Op, OrderTerm, Type, Value};

pub(super) fn filter(text: &str, ast: Option<&Ast<'_>>) -> Result<Option<Expr>, Error> {
    ast.map(|ast| expr(text, ast)).transpose()
}

pub(super) fn order(
    text: &str,
    order_by: Option<&(&Token<'_>, Vec<(Name<'_>, bool)>)>,
) -> Result<Vec<OrderTerm>, Error> {
    let Some((_, terms)) = order_by else {
        return Ok(Vec::new());
    };
    terms
        .iter()
        .map(|(name, descending)| {
            Ok(OrderTerm {
                attribute: attribute(text, name)?,
                descending: *descending,
            })
        })
        .collect()
}

pub(super) fn group_by(
    text: &str,
    group_by: Option<&(&Token<'_>, Name<'_>)>,
) -> Result<Option<Attribute>, Error> {
    let Some((_, name)) = group_by else {
        return Ok(None);
    };
    match attribute(text, name)? {
        Attribute::ExecutionStatus => Ok(Some(Attribute::ExecutionStatus)),
        other => Err(error(
            text,
            name.token,
            format!(
                "runs can be grouped by ExecutionStatus only, not by {}",
                other.name()
            ),
        )),
    }
}

fn error(text: &str, token: &Token<'_>, message: String) -> Error {
    Error::at(text, token.at, token.raw).with_message(message)
}

fn attribute(text: &str, name: &Name<'_>) -> Result<Attribute, Error> {
    Attribute::from_name(&name.name).ok_or_else(|| {
        let near = Attribute::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(&name.name));
        let hint = match near {
            Some(a) => format!(" (names are case-sensitive: did you mean {}?)", a.name()),
            None => String::new(),
        };
        error(
            text,
            name.token,
            format!("unknown search attribute `{}`{hint}", name.name),
        )
    })
}

fn expr(text: &str, ast: &Ast<'_>) -> Result<Expr, Error> {
    match ast {
        Ast::And(l, r) => Ok(Expr::And(
            Box::new(expr(text, l)?),
            Box::new(expr(text, r)?),
        )),
        Ast::Or(l, r) => Ok(Expr::Or(Box::new(expr(text, l)?), Box::new(expr(text, r)?))),
        Ast::Predicate(name, predicate) => {
            let attribute = attribute(text, name)?;
            let kind = attribute.kind();
            let refuse = |token: &Token<'_>, what: &str| {
                error(
                    text,
                    token,
                    format!(
                        "{what} does not apply to {} (a {})",
                        attribute.name(),
                        kind.as_str()
                    ),
                )
            };
            let value = |literal: &Literal<'_>| typed(text, attribute, literal);
            match predicate {
                Predicate::Compare(op, token, literal) => {
                    if kind == Type::Status && !matches!(op, Op::Eq | Op::Ne) {
                        return Err(refuse(token, &format!("`{}`", op.as_str())));
                    }
                    Ok(Expr::Compare {
                        attribute,
                        op: *op,
                        value: value(literal)?,
                    })
                }
                Predicate::In(literals) => Ok(Expr::In {
                    attribute,
                    values: literals.iter().map(value).collect::<Result<_, _>>()?,
                }),
                Predicate::Between(low, high) => {
                    if kind == Type::Status {
                        return Err(refuse(low.token, "BETWEEN"));
                    }
                    Ok(Expr::Between {
                        attribute,
                        low: value(low)?,
                        high: value(high)?,
                    })
                }
                Predicate::StartsWith(literal) => {
                    if kind != Type::Keyword {
                        return Err(refuse(literal.token, "STARTS_WITH"));
                    }
                    match value(literal)? {
                        Value::Text(prefix) => Ok(Expr::StartsWith { attribute, prefix }),
                        Value::Int(_) => Err(refuse(literal.token, "a number")),
                    }
                }
                Predicate::IsNull { negated } => Ok(Expr::IsNull {
                    attribute,
                    negated: *negated,
                }),
            }
        }
    }
}

/// `literal` as a value of `attribute`'s type.
fn typed(text: &str, attribute: Attribute, literal: &Literal<'_>) -> Result<Value, Error> {
    let kind = attribute.kind();
    let wrong = |expected: &str| {
        error(
            text,
            literal.token,
            format!(
                "{} is a {}: expected {expected}, found `{}`",
                attribute.name(),
                kind.as_str(),
                literal.token.raw
            ),
        )
    };
    match (kind, &literal.value) {
        (Type::Keyword, LiteralValue::Text(s)) => Ok(Value::Text(s.clone())),
        (Type::Keyword, _) => Err(wrong("a quoted string")),
        (Type::Status, LiteralValue::Text(s)) => status(s)
            .map(|st| Value::Text(st.as_str().to_owned()))
            .ok_or_else(|| {
                wrong(
                    "one of Running, Completed, Failed, Canceled, Terminated, ContinuedAsNew, \
                     TimedOut",
                )
            }),
        (Type::Status, _) => Err(wrong("a quoted run status")),
        (Type::Datetime, LiteralValue::Text(s)) => datetime(s)
            .map(Value::Int)
            .ok_or_else(|| wrong("an RFC 3339 time such as \"2026-11-01T00:00:00Z\"")),
        (Type::Datetime, _) => Err(wrong("a quoted RFC 3339 time")),
        (Type::Duration, LiteralValue::Text(s)) => s
            .parse::<Duration>()
            .map(|d| Value::Int(d.millis()))
            .map_err(|_| wrong("a duration such as \"90s\" or \"1h 30m\"")),
        (Type::Duration, _) => Err(wrong("a quoted duration")),
        (Type::Int, LiteralValue::Number(n)) => n
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| wrong("a whole number")),
        (Type::Int, _) => Err(wrong("a whole number")),
    }
}

/// A run status by Temporal's name (`ContinuedAsNew`) or Baton's
/// (`CONTINUED_AS_NEW`), in any case.
fn status(name: &str) -> Option<RunStatus> {
    let squashed: String = name.chars().filter(|c| *c != '_').collect();
    [
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Canceled,
        RunStatus::Terminated,
        RunStatus::ContinuedAsNew,
        RunStatus::TimedOut,
    ]
    .into_iter()
    .find(|st| st.as_str().replace('_', "").eq_ignore_ascii_case(&squashed))
}

/// Milliseconds since the epoch of an RFC 3339 time with a `Z` or
/// `±hh:mm` offset (`T` or a space between date and time); digits past
/// the millisecond are dropped.
pub(super) fn datetime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = |from: usize, n: usize| -> Option<i64> {
        let part = b.get(from..from + n)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    if !at(4, b'-') || !at(7, b'-') || !(at(10, b'T') || at(10, b't') || at(10, b' ')) {
        return None;
    }
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !at(13, b':') || !at(16, b':') {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && at(i + 3, b':') => {
            let (h, m) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'-' {
                -(h * 60 + m)
            } else {
                h * 60 + m
            }
        }
        _ => return None,
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
        - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
